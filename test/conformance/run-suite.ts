/**
 * One run of tfjs-core's op suite: one backend, with tfjs's stock kernels or with gpulab's
 * installed, in THIS process (the kernel registry and jasmine's environment are process-wide, so
 * suite.ts starts one process per run). Writes every spec's outcome as JSON:
 *
 *   node --import tsx test/conformance/run-suite.ts --backend wasm --kernels gpulab --out /tmp/r.json [--files ops/mat_mul_test,ops/reshape_test]
 *
 * Load order is the point of this file: the bundled tfjs-core is installed as THE tfjs-core first,
 * then the test environment is set, then the backend package and (for `gpulab`) gpulab's kernel
 * modules load, and only then are the spec files registered and run.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { buildCoreBundle, type CoreBundle } from './bundle';
import { SUITE_BACKENDS, selectionFor, type SuiteBackend } from './lists';
import { assertSingleCore, useBundledCore, type SingleCoreReport } from './single-core';
import { writeFileAtomic } from '../../lib/fsutil';

/** Loads modules at call time, after the shared tfjs-core is installed (a static import would load a second one). */
const lateRequire = createRequire(__filename);
const LIB = path.resolve(__dirname, '..', '..', 'lib');

/** Whose kernels a run uses. */
export type KernelSet = 'stock' | 'gpulab';

/** One spec's outcome. */
export interface SpecOutcome {
  /** jasmine's full name, e.g. 'matMul test-wasm {} A x B'. */
  name: string;
  /** The spec file, as dist/tests.js names it (e.g. 'ops/mat_mul_test'). */
  file: string;
  status: 'passed' | 'failed' | 'pending';
  /** The first failure message, when it failed. */
  message?: string;
}

/** What one run writes. */
export interface RunResult {
  backend: SuiteBackend;
  kernels: KernelSet;
  /** Where the backend's spec list came from. */
  listSource: string;
  /** The spec files loaded. */
  files: string[];
  /** Every spec the list selects, in run order. */
  specs: SpecOutcome[];
  /** Specs the list leaves out. */
  excluded: number;
  /** Errors outside any spec (a failing beforeAll/afterAll, an error after the suite ended). */
  otherErrors: string[];
  /** The kernels gpulab replaced or added on the backend (empty for stock). */
  kernelsChanged: string[];
  singleCore: SingleCoreReport;
  seconds: number;
}

interface JasmineResult {
  id: string;
  fullName: string;
  status: string;
  failedExpectations?: { message: string }[];
}
interface JasmineSuiteMeta {
  id: string;
  children: JasmineSuiteMeta[];
}
interface JasmineEnv {
  clearReporters(): void;
  addReporter(r: object): void;
  configure(c: object): void;
  topSuite(): JasmineSuiteMeta;
}
interface JasmineRunner {
  exitOnCompletion: boolean;
  env: JasmineEnv;
  jasmine: { DEFAULT_TIMEOUT_INTERVAL: number };
  execute(): Promise<{ overallStatus: string; failedExpectations: { message: string }[] }>;
}
type Core = CoreBundle['core'];
type KernelFuncs = Map<string, unknown>;

function kernelFuncs(core: Core, backend: string): KernelFuncs {
  return new Map(core.getKernelsForBackend(backend).map((k) => [k.kernelName, k.kernelFunc]));
}

/** Install gpulab's kernels for `backend` through gpulab's own modules; returns the kernels that changed. */
function installGpulabKernels(core: Core, backend: SuiteBackend): string[] {
  const before = kernelFuncs(core, backend);
  let declared: readonly string[];
  if (backend === 'tensorflow') {
    const native = lateRequire(path.join(LIB, 'backends', 'native')) as typeof import('../../lib/backends/native');
    native.installNativeFastKernels();
    declared = native.NATIVE_OVERRIDDEN_KERNELS;
  } else {
    const wasmFast = lateRequire(path.join(LIB, 'backends', 'wasm-fast')) as typeof import('../../lib/backends/wasm-fast');
    wasmFast.installFastKernels();
    const convGrad = lateRequire(path.join(LIB, 'backends', 'wasm-conv-grad')) as typeof import('../../lib/backends/wasm-conv-grad');
    declared = [...wasmFast.OVERRIDDEN_KERNELS, convGrad.KERNEL_NAME]; // importing it registers Conv2DBackpropFilter
  }
  const after = kernelFuncs(core, backend);
  const changed = [...after].filter(([name, fn]) => before.get(name) !== fn).map(([name]) => name).sort();
  const missing = declared.filter((k) => !changed.includes(k));
  if (missing.length) throw new Error(`gpulab's ${missing.join(', ')} kernel(s) for ${backend} did not reach the shared kernel registry (a second tfjs-core?)`);
  return changed;
}

function parseArgs(argv: string[]): { backend: SuiteBackend; kernels: KernelSet; out: string; files: string[] | null } {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const backend = get('--backend') as SuiteBackend;
  const kernels = get('--kernels') as KernelSet;
  const out = get('--out');
  if (!SUITE_BACKENDS.includes(backend)) throw new Error(`run-suite: --backend must be one of ${SUITE_BACKENDS.join(', ')}, got ${backend}`);
  if (kernels !== 'stock' && kernels !== 'gpulab') throw new Error(`run-suite: --kernels must be stock or gpulab, got ${kernels}`);
  if (!out) throw new Error('run-suite: --out <file.json> is required');
  const files = get('--files');
  return { backend, kernels, out, files: files ? files.split(',').filter(Boolean) : null };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const bundle = lateRequire(await buildCoreBundle()) as CoreBundle;
  useBundledCore(bundle.core);
  const selection = selectionFor(args.backend);
  bundle.jasmineUtil.setTestEnvs([selection.testEnv]);
  lateRequire(args.backend === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-backend-wasm');
  const kernelsChanged = args.kernels === 'gpulab' ? installGpulabKernels(bundle.core, args.backend) : [];
  if (!(await bundle.core.setBackend(selection.testEnv.backendName))) throw new Error(`run-suite: the ${args.backend} backend did not initialise`);
  const singleCore = assertSingleCore(bundle.core);

  const Jasmine = lateRequire('jasmine') as new () => JasmineRunner;
  const runner = new Jasmine();
  runner.exitOnCompletion = false;
  runner.jasmine.DEFAULT_TIMEOUT_INTERVAL = 20_000; // tfjs's jasmine_util sets this on its own copy of jasmine-core
  const env = runner.env;
  env.clearReporters();
  env.configure({ random: false, specFilter: (spec: { getFullName(): string }) => selection.runs(spec.getFullName()) });

  // Register the spec files one by one, noting which top-level suites each one added.
  const files = args.files ?? Object.keys(bundle.specFiles);
  const fileOfSuite = new Map<string, string>();
  for (const f of files) {
    const register = bundle.specFiles[f];
    if (!register) throw new Error(`run-suite: no spec file ${f} in @tensorflow/tfjs-core/dist/tests.js`);
    const known = env.topSuite().children.length;
    register();
    for (const s of env.topSuite().children.slice(known)) fileOfSuite.set(s.id, f);
  }

  const specs: SpecOutcome[] = [];
  const otherErrors: string[] = [];
  let excluded = 0;
  const suiteStack: string[] = [];
  const firstMessage = (r: JasmineResult): string | undefined => r.failedExpectations?.[0]?.message;
  env.addReporter({
    suiteStarted: (r: JasmineResult) => suiteStack.push(r.id),
    suiteDone: (r: JasmineResult) => {
      suiteStack.pop();
      if (r.status === 'failed') otherErrors.push(`${r.fullName} (suite): ${firstMessage(r) ?? 'failed'}`);
    },
    specDone: (r: JasmineResult) => {
      if (r.status === 'excluded') {
        excluded++;
        return;
      }
      const status = r.status === 'passed' || r.status === 'failed' ? r.status : 'pending';
      const file = fileOfSuite.get(suiteStack[0] ?? '') ?? '(top level)';
      specs.push({ name: r.fullName, file, status, ...(status === 'failed' ? { message: firstMessage(r) ?? 'failed' } : {}) });
    },
  });
  const done = await runner.execute();
  for (const e of done.failedExpectations ?? []) otherErrors.push(`(outside any spec): ${e.message}`);

  const result: RunResult = {
    backend: args.backend,
    kernels: args.kernels,
    listSource: selection.source,
    files,
    specs,
    excluded,
    otherErrors,
    kernelsChanged,
    singleCore,
    seconds: (performance.now() - t0) / 1000,
  };
  writeFileAtomic(args.out, JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`run-suite: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exit(1);
  },
);
