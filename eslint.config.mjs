// ESLint flat config: typescript-eslint's recommended rules over everything we write
// (lib/, scripts/, test/, bench/), plus the few project choices below, each with its reason.
// `npm run lint` runs it with --max-warnings 0; `npm test` runs lint first.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build output, installed packages and the caches that setup scripts create.
    ignores: [
      '**/node_modules/**', 'lib/dist/**', 'build/**', 'results/**', 'data/**',
      '.venv/**', '.kit/**', '.gl/**', '.whl/**', '.tensorflow/**',
    ],
  },
  {
    // Choice: no inline configuration. An `eslint-disable` comment hides a problem instead of
    // fixing it; with this setting such a comment has no effect and is itself reported.
    linterOptions: { noInlineConfig: true, reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Choice: a leading underscore marks a parameter or binding that is there on purpose
      // (a callback's required position, a destructured field we drop), so it is not "unused".
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true,
      }],
      // Choice: `===` always; `== null` is allowed as the one idiom for "null or undefined".
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Choice: ES imports (static, or `await import()` for what loads lazily), with one named
      // exception: dawn.node's `webgpu` package is an ES module that Node >= 20.19 `require`s
      // synchronously. A dynamic import() would stay a real ES import under tsx but compile to
      // require() in lib/dist, so tests and notebooks would load Dawn in two different ways.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^webgpu$'] }],
    },
  },
  {
    // The published site's one script runs in the reader's browser, not in Node.
    files: ['scripts/site/assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
);
