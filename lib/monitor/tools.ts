/**
 * External tools (nvidia-smi, nsys, ncu, nvprof): whether each is installed, nvidia-smi's
 * one-shot query, and a step script for the profilers. Finding and running a tool is in
 * lib/commands.ts (re-exported here).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOnPath, runTool, runToolSync, type ToolRun } from '../commands';
import { GPU_QUERY_FIELDS, type NvidiaSmiCsv, parseNvidiaSmiCsv } from './nvidia-smi';

// At the bottom of the house (lib/commands.ts), so the backends can use them too.
export { findOnPath, nvidiaGpuName, runTool, runToolSync, type ToolRun } from '../commands';

// ---------------------------------------------------------------------------------------------
// External tools: nvidia-smi, nsys, ncu
// ---------------------------------------------------------------------------------------------

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

/** What {@link queryNvidiaSmi} returns. */
export interface NvidiaSmiQuery {
  run: ToolRun;
  /** The parsed output; null when nvidia-smi is missing or failed. */
  csv: NvidiaSmiCsv | null;
  /** Why there is no output; null on success. */
  reason: string | null;
}

/**
 * One `nvidia-smi --query-gpu=<fields> --format=csv` query, parsed: where the monitor asks
 * nvidia-smi a question (besides the sampler's streaming `-l` run; the backends ask only for the
 * GPU's name, through `nvidiaGpuName` in lib/commands.ts). Synchronous, for code outside async
 * functions; {@link queryNvidiaSmi} is the same, awaitable.
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
