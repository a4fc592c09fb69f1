/**
 * See where the time and memory go, live: the TypeScript version of the article's nvidia-smi,
 * nvprof and Nsight.
 *
 * - {@link Sampler}: runs alongside training and records, every interval, process memory (RSS,
 *   heap), process CPU use and `tf.memory()`; and, where an NVIDIA driver is present,
 *   `nvidia-smi --query-gpu=... --format=csv` at the same interval. Training events from a tfjs
 *   callback ({@link Sampler.callback}) or a hand-written loop ({@link Sampler.event}) are lined up
 *   with the samples in a polars DataFrame ({@link toDataFrame}). A source that is missing (no
 *   nvidia-smi) or unreliable (tfjs-node's `tf.memory()`) is recorded as such, with the reason:
 *   never as zeros.
 * - {@link parseNvidiaSmiCsv}: a parser for what nvidia-smi really prints (units, repeated
 *   headers, `[N/A]`, a line cut off mid-write).
 * - {@link profileStep}: `tf.profile` + `tf.time` around one training step: a table of kernels by
 *   total time and bytes, and kernelMs against wallMs, explained per backend
 *   ({@link explainTimers}).
 * - {@link trackEpochMemory} / {@link leakVerdict}: `numTensors`/`numBytes` per epoch, to catch
 *   the most common tfjs memory bug (tensors that are never disposed).
 * - {@link timePipeline}: per-batch time split between fetching the batch (input pipeline) and
 *   the training step (compute).
 * - {@link findOnPath}, {@link runTool}, {@link externalTools}: run nvidia-smi / nsys / ncu when
 *   they exist, and say plainly when they do not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pl from 'nodejs-polars';
import { timelineChart, type ChartSpec, type Row } from '../charts';
import { sync, type Syncable } from '../timing';

// ---------------------------------------------------------------------------------------------
// nvidia-smi CSV
// ---------------------------------------------------------------------------------------------

/** One data line of nvidia-smi CSV output. */
export interface NvidiaSmiRecord {
  /** 1-based line number in the parsed text. */
  line: number;
  /** Every field as printed (trimmed), keyed by the field name without its unit. */
  raw: Record<string, string>;
  /**
   * Numeric fields with their units stripped (`"22 %"` → 22, `"841 MiB"` → 841). `null` means the
   * driver did not report a value (`[N/A]`, `[Not Supported]`, …): see {@link missing}.
   */
  values: Record<string, number | null>;
  /** Field → what nvidia-smi printed instead of a value (e.g. `[N/A]`). */
  missing: Record<string, string>;
  /** The `timestamp` field as epoch milliseconds (nvidia-smi prints local time), or null. */
  timestampMs: number | null;
}

/** A line that could not be read as data, with the reason. */
export interface NvidiaSmiLineError {
  line: number;
  text: string;
  reason: string;
}

/** The result of {@link parseNvidiaSmiCsv}. */
export interface NvidiaSmiCsv {
  /** Where the text came from (file name or command), used in error messages. */
  source: string;
  /** Field names in column order, without units (`utilization.gpu`). */
  fields: string[];
  /** Field → unit from the header (`utilization.gpu` → `%`). */
  units: Record<string, string>;
  records: NvidiaSmiRecord[];
  /** Lines that were not data: driver messages, wrong field counts, cut-off lines, non-numbers. */
  errors: NvidiaSmiLineError[];
}

/** Options for {@link parseNvidiaSmiCsv} and {@link NvidiaSmiCsvStream}. */
export interface NvidiaSmiParseOptions {
  /** Named in errors; default `'nvidia-smi output'`. */
  source?: string;
  /** The field list, for output printed with `--format=csv,noheader`. */
  fields?: readonly string[];
  /** Throw on the first bad line (the error names the source and line) instead of collecting it. */
  strict?: boolean;
}

const HEADER_CELL = /^[a-z][a-z0-9_.]*(?:\s*\[[^\]]*\])?$/i;
const KNOWN_PLAIN_FIELDS = new Set(['timestamp', 'index', 'name', 'uuid', 'serial', 'pstate', 'count', 'driver_version', 'compute_cap']);
const NUMERIC_FIELD = /^(index|count|temperature\.|utilization\.|memory\.|power\.|clocks\.|fan\.|pcie\.link\.|encoder\.stats\.|enforced\.power)/;
const NUMBER_WITH_UNIT = /^(-?\d+(?:\.\d+)?)(?:\s*(%|[KMGT]?iB|[KMGT]?B|W|[KMG]?Hz|C))?$/;
const NOT_A_VALUE = /^\[[^\]]*\]$|^N\/A$/i;
const TIMESTAMP = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/;

/** Parse nvidia-smi's `timestamp` field (`2023/06/22 18:56:56.252`, local time) to epoch ms, or null. */
export function parseNvidiaSmiTimestamp(text: string): number | null {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, ms] = m;
  return new Date(+y, +mo - 1, +d, +h, +mi, +s, ms ? +ms.padEnd(3, '0') : 0).getTime();
}

function splitHeaderCell(cell: string): { field: string; unit: string | null } {
  const m = /^(.*?)\s*\[([^\]]*)\]$/.exec(cell);
  return m ? { field: m[1].trim(), unit: m[2] } : { field: cell.trim(), unit: null };
}

function looksLikeHeader(cells: string[]): boolean {
  return cells.length > 0 && cells.every((c) => HEADER_CELL.test(c)) &&
    cells.some((c) => c.includes('.') || KNOWN_PLAIN_FIELDS.has(splitHeaderCell(c).field));
}

/**
 * An incremental nvidia-smi CSV reader: feed it chunks of stdout as they arrive (a
 * `--loop-ms` stream), get back the complete records. A line cut off mid-write stays pending
 * until {@link end}, which reports it as an error.
 */
export class NvidiaSmiCsvStream {
  /** Field names (no units) from the header or the `fields` option. */
  fields: string[];
  /** Field → unit from the header. */
  units: Record<string, string> = {};
  /** Every line that was not data, with the reason. */
  readonly errors: NvidiaSmiLineError[] = [];
  private pending = '';
  private lineNo = 0;
  private readonly source: string;
  private readonly strict: boolean;

  constructor(options: NvidiaSmiParseOptions = {}) {
    this.source = options.source ?? 'nvidia-smi output';
    this.strict = options.strict ?? false;
    this.fields = options.fields ? options.fields.map((f) => splitHeaderCell(f).field) : [];
  }

  /** Add a chunk of text; returns the records completed by it. */
  push(chunk: string): NvidiaSmiRecord[] {
    this.pending += chunk;
    const out: NvidiaSmiRecord[] = [];
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      const rec = this.readLine(line);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * The text has ended. A last line without a newline is parsed when it is complete; when it
   * has too few fields it was cut off mid-write and is reported as an error.
   */
  end(): NvidiaSmiRecord[] {
    const rest = this.pending;
    this.pending = '';
    if (!rest.trim()) return [];
    const rec = this.readLine(rest);
    return rec ? [rec] : [];
  }

  private fail(line: number, text: string, reason: string): null {
    if (this.strict) throw new Error(`${this.source}:${line}: ${reason}: ${JSON.stringify(text)}`);
    this.errors.push({ line, text, reason });
    return null;
  }

  private readLine(text: string): NvidiaSmiRecord | null {
    const line = ++this.lineNo;
    if (!text.trim()) return null;
    const cells = text.split(',').map((c) => c.trim());
    if (looksLikeHeader(cells)) {
      const parsed = cells.map(splitHeaderCell);
      const names = parsed.map((p) => p.field);
      if (this.fields.length && names.join(',') !== this.fields.join(',')) {
        // A different query in the same stream: adopt the new header.
        this.units = {};
      }
      this.fields = names;
      for (const p of parsed) if (p.unit) this.units[p.field] = p.unit;
      return null;
    }
    if (!this.fields.length) return this.fail(line, text, 'data line before any header (pass `fields` for --format=csv,noheader)');
    if (cells.length !== this.fields.length) {
      const reason = cells.length < this.fields.length && cells.length > 1
        ? `expected ${this.fields.length} fields, got ${cells.length} (line cut off?)`
        : cells.length === 1
          ? 'not a CSV data line (a message from nvidia-smi or the driver?)'
          : `expected ${this.fields.length} fields, got ${cells.length}`;
      return this.fail(line, text, reason);
    }
    const rec: NvidiaSmiRecord = { line, raw: {}, values: {}, missing: {}, timestampMs: null };
    for (let i = 0; i < cells.length; i++) {
      const field = this.fields[i];
      const cell = cells[i];
      rec.raw[field] = cell;
      if (field === 'timestamp') {
        rec.timestampMs = parseNvidiaSmiTimestamp(cell);
        if (rec.timestampMs === null) return this.fail(line, text, `field 'timestamp' is not a timestamp: ${JSON.stringify(cell)}`);
        continue;
      }
      const numericExpected = field in this.units || NUMERIC_FIELD.test(field);
      if (cell === '' || NOT_A_VALUE.test(cell)) {
        if (numericExpected) rec.values[field] = null;
        rec.missing[field] = cell === '' ? '(empty)' : cell;
        continue;
      }
      const m = NUMBER_WITH_UNIT.exec(cell);
      if (m) {
        rec.values[field] = Number(m[1]);
      } else if (numericExpected) {
        return this.fail(line, text, `field '${field}' is not a number: ${JSON.stringify(cell)}`);
      }
    }
    return rec;
  }
}

/**
 * Parse the CSV that `nvidia-smi --query-gpu=... --format=csv` prints: the header names the
 * fields (units in brackets), values carry units (`22 %`, `841 MiB`, `71.2 W`), values the
 * driver cannot give are `[N/A]`/`[Not Supported]` (→ `null`, with the text kept in
 * `missing`), a shell loop repeats the header, and a killed `--loop-ms` may leave a cut-off last
 * line. Bad lines are collected in `errors` (or thrown with `strict`), naming the source and line.
 */
export function parseNvidiaSmiCsv(text: string, options: NvidiaSmiParseOptions = {}): NvidiaSmiCsv {
  const s = new NvidiaSmiCsvStream(options);
  const records = [...s.push(text), ...s.end()];
  return { source: options.source ?? 'nvidia-smi output', fields: s.fields, units: s.units, records, errors: s.errors };
}

/** Read and parse an nvidia-smi CSV file; errors name the file. */
export function readNvidiaSmiCsv(file: string, options: Omit<NvidiaSmiParseOptions, 'source'> = {}): NvidiaSmiCsv {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read nvidia-smi CSV (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseNvidiaSmiCsv(text, { ...options, source: file });
}

/** The fields the sampler asks nvidia-smi for. */
export const GPU_QUERY_FIELDS: readonly string[] = [
  'timestamp', 'index', 'name', 'utilization.gpu', 'utilization.memory',
  'memory.used', 'memory.total', 'temperature.gpu', 'power.draw',
];

/** One GPU reading from nvidia-smi, on the sampler's clock. */
export interface GpuSample {
  /** Milliseconds since the sampler started (from nvidia-smi's own timestamp when present). */
  tMs: number;
  /** GPU index, or null when the query had no `index`. */
  gpu: number | null;
  name: string | null;
  utilizationPct: number | null;
  memoryUtilizationPct: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  temperatureC: number | null;
  powerW: number | null;
  /** Field → what nvidia-smi printed instead of a value. */
  missing: Record<string, string>;
}

/** Map a parsed record to a {@link GpuSample}; `tMs` comes from `toMs(record)`. */
export function gpuSampleFromRecord(rec: NvidiaSmiRecord, tMs: number): GpuSample {
  const v = (k: string) => (k in rec.values ? rec.values[k] : null);
  return {
    tMs,
    gpu: v('index'),
    name: rec.raw.name ?? null,
    utilizationPct: v('utilization.gpu'),
    memoryUtilizationPct: v('utilization.memory'),
    memoryUsedMiB: v('memory.used'),
    memoryTotalMiB: v('memory.total'),
    temperatureC: v('temperature.gpu'),
    powerW: v('power.draw'),
    missing: { ...rec.missing },
  };
}

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
      const firstLine = (stderr.trim() || stdout.trim()).split('\n')[0] ?? '';
      const reason = timedOut
        ? `${cmd} did not finish within ${timeoutMs} ms and was killed`
        : code === 0
          ? null
          : `${cmd} exited with ${code ?? signal}${firstLine ? `: ${firstLine}` : ''}`;
      resolve({ command, found: true, exitCode: timedOut ? null : code, stdout, stderr, reason, ms: performance.now() - t0 });
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

/**
 * One `nvidia-smi --query-gpu=<fields> --format=csv` query, parsed. When nvidia-smi is missing or
 * fails, `csv` is null and `reason` says why.
 */
export async function queryNvidiaSmi(fields: readonly string[] = GPU_QUERY_FIELDS, options: { command?: string } = {}): Promise<{ run: ToolRun; csv: NvidiaSmiCsv | null; reason: string | null }> {
  const run = await runTool(options.command ?? 'nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv'], { timeoutMs: 15_000 });
  if (run.reason) return { run, csv: null, reason: run.reason };
  return { run, csv: parseNvidiaSmiCsv(run.stdout, { source: run.command }), reason: null };
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

// ---------------------------------------------------------------------------------------------
// The sampler
// ---------------------------------------------------------------------------------------------

/** One sample of the process and of tfjs, taken on the JavaScript thread. */
export interface ProcessSample {
  /** Milliseconds since the sampler started. */
  tMs: number;
  /**
   * How late this sample is against its schedule. Samples are taken on the JavaScript thread:
   * while a synchronous kernel (wasm, cpu) or a long step runs, the timer waits, and the lag says
   * how long. Event-triggered samples have lag 0.
   */
  lagMs: number;
  /** `'timer'`, `'event'` (taken at an epoch boundary), `'start'` or `'stop'`. */
  trigger: 'timer' | 'event' | 'start' | 'stop';
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory of C++ objects bound to JS (wasm memory and tensor buffers land here and in arrayBuffers). */
  externalBytes: number;
  arrayBuffersBytes: number;
  /** Process CPU time over wall time since the previous sample, in % of one core; null for the first. */
  cpuPct: number | null;
  /** `tf.memory().numTensors`. */
  tfNumTensors: number;
  /** `tf.memory().numBytes` (an upper bound when {@link tfUnreliable}). */
  tfNumBytes: number;
  /** GPU bytes where the backend reports them (webgpu, webgl), else null (see the run's sources). */
  tfNumBytesInGPU: number | null;
  /** True when the backend says its memory numbers are unreliable (tfjs-node, the cpu backend). */
  tfUnreliable: boolean;
  /** The backend that was active. */
  backend: string;
}

/** Kinds of training events. */
export type TrainingEventKind = 'train-begin' | 'epoch-begin' | 'batch-end' | 'epoch-end' | 'train-end' | 'mark';

/** A training event (from a tfjs callback or a hand-written loop), on the sampler's clock. */
export interface TrainingEvent {
  tMs: number;
  kind: TrainingEventKind;
  /** 0-based epoch, or null. */
  epoch: number | null;
  /** 0-based batch within the epoch, or null. */
  batch: number | null;
  /** Free text (for `mark`). */
  label: string | null;
  /** Numeric logs (loss, acc, dataMs …). */
  logs: Record<string, number>;
}

/** Whether one source of measurements worked in a run. */
export interface SourceStatus {
  source: 'process' | 'tf.memory' | 'tf.memory (GPU bytes)' | 'nvidia-smi';
  /** `ok`, `missing` (no values, never zeros) or `unreliable` (values are upper bounds). */
  status: 'ok' | 'missing' | 'unreliable';
  /** Why it is missing or unreliable; null when ok. */
  reason: string | null;
}

/** Everything a sampler recorded. */
export interface MonitorRun {
  intervalMs: number;
  /** ISO time the sampler started. */
  startedAt: string;
  durationMs: number;
  samples: ProcessSample[];
  gpu: GpuSample[];
  events: TrainingEvent[];
  sources: SourceStatus[];
  /** nvidia-smi lines that could not be read. */
  gpuErrors: NvidiaSmiLineError[];
}

/** Options for {@link Sampler}. */
export interface SamplerOptions {
  /** Sampling interval in milliseconds (default 200). nvidia-smi is asked for the same interval. */
  intervalMs?: number;
  /**
   * `'auto'` (default): poll nvidia-smi when it is on PATH. `false`: never. A string: the
   * nvidia-smi executable to run (tests pass a recorded-output player).
   */
  nvidiaSmi?: 'auto' | false | string;
  /** Take a sample at every epoch begin/end event (default true), so per-epoch memory is exact. */
  sampleOnEpochEvents?: boolean;
}

/** Thrown by {@link monitor} when the monitored function throws; carries the run up to that point. */
export class MonitoredError extends Error {
  /** What the sampler recorded until the failure. */
  readonly run: MonitorRun;
  constructor(cause: unknown, run: MonitorRun) {
    super(`monitored run failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MonitoredError';
    this.run = run;
  }
}

const MB = 1024 * 1024;
const RESERVED_EVENT_COLUMNS = new Set(['t_s', 'kind', 'epoch', 'batch', 'label']);

/**
 * Samples process memory, CPU use, `tf.memory()` and (where present) nvidia-smi at a fixed
 * interval while training runs, and records training events to line them up with.
 *
 * ```ts
 * const s = new monitor.Sampler({ intervalMs: 100 }).start();
 * try { await model.fit(xs, ys, { epochs: 3, callbacks: [s.callback()] }); }
 * finally { run = await s.stop(); }
 * monitor.toDataFrame(run);
 * ```
 *
 * Prefer {@link monitor}, which stops the sampler even when training throws.
 */
export class Sampler {
  /** The sampling interval in ms. */
  readonly intervalMs: number;
  private readonly nvidiaSmiOption: 'auto' | false | string;
  private readonly sampleOnEpochEvents: boolean;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private t0 = 0;
  private epoch0 = 0;
  private startedAt = '';
  private lastTick = 0;
  private lastCpu: NodeJS.CpuUsage | null = null;
  private lastCpuT = 0;
  private timer: NodeJS.Timeout | null = null;
  private child: ChildProcess | null = null;
  private childExit: Promise<void> | null = null;
  private stream: NvidiaSmiCsvStream | null = null;
  private gpuStderr = '';
  private gpuStatus: SourceStatus = { source: 'nvidia-smi', status: 'missing', reason: 'the sampler has not started' };
  private stoppingChild = false;
  private readonly samples: ProcessSample[] = [];
  private readonly gpu: GpuSample[] = [];
  private readonly events: TrainingEvent[] = [];
  private tfReasons = new Set<string>();
  private tfUnreliableSeen = false;
  private gpuBytesSeen = false;
  private finalRun: MonitorRun | null = null;
  private currentEpoch: number | null = null;

  constructor(options: SamplerOptions = {}) {
    const interval = options.intervalMs ?? 200;
    if (!Number.isFinite(interval) || interval < 1) throw new Error(`Sampler: intervalMs must be ≥ 1, got ${interval}`);
    this.intervalMs = Math.round(interval);
    this.nvidiaSmiOption = options.nvidiaSmi ?? 'auto';
    this.sampleOnEpochEvents = options.sampleOnEpochEvents ?? true;
  }

  /** True between {@link start} and {@link stop}. */
  get running(): boolean {
    return this.state === 'running';
  }

  /** Milliseconds since start on the sampler's clock. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** Start sampling (and nvidia-smi, where present). Throws if already started. */
  start(): this {
    if (this.state !== 'idle') throw new Error(`Sampler.start: the sampler is already ${this.state}; create a new one`);
    this.state = 'running';
    this.t0 = performance.now();
    this.epoch0 = Date.now();
    this.startedAt = new Date(this.epoch0).toISOString();
    this.lastCpu = process.cpuUsage();
    this.lastCpuT = 0;
    this.startGpu();
    this.take('start', 0);
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  private tick(): void {
    if (this.state !== 'running') return;
    const t = this.now();
    const lag = Math.max(0, t - this.lastTick - this.intervalMs);
    this.lastTick = t;
    this.take('timer', lag);
  }

  /** Take one sample now (also done by the timer); returns it. */
  sample(): ProcessSample {
    if (this.state !== 'running') throw new Error('Sampler.sample: the sampler is not running');
    return this.take('event', 0);
  }

  private take(trigger: ProcessSample['trigger'], lagMs: number): ProcessSample {
    const tMs = this.now();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    let cpuPct: number | null = null;
    if (this.lastCpu && tMs - this.lastCpuT > 0 && trigger !== 'start') {
      const usedUs = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
      cpuPct = (usedUs / 1000 / (tMs - this.lastCpuT)) * 100;
    }
    this.lastCpu = cpu;
    this.lastCpuT = tMs;
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    const unreliable = m.unreliable === true;
    if (unreliable) {
      this.tfUnreliableSeen = true;
      for (const r of m.reasons ?? []) this.tfReasons.add(r);
    }
    const inGpu = typeof m.numBytesInGPU === 'number' ? m.numBytesInGPU : null;
    if (inGpu !== null) this.gpuBytesSeen = true;
    const s: ProcessSample = {
      tMs,
      lagMs,
      trigger,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      arrayBuffersBytes: mem.arrayBuffers,
      cpuPct,
      tfNumTensors: m.numTensors,
      tfNumBytes: m.numBytes,
      tfNumBytesInGPU: inGpu,
      tfUnreliable: unreliable,
      backend: tf.getBackend() ?? 'none',
    };
    this.samples.push(s);
    return s;
  }

  private startGpu(): void {
    if (this.nvidiaSmiOption === false) {
      this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: 'nvidia-smi polling was turned off (nvidiaSmi: false)' };
      return;
    }
    const exe = this.nvidiaSmiOption === 'auto' ? findOnPath('nvidia-smi') : findOnPath(this.nvidiaSmiOption);
    if (!exe) {
      this.gpuStatus = {
        source: 'nvidia-smi',
        status: 'missing',
        reason: this.nvidiaSmiOption === 'auto'
          ? 'nvidia-smi is not on PATH (no NVIDIA driver on this machine): no GPU utilization or GPU memory was recorded'
          : `${this.nvidiaSmiOption} was not found or is not executable`,
      };
      return;
    }
    this.stream = new NvidiaSmiCsvStream({ source: exe });
    this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: 'nvidia-smi started but printed no sample yet' };
    const child = spawn(exe, [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv', `--loop-ms=${this.intervalMs}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.childExit = new Promise<void>((resolve) => {
      child.on('close', (code, signal) => {
        this.consumeGpu(this.stream?.end() ?? []);
        if (!this.stoppingChild && code !== 0) {
          const msg = (this.gpuStderr.trim() || 'no message').split('\n')[0];
          const reason = `nvidia-smi exited with ${code ?? signal}: ${msg}`;
          this.gpuStatus = this.gpu.length
            ? { source: 'nvidia-smi', status: 'ok', reason: `${reason} (after ${this.gpu.length} samples)` }
            : { source: 'nvidia-smi', status: 'missing', reason };
        }
        resolve();
      });
      child.on('error', (err) => {
        this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: `nvidia-smi could not start: ${err.message}` };
        resolve();
      });
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.consumeGpu(this.stream!.push(d)));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.gpuStderr += d));
    child.unref();
  }

  private consumeGpu(records: NvidiaSmiRecord[]): void {
    for (const r of records) {
      const arrived = this.now();
      const tMs = r.timestampMs !== null ? r.timestampMs - this.epoch0 : arrived;
      this.gpu.push(gpuSampleFromRecord(r, tMs));
    }
    if (this.gpu.length && this.gpuStatus.status !== 'ok') this.gpuStatus = { source: 'nvidia-smi', status: 'ok', reason: null };
  }

  /**
   * Record a training event. `epoch-begin`/`epoch-end` also take a sample (unless
   * `sampleOnEpochEvents` is false). Events after {@link stop} are ignored.
   */
  event(kind: TrainingEventKind, info: { epoch?: number | null; batch?: number | null; label?: string; logs?: Record<string, unknown> } = {}): void {
    if (this.state !== 'running') return;
    const logs: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.logs ?? {})) {
      // tfjs batch logs repeat `batch` and `size`; keep them under another name so columns stay unique.
      if (typeof v === 'number' && Number.isFinite(v)) logs[RESERVED_EVENT_COLUMNS.has(k) ? `log_${k}` : k] = v;
    }
    if (kind === 'epoch-begin' && info.epoch !== undefined) this.currentEpoch = info.epoch;
    const epoch = info.epoch !== undefined ? info.epoch : kind === 'batch-end' ? this.currentEpoch : null;
    this.events.push({ tMs: this.now(), kind, epoch: epoch ?? null, batch: info.batch ?? null, label: info.label ?? null, logs });
    if (this.sampleOnEpochEvents && (kind === 'epoch-begin' || kind === 'epoch-end')) this.take('event', 0);
  }

  /**
   * A tfjs callback for `model.fit` / `fitDataset` that records train/epoch/batch events with
   * their logs. It yields to the event loop after every batch (`yieldEvery: 'batch'`), so the
   * timer gets a chance to sample during training.
   */
  callback(): tf.CustomCallback {
    return new tf.CustomCallback(
      {
        onTrainBegin: async () => this.event('train-begin'),
        onEpochBegin: async (epoch) => this.event('epoch-begin', { epoch }),
        onBatchEnd: async (batch, logs) => this.event('batch-end', { batch, logs }),
        onEpochEnd: async (epoch, logs) => this.event('epoch-end', { epoch, logs }),
        onTrainEnd: async () => this.event('train-end'),
      },
      'batch',
    );
  }

  private sources(): SourceStatus[] {
    const out: SourceStatus[] = [{ source: 'process', status: 'ok', reason: null }];
    out.push(this.tfUnreliableSeen
      ? { source: 'tf.memory', status: 'unreliable', reason: `the '${this.samples.find((s) => s.tfUnreliable)?.backend}' backend reports unreliable memory: ${[...this.tfReasons].join(' ') || 'no reason given'}` }
      : { source: 'tf.memory', status: 'ok', reason: null });
    out.push(this.gpuBytesSeen
      ? { source: 'tf.memory (GPU bytes)', status: 'ok', reason: null }
      : { source: 'tf.memory (GPU bytes)', status: 'missing', reason: `the '${this.samples[0]?.backend ?? tf.getBackend()}' backend keeps tensors in host memory and reports no numBytesInGPU` });
    out.push({ ...this.gpuStatus });
    return out;
  }

  /** What has been recorded so far (a copy); after {@link stop}, the final run. */
  snapshot(): MonitorRun {
    if (this.finalRun) return this.finalRun;
    return {
      intervalMs: this.intervalMs,
      startedAt: this.startedAt,
      durationMs: this.state === 'idle' ? 0 : this.now(),
      samples: [...this.samples],
      gpu: [...this.gpu],
      events: [...this.events],
      sources: this.sources(),
      gpuErrors: [...(this.stream?.errors ?? [])],
    };
  }

  /**
   * Stop sampling: clear the timer, take a last sample, stop nvidia-smi and read what it had
   * printed. Safe to call twice (the second call returns the same run).
   */
  async stop(): Promise<MonitorRun> {
    if (this.finalRun) return this.finalRun;
    if (this.state === 'idle') throw new Error('Sampler.stop: the sampler was never started');
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.take('stop', 0);
    const durationMs = this.now();
    this.state = 'stopped';
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.stoppingChild = true;
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child?.kill('SIGKILL'), 2000);
      await this.childExit;
      clearTimeout(killer);
    } else if (this.childExit) {
      await this.childExit;
    }
    const run = this.snapshot();
    run.durationMs = durationMs;
    this.finalRun = run;
    return run;
  }

  /** The process id of the nvidia-smi child, or null when none was started (for tests). */
  get nvidiaSmiPid(): number | null {
    return this.child?.pid ?? null;
  }
}

/**
 * Run `fn` with a started {@link Sampler} and always stop it, even when `fn` throws. On success
 * returns `fn`'s value and the run; on failure throws a {@link MonitoredError} whose `run` holds
 * everything recorded until the failure and whose `cause` is the original error.
 */
export async function monitor<T>(fn: (sampler: Sampler) => T | Promise<T>, options: SamplerOptions = {}): Promise<{ value: T; run: MonitorRun }> {
  const sampler = new Sampler(options).start();
  let value: T;
  try {
    value = await fn(sampler);
  } catch (err) {
    const run = await sampler.stop();
    throw new MonitoredError(err, run);
  }
  return { value, run: await sampler.stop() };
}

// ---------------------------------------------------------------------------------------------
// DataFrames
// ---------------------------------------------------------------------------------------------

function epochBatchAt(events: readonly TrainingEvent[], tMs: number): { epoch: number | null; batch: number | null } {
  let epoch: number | null = null;
  let batch: number | null = null;
  for (const e of events) {
    if (e.tMs > tMs) break;
    if (e.kind === 'epoch-begin') {
      epoch = e.epoch;
      batch = null;
    } else if (e.kind === 'batch-end') {
      if (e.epoch !== null) epoch = e.epoch;
      batch = e.batch;
    } else if (e.kind === 'epoch-end') {
      epoch = e.epoch;
    }
  }
  return { epoch, batch };
}

function gpuAt(gpu: readonly GpuSample[], tMs: number, maxAgeMs: number, index: number): GpuSample | null {
  let best: GpuSample | null = null;
  for (const g of gpu) {
    if ((g.gpu ?? 0) !== index) continue;
    if (g.tMs <= tMs && tMs - g.tMs <= maxAgeMs && (!best || g.tMs > best.tMs)) best = g;
  }
  return best;
}

const f64 = (name: string, xs: (number | null)[]) => pl.Series(name, xs, pl.Float64);
const str = (name: string, xs: (string | null)[]) => pl.Series(name, xs, pl.Utf8);
const bool = (name: string, xs: boolean[]) => pl.Series(name, xs, pl.Bool);

/**
 * The run as one polars DataFrame, one row per process sample, lined up with training events and
 * the GPU:
 *
 * `t_s, trigger, lag_ms, epoch, batch, cpu_pct, rss_mb, heap_used_mb, heap_total_mb, external_mb,
 * array_buffers_mb, tf_tensors, tf_mb, tf_gpu_mb, tf_memory_unreliable, gpu_util_pct,
 * gpu_mem_util_pct, gpu_mem_used_mib, gpu_mem_total_mib, gpu_temp_c, gpu_power_w, gpu_note`.
 *
 * `epoch`/`batch` are the epoch and the last finished batch at that moment (null before the first
 * event). GPU columns come from the latest nvidia-smi reading of GPU `gpuIndex` (default 0) no
 * older than 3 intervals; where there is none they are null and `gpu_note` says why (nvidia-smi
 * missing, no reading yet, or the `[N/A]` the driver printed). Never zeros.
 */
export function toDataFrame(run: MonitorRun, options: { gpuIndex?: number } = {}): pl.DataFrame {
  const idx = options.gpuIndex ?? 0;
  const gpuSource = run.sources.find((s) => s.source === 'nvidia-smi');
  const gpuMissing = !run.gpu.length ? (gpuSource?.reason ?? 'no nvidia-smi samples') : null;
  const maxAge = Math.max(3 * run.intervalMs, 1000);
  const rows = run.samples.map((s) => {
    const g = gpuMissing ? null : gpuAt(run.gpu, s.tMs, maxAge, idx);
    const note = gpuMissing
      ?? (g === null
        ? `no nvidia-smi reading of GPU ${idx} within ${maxAge} ms`
        : Object.keys(g.missing).length
          ? Object.entries(g.missing).map(([k, v]) => `${k}: ${v}`).join('; ')
          : null);
    return { s, g, note, ...epochBatchAt(run.events, s.tMs) };
  });
  const col = <T>(fn: (r: (typeof rows)[number]) => T) => rows.map(fn);
  return pl.DataFrame([
    f64('t_s', col((r) => r.s.tMs / 1000)),
    str('trigger', col((r) => r.s.trigger)),
    f64('lag_ms', col((r) => r.s.lagMs)),
    f64('epoch', col((r) => r.epoch)),
    f64('batch', col((r) => r.batch)),
    f64('cpu_pct', col((r) => r.s.cpuPct)),
    f64('rss_mb', col((r) => r.s.rssBytes / MB)),
    f64('heap_used_mb', col((r) => r.s.heapUsedBytes / MB)),
    f64('heap_total_mb', col((r) => r.s.heapTotalBytes / MB)),
    f64('external_mb', col((r) => r.s.externalBytes / MB)),
    f64('array_buffers_mb', col((r) => r.s.arrayBuffersBytes / MB)),
    f64('tf_tensors', col((r) => r.s.tfNumTensors)),
    f64('tf_mb', col((r) => r.s.tfNumBytes / MB)),
    f64('tf_gpu_mb', col((r) => (r.s.tfNumBytesInGPU === null ? null : r.s.tfNumBytesInGPU / MB))),
    bool('tf_memory_unreliable', col((r) => r.s.tfUnreliable)),
    f64('gpu_util_pct', col((r) => r.g?.utilizationPct ?? null)),
    f64('gpu_mem_util_pct', col((r) => r.g?.memoryUtilizationPct ?? null)),
    f64('gpu_mem_used_mib', col((r) => r.g?.memoryUsedMiB ?? null)),
    f64('gpu_mem_total_mib', col((r) => r.g?.memoryTotalMiB ?? null)),
    f64('gpu_temp_c', col((r) => r.g?.temperatureC ?? null)),
    f64('gpu_power_w', col((r) => r.g?.powerW ?? null)),
    str('gpu_note', col((r) => r.note)),
  ]);
}

/** The nvidia-smi samples as a DataFrame (`t_s, gpu, name, util_pct, mem_util_pct, mem_used_mib, mem_total_mib, temp_c, power_w, missing`); empty when there were none. */
export function gpuToDataFrame(run: MonitorRun): pl.DataFrame {
  const g = run.gpu;
  return pl.DataFrame([
    f64('t_s', g.map((x) => x.tMs / 1000)),
    f64('gpu', g.map((x) => x.gpu)),
    str('name', g.map((x) => x.name)),
    f64('util_pct', g.map((x) => x.utilizationPct)),
    f64('mem_util_pct', g.map((x) => x.memoryUtilizationPct)),
    f64('mem_used_mib', g.map((x) => x.memoryUsedMiB)),
    f64('mem_total_mib', g.map((x) => x.memoryTotalMiB)),
    f64('temp_c', g.map((x) => x.temperatureC)),
    f64('power_w', g.map((x) => x.powerW)),
    str('missing', g.map((x) => (Object.keys(x.missing).length ? Object.entries(x.missing).map(([k, v]) => `${k}: ${v}`).join('; ') : null))),
  ]);
}

/** The training events as a DataFrame: `t_s, kind, epoch, batch, label`, plus one column per log key (loss, acc …). */
export function eventsToDataFrame(run: MonitorRun): pl.DataFrame {
  const ev = run.events;
  const keys = [...new Set(ev.flatMap((e) => Object.keys(e.logs)))].sort();
  return pl.DataFrame([
    f64('t_s', ev.map((e) => e.tMs / 1000)),
    str('kind', ev.map((e) => e.kind)),
    f64('epoch', ev.map((e) => e.epoch)),
    f64('batch', ev.map((e) => e.batch)),
    str('label', ev.map((e) => e.label)),
    ...keys.map((k) => f64(k, ev.map((e) => (k in e.logs ? e.logs[k] : null)))),
  ]);
}

/** The run's sources as table rows: what was measured, what was missing or unreliable, and why. */
export function sourcesTable(run: MonitorRun): Row[] {
  return run.sources.map((s) => ({ source: s.source, status: s.status, reason: s.reason ?? '' }));
}

/** One line of a timeline: which value, its label, and which panel it goes in. */
export interface TimelineSeries {
  /** A column of {@link toDataFrame} (or a GpuSample field via `gpu:`, e.g. `gpu:utilizationPct`). */
  column: string;
  label: string;
  panel: string;
}

/** The default timeline: utilization (process CPU, GPU) and memory (RSS, tf bytes, GPU memory). */
export const DEFAULT_TIMELINE: readonly TimelineSeries[] = [
  { column: 'cpu_pct', label: 'process CPU (% of one core)', panel: 'utilization (%)' },
  { column: 'gpu:utilizationPct', label: 'GPU utilization (nvidia-smi)', panel: 'utilization (%)' },
  { column: 'rss_mb', label: 'process RSS', panel: 'memory (MB)' },
  { column: 'heap_used_mb', label: 'JS heap used', panel: 'memory (MB)' },
  { column: 'tf_mb', label: 'tf.memory() numBytes', panel: 'memory (MB)' },
  { column: 'gpu:memoryUsedMiB', label: 'GPU memory used (nvidia-smi, MiB)', panel: 'memory (MB)' },
];

/**
 * Long rows for a timeline chart (`t_s, series, panel, value`) and the epoch marks. A series with
 * no values at all (e.g. GPU columns without nvidia-smi) is left out and listed in `omitted` with
 * the reason, so a chart can say so instead of drawing zeros.
 */
export function timelineRows(run: MonitorRun, series: readonly TimelineSeries[] = DEFAULT_TIMELINE): {
  rows: Row[];
  marks: { x: number; label: string }[];
  omitted: { label: string; reason: string }[];
} {
  const df = toDataFrame(run);
  const records = df.toRecords() as Record<string, unknown>[];
  const rows: Row[] = [];
  const omitted: { label: string; reason: string }[] = [];
  const gpuReason = run.sources.find((s) => s.source === 'nvidia-smi')?.reason ?? 'no nvidia-smi samples';
  for (const s of series) {
    const before = rows.length;
    if (s.column.startsWith('gpu:')) {
      const key = s.column.slice(4) as keyof GpuSample;
      for (const g of run.gpu) {
        const v = g[key];
        if (typeof v === 'number' && (g.gpu ?? 0) === 0) rows.push({ t_s: g.tMs / 1000, series: s.label, panel: s.panel, value: v });
      }
      if (rows.length === before) omitted.push({ label: s.label, reason: run.gpu.length ? 'nvidia-smi reported no value for it' : gpuReason });
    } else {
      for (const r of records) {
        const v = r[s.column];
        if (typeof v === 'number' && Number.isFinite(v)) rows.push({ t_s: Number(r.t_s), series: s.label, panel: s.panel, value: v });
      }
      if (rows.length === before) omitted.push({ label: s.label, reason: `no values in column '${s.column}'` });
    }
  }
  const marks = run.events
    .filter((e) => e.kind === 'epoch-end' || e.kind === 'mark')
    .map((e) => ({ x: e.tMs / 1000, label: e.kind === 'mark' ? (e.label ?? 'mark') : `epoch ${(e.epoch ?? 0) + 1}` }));
  return { rows, marks, omitted };
}

/**
 * A timeline chart of a run: one panel per `panel` (utilization, memory), one line per series,
 * a rule at every epoch end. Series without any values are named in the subtitle as missing.
 */
export function timelineSpec(run: MonitorRun, options: { title: string; subtitle?: string | string[]; series?: readonly TimelineSeries[]; width?: number; panelHeight?: number }): ChartSpec {
  const { rows, marks, omitted } = timelineRows(run, options.series ?? DEFAULT_TIMELINE);
  const sub = options.subtitle === undefined ? [] : Array.isArray(options.subtitle) ? options.subtitle : [options.subtitle];
  const byReason = new Map<string, string[]>();
  for (const o of omitted) byReason.set(o.reason, [...(byReason.get(o.reason) ?? []), o.label]);
  const missing = [...byReason.entries()].map(([reason, labels]) => `missing: ${labels.join(', ')}: ${reason}`);
  return timelineChart({
    title: options.title,
    subtitle: [...sub, ...missing],
    data: rows,
    x: { field: 't_s', title: 'seconds since the sampler started' },
    y: { field: 'value', title: '' },
    series: 'series',
    panel: 'panel',
    marks,
    width: options.width,
    panelHeight: options.panelHeight,
  });
}

// ---------------------------------------------------------------------------------------------
// Kernel profile: tf.profile + tf.time
// ---------------------------------------------------------------------------------------------

/** One kernel call seen by `tf.profile`. */
export interface KernelCall {
  name: string;
  /** For matmuls, the layout inferred from the shapes (`transposeA` …), else ''. */
  variant: string;
  /**
   * True for an op-level entry (`softmaxCrossEntropy__op`, `fusedMatMul__op`): tfjs records ops
   * with a custom gradient as a "kernel" whose time includes the real kernels inside it, which are
   * recorded too. Composite entries are left out of the table and the sums so nothing counts twice.
   */
  composite: boolean;
  /** Kernel time as the backend's timer measured it; null when the backend could not time it. */
  ms: number | null;
  /** Bytes of new tensors the kernel allocated, as tfjs counted them. */
  bytesAdded: number;
  tensorsAdded: number;
  inputShapes: number[][];
  outputShapes: number[][];
}

/** Kernels grouped by name (and matmul layout): calls, time and bytes. */
export interface KernelRow {
  /** Kernel name, with the matmul layout when there is one (`BatchMatMul · transposeA`). */
  kernel: string;
  calls: number;
  /** Sum of the calls' times; null when the backend timer gave none. */
  totalMs: number | null;
  meanMs: number | null;
  /** Share of the summed kernel time, in %. */
  sharePct: number | null;
  /** Bytes allocated by the calls' outputs, in MB. */
  allocatedMB: number;
  /** The distinct input shapes seen, e.g. `[1,100,784]×[1,784,500]`. */
  shapes: string;
}

/** What {@link profileStep} measured for one training step. */
export interface StepProfile {
  backend: string;
  /** Rounds measured; the step-level figures are medians over them. */
  repeats: number;
  /** Kernels by total time (descending), per step: calls, time and bytes averaged over the profiled rounds. */
  kernels: KernelRow[];
  /** Every call of the first profiled round, in order. */
  calls: KernelCall[];
  /** Sum of per-kernel times from tf.profile (composite op entries excluded), median; null when untimed. */
  kernelSumMs: number | null;
  /** Wall time of the profiled step (with read-back), median: the profiler's own overhead is in here. */
  profiledWallMs: number;
  /** `tf.time(step).kernelMs`, median: what this backend calls kernel time (see {@link timerNote}); null when it gave none. */
  kernelMs: number | null;
  /** `tf.time(step).wallMs`, median. */
  wallMs: number;
  /** Our own wall time of an unprofiled step including the read-back of its result (the honest figure), median. */
  syncedWallMs: number;
  /** Every round's value of each step-level figure, in ms. */
  samples: { kernelSumMs: number[]; profiledWallMs: number[]; kernelMs: number[]; wallMs: number[]; syncedWallMs: number[] };
  /** From tf.profile: bytes and tensors the step left behind, and its peak bytes. */
  newBytes: number;
  newTensors: number;
  peakBytes: number;
  /** What kernelMs and wallMs mean on this backend. */
  timerNote: string;
  /** Why kernelMs or the per-kernel times are missing, or null. */
  missingReason: string | null;
}

/**
 * Infer the layout of a matmul kernel from its shapes: `''` (plain), `transposeA`,
 * `transposeB`, `transposeA+B`, or `ambiguous` when square shapes allow several.
 * Autodiff of `x·W` emits `dx = dy·Wᵀ` (transposeB) and `dW = xᵀ·dy` (transposeA).
 */
export function matMulLayout(inputShapes: readonly number[][], outputShapes: readonly number[][]): string {
  if (inputShapes.length < 2 || !outputShapes.length || !inputShapes[0] || !inputShapes[1] || !outputShapes[0]) return '';
  const a = inputShapes[0].slice(-2);
  const b = inputShapes[1].slice(-2);
  const o = outputShapes[0].slice(-2);
  if (a.length < 2 || b.length < 2 || o.length < 2) return '';
  const [p, q] = a;
  const [r, s] = b;
  const [m, n] = o;
  const fits: string[] = [];
  if (q === r && p === m && s === n) fits.push('');
  if (p === r && q === m && s === n) fits.push('transposeA');
  if (q === s && p === m && r === n) fits.push('transposeB');
  if (p === s && q === m && r === n) fits.push('transposeA+B');
  return fits.length === 1 ? fits[0] : fits.length > 1 ? (fits.includes('') ? '' : 'ambiguous') : '';
}

const MATMUL_KERNELS = new Set(['BatchMatMul', '_FusedMatMul', 'MatMul']);

/** What `tf.time`'s kernelMs and wallMs, and `tf.profile`'s per-kernel times, mean on a backend. */
export function explainTimers(backend: string): string {
  switch (backend) {
    case 'cpu':
      return 'cpu (plain JavaScript): kernels run synchronously on the calling thread, so kernelMs is host wall time around the JavaScript call (≈ wallMs) and each kernel\'s time in tf.profile is host time of that kernel. The gap between the summed kernel time and the step\'s wall time is JavaScript outside kernels: autodiff tape, tensor bookkeeping, the optimizer.';
    case 'wasm':
      return 'wasm: kernels run synchronously in WebAssembly on the calling thread, so kernelMs is host wall time around the call (≈ wallMs), and tf.profile\'s per-kernel times are host times of each kernel. The summed kernel time vs the step\'s wall time shows the JavaScript overhead outside kernels (autodiff tape, allocation, optimizer bookkeeping).';
    case 'webgpu':
      return 'webgpu: kernels are queued to the GPU asynchronously. With the timestamp-query feature, kernelMs is GPU execution time from GPU timestamps; without it tfjs reports 0, which we record as missing. wallMs is host time until the timings resolved, including queueing and upload/download waits; the synced wall time also includes reading the result back.';
    case 'webgl':
      return 'webgl: kernelMs comes from GPU disjoint timer queries when the driver offers them (else tfjs returns an error); wallMs includes shader compilation, queueing and texture uploads.';
    case 'tensorflow':
      return 'tensorflow (tfjs-node / tfjs-node-gpu): tf.time measures host wall time around the call into libtensorflow. On a CUDA GPU the kernels are launched asynchronously, so kernelMs is launch time, not GPU kernel time: use Nsight Systems (nsys) or Nsight Compute (ncu) for the GPU side. tf.memory() is marked unreliable there.';
    default:
      return `${backend}: the meaning of kernelMs depends on the backend's timer; compare it with the synced wall time.`;
  }
}

function shapeKey(shapes: readonly (number[] | null | undefined)[]): string {
  return shapes.map((s) => (s ? `[${s.join(',')}]` : '–')).join('×');
}

/** Group kernel calls into {@link KernelRow}s, sorted by total time (then bytes). */
export function summarizeKernels(calls: readonly KernelCall[]): KernelRow[] {
  const groups = new Map<string, { calls: KernelCall[]; shapes: Set<string> }>();
  for (const c of calls) {
    if (c.composite) continue;
    const key = c.variant ? `${c.name} · ${c.variant}` : c.name;
    const g = groups.get(key) ?? { calls: [], shapes: new Set<string>() };
    g.calls.push(c);
    g.shapes.add(shapeKey(c.inputShapes));
    groups.set(key, g);
  }
  const real = calls.filter((c) => !c.composite);
  const timed = real.every((c) => c.ms !== null);
  const sum = timed ? real.reduce((a, c) => a + (c.ms as number), 0) : null;
  const rows: KernelRow[] = [...groups.entries()].map(([kernel, g]) => {
    const total = timed ? g.calls.reduce((a, c) => a + (c.ms as number), 0) : null;
    return {
      kernel,
      calls: g.calls.length,
      totalMs: total,
      meanMs: total === null ? null : total / g.calls.length,
      sharePct: total === null || !sum ? null : (100 * total) / sum,
      allocatedMB: g.calls.reduce((a, c) => a + c.bytesAdded, 0) / MB,
      shapes: [...g.shapes].slice(0, 3).join('; ') + (g.shapes.size > 3 ? ` (+${g.shapes.size - 3} more)` : ''),
    };
  });
  return rows.sort((a, b) => (b.totalMs ?? 0) - (a.totalMs ?? 0) || b.allocatedMB - a.allocatedMB);
}

/**
 * Profile one training step. After `warmup` unprofiled steps, each of `repeats` rounds runs the
 * step three times: under `tf.profile` (per-kernel time and bytes), under `tf.time` (kernelMs vs
 * wallMs), and timed by us with the result read back (syncedWallMs). Step-level figures are the
 * medians of the rounds (every sample is kept in `samples`); the kernel table is the per-step
 * average over the profiled runs. Every run is a real step (weights change). `step` must be
 * synchronous (e.g. `() => optimizer.minimize(loss, true)`), because `tf.time` cannot await;
 * whatever it returns is read back and disposed.
 */
export async function profileStep(step: () => Syncable, options: { warmup?: number; repeats?: number } = {}): Promise<StepProfile> {
  const warmup = options.warmup ?? 1;
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`profileStep: repeats must be ≥ 1, got ${repeats}`);
  for (let i = 0; i < warmup; i++) await sync(step());
  const backend = tf.getBackend() ?? 'none';
  const be = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  const gpuUntimed = backend === 'webgpu' && be.supportTimestampQuery !== true;
  const untimedReason = gpuUntimed ? 'this WebGPU adapter lacks the timestamp-query feature, so tfjs cannot time kernels (it reports 0)' : null;

  const samples: StepProfile['samples'] = { kernelSumMs: [], profiledWallMs: [], kernelMs: [], wallMs: [], syncedWallMs: [] };
  const allCalls: KernelCall[] = [];
  let firstCalls: KernelCall[] = [];
  let info: Awaited<ReturnType<typeof tf.profile>> | null = null;
  const errors: string[] = [];
  for (let r = 0; r < repeats; r++) {
    let profiled: Syncable = undefined;
    const tp = performance.now();
    info = await tf.profile(() => {
      profiled = step();
      return [] as tf.Tensor[];
    });
    await sync(profiled);
    samples.profiledWallMs.push(performance.now() - tp);
    const calls: KernelCall[] = info.kernels.map((k) => {
      const t = k.kernelTimeMs as number | { error: string };
      if (typeof t === 'object' && t && 'error' in t) errors.push(`tf.profile: ${t.error}`);
      return {
        name: k.name,
        variant: MATMUL_KERNELS.has(k.name) ? matMulLayout(k.inputShapes, k.outputShapes) : '',
        composite: k.name === '' || k.name.endsWith('__op'),
        ms: gpuUntimed ? null : typeof t === 'number' ? t : null,
        bytesAdded: k.bytesAdded,
        tensorsAdded: k.tensorsAdded,
        // tfjs records null for optional inputs that were not given (e.g. a fused matmul without bias).
        inputShapes: k.inputShapes.map((sh) => (sh ? [...sh] : [])),
        outputShapes: k.outputShapes.map((sh) => (sh ? [...sh] : [])),
      };
    });
    if (r === 0) firstCalls = calls;
    allCalls.push(...calls);
    const real = calls.filter((c) => !c.composite);
    if (real.length && real.every((c) => c.ms !== null)) samples.kernelSumMs.push(real.reduce((a, c) => a + (c.ms as number), 0));

    let timedOut: Syncable = undefined;
    const timing = await tf.time(() => {
      timedOut = step();
    });
    await sync(timedOut);
    const km = timing.kernelMs as number | { error: string };
    if (typeof km === 'object' && km && 'error' in km) errors.push(`tf.time: ${km.error}`);
    if (!gpuUntimed && typeof km === 'number') samples.kernelMs.push(km);
    samples.wallMs.push(timing.wallMs);

    const t0 = performance.now();
    await sync(step());
    samples.syncedWallMs.push(performance.now() - t0);
  }
  const kernels = summarizeKernels(allCalls).map((k) => ({
    ...k,
    calls: k.calls / repeats,
    totalMs: k.totalMs === null ? null : k.totalMs / repeats,
    allocatedMB: k.allocatedMB / repeats,
  }));
  const med = (xs: number[]) => (xs.length ? medianOf(xs) : null);
  const reasons = [untimedReason, ...new Set(errors)].filter(Boolean);
  const last = info as Awaited<ReturnType<typeof tf.profile>>;
  return {
    backend,
    repeats,
    kernels,
    calls: firstCalls,
    kernelSumMs: med(samples.kernelSumMs),
    profiledWallMs: med(samples.profiledWallMs) as number,
    kernelMs: med(samples.kernelMs),
    wallMs: med(samples.wallMs) as number,
    syncedWallMs: med(samples.syncedWallMs) as number,
    samples,
    newBytes: last.newBytes,
    newTensors: last.newTensors,
    peakBytes: last.peakBytes,
    timerNote: explainTimers(backend),
    missingReason: reasons.length ? reasons.join('; ') : null,
  };
}

/** The step-level timings of a {@link StepProfile} as table rows: median, min and max of the rounds, and what each means. */
export function stepTimingRows(p: StepProfile): Row[] {
  const row = (measure: string, median: number | null, xs: number[], meaning: string): Row => ({
    measure,
    medianMs: median,
    minMs: xs.length ? Math.min(...xs) : null,
    maxMs: xs.length ? Math.max(...xs) : null,
    meaning,
  });
  const sm = p.samples;
  return [
    row('sum of per-kernel times (tf.profile)', p.kernelSumMs, sm.kernelSumMs, 'time inside kernels, as this backend\'s timer measures them'),
    row('wall time of the profiled step', p.profiledWallMs, sm.profiledWallMs, 'the same step with the profiler attached (its bookkeeping included)'),
    row('kernelMs (tf.time)', p.kernelMs, sm.kernelMs, p.backend === 'wasm' || p.backend === 'cpu' ? 'host time around the synchronous call' : 'the backend\'s kernel timer'),
    row('wallMs (tf.time)', p.wallMs, sm.wallMs, 'host time until tf.time resolved'),
    row('synced wall time (step + read-back)', p.syncedWallMs, sm.syncedWallMs, 'what a user waits for: no profiler attached'),
  ];
}

// ---------------------------------------------------------------------------------------------
// Tensor-leak accounting
// ---------------------------------------------------------------------------------------------

/** `tf.memory()` after one epoch of a loop. */
export interface EpochMemory {
  variant: string;
  /** 0 = before the first epoch; 1..n after each epoch. */
  epoch: number;
  numTensors: number;
  numBytes: number;
  /** Growth since epoch 0. */
  tensorsAdded: number;
  bytesAdded: number;
}

/**
 * Run `runEpoch(e)` for `epochs` epochs and record `tf.memory()` before the first and after each
 * one. A loop that leaks shows `numTensors` growing epoch after epoch.
 */
export async function trackEpochMemory(variant: string, epochs: number, runEpoch: (epoch: number) => void | Promise<void>): Promise<EpochMemory[]> {
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`trackEpochMemory(${variant}): epochs must be ≥ 1, got ${epochs}`);
  const m0 = tf.memory();
  const rows: EpochMemory[] = [{ variant, epoch: 0, numTensors: m0.numTensors, numBytes: m0.numBytes, tensorsAdded: 0, bytesAdded: 0 }];
  for (let e = 0; e < epochs; e++) {
    await runEpoch(e);
    const m = tf.memory();
    rows.push({ variant, epoch: e + 1, numTensors: m.numTensors, numBytes: m.numBytes, tensorsAdded: m.numTensors - m0.numTensors, bytesAdded: m.numBytes - m0.numBytes });
  }
  return rows;
}

/** The verdict of {@link leakVerdict}. */
export interface LeakVerdict {
  variant: string;
  /** True when tensors keep piling up after the first epoch. */
  leaking: boolean;
  /** Average growth per epoch after the first (the first may allocate once, e.g. optimizer slots). */
  tensorsPerEpoch: number;
  bytesPerEpoch: number;
  /** Total growth over the whole run. */
  tensorsAdded: number;
  bytesAdded: number;
  /** One sentence for a notebook. */
  summary: string;
}

/**
 * Decide whether a loop leaks from its {@link trackEpochMemory} rows. Growth during the first
 * epoch is allowed (optimizers create their slots then); a loop leaks when `numTensors` grows in
 * every later epoch. Needs at least 2 epochs.
 */
export function leakVerdict(rows: readonly EpochMemory[]): LeakVerdict {
  if (rows.length < 3) throw new Error(`leakVerdict(${rows[0]?.variant ?? '?'}): needs at least 2 epochs (3 rows), got ${rows.length} rows`);
  const variant = rows[0].variant;
  const later = rows.slice(1);
  const steps = later.slice(1).map((r, i) => r.numTensors - later[i].numTensors);
  const leaking = steps.every((d) => d > 0);
  const n = later.length - 1;
  const tensorsPerEpoch = (later[later.length - 1].numTensors - later[0].numTensors) / n;
  const bytesPerEpoch = (later[later.length - 1].numBytes - later[0].numBytes) / n;
  const last = rows[rows.length - 1];
  const summary = leaking
    ? `${variant}: leaks ≈${Math.round(tensorsPerEpoch)} tensors (${(bytesPerEpoch / MB).toFixed(2)} MB) per epoch; ${last.tensorsAdded} tensors after ${rows.length - 1} epochs.`
    : `${variant}: no growth after the first epoch (${last.tensorsAdded} tensors kept in total, e.g. optimizer slots).`;
  return { variant, leaking, tensorsPerEpoch, bytesPerEpoch, tensorsAdded: last.tensorsAdded, bytesAdded: last.bytesAdded, summary };
}

/** {@link EpochMemory} rows as a DataFrame (`variant, epoch, num_tensors, mb, tensors_added, mb_added`). */
export function epochMemoryToDataFrame(rows: readonly EpochMemory[]): pl.DataFrame {
  return pl.DataFrame([
    str('variant', rows.map((r) => r.variant)),
    f64('epoch', rows.map((r) => r.epoch)),
    f64('num_tensors', rows.map((r) => r.numTensors)),
    f64('mb', rows.map((r) => r.numBytes / MB)),
    f64('tensors_added', rows.map((r) => r.tensorsAdded)),
    f64('mb_added', rows.map((r) => r.bytesAdded / MB)),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Input pipeline vs compute
// ---------------------------------------------------------------------------------------------

/** One batch of {@link timePipeline}. */
export interface BatchTiming {
  batch: number;
  /** Time to produce the batch (the iterator's `next()`): the input pipeline. */
  dataMs: number;
  /** Time of the training step including the read-back of its result: the compute. */
  computeMs: number;
  /** True for warm-up batches, which the totals leave out. */
  warmup: boolean;
}

/** Where the time of a run of batches went. */
export interface PipelineSplit {
  variant: string;
  batches: BatchTiming[];
  /** Counted batches (warm-up excluded). */
  counted: number;
  dataMs: number;
  computeMs: number;
  totalMs: number;
  /** dataMs / totalMs. */
  dataShare: number;
  medianDataMs: number;
  medianComputeMs: number;
}

function medianOf(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Run a training step over batches and time each batch's two halves: getting the batch from the
 * iterator (input pipeline) and the step with its result read back (compute). Batch tensors are
 * disposed after each step. With a `sampler`, each batch is recorded as a `batch-end` event with
 * `dataMs`/`computeMs` logs. On backends that upload asynchronously (webgpu), part of the
 * upload cost moves from data into compute.
 */
export async function timePipeline(
  variant: string,
  batches: Iterable<{ xs: tf.Tensor; ys: tf.Tensor }> | AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>,
  step: (batch: { xs: tf.Tensor; ys: tf.Tensor }) => Syncable | Promise<Syncable>,
  options: { warmup?: number; maxBatches?: number; sampler?: Sampler; epoch?: number } = {},
): Promise<PipelineSplit> {
  const warmup = options.warmup ?? 1;
  const max = options.maxBatches ?? Infinity;
  const it = Symbol.asyncIterator in batches
    ? (batches as AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>)[Symbol.asyncIterator]()
    : (batches as Iterable<{ xs: tf.Tensor; ys: tf.Tensor }>)[Symbol.iterator]();
  const out: BatchTiming[] = [];
  try {
    for (let i = 0; i < max; i++) {
      const t0 = performance.now();
      const r = await it.next();
      const t1 = performance.now();
      if (r.done) break;
      try {
        await sync(await step(r.value));
      } finally {
        tf.dispose([r.value.xs, r.value.ys]);
      }
      const t2 = performance.now();
      const bt: BatchTiming = { batch: i, dataMs: t1 - t0, computeMs: t2 - t1, warmup: i < warmup };
      out.push(bt);
      options.sampler?.event('batch-end', { epoch: options.epoch ?? null, batch: i, logs: { dataMs: bt.dataMs, computeMs: bt.computeMs } });
      // Let timers (the sampler's) run between batches, outside the timed parts.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    await it.return?.();
  }
  const counted = out.filter((b) => !b.warmup);
  if (!counted.length) throw new Error(`timePipeline(${variant}): no batches left after ${warmup} warm-up batch(es); give more batches`);
  const dataMs = counted.reduce((a, b) => a + b.dataMs, 0);
  const computeMs = counted.reduce((a, b) => a + b.computeMs, 0);
  return {
    variant,
    batches: out,
    counted: counted.length,
    dataMs,
    computeMs,
    totalMs: dataMs + computeMs,
    dataShare: dataMs / (dataMs + computeMs),
    medianDataMs: medianOf(counted.map((b) => b.dataMs)),
    medianComputeMs: medianOf(counted.map((b) => b.computeMs)),
  };
}

/** Pipeline splits as long rows for a stacked bar chart: `variant, part ('input pipeline'|'compute'), msPerBatch, share`. */
export function splitRows(splits: readonly PipelineSplit[]): Row[] {
  return splits.flatMap((s) => [
    { variant: s.variant, part: 'input pipeline', msPerBatch: s.dataMs / s.counted, share: s.dataShare },
    { variant: s.variant, part: 'compute', msPerBatch: s.computeMs / s.counted, share: 1 - s.dataShare },
  ]);
}
