/**
 * Builds ONE CommonJS copy of tfjs-core for the conformance suite: its ES-module `dist/` (the
 * library, `jasmine_util` and every `*_test.js` that `dist/tests.js` lists) bundled by esbuild,
 * then compiled to ES5 by the project's TypeScript, into `build/conformance/`. ES5 because the
 * backend bundles (tfjs-node, tfjs-backend-wasm, …) are ES5: their `class BackendWasm extends
 * KernelBackend` is `_super.call(this)`, which cannot call a native ES2015 class. The runner then makes every `require('@tensorflow/tfjs-core')` (from
 * `@tensorflow/tfjs`, tfjs-node, the wasm and cpu backends, and gpulab) return this bundle's
 * library, so the specs, the backends and gpulab's kernels all share one engine and one kernel
 * registry. The test files are wrapped lazily: nothing registers a spec until the runner has set
 * the test environment and asks for a file.
 *
 * Cached: rebuilt only when tfjs-core's, esbuild's or TypeScript's version, or this file, changes
 * (≈10 s on 2 cores).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import * as ts from 'typescript';
import { ROOT } from '../support/helpers';
import { writeFileAtomic } from '../../lib/fsutil';

/** tfjs-core's `dist/` folder (the ES modules the suite is written against). */
export const CORE_DIST = path.join(path.dirname(require.resolve('@tensorflow/tfjs-core/package.json')), 'dist');

/** What the bundle exports (see {@link buildCoreBundle}). */
export interface CoreBundle {
  /** tfjs-core's public API (`dist/index.js`): the one instance everything shares. */
  core: typeof import('@tensorflow/tfjs-core');
  /** `dist/jasmine_util.js` (setTestEnvs, TEST_ENVS, …). */
  jasmineUtil: { setTestEnvs(envs: { name: string; backendName: string; flags?: Record<string, unknown>; isDataSync?: boolean }[]): void };
  /** Registers the specs of one test file (e.g. 'ops/mat_mul_test'), by the names `dist/tests.js` lists. */
  specFiles: Record<string, () => void>;
}

/** The spec files `dist/tests.js` imports, without `./` and `.js` (e.g. 'ops/mat_mul_test'). */
export function listedSpecFiles(testsJs = fs.readFileSync(path.join(CORE_DIST, 'tests.js'), 'utf8')): string[] {
  const files = [...testsJs.matchAll(/^import '\.\/([^']+)';$/gm)].map((m) => m[1]);
  if (files.length < 100) throw new Error(`${path.join(CORE_DIST, 'tests.js')}: expected its list of test imports, found ${files.length}`);
  return files;
}

function versionOf(pkgJson: string): string {
  return (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
}

/** The bundle's path, keyed by tfjs-core's, esbuild's and TypeScript's versions and this file's text. */
export function bundlePath(): string {
  const key = crypto.createHash('sha256')
    .update(versionOf(path.join(CORE_DIST, '..', 'package.json')))
    .update(versionOf(require.resolve('esbuild/package.json')))
    .update(ts.version)
    .update(fs.readFileSync(__filename))
    .digest('hex')
    .slice(0, 12);
  return path.join(ROOT, 'build', 'conformance', `tfjs-core-tests-${key}.cjs`);
}

/**
 * Build the bundle (or reuse the cached one) and return its path. Bare imports (seedrandom, long,
 * jasmine-core, node-fetch, the cpu backend one spec loads) stay `require`s; only tfjs-core's own
 * relative modules are bundled, so the bundle holds exactly one copy of each of them.
 */
export async function buildCoreBundle(): Promise<string> {
  const out = bundlePath();
  if (fs.existsSync(out)) return out;
  const specs = listedSpecFiles();
  const entry = [
    "exports.core = require('./index.js');",
    "exports.jasmineUtil = require('./jasmine_util.js');",
    'exports.specFiles = {',
    ...specs.map((f) => `  ${JSON.stringify(f)}: () => { require(${JSON.stringify(`./${f}.js`)}); },`),
    '};',
  ].join('\n');
  const bundled = await build({
    stdin: { contents: entry, resolveDir: CORE_DIST, sourcefile: 'conformance-entry.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    write: false,
    outfile: out,
    logLevel: 'error',
    legalComments: 'none',
  });
  const es5 = ts.transpileModule(bundled.outputFiles[0].text, {
    compilerOptions: { target: ts.ScriptTarget.ES5, module: ts.ModuleKind.CommonJS, allowJs: true, downlevelIteration: true },
    fileName: 'tfjs-core-tests.js',
  }).outputText;
  writeFileAtomic(out, es5);
  for (const f of fs.readdirSync(path.dirname(out))) {
    if (/^tfjs-core-tests-[0-9a-f]+\.cjs$/.test(f) && f !== path.basename(out)) fs.rmSync(path.join(path.dirname(out), f), { force: true }); // stale builds
  }
  return out;
}
