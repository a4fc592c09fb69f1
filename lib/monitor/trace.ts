/**
 * A kernel timeline: every kernel that a few training steps (and their input pipeline) run, as a
 * span with a start and a duration, exported as a Chrome trace-event file that Perfetto
 * (ui.perfetto.dev) and `chrome://tracing` open, and drawn inline as a Gantt chart.
 *
 * ```ts
 * const trace = await monitor.traceSteps((b) => step.run(b.xs, b.ys), source.epoch(0), { steps: 3 });
 * monitor.writeChromeTrace('build/trace.json', trace);   // open it in Perfetto
 * await charts.show(monitor.ganttSpec(trace, { title: 'One step, kernel by kernel' }));
 * ```
 *
 * How it records: {@link TraceRecorder} wraps every kernel registered for the current backend
 * in tfjs's kernel registry with a function that notes the host clock (`performance.now()`)
 * before and after the real kernel, and puts the original kernels back when it stops (the
 * registry is left exactly as it was). On synchronous backends (cpu, wasm, native TensorFlow
 * on the CPU) the kernel's work is done when it returns, so host time is kernel time. On WebGPU
 * the host span is only the dispatch; where the adapter has the `timestamp-query` feature, the
 * GPU's own begin/end timestamps of every compute pass are recorded too, on a second track.
 */
import * as tf from '@tensorflow/tfjs';
import { describeDevice, deviceLabel } from '../backends/device';
import { benchmark, sync, tinyOpChain, type Syncable } from '../timing';
import { writeFileAtomic } from '../fsutil';
import { type ChartSpec, ganttChart, type Row } from '../charts';
import { kernelCost, type KernelKind } from '../flops';
import { type MonitorRun } from './sampler';
import { shapeText } from './profile';
import { batchIterator, yieldToTimers } from './pipeline';
import { MiB } from '../units';

// ---------------------------------------------------------------------------------------------
// What a trace holds
// ---------------------------------------------------------------------------------------------

/** A kernel attribute as recorded: scalars as they are, number lists as arrays, the rest as text. */
export type TraceAttr = string | number | boolean | null | number[];

/** One kernel call on the timeline. Times are µs since the recording started, on the host clock. */
export interface KernelSpan {
  /** Call order, from 0. */
  id: number;
  /** The kernel's registered name (`BatchMatMul`, `Add` …). */
  name: string;
  /** Host clock: when JavaScript called the kernel, and how long the call took. */
  startUs: number;
  durUs: number;
  /** Host time not spent in kernels this one called through the registry (= durUs when none). */
  selfUs: number;
  /** 0 for a kernel called by the op layer; 1+ for a kernel another kernel called. */
  depth: number;
  /** Index of the {@link PhaseSpan} it ran in, or null outside every phase. */
  phase: number | null;
  inputShapes: (number[] | null)[];
  outputShapes: number[][];
  inputDtypes: (string | null)[];
  outputDtypes: string[];
  attrs: Record<string, TraceAttr>;
  /**
   * GPU clock, where recorded (WebGPU timestamp queries): from the first compute pass's begin to
   * the last one's end, in µs on the host timeline (see {@link Trace.gpuNote} for the alignment);
   * `busyUs` sums the passes. Null on backends without GPU timestamps and for kernels that ran
   * no GPU program (e.g. Reshape).
   */
  gpu: { startUs: number; durUs: number; busyUs: number; passes: number } | null;
}

/** A labelled stretch of the run: one training step, or one batch being prepared. */
export interface PhaseSpan {
  index: number;
  name: string;
  /** `step`: the training step (with its result synced); `input`: the input pipeline preparing a batch. */
  kind: 'step' | 'input' | 'other';
  startUs: number;
  durUs: number;
}

/** Everything a {@link TraceRecorder} recorded. */
export interface Trace {
  backend: string;
  /** `device.deviceLabel()` of the backend that ran. */
  device: string;
  /** ISO time the recording started. */
  startedAt: string;
  /** The recording's start as epoch milliseconds (performance.timeOrigin + the host clock), to line up other clocks. */
  startEpochMs: number;
  durationUs: number;
  /** Which clocks the spans come from, in words. */
  clock: string;
  /** True when the kernels carry GPU timestamps ({@link KernelSpan.gpu}). */
  gpuTimestamps: boolean;
  /** How GPU timestamps were obtained and lined up, or why there are none. */
  gpuNote: string;
  /** How many kernels of the backend were wrapped (and restored). */
  wrappedKernels: number;
  phases: PhaseSpan[];
  kernels: KernelSpan[];
}

// ---------------------------------------------------------------------------------------------
// WebGPU internals used for timestamp queries (tfjs-backend-webgpu 4.22)
// ---------------------------------------------------------------------------------------------

interface GpuBufferLike {
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/** The parts of tfjs-backend-webgpu's backend that its own `getQueryTime` uses. */
interface WebGpuTimingInternals {
  supportTimestampQuery?: boolean;
  getQueryTime?: () => Promise<number>;
  querySet: unknown;
  querySetCount: number;
  queryResolveBuffer: GpuBufferLike | null;
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBufferLike; releaseBuffer(b: GpuBufferLike): void };
  commandEncoder: {
    resolveQuerySet(q: unknown, first: number, count: number, dst: GpuBufferLike, offset: number): void;
    copyBufferToBuffer(src: GpuBufferLike, so: number, dst: GpuBufferLike, doff: number, size: number): void;
  };
  submitQueue(): void;
}

interface GpuGlobals {
  GPUBufferUsage?: { COPY_SRC: number; COPY_DST: number; QUERY_RESOLVE: number; MAP_READ: number };
  GPUMapMode?: { READ: number };
}

// ---------------------------------------------------------------------------------------------
// The recorder
// ---------------------------------------------------------------------------------------------

interface OpenSpan {
  span: KernelSpan;
  childUs: number;
  gpuRaw: [bigint, bigint][];
}

/** Options of {@link TraceRecorder}. */
export interface TraceOptions {
  /**
   * On WebGPU, record GPU timestamps when the adapter supports `timestamp-query` (default true).
   * Each timed compute pass is then submitted on its own, as tfjs's profiler does, which slows
   * the step: measure it with {@link recordingCost}.
   */
  gpuTimestamps?: boolean;
}

const ms = () => performance.now();

function shapeOf(t: tf.TensorInfo | undefined | null): number[] | null {
  return t ? [...t.shape] : null;
}

function attrsOf(attrs: tf.NamedAttrMap | undefined): Record<string, TraceAttr> {
  const out: Record<string, TraceAttr> = {};
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'number')) out[k] = [...(v as number[])];
    else if (v !== undefined) out[k] = Array.isArray(v) ? `[${v.length} values]` : typeof v;
  }
  return out;
}

/**
 * Records every kernel the current backend runs, as spans on the host clock (and the GPU clock
 * where WebGPU timestamp queries exist). {@link start} wraps the backend's kernels in tfjs's
 * registry; {@link stop} puts the originals back and returns the {@link Trace}. Use
 * {@link phase}/{@link step} to label stretches (a batch being prepared, a training step).
 * Prefer {@link recordTrace} or {@link traceSteps}, which stop even when the work throws.
 */
export class TraceRecorder {
  private state: 'idle' | 'recording' | 'stopped' = 'idle';
  private backendName = '';
  private originals: tf.KernelConfig[] = [];
  private t0 = 0;
  private startedAt = '';
  private readonly spans: KernelSpan[] = [];
  private readonly open: OpenSpan[] = [];
  private readonly phases: PhaseSpan[] = [];
  private currentPhase: number | null = null;
  private gpu: { be: WebGpuTimingInternals; original: () => Promise<number> } | null = null;
  private gpuNote = '';
  private readonly raw = new Map<KernelSpan, [bigint, bigint][]>();
  /** Each span's attributes as the kernel got them (by span id), turned into {@link TraceAttr}s by {@link stop}, off the kernels' path. */
  private readonly rawAttrs: (tf.NamedAttrMap | undefined)[] = [];

  constructor(private readonly options: TraceOptions = {}) {}

  /** Start recording on the current backend: wraps its registered kernels. */
  start(): this {
    if (this.state !== 'idle') throw new Error(`TraceRecorder.start: the recorder is ${this.state}; make a new one`);
    this.backendName = tf.getBackend();
    if (!this.backendName) throw new Error('TraceRecorder.start: no tfjs backend is active');
    this.originals = tf.getKernelsForBackend(this.backendName);
    for (const config of this.originals) {
      tf.unregisterKernel(config.kernelName, config.backendName);
      tf.registerKernel({ ...config, kernelFunc: this.wrap(config) });
    }
    this.installGpuTimer();
    this.t0 = ms();
    this.startedAt = new Date(performance.timeOrigin + this.t0).toISOString();
    this.state = 'recording';
    return this;
  }

  /** Whether the kernels carry GPU timestamps in this recording. */
  get gpuTimestamps(): boolean {
    return this.gpu !== null;
  }

  private now(): number {
    return (ms() - this.t0) * 1000;
  }

  private wrap(config: tf.KernelConfig): tf.KernelFunc {
    const original = config.kernelFunc;
    const name = config.kernelName;
    return (params) => {
      const inputs = Object.values(params.inputs);
      const span: KernelSpan = {
        id: this.spans.length,
        name,
        startUs: 0,
        durUs: 0,
        selfUs: 0,
        depth: this.open.length,
        phase: this.currentPhase,
        inputShapes: inputs.map(shapeOf),
        inputDtypes: inputs.map((t) => t?.dtype ?? null),
        outputShapes: [],
        outputDtypes: [],
        attrs: {},
        gpu: null,
      };
      this.spans.push(span);
      this.rawAttrs.push(params.attrs);
      const entry: OpenSpan = { span, childUs: 0, gpuRaw: [] };
      // GPU timestamps arrive after the kernel returned (the query resolves later): keep the list.
      if (this.gpu) this.raw.set(span, entry.gpuRaw);
      this.open.push(entry);
      span.startUs = this.now();
      try {
        const out = original(params);
        const outs = Array.isArray(out) ? out : [out];
        span.outputShapes = outs.map((t) => [...t.shape]);
        span.outputDtypes = outs.map((t) => t.dtype);
        return out;
      } finally {
        span.durUs = this.now() - span.startUs;
        span.selfUs = Math.max(0, span.durUs - entry.childUs);
        this.open.pop();
        const parent = this.open[this.open.length - 1];
        if (parent) parent.childUs += span.durUs;
      }
    };
  }

  /**
   * On WebGPU with `timestamp-query`: replace the backend's `getQueryTime` (which tfjs's profiler
   * calls once per compute pass while `tf.time` runs) with one that also keeps the pass's
   * absolute begin/end timestamps for the kernel that dispatched it. Mirrors
   * tfjs-backend-webgpu 4.22's own method; restored by {@link stop}.
   */
  private installGpuTimer(): void {
    if (this.backendName !== 'webgpu') {
      this.gpuNote = `${this.backendName} has no GPU clock: every span is host time (performance.now()) around the kernel call, and the kernel has finished when it returns.`;
      return;
    }
    const be = tf.backend() as unknown as WebGpuTimingInternals;
    const g = globalThis as unknown as GpuGlobals;
    if (this.options.gpuTimestamps === false) {
      this.gpuNote = 'GPU timestamps were not asked for: spans are host dispatch times (performance.now()); the GPU runs the work later, asynchronously.';
      return;
    }
    if (!be.supportTimestampQuery || typeof be.getQueryTime !== 'function' || !g.GPUBufferUsage || !g.GPUMapMode) {
      this.gpuNote = 'this WebGPU adapter lacks the timestamp-query feature, so spans are host dispatch times only (performance.now()); the GPU runs the work later, asynchronously.';
      return;
    }
    const usage = g.GPUBufferUsage;
    const readMode = g.GPUMapMode.READ;
    const original = be.getQueryTime;
    const open = this.open;
    be.getQueryTime = async function (this: WebGpuTimingInternals): Promise<number> {
      const owner = open[open.length - 1] ?? null;
      if (this.queryResolveBuffer == null) {
        this.queryResolveBuffer = this.bufferManager.acquireBuffer(this.querySetCount * 8, usage.COPY_SRC | usage.COPY_DST | usage.QUERY_RESOLVE);
      }
      this.commandEncoder.resolveQuerySet(this.querySet, 0, this.querySetCount, this.queryResolveBuffer, 0);
      const staging = this.bufferManager.acquireBuffer(this.querySetCount * 8, usage.MAP_READ | usage.COPY_DST);
      this.commandEncoder.copyBufferToBuffer(this.queryResolveBuffer, 0, staging, 0, this.querySetCount * 8);
      this.submitQueue();
      await staging.mapAsync(readMode);
      const stamps = new BigUint64Array(staging.getMappedRange());
      const begin = stamps[0];
      const end = stamps[1];
      staging.unmap();
      this.bufferManager.releaseBuffer(staging);
      owner?.gpuRaw.push([begin, end]);
      return Number(end - begin) / 1e6;
    };
    this.gpu = { be, original };
    this.gpuNote = 'GPU spans come from WebGPU timestamp queries (begin/end of each compute pass, GPU clock). tfjs exposes no common clock, so the GPU track is shifted by the smallest offset that starts no pass before the host dispatched it: gaps on it are real, its absolute position is a lower bound.';
  }

  /**
   * Run `fn` as a labelled phase (a batch being prepared, a step): its span covers the call and,
   * for a returned promise, its settling.
   */
  async phase<T>(name: string, kind: PhaseSpan['kind'], fn: () => T | Promise<T>): Promise<T> {
    if (this.state !== 'recording') throw new Error(`TraceRecorder.phase('${name}'): the recorder is ${this.state}`);
    if (this.currentPhase !== null) throw new Error(`TraceRecorder.phase('${name}'): phases do not nest (inside '${this.phases[this.currentPhase].name}')`);
    const p: PhaseSpan = { index: this.phases.length, name, kind, startUs: this.now(), durUs: 0 };
    this.phases.push(p);
    this.currentPhase = p.index;
    try {
      return await fn();
    } finally {
      p.durUs = this.now() - p.startUs;
      this.currentPhase = null;
    }
  }

  /**
   * Run one training step as a `step` phase and wait for its result (read back, then disposed).
   * With GPU timestamps the step runs inside `tf.time`, which is what turns tfjs-webgpu's
   * per-pass timestamp queries on; `step` must then be synchronous (it is for `optimizer.minimize`).
   */
  async step(name: string, step: () => Syncable): Promise<void> {
    await this.phase(name, 'step', async () => {
      if (!this.gpu) {
        await sync(step());
        return;
      }
      let out: Syncable = undefined;
      await tf.time(() => {
        out = step();
      });
      await sync(out);
    });
  }

  /** Stop: restore the original kernels (and the WebGPU timer) and return the trace. */
  stop(): Trace {
    if (this.state !== 'recording') throw new Error(`TraceRecorder.stop: the recorder is ${this.state}`);
    const durationUs = this.now();
    this.restore();
    this.state = 'stopped';
    this.spans.forEach((span, i) => (span.attrs = attrsOf(this.rawAttrs[i])));
    const gpuTimestamps = this.alignGpu();
    const info = describeDevice();
    return {
      backend: this.backendName,
      device: deviceLabel(info),
      startedAt: this.startedAt,
      startEpochMs: performance.timeOrigin + this.t0,
      durationUs,
      clock: gpuTimestamps ? 'host clock for calls and phases; GPU timestamps for the GPU track' : 'host clock (performance.now())',
      gpuTimestamps,
      gpuNote: this.gpuNote,
      wrappedKernels: this.originals.length,
      phases: [...this.phases],
      kernels: [...this.spans],
    };
  }

  /** Put back exactly the kernel configs that were registered before {@link start}. */
  private restore(): void {
    for (const config of this.originals) {
      tf.unregisterKernel(config.kernelName, config.backendName);
      tf.registerKernel(config);
    }
    if (this.gpu) this.gpu.be.getQueryTime = this.gpu.original;
  }

  /** Turn the raw GPU timestamps into µs on the host timeline; false when there are none usable. */
  private alignGpu(): boolean {
    if (!this.gpu) return false;
    const entries = [...this.raw.entries()].filter(([, r]) => r.length > 0 && r.every(([b, e]) => e >= b && b > 0n));
    if (!entries.length) {
      this.gpuNote = 'the adapter reported timestamp-query, but no usable GPU timestamps came back (zero or reversed values), so spans are host dispatch times only.';
      return false;
    }
    let minBegin = entries[0][1][0][0];
    for (const [, r] of entries) for (const [b] of r) if (b < minBegin) minBegin = b;
    // Offset (µs) so that no pass starts before its kernel was dispatched on the host.
    let offset = -Infinity;
    for (const [span, r] of entries) {
      const first = Number(r.reduce((m, [b]) => (b < m ? b : m), r[0][0]) - minBegin) / 1000;
      offset = Math.max(offset, span.startUs - first);
    }
    for (const [span, r] of entries) {
      const begin = Number(r.reduce((m, [b]) => (b < m ? b : m), r[0][0]) - minBegin) / 1000;
      const end = Number(r.reduce((m, [, e]) => (e > m ? e : m), r[0][1]) - minBegin) / 1000;
      const busy = r.reduce((a, [b, e]) => a + Number(e - b) / 1000, 0);
      span.gpu = { startUs: begin + offset, durUs: end - begin, busyUs: busy, passes: r.length };
    }
    return true;
  }
}

/**
 * Record a trace of `fn`: start a {@link TraceRecorder} on the current backend, run `fn` with it,
 * and stop it (restoring the kernels) even when `fn` throws.
 */
export async function recordTrace(fn: (recorder: TraceRecorder) => Promise<void> | void, options: TraceOptions = {}): Promise<Trace> {
  const rec = new TraceRecorder(options).start();
  try {
    await fn(rec);
  } catch (err) {
    rec.stop();
    throw err;
  }
  return rec.stop();
}

/** A batch of inputs and targets. */
export interface TraceBatch {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** Options of {@link traceSteps}. */
export interface TraceStepsOptions extends TraceOptions {
  /** Recorded steps (default 3). */
  steps?: number;
  /** Unrecorded steps first (shader compilation, allocator, optimizer slots; default 2). */
  warmup?: number;
}

/**
 * Trace a few training steps with their input pipeline: for each batch, an `input` phase (the
 * iterator producing the batch: building and uploading its tensors) and a `step` phase (`step`
 * on it, result synced). `warmup` batches run first, unrecorded. Batches are disposed after
 * their step. Between steps the event loop runs timers (so a `Sampler` alongside records
 * samples: {@link toChromeTrace}'s counters). Throws when the iterator runs out before
 * `warmup + steps` batches.
 */
export async function traceSteps(
  step: (batch: TraceBatch) => Syncable,
  batches: Iterable<TraceBatch> | AsyncIterable<TraceBatch>,
  options: TraceStepsOptions = {},
): Promise<Trace> {
  const steps = options.steps ?? 3;
  const warmup = options.warmup ?? 2;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`traceSteps: steps must be ≥ 1, got ${steps}`);
  const it = batchIterator(batches);
  const next = async (i: number): Promise<TraceBatch> => {
    const r = await it.next();
    if (r.done) throw new Error(`traceSteps: the batches ran out after ${i} of ${warmup + steps} (warm-up ${warmup} + ${steps} recorded)`);
    return r.value;
  };
  try {
    for (let i = 0; i < warmup; i++) {
      const b = await next(i);
      try {
        await sync(step(b));
      } finally {
        tf.dispose([b.xs, b.ys]);
      }
    }
    return await recordTrace(async (rec) => {
      for (let i = 0; i < steps; i++) {
        const b = await rec.phase(`batch ${i}`, 'input', () => next(warmup + i));
        try {
          await rec.step(`step ${i}`, () => step(b));
        } finally {
          tf.dispose([b.xs, b.ys]);
        }
        // Let timers run between steps (outside every phase): a sampler running alongside gets
        // its samples in, which become the trace file's counters.
        await yieldToTimers();
      }
    }, options);
  } finally {
    await it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------
// What recording costs
// ---------------------------------------------------------------------------------------------

/** The price of recording: the same step timed with and without the recorder attached. */
export interface RecordingCost {
  backend: string;
  /** Seconds of a step, unrecorded and recorded: the fastest of each (on a shared machine, the least disturbed). */
  plainSeconds: number;
  recordedSeconds: number;
  /** recorded / plain − 1. */
  overheadFraction: number;
  /** Kernel calls per step, and the extra µs per kernel call the recorder cost (difference of the fastest steps / calls). */
  kernelsPerStep: number;
  usPerKernel: number;
  /**
   * The recorder's cost per kernel call measured directly: a chain of 200 tiny adds (one device
   * sync at the end), timed without and with the recorder, difference ÷ 200, in µs. Far less
   * noisy than the step difference.
   */
  chainUsPerKernel: number;
  /** Timed steps of each kind. */
  repeats: number;
  gpuTimestamps: boolean;
}

/**
 * Time `step` (synced) without and with a {@link TraceRecorder} attached: `rounds` rounds (default
 * 3), each a block of `repeats` plain steps (default 10) then a block of as many recorded steps
 * inside one recording, so a busy machine disturbs both alike; `warmup` steps before each block
 * are not timed. The figures are the fastest of all timed steps of each kind (on a shared machine,
 * the least disturbed). Every run is a real step (weights change). The difference can come out
 * negative on a noisy machine: the cost is then below what the noise lets one measure.
 */
export async function recordingCost(step: () => Syncable, options: { repeats?: number; warmup?: number; rounds?: number } & TraceOptions = {}): Promise<RecordingCost> {
  const repeats = options.repeats ?? 10;
  const warmup = options.warmup ?? 2;
  const rounds = options.rounds ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`recordingCost: repeats must be ≥ 1, got ${repeats}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`recordingCost: rounds must be ≥ 1, got ${rounds}`);
  const plain: number[] = [];
  const recorded: number[] = [];
  let kernels = 0;
  let gpu = false;
  for (let r = 0; r < rounds; r++) {
    plain.push(...(await benchmark(step, { warmup, repeats })).samples);
    const trace = await recordTrace(async (rec) => {
      let i = 0;
      recorded.push(...(await benchmark(() => rec.step(`step ${i++}`, step), { warmup, repeats })).samples);
    }, options);
    const steps = kernelsByPhase(trace, 'step');
    kernels = topLevelKernels(steps[steps.length - 1].kernels).length;
    gpu = trace.gpuTimestamps;
  }
  const p = Math.min(...plain);
  const r = Math.min(...recorded);
  const chainUsPerKernel = await chainCost(Math.max(10, rounds * 5));
  return {
    backend: tf.getBackend(),
    plainSeconds: p,
    recordedSeconds: r,
    overheadFraction: r / p - 1,
    kernelsPerStep: kernels,
    usPerKernel: kernels ? ((r - p) * 1e6) / kernels : 0,
    chainUsPerKernel,
    repeats: repeats * rounds,
    gpuTimestamps: gpu,
  };
}

/** µs per kernel call the recorder adds, from a chain of 200 tiny adds timed without and with it (alternating, `repeats` each; fastest runs). */
async function chainCost(repeats: number): Promise<number> {
  const chain = 200;
  const run = async (): Promise<number> => {
    const t0 = ms();
    await tinyOpChain(chain);
    return ms() - t0;
  };
  const plain: number[] = [];
  const recorded: number[] = [];
  await run();
  for (let i = 0; i < repeats; i++) {
    plain.push(await run());
    await recordTrace(async () => {
      await run();
      recorded.push(await run());
    });
  }
  return ((Math.min(...recorded) - Math.min(...plain)) * 1000) / chain;
}

// ---------------------------------------------------------------------------------------------
// Chrome trace-event JSON
// ---------------------------------------------------------------------------------------------

/** One event of the Chrome trace-event format (the subset gpulab writes). */
export interface TraceEvent {
  name: string;
  /** `X` complete event (ts + dur), `C` counter, `M` metadata (process/thread names). */
  ph: 'X' | 'C' | 'M';
  /** Microseconds. */
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  args?: Record<string, unknown>;
}

/** A Chrome trace file: `{ traceEvents, displayTimeUnit, otherData }`. */
export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, string | number | boolean>;
}

const PID = 1;
const HOST_TID = 1;
const GPU_TID = 2;

/**
 * The trace as Chrome trace-event JSON: phases and kernels as `X` events on the host thread
 * (kernels nest inside the phase they ran in), GPU passes on a second thread where recorded, and,
 * given the `counters` of a sampler that ran alongside, its process-memory, CPU and tf.memory()
 * samples (and nvidia-smi's, where present) as `C` events on the same clock.
 */
export function toChromeTrace(trace: Trace, options: { counters?: MonitorRun } = {}): ChromeTrace {
  const ev: TraceEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: PID, tid: 0, args: { name: `gpulab · ${trace.device}` } },
    { name: 'thread_name', ph: 'M', ts: 0, pid: PID, tid: HOST_TID, args: { name: `JavaScript thread (host clock): phases and kernel calls` } },
  ];
  if (trace.gpuTimestamps) ev.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID, tid: GPU_TID, args: { name: 'GPU (WebGPU timestamp queries)' } });
  for (const p of trace.phases) ev.push({ name: p.name, cat: p.kind, ph: 'X', ts: p.startUs, dur: p.durUs, pid: PID, tid: HOST_TID, args: { kind: p.kind } });
  for (const k of trace.kernels) {
    const args = { inputs: shapeText(k.inputShapes), outputs: shapeText(k.outputShapes), dtypes: k.outputDtypes.join(','), phase: k.phase === null ? null : trace.phases[k.phase].name, ...k.attrs };
    ev.push({ name: k.name, cat: 'kernel', ph: 'X', ts: k.startUs, dur: k.durUs, pid: PID, tid: HOST_TID, args });
    if (k.gpu) ev.push({ name: k.name, cat: 'gpu', ph: 'X', ts: k.gpu.startUs, dur: k.gpu.durUs, pid: PID, tid: GPU_TID, args: { busyUs: k.gpu.busyUs, passes: k.gpu.passes, inputs: args.inputs } });
  }
  const run = options.counters;
  if (run) {
    const base = Date.parse(run.startedAt) - trace.startEpochMs;
    for (const s of run.samples) {
      const ts = (base + s.tMs) * 1000;
      if (ts < 0 || ts > trace.durationUs) continue;
      const mb = (b: number) => b / MiB;
      ev.push({ name: 'process memory (MiB)', ph: 'C', ts, pid: PID, tid: 0, args: { rss: mb(s.rssBytes), heap: mb(s.heapUsedBytes), external: mb(s.externalBytes) } });
      ev.push({ name: 'tf.memory()', ph: 'C', ts, pid: PID, tid: 0, args: { tensors: s.tfNumTensors, MiB: mb(s.tfNumBytes) } });
      if (s.cpuPct !== null) ev.push({ name: 'process CPU (% of one core)', ph: 'C', ts, pid: PID, tid: 0, args: { cpu: s.cpuPct } });
    }
    for (const g of run.gpu) {
      const ts = (base + g.tMs) * 1000;
      if (ts < 0 || ts > trace.durationUs) continue;
      const args: Record<string, number> = {};
      if (g.utilizationPct !== null) args.utilization = g.utilizationPct;
      if (g.memoryUsedMiB !== null) args.memoryUsedMiB = g.memoryUsedMiB;
      if (Object.keys(args).length) ev.push({ name: `GPU ${g.gpu ?? 0} (nvidia-smi)`, ph: 'C', ts, pid: PID, tid: 0, args });
    }
  }
  return {
    traceEvents: ev,
    displayTimeUnit: 'ms',
    otherData: { backend: trace.backend, device: trace.device, startedAt: trace.startedAt, clock: trace.clock, gpuNote: trace.gpuNote, generator: 'gpulab monitor.toChromeTrace' },
  };
}

/**
 * What is wrong with a Chrome trace-event document, as gpulab writes it; empty when nothing is.
 * Checks: a `traceEvents` array; every event has a string `name`, a known `ph`, numeric `pid`,
 * `tid` and finite non-negative `ts`; `X` events have a finite non-negative `dur`; `C` events
 * have numeric `args`; and on each thread, `X` events nest properly in time (an event that starts
 * inside another ends inside it), which is what the trace viewers need to draw them as a stack.
 */
export function traceProblems(doc: unknown): string[] {
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { traceEvents?: unknown }).traceEvents)) return ['no traceEvents array'];
  const events = (doc as { traceEvents: unknown[] }).traceEvents;
  const byThread = new Map<string, { ts: number; end: number; name: string; i: number }[]>();
  events.forEach((raw, i) => {
    const e = raw as Partial<TraceEvent>;
    const where = `event ${i} (${typeof e?.name === 'string' ? e.name : '?'})`;
    if (!e || typeof e !== 'object') return void problems.push(`event ${i} is not an object`);
    if (typeof e.name !== 'string') problems.push(`${where}: name is not a string`);
    if (e.ph !== 'X' && e.ph !== 'C' && e.ph !== 'M') problems.push(`${where}: ph '${String(e.ph)}' is not X, C or M`);
    if (typeof e.pid !== 'number' || typeof e.tid !== 'number') problems.push(`${where}: pid and tid must be numbers`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) problems.push(`${where}: ts ${String(e.ts)} is not a finite number ≥ 0`);
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || !Number.isFinite(e.dur) || e.dur < 0) problems.push(`${where}: dur ${String(e.dur)} is not a finite number ≥ 0`);
      else if (typeof e.ts === 'number') {
        const key = `${e.pid}/${e.tid}`;
        const spans = byThread.get(key) ?? [];
        if (!spans.length) byThread.set(key, spans);
        spans.push({ ts: e.ts, end: e.ts + e.dur, name: String(e.name), i });
      }
    }
    if (e.ph === 'C' && (!e.args || !Object.values(e.args).every((v) => typeof v === 'number' && Number.isFinite(v)))) problems.push(`${where}: a counter's args must all be finite numbers`);
  });
  const eps = 1e-3;
  for (const [thread, spans] of byThread) {
    spans.sort((a, b) => a.ts - b.ts || b.end - a.end);
    const stack: typeof spans = [];
    for (const s of spans) {
      while (stack.length && s.ts >= stack[stack.length - 1].end - eps) stack.pop();
      const top = stack[stack.length - 1];
      if (top && s.end > top.end + eps) {
        problems.push(`thread ${thread}: '${s.name}' (event ${s.i}, ${s.ts.toFixed(1)}–${s.end.toFixed(1)} µs) starts inside '${top.name}' (event ${top.i}, ${top.ts.toFixed(1)}–${top.end.toFixed(1)} µs) but ends after it`);
        continue;
      }
      stack.push(s);
    }
  }
  return problems;
}

/**
 * Write the trace as Chrome trace-event JSON, atomically (a temporary file, then a rename). Open
 * it at ui.perfetto.dev or chrome://tracing. Returns the path and the file's size in bytes.
 */
export function writeChromeTrace(file: string, trace: Trace, options: { counters?: MonitorRun } = {}): { path: string; bytes: number; events: number } {
  const doc = toChromeTrace(trace, options);
  const problems = traceProblems(doc);
  if (problems.length) throw new Error(`writeChromeTrace(${file}): the trace is not valid trace-event JSON: ${problems.slice(0, 3).join('; ')}`);
  const text = JSON.stringify(doc);
  writeFileAtomic(file, text);
  return { path: file, bytes: Buffer.byteLength(text), events: doc.traceEvents.length };
}

// ---------------------------------------------------------------------------------------------
// Tables and charts
// ---------------------------------------------------------------------------------------------

/** The phases of a kind (default `step`) with their kernels, in order. */
export function kernelsByPhase(trace: Trace, kind: PhaseSpan['kind'] = 'step'): { phase: PhaseSpan; kernels: KernelSpan[] }[] {
  return trace.phases.filter((p) => p.kind === kind).map((phase) => ({ phase, kernels: trace.kernels.filter((k) => k.phase === phase.index) }));
}

/** The kernels the op layer called (depth 0), without the kernels those called in turn: "kernels per step". */
export function topLevelKernels(kernels: readonly KernelSpan[]): KernelSpan[] {
  return kernels.filter((k) => k.depth === 0);
}

/** The time a kernel span stands for: GPU busy time where recorded, else the host self time. */
export function spanSeconds(k: KernelSpan): number {
  return (k.gpu ? k.gpu.busyUs : k.selfUs) / 1e6;
}

/** Options of {@link ganttSpec}. */
export interface GanttOptions {
  title: string;
  subtitle?: string | string[];
  /**
   * Which phases to draw, by index (default: one batch: the fastest step phase, the least
   * disturbed on a shared machine, and the input phase before it).
   */
  phases?: readonly number[];
  width?: number;
}

/**
 * The timeline as a Gantt chart: one lane for the phases (input pipeline, step), one for the
 * kernel calls on the host clock and, with GPU timestamps, one for the GPU; each span a bar from
 * its start to its end (ms), coloured by what kind of kernel it is, so the gaps between kernels
 * show as empty space. Drag to zoom in JupyterLab.
 */
export function ganttSpec(trace: Trace, options: GanttOptions): ChartSpec {
  const steps = trace.phases.filter((p) => p.kind === 'step');
  const fastest = steps.length ? steps.reduce((a, b) => (b.durUs < a.durUs ? b : a)) : undefined;
  const before = fastest ? trace.phases.filter((p) => p.kind === 'input' && p.index < fastest.index).pop() : undefined;
  const chosen = new Set(options.phases ?? [before?.index, fastest?.index].filter((i): i is number => i !== undefined));
  const phases = trace.phases.filter((p) => chosen.has(p.index));
  if (!phases.length) throw new Error('ganttSpec: the trace has no phases to draw');
  const t0 = Math.min(...phases.map((p) => p.startUs));
  const rows: Row[] = phases.map((p) => ({ lane: 'phase', label: p.name, kind: p.kind === 'input' ? 'input pipeline' : 'training step', startMs: (p.startUs - t0) / 1000, endMs: (p.startUs + p.durUs - t0) / 1000, us: p.durUs }));
  for (const k of trace.kernels) {
    if (k.phase === null || !chosen.has(k.phase)) continue;
    const kind: KernelKind = kernelCost(k).kind;
    const detail = `${k.name} ${shapeText(k.inputShapes)}`;
    rows.push({ lane: k.depth ? `kernels (nested ${k.depth})` : 'kernels (host)', label: detail, kind, startMs: (k.startUs - t0) / 1000, endMs: (k.startUs + k.durUs - t0) / 1000, us: k.durUs });
    if (k.gpu) rows.push({ lane: 'GPU', label: detail, kind, startMs: (k.gpu.startUs - t0) / 1000, endMs: (k.gpu.startUs + k.gpu.durUs - t0) / 1000, us: k.gpu.durUs });
  }
  return ganttChart({
    title: options.title,
    subtitle: options.subtitle,
    data: rows,
    lane: 'lane',
    start: { field: 'startMs', title: 'ms since the batch was asked for' },
    end: 'endMs',
    color: { field: 'kind', title: 'what runs' },
    tooltip: ['label', 'us'],
    width: options.width,
  });
}
