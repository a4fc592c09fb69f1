/**
 * External tools (nvidia-smi, nsys, ncu, nvprof): find them, run them, and say plainly when they
 * are missing; a step script for the profilers.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GPU_QUERY_FIELDS, type NvidiaSmiCsv, parseNvidiaSmiCsv } from './nvidia-smi';

// ---------------------------------------------------------------------------------------------
// External tools: nvidia-smi, nsys, ncu
// ---------------------------------------------------------------------------------------------

/** The full path of an executable found on `PATH` (or in `searchPath`), or null. */
export function findOnPath(name: string, searchPath: string = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) {
    try {
      fs.accessSync(name, fs.constants.X_OK);
      return path.resolve(name);
    } catch {
      return null;
    }
  }
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      if (fs.statSync(file).isFile()) {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      }
    } catch {
      /* not here */
    }
  }
  return null;
}

/** What running an external command gave. */
export interface ToolRun {
  /** The command line as run (or as it would have been run). */
  command: string;
  /** False when the executable is not on PATH; nothing was run. */
  found: boolean;
  /** Exit code, or null when it did not run, timed out or was killed. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Why it did not run or did not succeed, in words; null on success. */
  reason: string | null;
  /** Wall milliseconds it ran. */
  ms: number;
}

/**
 * Run an external command (no shell) with a time limit and capture its output. Never throws: a
 * missing executable, a non-zero exit or a timeout come back as `reason`.
 */
export async function runTool(cmd: string, args: readonly string[] = [], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ToolRun> {
  const command = [cmd, ...args].join(' ');
  const exe = findOnPath(cmd);
  if (!exe) return { command, found: false, exitCode: null, stdout: '', stderr: '', reason: `${cmd} is not on PATH`, ms: 0 };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const t0 = performance.now();
  return new Promise<ToolRun>((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // Its own process group, so a timeout also ends what it started (e.g. the program nsys profiles).
    const child = spawn(exe, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ command, found: true, exitCode: null, stdout, stderr, reason: `${cmd} could not start: ${err.message}`, ms: performance.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(finished(cmd, command, { code, signal, timedOut, timeoutMs, stdout, stderr }, performance.now() - t0));
    });
  });
}

/** Whether one profiling tool is installed, and its version. */
export interface ToolStatus {
  tool: string;
  /** What it shows you. */
  shows: string;
  path: string | null;
  version: string | null;
  /** Why it is unavailable, or null. */
  reason: string | null;
}

const TOOLS: { tool: string; shows: string; versionArgs: string[] }[] = [
  { tool: 'nvidia-smi', shows: 'GPU utilization, memory, temperature, power, per-process memory', versionArgs: ['--version'] },
  { tool: 'nsys', shows: 'Nsight Systems: a timeline of CPU threads, CUDA API calls, kernels and copies', versionArgs: ['--version'] },
  { tool: 'ncu', shows: 'Nsight Compute: per-kernel metrics (occupancy, memory throughput, roofline)', versionArgs: ['--version'] },
  { tool: 'nvprof', shows: 'the legacy CUDA profiler (GPUs before Volta): kernel and copy times', versionArgs: ['--version'] },
];

/** Probe nvidia-smi, nsys, ncu and nvprof: path and version, or why each is missing. */
export async function externalTools(): Promise<ToolStatus[]> {
  const out: ToolStatus[] = [];
  for (const t of TOOLS) {
    const p = findOnPath(t.tool);
    if (!p) {
      out.push({ tool: t.tool, shows: t.shows, path: null, version: null, reason: `${t.tool} is not on PATH` });
      continue;
    }
    const r = await runTool(t.tool, t.versionArgs, { timeoutMs: 15_000 });
    const version = (r.stdout.trim() || r.stderr.trim()).split('\n').find((l) => /\d+\.\d+/.test(l))?.trim() ?? null;
    out.push({ tool: t.tool, shows: t.shows, path: p, version, reason: r.reason });
  }
  return out;
}

/** How a command that ran ended, as a {@link ToolRun} (shared by {@link runTool} and {@link runToolSync}). */
function finished(cmd: string, command: string, r: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; timeoutMs: number; stdout: string; stderr: string }, ms: number): ToolRun {
  const firstLine = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  const reason = r.timedOut
    ? `${cmd} did not finish within ${r.timeoutMs} ms and was killed`
    : r.code === 0
      ? null
      : `${cmd} exited with ${r.code ?? r.signal}${firstLine ? `: ${firstLine}` : ''}`;
  return { command, found: true, exitCode: r.timedOut ? null : r.code, stdout: r.stdout, stderr: r.stderr, reason, ms };
}

/**
 * {@link runTool}, synchronously (for code that cannot wait, such as a device banner). Never
 * throws: a missing executable, a non-zero exit or a timeout come back as `reason`.
 */
export function runToolSync(cmd: string, args: readonly string[] = [], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): ToolRun {
  const command = [cmd, ...args].join(' ');
  const exe = findOnPath(cmd);
  if (!exe) return { command, found: false, exitCode: null, stdout: '', stderr: '', reason: `${cmd} is not on PATH`, ms: 0 };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const t0 = performance.now();
  const r = spawnSync(exe, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  const ms = performance.now() - t0;
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) return { command, found: true, exitCode: null, stdout: r.stdout ?? '', stderr: r.stderr ?? '', reason: `${cmd} could not start: ${r.error.message}`, ms };
  return finished(cmd, command, { code: r.status, signal: r.signal, timedOut, timeoutMs, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }, ms);
}

/** What {@link queryNvidiaSmi} returns. */
export interface NvidiaSmiQuery {
  run: ToolRun;
  /** The parsed output; null when nvidia-smi is missing or failed. */
  csv: NvidiaSmiCsv | null;
  /** Why there is no output; null on success. */
  reason: string | null;
}

/**
 * One `nvidia-smi --query-gpu=<fields> --format=csv` query, parsed: the only place gpulab asks
 * nvidia-smi a question (the sampler's streaming `-l` run aside). Synchronous, because device
 * banners need it outside async code; {@link queryNvidiaSmi} is the same, awaitable.
 */
export function queryNvidiaSmiSync(fields: readonly string[] = GPU_QUERY_FIELDS, options: { command?: string; timeoutMs?: number } = {}): NvidiaSmiQuery {
  const run = runToolSync(options.command ?? 'nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv'], { timeoutMs: options.timeoutMs ?? 15_000 });
  if (run.reason) return { run, csv: null, reason: run.reason };
  return { run, csv: parseNvidiaSmiCsv(run.stdout, { source: run.command }), reason: null };
}

/**
 * One `nvidia-smi --query-gpu=<fields> --format=csv` query, parsed ({@link queryNvidiaSmiSync}).
 * When nvidia-smi is missing or fails, `csv` is null and `reason` says why.
 */
export async function queryNvidiaSmi(fields: readonly string[] = GPU_QUERY_FIELDS, options: { command?: string; timeoutMs?: number } = {}): Promise<NvidiaSmiQuery> {
  return queryNvidiaSmiSync(fields, options);
}

/** The name of the first GPU nvidia-smi lists ("NVIDIA H100 80GB HBM3"), or null when there is none or nvidia-smi is missing or fails. */
export function nvidiaGpuName(options: { command?: string } = {}): string | null {
  const q = queryNvidiaSmiSync(['name'], { ...options, timeoutMs: 5000 });
  return q.csv?.records[0]?.raw.name || null;
}

/**
 * Write a small Node script that trains the seed MLP (784→500 ReLU→10, SGD momentum, batch 100)
 * for `steps` steps on random data, on the backend gpulab picks (or `GPULAB_BACKEND`): a target
 * program for nsys, ncu or nvprof. Written into `dir` (default: a new temp folder); returns its path.
 */
export function writeStepScript(dir?: string, options: { steps?: number; entry?: string } = {}): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-profile-'));
  const steps = options.steps ?? 20;
  const entry = options.entry ?? (fs.existsSync(path.join(__dirname, '..', 'index.js')) ? path.join(__dirname, '..', 'index.js') : path.join(__dirname, '..', 'index.ts'));
  const file = path.join(dir, 'gpulab-step.js');
  const script = `// Written by gpulab monitor.writeStepScript: ${steps} training steps of the seed MLP, for profilers.
const g = require(${JSON.stringify(entry)});
const tf = g.tf;
(async () => {
  const info = await g.device.useBackend();
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [784], units: 500, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
  const opt = tf.train.momentum(0.001, 0.9);
  const xs = tf.randomNormal([100, 784]);
  const ys = tf.oneHot(tf.randomUniform([100], 0, 10, 'int32'), 10).toFloat();
  const t0 = Date.now();
  for (let i = 0; i < ${steps}; i++) {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs)), true);
    await loss.data();
    loss.dispose();
  }
  console.log('gpulab-step: ${steps} steps on ' + info.backend + ' (' + info.name + ') in ' + (Date.now() - t0) + ' ms');
})().catch((e) => { console.error(e); process.exit(1); });
`;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, script);
  return file;
}

/** The command lines that profile `script` under each NVIDIA tool (run them with {@link runTool}); reports go to `outDir` (default: the script's folder). */
export function profilerCommands(script: string, outDir: string = path.dirname(script)): { tool: string; args: string[]; note: string }[] {
  return [
    { tool: 'nsys', args: ['profile', '--stats=true', '--force-overwrite=true', '--trace=cuda,nvtx,osrt,vulkan', '-o', path.join(outDir, 'gpulab-step'), process.execPath, script], note: 'timeline + summary tables of CUDA/Vulkan kernels and memcpy' },
    { tool: 'ncu', args: ['--target-processes', 'all', '--launch-count', '10', process.execPath, script], note: 'per-kernel hardware metrics of the first 10 CUDA kernels' },
    { tool: 'nvprof', args: ['--profile-child-processes', process.execPath, script], note: 'kernel and copy times (GPUs before Volta)' },
  ];
}
