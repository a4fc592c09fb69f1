/**
 * tfjs-core's op suite, stock kernels against gpulab's: runs run-suite.ts once per backend and
 * kernel set (each in its own process, two at a time) and compares the outcomes spec by spec.
 * Used by test/integration/conformance.test.ts (in `npm test`) and by cli.ts
 * (`npm run test:conformance`).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildCoreBundle } from './bundle';
import type { SuiteBackend } from './lists';
import type { KernelSet, RunResult, SpecOutcome } from './run-suite';

const RUN_SUITE = path.join(__dirname, 'run-suite.ts');
/** A run that takes longer than this is stuck (one takes ≈10 s idle, under a minute on a loaded machine). */
const RUN_TIMEOUT_S = 600;

/** A spec that passes with tfjs's kernels and not with gpulab's. */
export interface Regression {
  name: string;
  file: string;
  /** What went wrong with gpulab's kernels. */
  message: string;
}

/** One backend's stock and gpulab runs, compared. */
export interface Comparison {
  backend: SuiteBackend;
  stock: RunResult;
  gpulab: RunResult;
  /** Specs (and suite-level errors) that pass stock and fail, or are missing, with gpulab's kernels. */
  regressions: Regression[];
  /** Specs that fail stock and pass with gpulab's kernels. */
  gained: string[];
}

/** Counts of one run: specs run (passed + failed; pending ones have no expectations to run). */
export function counts(r: RunResult): { run: number; passed: number; failed: number; pending: number } {
  const n = (s: SpecOutcome['status']) => r.specs.filter((x) => x.status === s).length;
  return { run: n('passed') + n('failed'), passed: n('passed'), failed: n('failed'), pending: n('pending') };
}

/**
 * Null when tfjs-node loads in a fresh process (the `tensorflow` backend can run), else why not.
 */
export function nativeUnavailable(): string | null {
  const r = spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' }, timeout: 60_000 });
  if (r.status === 0) return null;
  const lines = `${r.stderr ?? ''}`.split('\n').filter((l) => /Error|Cannot/.test(l));
  return `@tensorflow/tfjs-node does not load (npm run setup:tensorflow builds it): ${lines[0]?.trim() ?? `exit ${r.status}`}`;
}

/** Key specs by full name and occurrence (jasmine allows two specs with one name; the order is fixed). */
function keyed(specs: SpecOutcome[]): Map<string, SpecOutcome> {
  const seen = new Map<string, number>();
  const out = new Map<string, SpecOutcome>();
  for (const s of specs) {
    const k = seen.get(s.name) ?? 0;
    seen.set(s.name, k + 1);
    out.set(k ? `${s.name} #${k + 1}` : s.name, s);
  }
  return out;
}

/** Compare a backend's stock run with its gpulab run. */
export function compareRuns(stock: RunResult, gpulab: RunResult): Comparison {
  const s = keyed(stock.specs);
  const g = keyed(gpulab.specs);
  const regressions: Regression[] = [];
  const gained: string[] = [];
  for (const [key, st] of s) {
    const gp = g.get(key);
    if (st.status === 'passed' && gp?.status !== 'passed') {
      regressions.push({ name: key, file: st.file, message: gp ? gp.message ?? gp.status : 'not run with gpulab kernels' });
    } else if (st.status === 'failed' && gp?.status === 'passed') gained.push(key);
  }
  for (const e of gpulab.otherErrors) {
    if (!stock.otherErrors.includes(e)) regressions.push({ name: 'error outside a spec', file: '', message: e });
  }
  return { backend: stock.backend, stock, gpulab, regressions, gained };
}

/** Run run-suite.ts in a child process and read its result. */
function runOnce(backend: SuiteBackend, kernels: KernelSet, files: string[] | null, dir: string): Promise<RunResult> {
  const out = path.join(dir, `${backend}-${kernels}.json`);
  const args = ['--import', 'tsx', RUN_SUITE, '--backend', backend, '--kernels', kernels, '--out', out, ...(files ? ['--files', files.join(',')] : [])];
  const env: NodeJS.ProcessEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' };
  delete env.GPULAB_WASM_THREADS; // same single-threaded wasm for both kernel sets
  delete env.GPULAB_BACKEND;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const keep = (b: Buffer) => {
      log = (log + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      log += `\n(killed after ${RUN_TIMEOUT_S} s)`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_S * 1000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && fs.existsSync(out)) resolve(JSON.parse(fs.readFileSync(out, 'utf8')) as RunResult);
      else reject(new Error(`conformance run ${backend}/${kernels} ended with ${signal ?? `exit code ${code}`}; its last output:\n${log}`));
    });
  });
}

/** Options of {@link runConformance}. */
export interface SuiteOptions {
  backends: readonly SuiteBackend[];
  /** Spec files to run (names as in dist/tests.js); all when null. */
  files?: string[] | null;
  /** Runs at a time (default 2). */
  concurrency?: number;
}

/**
 * Run the suite on each backend with stock and with gpulab kernels, and compare. The runs of all
 * backends share a pool of `concurrency` processes.
 */
export async function runConformance(opts: SuiteOptions): Promise<Comparison[]> {
  await buildCoreBundle(); // once, before the runs that read it
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-conformance-'));
  try {
    const jobs = opts.backends.flatMap((b) => (['stock', 'gpulab'] as const).map((k) => ({ b, k })));
    const results = new Map<string, RunResult>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const { b, k } = jobs[next++];
        results.set(`${b}/${k}`, await runOnce(b, k, opts.files ?? null, dir));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
    return opts.backends.map((b) => compareRuns(results.get(`${b}/stock`)!, results.get(`${b}/gpulab`)!));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One line per regression: name, spec file, and the first line of what failed. */
export function describeRegressions(c: Comparison): string {
  return c.regressions.map((r) => `  ✗ ${r.name}${r.file ? ` [${r.file}]` : ''}: ${r.message.split('\n')[0]}`).join('\n');
}

/** A table of spec counts per backend, stock against gpulab, with each run's seconds. */
export function countsTable(comparisons: Comparison[]): string {
  const rows = [['backend', 'specs run', 'stock pass', 'gpulab pass', 'regressions', 'gained', 'pending', 'left out by list', 'seconds (stock / gpulab)']];
  for (const c of comparisons) {
    const s = counts(c.stock);
    const g = counts(c.gpulab);
    rows.push([c.backend, String(s.run), String(s.passed), String(g.passed), String(c.regressions.length), String(c.gained.length), String(s.pending), String(c.stock.excluded), `${c.stock.seconds.toFixed(1)} / ${c.gpulab.seconds.toFixed(1)}`]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
