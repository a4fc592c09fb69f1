/**
 * Which of tfjs-core's specs each backend is held to: the backend projects' own lists, used
 * unchanged.
 *
 * - `tensorflow`: tfjs-node's IGNORE_LIST, read at run time from the installed
 *   `@tensorflow/tfjs-node/dist/run_tests.js` (a spec is skipped when its full name contains an
 *   entry), so an upgrade of tfjs-node brings its own list along.
 * - `wasm`: tfjs-backend-wasm's TEST_FILTERS and customInclude rule (`src/setup_test.ts` at tag
 *   tfjs-v4.22.0; not shipped in the npm package), committed as data in `lists/` with its source
 *   and licence.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

/** The backends the suite runs on. */
export const SUITE_BACKENDS = ['tensorflow', 'wasm'] as const;
/** One of {@link SUITE_BACKENDS}. */
export type SuiteBackend = (typeof SUITE_BACKENDS)[number];

/** A tfjs `TestEnv` as `jasmine_util.setTestEnvs` takes it. */
export interface TestEnv {
  name: string;
  backendName: string;
  flags?: Record<string, unknown>;
  isDataSync?: boolean;
}

/** One entry of tfjs's `TestFilter[]` (jasmine_util.setupTestFilters). */
export interface TestFilter {
  include?: string;
  startsWith?: string;
  excludes?: string[];
}

/** How one backend selects specs: its test environment and a filter on a spec's full name. */
export interface SpecSelection {
  testEnv: TestEnv;
  /** Where the list comes from (shown in reports). */
  source: string;
  /** True when the spec with this full name is run on the backend. */
  runs(fullName: string): boolean;
}

/**
 * tfjs-node's IGNORE_LIST from the text of its `dist/run_tests.js` (the array literal, evaluated
 * without running the file). Throws naming the file when the list is not found.
 */
export function parseTfjsNodeIgnoreList(runTestsJs: string, file = 'run_tests.js'): string[] {
  const m = /var IGNORE_LIST = (\[[\s\S]*?\n\]);/.exec(runTestsJs) ?? /const IGNORE_LIST = (\[[\s\S]*?\n\]);/.exec(runTestsJs);
  if (!m) throw new Error(`${file}: no IGNORE_LIST array found (has tfjs-node changed how it lists skipped specs?)`);
  const list: unknown = vm.runInNewContext(`(${m[1]})`, {}, { timeout: 1000 });
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string')) {
    throw new Error(`${file}: IGNORE_LIST is not a non-empty array of strings`);
  }
  return list as string[];
}

/** The installed tfjs-node's ignore list and the file it came from. */
export function tfjsNodeIgnoreList(): { file: string; list: string[] } {
  const file = path.join(path.dirname(require.resolve('@tensorflow/tfjs-node/package.json')), 'dist', 'run_tests.js');
  return { file, list: parseTfjsNodeIgnoreList(fs.readFileSync(file, 'utf8'), file) };
}

/** The committed wasm include list (see lists/wasm-tfjs-v4.22.0.json). */
export interface WasmList {
  source: { repository: string; path: string; tag: string; commit: string };
  license: string;
  testEnv: TestEnv;
  filters: TestFilter[];
}

/** Where the wasm include list lives. */
export const WASM_LIST_FILE = path.join(__dirname, 'lists', 'wasm-tfjs-v4.22.0.json');

/** Read and check the committed wasm include list. */
export function wasmIncludeList(file = WASM_LIST_FILE): WasmList {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as WasmList;
  if (!Array.isArray(doc.filters) || !doc.filters.length || !doc.filters.every((f) => typeof (f.include ?? f.startsWith) === 'string')) {
    throw new Error(`${file}: "filters" must be a non-empty list of { include | startsWith, excludes? }`);
  }
  return doc;
}

/**
 * tfjs's `setupTestFilters` rule, restated: a spec runs when `customInclude` says so, or when a
 * filter's `include` is in its name (or `startsWith` begins it) and none of that filter's
 * `excludes` is.
 */
export function matchesTestFilters(name: string, filters: readonly TestFilter[], customInclude: (name: string) => boolean): boolean {
  if (customInclude(name)) return true;
  for (const f of filters) {
    if ((f.include !== undefined && name.includes(f.include)) || (f.startsWith !== undefined && name.startsWith(f.startsWith))) {
      return !(f.excludes ?? []).some((e) => name.includes(e));
    }
  }
  return false;
}

/** The spec selection tfjs's own CI uses for `backend`. */
export function selectionFor(backend: SuiteBackend): SpecSelection {
  if (backend === 'tensorflow') {
    const { file, list } = tfjsNodeIgnoreList();
    return {
      testEnv: { name: 'test-tensorflow', backendName: 'tensorflow', flags: {}, isDataSync: true },
      source: `${path.relative(process.cwd(), file)} IGNORE_LIST (${list.length} entries)`,
      runs: (name) => !list.some((entry) => name.includes(entry)),
    };
  }
  const doc = wasmIncludeList();
  const envName = doc.testEnv.name;
  return {
    testEnv: doc.testEnv,
    source: `${doc.source.repository} ${doc.source.path} at ${doc.source.tag} (${doc.filters.length} filters)`,
    runs: (name) => matchesTestFilters(name, doc.filters, (n) => !n.includes(envName) || n.startsWith('wasm')),
  };
}
