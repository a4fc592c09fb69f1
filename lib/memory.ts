/**
 * Memory, measured: the one home of memory accounting.
 *
 * - Peak memory of a piece of work ({@link measurePeakMemory}, sampled while it runs with
 *   `monitor.Sampler`) and a batch-size finder that grows the batch until a memory budget or a
 *   real allocation failure ({@link findMaxBatchSize}).
 * - Tensors a piece of work leaves behind ({@link leakGuard}) and per epoch of a loop
 *   ({@link trackEpochMemory} / {@link leakVerdict}).
 * - The tensor memory of one training step ({@link stepMemory}, from `tf.profile`).
 *
 * Peak memory has three parts, read together:
 * - `rss`: the process's resident memory, everything including the wasm heap (which grows and
 *   never shrinks) and garbage not yet collected;
 * - `arrayBuffers`: bytes of live ArrayBuffers/typed arrays on the host (datasets held in memory);
 * - `tfBytes`: bytes of live tensors as TensorFlow.js counts them (`tf.memory().numBytes`).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import pl from 'nodejs-polars';
import { f64, str } from './monitor/columns';
import { MiB } from './units';
import { monitor, type MonitorRun, type ProcessSample, type Sampler } from './monitor/sampler';
import { disposeOptimizer, lossFn, seedOptimizer, trainableVariables, type Batch, type LossFn, type LossName } from './train';

/** Peaks of a sampled run, absolute and above the baseline taken when it started. */
export interface PeakMemory {
  /** The first sample (after garbage collection). */
  baseline: ProcessSample;
  peakRss: number;
  peakArrayBuffers: number;
  peakTfBytes: number;
  /** Peak minus baseline, per part: what the work itself added. */
  addedRss: number;
  addedArrayBuffers: number;
  addedTfBytes: number;
  /** Peak `tf.memory().numBytesInGPU` minus baseline, where the backend reports it (webgpu), else null. */
  addedGpuBytes: number | null;
  seconds: number;
  /** Every sample and event the sampler recorded. */
  run: MonitorRun;
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

/** Summarise a sampled run into peaks above its first sample. */
export function peakOf(run: MonitorRun): PeakMemory {
  if (run.samples.length === 0) throw new Error('peakOf: the run has no samples');
  const b = run.samples[0];
  const max = (f: (s: ProcessSample) => number) => Math.max(...run.samples.map(f));
  const peakRss = max((s) => s.rssBytes);
  const peakArrayBuffers = max((s) => s.arrayBuffersBytes);
  const peakTfBytes = max((s) => s.tfNumBytes);
  const gpu = run.samples.map((s) => s.tfNumBytesInGPU).filter((x): x is number => x !== null);
  return {
    baseline: b,
    peakRss,
    peakArrayBuffers,
    peakTfBytes,
    addedRss: peakRss - b.rssBytes,
    addedArrayBuffers: peakArrayBuffers - b.arrayBuffersBytes,
    addedTfBytes: peakTfBytes - b.tfNumBytes,
    addedGpuBytes: gpu.length && b.tfNumBytesInGPU !== null ? Math.max(...gpu) - b.tfNumBytesInGPU : null,
    seconds: run.durationMs / 1000,
    run,
  };
}

/**
 * Run `fn` while sampling memory (every `intervalMs`, default 20, and whenever `fn` calls
 * `sampler.sample()`, e.g. in `onBatchBegin`/`onBatchEnd`: synchronous compute blocks the timer).
 * Collects garbage first so the baseline is clean. Returns `fn`'s value and the peaks.
 *
 * ```ts
 * const { peak } = await memory.measurePeakMemory((s) => model.fitDataset(ds, {
 *   epochs: 1, callbacks: { onBatchBegin: async () => { s.sample(); } } }));
 * ```
 */
export async function measurePeakMemory<T>(fn: (sampler: Sampler) => T | Promise<T>, options: { intervalMs?: number; gc?: boolean } = {}): Promise<{ value: T; peak: PeakMemory }> {
  if (options.gc ?? true) collectGarbage();
  const { value, run } = await monitor(fn, { intervalMs: options.intervalMs ?? 20, nvidiaSmi: false });
  return { value, peak: peakOf(run) };
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
    const seconds = (performance.now() - t0) / 1000;
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
    ? `${variant}: leaks ≈${Math.round(tensorsPerEpoch)} tensors (${(bytesPerEpoch / MiB).toFixed(2)} MB) per epoch; ${last.tensorsAdded} tensors after ${rows.length - 1} epochs.`
    : `${variant}: no growth after the first epoch (${last.tensorsAdded} tensors kept in total, e.g. optimizer slots).`;
  return { variant, leaking, tensorsPerEpoch, bytesPerEpoch, tensorsAdded: last.tensorsAdded, bytesAdded: last.bytesAdded, summary };
}

/** {@link EpochMemory} rows as a DataFrame (`variant, epoch, num_tensors, mb, tensors_added, mb_added`). */
export function epochMemoryToDataFrame(rows: readonly EpochMemory[]): pl.DataFrame {
  return pl.DataFrame([
    str('variant', rows.map((r) => r.variant)),
    f64('epoch', rows.map((r) => r.epoch)),
    f64('num_tensors', rows.map((r) => r.numTensors)),
    f64('mb', rows.map((r) => r.numBytes / MiB)),
    f64('tensors_added', rows.map((r) => r.tensorsAdded)),
    f64('mb_added', rows.map((r) => r.bytesAdded / MiB)),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Tensors kept by a piece of work, and the memory of one training step
// ---------------------------------------------------------------------------------------------

/** Tensor and byte counts before and after a piece of work. */
export interface LeakReport {
  before: { numTensors: number; numBytes: number };
  after: { numTensors: number; numBytes: number };
  /** Tensors still alive that were not alive before. */
  leakedTensors: number;
  leakedBytes: number;
}

/**
 * Run `fn` and report `tf.memory()` before and after. With `{ throwOnLeak: true }` a growth in
 * `numTensors` throws (naming `label`), which is how tests catch leaks.
 */
export async function leakGuard<T>(
  label: string,
  fn: () => T | Promise<T>,
  options: { throwOnLeak?: boolean } = {},
): Promise<{ value: T; report: LeakReport }> {
  const m0 = tf.memory();
  const before = { numTensors: m0.numTensors, numBytes: m0.numBytes };
  const value = await fn();
  const m1 = tf.memory();
  const after = { numTensors: m1.numTensors, numBytes: m1.numBytes };
  const report: LeakReport = {
    before,
    after,
    leakedTensors: after.numTensors - before.numTensors,
    leakedBytes: after.numBytes - before.numBytes,
  };
  if (options.throwOnLeak && report.leakedTensors > 0) {
    throw new Error(`${label}: leaked ${report.leakedTensors} tensors (${report.leakedBytes} bytes)`);
  }
  return { value, report };
}

/** Memory of one training step, from `tf.profile`, and the model's share of it. */
export interface StepMemory {
  /** Highest tensor bytes alive during the step (everything the process holds included). */
  peakBytes: number;
  /** Bytes alive just before the step. */
  beforeBytes: number;
  /** peakBytes − beforeBytes: activations, gradients and temporaries of this batch. */
  stepBytes: number;
  /** The model's weights. */
  weightBytes: number;
  /** The optimiser's state alive before the step (momentum or Adam slots, the iteration count). */
  optimizerBytes: number;
  /** The batch: inputs and labels. */
  batchBytes: number;
  /**
   * What one step of this model needs at its peak, whatever else the process holds:
   * weights + optimiser state + batch + the step's own temporaries.
   */
  totalBytes: number;
}

/** Options for {@link stepMemory}. */
export interface StepMemoryOptions {
  /** The optimiser of an uncompiled model. Default: {@link seedOptimizer} (created and disposed here). */
  optimizer?: tf.Optimizer;
  /** The loss of an uncompiled model. Default `'softmaxCrossEntropy'`. */
  loss?: LossName | LossFn;
  /** Steps before the profiled one, so the optimiser's state exists as it does in training. Default 1. */
  warmup?: number;
}

function bytesOf(shape: readonly number[], dtype: tf.DataType): number {
  return tf.util.sizeFromShape([...shape]) * tf.util.bytesPerElement(dtype);
}

/** Bytes of an optimiser's state: its slots, and the iteration count (`getWeights` makes that scalar anew; it is disposed here). */
async function optimizerStateBytes(optimizer: tf.Optimizer): Promise<number> {
  let bytes = 0;
  for (const { name, tensor } of await optimizer.getWeights()) {
    bytes += bytesOf(tensor.shape, tensor.dtype);
    if (name === 'iter') tensor.dispose();
  }
  return bytes;
}

/**
 * Profile one training step on `batch` and report its peak tensor memory, and how much of it is
 * the model's own (weights, optimiser state, batch, temporaries). A compiled model
 * (`model.compile`) steps with its own optimiser and loss (`trainOnBatch`, as `fit` does); an
 * uncompiled one minimises `options.loss` with `options.optimizer`. The steps really update the
 * weights (use a throw-away model if that matters).
 *
 * ```ts
 * const m = await memory.stepMemory(model, { xs, ys });
 * m.totalBytes / MiB;   // weights + optimiser state + batch + activations and gradients
 * ```
 */
export async function stepMemory(model: tf.LayersModel, batch: Batch, options: StepMemoryOptions = {}): Promise<StepMemory> {
  const compiled = model.optimizer != null && options.optimizer === undefined && options.loss === undefined;
  const ownOptimizer = !compiled && options.optimizer === undefined;
  const optimizer = compiled ? model.optimizer : (options.optimizer ?? seedOptimizer());
  const loss = lossFn(options.loss ?? 'softmaxCrossEntropy');
  const vars = trainableVariables(model);
  const step = async (): Promise<void> => {
    if (compiled) await model.trainOnBatch(batch.xs, batch.ys);
    else optimizer.minimize(() => loss(batch.ys, model.apply(batch.xs, { training: true }) as tf.Tensor), true, vars)?.dispose();
  };
  try {
    for (let i = 0; i < (options.warmup ?? 1); i++) await step();
    const beforeBytes = tf.memory().numBytes;
    const info = await tf.profile(step);
    const weightBytes = model.weights.reduce((sum, w) => sum + bytesOf(w.read().shape, w.dtype), 0);
    const optimizerBytes = await optimizerStateBytes(optimizer);
    const batchBytes = bytesOf(batch.xs.shape, batch.xs.dtype) + bytesOf(batch.ys.shape, batch.ys.dtype);
    const stepBytes = info.peakBytes - beforeBytes;
    return { peakBytes: info.peakBytes, beforeBytes, stepBytes, weightBytes, optimizerBytes, batchBytes, totalBytes: weightBytes + optimizerBytes + batchBytes + stepBytes };
  } finally {
    if (ownOptimizer) disposeOptimizer(optimizer);
  }
}
