/**
 * Memory management measured: the peak memory of a piece of work (sampled while it runs) and a
 * batch-size finder that grows the batch until a memory budget or a real allocation failure.
 *
 * Peak memory has three parts, read together:
 * - `rss`: the process's resident memory (`process.memoryUsage().rss`), everything including the
 *   wasm heap (which grows and never shrinks) and garbage not yet collected;
 * - `arrayBuffers`: bytes of live ArrayBuffers/typed arrays on the host (datasets held in memory);
 * - `tfBytes`: bytes of live tensors as TensorFlow.js counts them (`tf.memory().numBytes`).
 *
 * (A minimal sampler for issue 5's notebooks; lib/monitor.ts owns the general samplers.)
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';

/** One reading of the process and tfjs memory. */
export interface MemorySample {
  /** Seconds since the sampler started. */
  t: number;
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  tfBytes: number;
  tfTensors: number;
  /** Size of the wasm heap when the wasm backend is active (it never shrinks), else null. */
  wasmHeap: number | null;
}

/** Peaks of a sampled run, absolute and above the baseline taken when it started. */
export interface PeakMemory {
  baseline: MemorySample;
  peakRss: number;
  peakArrayBuffers: number;
  peakTfBytes: number;
  /** Peak minus baseline, per part: what the work itself added. */
  addedRss: number;
  addedArrayBuffers: number;
  addedTfBytes: number;
  samples: MemorySample[];
  seconds: number;
}

function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.byteLength ?? null;
}

/** Read memory now. */
export function sampleMemory(t = 0): MemorySample {
  const m = process.memoryUsage();
  const tm = tf.memory();
  return { t, rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, tfBytes: tm.numBytes, tfTensors: tm.numTensors, wasmHeap: wasmHeapBytes() };
}

let gcFn: (() => void) | null | undefined;

/**
 * Run a full garbage collection, so a baseline does not count the previous run's garbage.
 * Uses `global.gc` when node runs with `--expose-gc`, otherwise enables it at run time
 * (`v8.setFlagsFromString`). Returns false if no collector could be reached.
 */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      try {
        v8.setFlagsFromString('--expose-gc');
        gcFn = vm.runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      }
    }
  }
  if (!gcFn) return false;
  gcFn();
  return true;
}

/**
 * Samples memory every `intervalMs` (timer-driven, so it sees the process between awaits) and on
 * every explicit {@link sample} call (put one in a per-batch callback: synchronous compute blocks
 * the timer). `stop()` returns the peaks.
 */
export class MemorySampler {
  private readonly samples: MemorySample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private t0 = 0;
  private baseline: MemorySample | null = null;

  /** A sampler ticking every `intervalMs` once started. Default 20 ms. */
  constructor(private readonly intervalMs = 20) {}

  /** Take the baseline and start the timer. */
  start(): this {
    this.t0 = performance.now();
    this.baseline = sampleMemory(0);
    this.samples.push(this.baseline);
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref?.();
    return this;
  }

  /** Take one sample now (also called by the timer). */
  sample(): void {
    this.samples.push(sampleMemory((performance.now() - this.t0) / 1000));
  }

  /** Stop the timer, take a last sample, return the peaks. */
  stop(): PeakMemory {
    if (!this.baseline) throw new Error('MemorySampler.stop: not started');
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    const b = this.baseline;
    const max = (k: 'rss' | 'arrayBuffers' | 'tfBytes') => Math.max(...this.samples.map((s) => s[k]));
    const peakRss = max('rss');
    const peakArrayBuffers = max('arrayBuffers');
    const peakTfBytes = max('tfBytes');
    return {
      baseline: b,
      peakRss,
      peakArrayBuffers,
      peakTfBytes,
      addedRss: peakRss - b.rss,
      addedArrayBuffers: peakArrayBuffers - b.arrayBuffers,
      addedTfBytes: peakTfBytes - b.tfBytes,
      samples: [...this.samples],
      seconds: (performance.now() - this.t0) / 1000,
    };
  }
}

/**
 * Run `fn` while sampling memory; collects garbage first so the baseline is clean. `fn` receives
 * the sampler so it can sample at known points (e.g. after every batch).
 *
 * ```ts
 * const { value, peak } = await memory.measurePeakMemory(async (s) => model.fitDataset(ds, {
 *   epochs: 1, callbacks: { onBatchEnd: async () => s.sample() } }));
 * ```
 */
export async function measurePeakMemory<T>(fn: (sampler: MemorySampler) => T | Promise<T>, options: { intervalMs?: number; gc?: boolean } = {}): Promise<{ value: T; peak: PeakMemory }> {
  if (options.gc ?? true) collectGarbage();
  const sampler = new MemorySampler(options.intervalMs ?? 20).start();
  let value: T;
  try {
    value = await fn(sampler);
  } catch (err) {
    sampler.stop();
    throw err;
  }
  return { value, peak: sampler.stop() };
}

// ---------------------------------------------------------------------------------------------
// batch-size finder

/** True when `err` looks like a failed allocation (host, wasm or GPU), not a bug in the step. */
export function isAllocationFailure(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | null;
  const text = `${e?.name ?? ''}: ${e?.message ?? String(err)}`;
  return /out of memory|OutOfMemory|\bOOM\b|allocation failed|failed to allocate|Invalid typed array length|Array buffer allocation|Cannot enlarge memory|Maximum memory size|memory access out of bounds|exceeds the max|maxBufferSize|maxStorageBufferBindingSize|Failed to create buffer/i.test(
    text,
  );
}

interface ErrorScopeDevice {
  pushErrorScope(filter: 'out-of-memory' | 'validation' | 'internal'): void;
  popErrorScope(): Promise<{ message: string; constructor?: { name?: string } } | null>;
}

function webgpuDevice(): ErrorScopeDevice | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const d = (tf.backend() as unknown as { device?: Partial<ErrorScopeDevice> }).device;
  return d && typeof d.pushErrorScope === 'function' && typeof d.popErrorScope === 'function' ? (d as ErrorScopeDevice) : null;
}

/**
 * Run `fn`, and report whether it failed to allocate. Thrown errors that look like allocation
 * failures are caught and returned; other errors are re-thrown. On the webgpu backend, where a
 * failed buffer allocation does not throw but raises a GPU error, the run is wrapped in
 * `out-of-memory` and `validation` error scopes and a captured error is reported the same way.
 */
export async function catchAllocationFailure(fn: () => unknown | Promise<unknown>): Promise<{ failed: false } | { failed: true; message: string }> {
  const dev = webgpuDevice();
  if (dev) {
    dev.pushErrorScope('out-of-memory');
    dev.pushErrorScope('validation');
  }
  let thrown: unknown = null;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  if (dev) {
    const validation = await dev.popErrorScope();
    const oom = await dev.popErrorScope();
    const gpuErr = oom ?? validation;
    if (gpuErr && !thrown) return { failed: true, message: `GPU ${oom ? 'out-of-memory' : 'validation'} error: ${gpuErr.message}` };
  }
  if (thrown) {
    if (isAllocationFailure(thrown)) return { failed: true, message: (thrown as Error).message ?? String(thrown) };
    throw thrown;
  }
  return { failed: false };
}

/** One trial of {@link findMaxBatchSize}. */
export interface BatchTrial {
  batchSize: number;
  /** Within the budget and no allocation failure. */
  ok: boolean;
  /** Peak tfjs bytes during the step (absolute, everything alive, as `tf.profile` reports). */
  peakBytes: number | null;
  seconds: number | null;
  /** Why it was not ok: 'over budget' or the allocation failure's message. */
  reason: string | null;
  phase: 'grow' | 'back-off';
}

/** The outcome of {@link findMaxBatchSize}. */
export interface BatchSizeSearch {
  /** The largest batch size that ran within the budget (null: not even `start`). */
  best: number | null;
  budgetBytes: number;
  trials: BatchTrial[];
  /** What stopped the growth. */
  stoppedBy: 'budget' | 'allocation-failure' | 'max-batch';
  /** The allocation failure's message, when one stopped it. */
  failure: string | null;
}

/** Options of {@link findMaxBatchSize}. */
export interface FindBatchOptions {
  /** Peak tfjs bytes a step may use (Infinity: stop only on a real allocation failure or maxBatch). */
  budgetBytes: number;
  /** First batch size tried. Default 16. */
  start?: number;
  /** Never try above this. Default 65536. */
  maxBatch?: number;
  /** Growth factor per step. Default 2. */
  factor?: number;
  /** Bisection steps between the last good and the first bad size. Default 4. */
  refineSteps?: number;
}

/**
 * Grow the batch size (×`factor`) running `step(batchSize)` once per size, until its peak tfjs
 * memory exceeds `budgetBytes` or it fails to allocate (caught, see {@link catchAllocationFailure}),
 * then back off: bisect between the last good and the first bad size. Each step runs in a tfjs
 * scope, so tensors it leaves behind are freed (variables are kept).
 */
export async function findMaxBatchSize(step: (batchSize: number) => unknown | Promise<unknown>, options: FindBatchOptions): Promise<BatchSizeSearch> {
  const start = options.start ?? 16;
  const maxBatch = options.maxBatch ?? 65536;
  const factor = options.factor ?? 2;
  const refine = options.refineSteps ?? 4;
  if (!(options.budgetBytes > 0)) throw new Error(`findMaxBatchSize: budgetBytes must be > 0, got ${options.budgetBytes}`);
  if (!(Number.isInteger(start) && start >= 1 && start <= maxBatch)) throw new Error(`findMaxBatchSize: start must be an integer in [1, maxBatch], got ${start}`);
  if (!(factor > 1)) throw new Error(`findMaxBatchSize: factor must be > 1, got ${factor}`);
  const trials: BatchTrial[] = [];
  let failure: string | null = null;

  const attempt = async (b: number, phase: BatchTrial['phase']): Promise<BatchTrial> => {
    let peakBytes: number | null = null;
    let seconds: number | null = null;
    const t0 = performance.now();
    const r = await catchAllocationFailure(async () => {
      tf.engine().startScope();
      try {
        const info = await tf.profile(async () => {
          const out = await step(b);
          const tensors = out instanceof tf.Tensor ? [out] : [];
          for (const t of tensors) await t.data();
          return undefined as unknown as tf.TensorContainer;
        });
        peakBytes = Number.isFinite(info.peakBytes) ? info.peakBytes : tf.memory().numBytes;
      } finally {
        tf.engine().endScope();
      }
    });
    seconds = (performance.now() - t0) / 1000;
    let trial: BatchTrial;
    if (r.failed) {
      failure = failure ?? r.message;
      trial = { batchSize: b, ok: false, peakBytes, seconds: null, reason: r.message, phase };
    } else if (peakBytes !== null && peakBytes > options.budgetBytes) {
      trial = { batchSize: b, ok: false, peakBytes, seconds, reason: 'over budget', phase };
    } else {
      trial = { batchSize: b, ok: true, peakBytes, seconds, reason: null, phase };
    }
    trials.push(trial);
    return trial;
  };

  let good: number | null = null;
  let bad: number | null = null;
  let stoppedBy: BatchSizeSearch['stoppedBy'] = 'max-batch';
  for (let b = start; ; ) {
    const t = await attempt(b, 'grow');
    if (t.ok) good = b;
    else {
      bad = b;
      stoppedBy = t.reason === 'over budget' ? 'budget' : 'allocation-failure';
      break;
    }
    if (b >= maxBatch) break;
    b = Math.min(maxBatch, Math.max(b + 1, Math.round(b * factor)));
  }
  if (bad !== null && good !== null) {
    let lo = good;
    let hi = bad;
    for (let i = 0; i < refine && hi - lo > 1; i++) {
      const mid = Math.floor((lo + hi) / 2);
      const t = await attempt(mid, 'back-off');
      if (t.ok) lo = mid;
      else hi = mid;
    }
    good = lo;
  }
  return { best: good, budgetBytes: options.budgetBytes, trials, stoppedBy, failure };
}
