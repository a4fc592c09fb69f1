/**
 * Memory, measured: the one home of memory accounting.
 *
 * - Peak memory of a piece of work ({@link measurePeakMemory}, sampled while it runs with
 *   `monitor.Sampler`) and a batch-size finder that grows the batch until a memory budget or a
 *   real allocation failure ({@link findMaxBatchSize}).
 * - Tensors a piece of work leaves behind ({@link leakGuard}) and per epoch of a loop
 *   ({@link trackEpochMemory} / {@link leakVerdict}).
 * - The tensor memory of one training step ({@link stepMemory}, from `tf.profile`), and its
 *   anatomy: weights, gradients, optimizer state, batch, activations and temporaries, each
 *   measured and predicted from the layer shapes ({@link anatomy}, {@link predictAnatomy}).
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
import { disposeOptimizer, lossFn, makeOptimizer, optimizerKind, seedOptimizer, trainableVariables, type Batch, type LossFn, type LossName, type OptimizerKind } from './train';

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
    ? `${variant}: leaks ≈${Math.round(tensorsPerEpoch)} tensors (${(bytesPerEpoch / MiB).toFixed(2)} MiB) per epoch; ${last.tensorsAdded} tensors after ${rows.length - 1} epochs.`
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

/** What {@link tensorPeak} measured. */
export interface TensorPeak<T> {
  value: T;
  /** Highest tensor bytes alive during the work (everything, as `tf.profile` reports it). */
  peakBytes: number;
  /** `peakBytes` above the bytes alive when the work started. */
  addedBytes: number;
  /** Tensors the work left alive (its result, new variables, or a leak). */
  newTensors: number;
}

/**
 * The peak tensor memory of any piece of work (a step, an accumulation cycle, a short loop),
 * from `tf.profile`: it records the bytes alive after every kernel, so the peak is exact at
 * kernel granularity for the tensors tfjs tracks. Profiling slows the work: time it separately.
 */
export async function tensorPeak<T>(fn: () => T | Promise<T>): Promise<TensorPeak<T>> {
  const start = tf.memory().numBytes;
  let value: T | undefined;
  const info = await tf.profile(async () => {
    value = await fn();
  });
  const peakBytes = Number.isFinite(info.peakBytes) ? Math.max(info.peakBytes, start) : start;
  return { value: value as T, peakBytes, addedBytes: peakBytes - start, newTensors: info.newTensors };
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
    const { peakBytes, addedBytes: stepBytes } = await tensorPeak(step);
    const weightBytes = model.weights.reduce((sum, w) => sum + bytesOf(w.read().shape, w.dtype), 0);
    const optimizerBytes = await optimizerStateBytes(optimizer);
    const batchBytes = tensorBytes(batch.xs) + tensorBytes(batch.ys);
    return { peakBytes, beforeBytes: peakBytes - stepBytes, stepBytes, weightBytes, optimizerBytes, batchBytes, totalBytes: weightBytes + optimizerBytes + batchBytes + stepBytes };
  } finally {
    if (ownOptimizer) disposeOptimizer(optimizer);
  }
}

// ---------------------------------------------------------------------------------------------
// The anatomy of a training step: each part measured, and predicted from the layer shapes
// ---------------------------------------------------------------------------------------------

/**
 * The parts of a training step's memory, in bytes, as Hugging Face's "model memory anatomy"
 * names them (plus the batch itself).
 */
export interface AnatomyParts {
  /** The model's weights. */
  weights: number;
  /** One gradient per trainable weight. */
  gradients: number;
  /** The optimizer's state (momentum, Adam's two moments). */
  optimizer: number;
  /** The batch: inputs and targets. */
  batch: number;
  /** Activations kept for the backward pass, and every temporary buffer: the rest of the peak. */
  activations: number;
}

/** The parts in stacking order, for tables and charts. */
export const ANATOMY_PARTS: readonly (keyof AnatomyParts)[] = ['weights', 'optimizer', 'batch', 'gradients', 'activations'];

/** Bytes of optimizer state per float32 parameter: SGD keeps none, momentum one slot, Adam two moments. */
export const OPTIMIZER_STATE_BYTES: Readonly<Record<OptimizerKind, number>> = { sgd: 0, momentum: 4, adam: 8 };

/** Bytes of a tensor's values (what `tf.memory()` adds for it). */
export function tensorBytes(t: tf.Tensor): number {
  return bytesOf(t.shape, t.dtype);
}

/** One layer's share of the arithmetic. */
export interface LayerAnatomy {
  name: string;
  className: string;
  /** Trainable and non-trainable parameters. */
  params: number;
  /**
   * Values of the layer's output per example: what autodiff keeps for the backward pass. 0 for
   * layers whose output is a view of their input (Flatten, Reshape) and for input layers.
   */
  activationsPerExample: number;
}

const VIEW_LAYERS = new Set(['Flatten', 'Reshape', 'InputLayer']);

function valuesPerExample(shape: tf.Shape | tf.Shape[], where: string): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  const dims = s.slice(1);
  if (dims.some((d) => d === null)) throw new Error(`${where}: shape [${s.join(', ')}] has an unknown dimension besides the batch`);
  return (dims as number[]).reduce((a, b) => a * b, 1);
}

/**
 * Parameters and output values per example of each layer of a built model, from its shapes
 * (Dense: in·units + units parameters and `units` outputs; Conv2D: kh·kw·cin·filters + filters
 * parameters and H·W·filters outputs).
 */
export function layerAnatomy(model: tf.LayersModel): LayerAnatomy[] {
  return model.layers.map((l) => ({
    name: l.name,
    className: l.getClassName(),
    params: l.countParams(),
    activationsPerExample: VIEW_LAYERS.has(l.getClassName()) ? 0 : valuesPerExample(l.outputShape, `layerAnatomy(${l.name})`),
  }));
}

/** {@link predictAnatomy}'s answer: the parts, their sum, and the counts behind them. */
export interface AnatomyPrediction extends AnatomyParts {
  /** The sum of the parts: the peak the textbook predicts. */
  total: number;
  /** Trainable parameters. */
  parameters: number;
  /** Activation values per example, summed over the layers. */
  activationsPerExample: number;
  layers: LayerAnatomy[];
}

/**
 * The textbook memory of one float32 training step: 4 bytes per parameter for the weights and for
 * the gradients, {@link OPTIMIZER_STATE_BYTES} per parameter for the optimizer, 4 bytes per value
 * of the batch (inputs and targets), and 4 bytes per value of every layer's output × the batch
 * for the activations (HF's model memory anatomy). Temporary buffers are not predicted: they are
 * what the framework adds, and {@link anatomy} measures them.
 */
export function predictAnatomy(model: tf.LayersModel, optimizer: OptimizerKind, batchSize: number, options: { targetsPerExample?: number } = {}): AnatomyPrediction {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`predictAnatomy: batchSize must be a positive integer, got ${batchSize}`);
  if (!(optimizer in OPTIMIZER_STATE_BYTES)) throw new Error(`predictAnatomy: unknown optimizer '${String(optimizer)}' (known: ${Object.keys(OPTIMIZER_STATE_BYTES).join(', ')})`);
  const layers = layerAnatomy(model);
  const allParams = model.countParams();
  const parameters = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
  const inputs = valuesPerExample(model.inputs[0].shape, 'predictAnatomy(input)');
  const targets = options.targetsPerExample ?? valuesPerExample(model.outputs[0].shape, 'predictAnatomy(output)');
  const activationsPerExample = layers.reduce((a, l) => a + l.activationsPerExample, 0);
  const parts: AnatomyParts = {
    weights: 4 * allParams,
    gradients: 4 * parameters,
    optimizer: OPTIMIZER_STATE_BYTES[optimizer] * parameters,
    batch: 4 * batchSize * (inputs + targets),
    activations: 4 * batchSize * activationsPerExample,
  };
  const total = ANATOMY_PARTS.reduce((a, k) => a + parts[k], 0);
  return { ...parts, total, parameters, activationsPerExample, layers };
}

/** One point of a step's memory over time: bytes above what persists after one kernel. */
export interface AnatomyTimelinePoint {
  /** Kernel index within the step. */
  kernel: number;
  name: string;
  phase: 'forward' | 'backward' | 'update';
  /** Tensor bytes alive after the kernel, above the weights, optimizer state and batch. */
  bytes: number;
}

/** What {@link anatomy} measured, beside the prediction. */
export interface StepAnatomy {
  optimizer: OptimizerKind;
  batchSize: number;
  /** Trainable parameters. */
  parameters: number;
  /** Measured parts; `total` is the peak of a training step (everything the step had alive). */
  measured: AnatomyParts & { total: number };
  predicted: AnatomyPrediction;
  /** measured / predicted for each part and the total (null where the prediction is 0). */
  ratio: Record<keyof AnatomyParts | 'total', number | null>;
  /**
   * Bytes above what persists, by phase of the step: what the forward pass leaves for the
   * backward pass (`forwardKept`, the framework's counterpart of the predicted activations), the
   * peak of forward + backward (that, the backward pass's temporaries and, at its end, the
   * gradients) and the peak of the update (the gradients and the update's temporaries). The
   * step's peak is the larger of the last two.
   */
  phases: { forwardKept: number; backward: number; update: number };
  /** Which phase set the peak. */
  peakPhase: 'backward' | 'update';
  /** Bytes above what persists after each kernel of the measured step. */
  timeline: AnatomyTimelinePoint[];
  backend: string;
  /** `tf.memory().unreliable` on this backend (native TensorFlow: true; see the notebook). */
  unreliable: boolean;
}

/** Options of {@link anatomy}. */
export interface AnatomyOptions {
  /** Default `softmaxCrossEntropy` on logits with one-hot targets. */
  loss?: LossName | LossFn;
  /** Learning rate when the optimizer is given by kind (see `train.makeOptimizer`). */
  learningRate?: number;
}

interface ProfileState {
  state: { activeProfile: { kernels: unknown[] } };
}

/** Kernels recorded so far by the running `tf.profile` (marks the forward/backward boundary). */
function kernelsProfiledSoFar(): number {
  return (tf.engine() as unknown as ProfileState).state.activeProfile.kernels.length;
}

/**
 * Measure what each part of a training step's memory holds, with `tf.memory()` and `tf.profile`,
 * beside the textbook prediction ({@link predictAnatomy}):
 *
 * - **weights**: the growth while `model` is built (give a function that builds it; a built
 *   model is counted by its weight tensors);
 * - **gradients**: what one backward pass (`optimizer.computeGradients`) leaves alive;
 * - **optimizer state**: what the first update (and, for a kind, the optimizer's construction)
 *   leaves alive;
 * - **activations and temporaries**: the peak of a second step above what persists (weights,
 *   optimizer state, batch) and the gradients.
 *
 * It takes two real training steps on `batch` (the weights change), and disposes the model if
 * it built it and the optimizer if it made it. Bytes are those tfjs tracks (`tf.memory()`): on
 * every backend the tensors tfjs allocates, not the framework's internal scratch space.
 */
export async function anatomy(model: tf.LayersModel | (() => tf.LayersModel), optimizer: OptimizerKind | tf.Optimizer, batch: Batch, options: AnatomyOptions = {}): Promise<StepAnatomy> {
  const loss = lossFn(options.loss ?? 'softmaxCrossEntropy');
  const bytes = () => tf.memory().numBytes;
  const start = bytes();
  const built = typeof model === 'function' ? model() : model;
  const weights = typeof model === 'function'
    ? bytes() - start
    : [...new Map(built.weights.map((w) => { const t = w.read(); return [t.id, t]; })).values()].reduce((a, t) => a + tensorBytes(t), 0);
  const kind = typeof optimizer === 'string' ? optimizer : optimizerKind(optimizer);
  const o0 = bytes();
  const opt = typeof optimizer === 'string' ? makeOptimizer(optimizer, options.learningRate) : optimizer;
  const construction = bytes() - o0;
  try {
    const vars = trainableVariables(built);
    const f = () => loss(batch.ys, built.apply(batch.xs, { training: true }) as tf.Tensor);
    // Step 1: the gradients, then the optimizer state they create.
    const g0 = bytes();
    const first = opt.computeGradients(f, vars);
    first.value.dispose();
    const gradients = bytes() - g0;
    opt.applyGradients(first.grads);
    tf.dispose(Object.values(first.grads));
    const optimizerState = bytes() - g0 + construction;
    // Step 2: its peak, phase by phase, above what persists.
    const persist = bytes();
    let boundary = Infinity;
    let second: { value: tf.Scalar; grads: tf.NamedTensorMap } | null = null;
    const fb = await tf.profile(() => {
      second = opt.computeGradients(() => {
        const l = f();
        boundary = kernelsProfiledSoFar();
        return l;
      }, vars);
    });
    // tf.profile returns the engine's one profile object, which the next tf.profile resets: copy first.
    const fbPeak = fb.peakBytes;
    const fbKernels = fb.kernels.map((k) => ({ name: k.name, bytes: k.totalBytesSnapshot }));
    const firstBackward = fb.kernels[boundary];
    const keptByForward = firstBackward ? firstBackward.totalBytesSnapshot - firstBackward.bytesAdded - persist : fbPeak - persist;
    const step = second as unknown as { value: tf.Scalar; grads: tf.NamedTensorMap };
    step.value.dispose();
    const up = await tf.profile(() => opt.applyGradients(step.grads));
    tf.dispose(Object.values(step.grads));
    const phases = { forwardKept: keptByForward, backward: fbPeak - persist, update: up.peakBytes - persist };
    const stepPeak = Math.max(phases.backward, phases.update);
    const batchBytes = tensorBytes(batch.xs) + tensorBytes(batch.ys);
    const measuredParts: AnatomyParts = { weights, gradients, optimizer: optimizerState, batch: batchBytes, activations: stepPeak - gradients };
    const measured = { ...measuredParts, total: weights + optimizerState + batchBytes + stepPeak };
    const predicted = predictAnatomy(built, kind, batch.xs.shape[0], { targetsPerExample: batch.ys.size / batch.ys.shape[0] });
    const ratio = Object.fromEntries([...ANATOMY_PARTS, 'total' as const].map((k) => [k, predicted[k] > 0 ? measured[k] / predicted[k] : null])) as StepAnatomy['ratio'];
    const timeline: AnatomyTimelinePoint[] = [
      ...fbKernels.map((k, i) => ({ kernel: i, name: k.name, phase: i < boundary ? ('forward' as const) : ('backward' as const), bytes: k.bytes - persist })),
      ...up.kernels.map((k, i) => ({ kernel: fbKernels.length + i, name: k.name, phase: 'update' as const, bytes: k.totalBytesSnapshot - persist })),
    ];
    return {
      optimizer: kind,
      batchSize: batch.xs.shape[0],
      parameters: predicted.parameters,
      measured,
      predicted,
      ratio,
      phases,
      peakPhase: phases.update > phases.backward ? 'update' : 'backward',
      timeline,
      backend: tf.getBackend(),
      unreliable: tf.memory().unreliable === true,
    };
  } finally {
    if (typeof optimizer === 'string') disposeOptimizer(opt);
    if (typeof model === 'function') built.dispose();
  }
}
