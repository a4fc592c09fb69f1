/**
 * The seed models, a custom training loop and `model.fit` helpers that every notebook reuses.
 *
 * ```ts
 * const model = train.simpleNN();                       // the article's 784→500 ReLU→10
 * const src = new data.BatchSource(ds.train, { batchSize: 100, shuffle: true });
 * const r = await train.trainLoop(model, (e) => src.epoch(e), {
 *   epochs: 5, optimizer: train.seedOptimizer(),
 *   onEpochEnd: (e) => console.log(e.epoch, e.loss, e.seconds),
 * });
 * r.seconds; r.dataSeconds; r.computeSeconds;           // the time, split into input pipeline and compute
 * ```
 *
 * The loop is `optimizer.minimize` over batches from any iterable (preloaded `data.BatchSource`,
 * the naive per-sample pipeline, or `data.sliceTensorBatches` over tensors), with per-batch and
 * per-epoch callbacks, optional budgets (batches per epoch, wall seconds), and a data-vs-compute
 * time split. {@link fit} wraps `model.fit` with the same callbacks and epoch logs.
 */
import * as tf from '@tensorflow/tfjs';
import { AccumulatingOptimizer } from './accumulate';
import { BatchSource, type Batch as DataBatch } from './data/batches';
import type { ImageSet } from './data/image-set';

export { AccumulatingOptimizer, accumulating } from './accumulate';
export { checkpointed, CheckpointedSegment, segmentSizes, type CheckpointOptions } from './checkpoint';

// ---------------------------------------------------------------------------------------------
// The seed experiment and models
// ---------------------------------------------------------------------------------------------

/**
 * The article's CPU-vs-GPU experiment, as it states it: `SimpleNN` (784→500 ReLU→10) trained
 * with SGD (lr 0.001, momentum 0.9) and cross-entropy, batch 100, 5 epochs over 60,000
 * Fashion-MNIST images. `articleSeconds` are the article's own single, unsynchronised runs on
 * a cloud notebook: **reported by the article, not measured here**.
 */
export const SEED_EXPERIMENT = {
  widths: [784, 500, 10] as readonly number[],
  learningRate: 0.001,
  momentum: 0.9,
  batchSize: 100,
  epochs: 5,
  trainSamples: 60000,
  articleSeconds: { cpu: 70.5448, gpu: 62.6331 },
} as const;

/** Options for the model builders. */
export interface ModelOptions {
  /** Seed for the weight initialisers (default 42), so runs on different backends start equal. */
  seed?: number;
}

/** Options for {@link mlp}. */
export interface MlpOptions extends ModelOptions {
  /** Input features (default 784). */
  inputs?: number;
  /** Hidden layer widths (default [500]). */
  hidden?: readonly number[];
  /** Output units (default 10). */
  outputs?: number;
  /** Hidden activation (default relu). */
  activation?: 'relu' | 'tanh' | 'sigmoid' | 'elu';
  /** Output activation (default linear: logits, to pair with softmax cross-entropy on logits). */
  outputActivation?: 'linear' | 'softmax' | 'sigmoid';
  /**
   * The shape of one input when it is not flat, e.g. `[28, 28, 1]` for image batches: a Flatten
   * layer comes first. Its size must equal `inputs`.
   */
  inputShape?: readonly number[];
}

/**
 * A dense MLP. Weights use seeded Glorot-uniform initialisers, biases zeros. The output layer is
 * linear (logits) by default, like PyTorch's `nn.Linear` + `CrossEntropyLoss`.
 */
export function mlp(options: MlpOptions = {}): tf.Sequential {
  const inputs = options.inputs ?? 784;
  const hidden = options.hidden ?? [500];
  const outputs = options.outputs ?? 10;
  const seed = options.seed ?? 42;
  for (const w of [inputs, ...hidden, outputs]) {
    if (!Number.isInteger(w) || w < 1) throw new Error(`mlp: layer widths must be positive integers, got [${[inputs, ...hidden, outputs]}]`);
  }
  const model = tf.sequential();
  const shape = options.inputShape;
  if (shape) {
    if (shape.reduce((a, b) => a * b, 1) !== inputs) throw new Error(`mlp: inputShape [${shape}] has ${shape.reduce((a, b) => a * b, 1)} values, but inputs is ${inputs}`);
    model.add(tf.layers.flatten({ inputShape: [...shape] }));
  }
  const first = shape ? {} : { inputShape: [inputs] };
  hidden.forEach((units, i) => {
    model.add(tf.layers.dense({
      units,
      activation: options.activation ?? 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
      ...(i === 0 ? first : {}),
    }));
  });
  model.add(tf.layers.dense({
    units: outputs,
    activation: options.outputActivation ?? 'linear',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed + hidden.length }),
    ...(hidden.length === 0 ? first : {}),
  }));
  return model;
}

/**
 * The article's `SimpleNN`: 784 → 500 (ReLU) → 10 logits. With `inputShape: [28, 28, 1]` it takes
 * image-shaped batches (a Flatten layer first), as Keras's `flow_from_directory` yields them.
 */
export function simpleNN(options: ModelOptions & Pick<MlpOptions, 'inputShape'> = {}): tf.Sequential {
  return mlp({ inputs: 784, hidden: [500], outputs: 10, seed: options.seed, inputShape: options.inputShape });
}

/** The article's optimiser for SimpleNN: SGD with lr 0.001 and momentum 0.9. */
export function seedOptimizer(): tf.Optimizer {
  return tf.train.momentum(SEED_EXPERIMENT.learningRate, SEED_EXPERIMENT.momentum);
}

/**
 * Dispose an optimiser and all its tensors. (tfjs 4.22's `MomentumOptimizer.dispose` forgets the
 * learning-rate scalar it inherits from SGD; this disposes that too.)
 */
export function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  const c = (optimizer as unknown as { c?: tf.Tensor }).c;
  if (c && !c.isDisposed) c.dispose();
}

/** The optimizers whose state `memory.anatomy` knows: plain SGD, SGD with momentum, Adam. */
export type OptimizerKind = 'sgd' | 'momentum' | 'adam';

/**
 * A fresh optimizer of a kind: SGD (lr 0.01 unless given), SGD with the article's momentum 0.9
 * (lr 0.001 unless given, as {@link seedOptimizer}) or Adam (lr 0.001 unless given).
 */
export function makeOptimizer(kind: OptimizerKind, learningRate?: number): tf.Optimizer {
  switch (kind) {
    case 'sgd':
      return tf.train.sgd(learningRate ?? 0.01);
    case 'momentum':
      return tf.train.momentum(learningRate ?? SEED_EXPERIMENT.learningRate, SEED_EXPERIMENT.momentum);
    case 'adam':
      return tf.train.adam(learningRate ?? 0.001);
    default:
      throw new Error(`makeOptimizer: unknown optimizer kind '${String(kind)}' (known: sgd, momentum, adam)`);
  }
}

/** The {@link OptimizerKind} of a tfjs optimizer, from its class name; throws for other optimizers. */
export function optimizerKind(optimizer: tf.Optimizer): OptimizerKind {
  const name = optimizer.getClassName();
  const kinds: Record<string, OptimizerKind> = { SGD: 'sgd', Momentum: 'momentum', Adam: 'adam' };
  const kind = kinds[name];
  if (!kind) throw new Error(`optimizerKind: '${name}' is not one of SGD, Momentum, Adam`);
  return kind;
}

/**
 * The article's Keras batch example as it stands: four numbers, label 1 when > 0.5.
 * Returns new tensors; the caller disposes them.
 */
export function kerasToyData(): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  return { xs: tf.tensor2d([[0.1], [0.3], [0.6], [0.9]]), ys: tf.tensor2d([[0], [0], [1], [1]]) };
}

/**
 * The article's Keras model: Dense(128, relu, input_dim 1) → Dense(1, sigmoid), compiled with
 * adam, binary cross-entropy and accuracy, exactly as in the article.
 */
export function kerasToyModel(options: ModelOptions = {}): tf.Sequential {
  const seed = options.seed ?? 42;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 128, activation: 'relu', inputDim: 1, kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Dense layer widths of a sequential MLP ([input, …, output]), for FLOP counts. */
export function denseWidths(model: tf.LayersModel): number[] {
  const input = model.inputs[0].shape[model.inputs[0].shape.length - 1];
  if (typeof input !== 'number') throw new Error('denseWidths: the model input has no fixed feature size');
  const widths = [input];
  for (const layer of model.layers) {
    const units = (layer.getConfig() as { units?: number }).units;
    if (typeof units !== 'number') throw new Error(`denseWidths: layer '${layer.name}' is not a Dense layer`);
    widths.push(units);
  }
  return widths;
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/** One batch: inputs and targets (one-hot or integer labels for classification). */
export type Batch = DataBatch;

/**
 * Where the loop gets each epoch's batches from, e.g. `(e) => source.epoch(e)` for a
 * `data.BatchSource`, or `(e) => data.sliceTensorBatches(xs, ys, { batchSize, epochIndex: e })`.
 */
export type BatchesForEpoch = (epoch: number) => Iterable<Batch> | AsyncIterable<Batch>;

// ---------------------------------------------------------------------------------------------
// The custom training loop
// ---------------------------------------------------------------------------------------------

/** The loss functions the loop knows by name (targets first, like `tf.losses`). */
export type LossName = 'softmaxCrossEntropy' | 'sigmoidCrossEntropy' | 'meanSquaredError' | 'binaryCrossentropy';

/** A loss: `(targets, outputs) => scalar`. */
export type LossFn = (ys: tf.Tensor, outputs: tf.Tensor) => tf.Scalar;

/** The loss function for a name (or the function itself): `(targets, outputs) => scalar`. */
export function lossFn(loss: LossName | LossFn): LossFn {
  if (typeof loss === 'function') return loss;
  switch (loss) {
    case 'softmaxCrossEntropy':
      return (y, o) => tf.losses.softmaxCrossEntropy(y, o) as tf.Scalar;
    case 'sigmoidCrossEntropy':
      return (y, o) => tf.losses.sigmoidCrossEntropy(y, o) as tf.Scalar;
    case 'meanSquaredError':
      return (y, o) => tf.losses.meanSquaredError(y, o) as tf.Scalar;
    case 'binaryCrossentropy':
      return (y, o) => tf.metrics.binaryCrossentropy(y, o).mean() as tf.Scalar;
    default:
      throw new Error(`trainLoop: unknown loss '${String(loss)}'`);
  }
}

/** What the per-batch callback receives. */
export interface BatchEnd {
  epoch: number;
  /** Batch index within the epoch. */
  batch: number;
  /** Rows in this batch. */
  size: number;
  /** The batch loss, only when it was read back (every `lossEvery` batches), else null. */
  loss: number | null;
  /** Wall seconds since the loop started. */
  elapsed: number;
}

/** One epoch's record. */
export interface EpochLog {
  epoch: number;
  /** Wall seconds of this epoch. */
  seconds: number;
  /** Seconds spent producing batches (the input pipeline) in this epoch. */
  dataSeconds: number;
  /** Seconds spent in the training steps (forward, backward, update) in this epoch. */
  computeSeconds: number;
  batches: number;
  samples: number;
  /** Optimizer updates this epoch: one per batch, or one per `accumulate` batches. */
  updates: number;
  /** Mean of the batch losses that were read back this epoch (the last batch's at least). */
  loss: number;
}

/** Options of {@link trainLoop}. */
export interface TrainLoopOptions {
  epochs: number;
  /** Default: {@link seedOptimizer} (SGD 0.001, momentum 0.9). */
  optimizer?: tf.Optimizer;
  /** Default `softmaxCrossEntropy` on logits with one-hot targets. */
  loss?: LossName | LossFn;
  /** Stop each epoch after this many batches (measure a subset and extrapolate). */
  maxBatchesPerEpoch?: number;
  /** Stop once this many wall seconds have passed (checked after every batch). */
  maxSeconds?: number;
  /**
   * Read the loss back every N batches (default: only the last batch of each epoch). Reading
   * forces a device sync; on asynchronous backends (WebGPU) frequent reads cost time.
   */
  lossEvery?: number;
  /**
   * Sync after every step so the data-vs-compute split is exact on asynchronous backends
   * (default true; wasm and cpu run synchronously so it costs nothing there).
   */
  syncEveryStep?: boolean;
  /** Dispose each batch's tensors after its step (default true: the loop owns the batches). */
  disposeBatches?: boolean;
  /**
   * Gradient accumulation: each batch is a micro-batch, and the weights are updated once per
   * `accumulate` batches with the size-weighted mean of their gradients (a partial group is
   * applied at the end of each epoch). 4 micro-batches of 25 update like one batch of 100, while a
   * step holds the activations of 25. Default 1 (an update per batch). It runs the stock gradient
   * path (`optimizer.minimize` through {@link AccumulatingOptimizer}).
   */
  accumulate?: number;
  onBatchEnd?: (info: BatchEnd) => void | Promise<void>;
  onEpochEnd?: (log: EpochLog) => void | Promise<void>;
}

/** What {@link trainLoop} returns. */
export interface TrainResult {
  epochs: EpochLog[];
  /** Total wall seconds. */
  seconds: number;
  dataSeconds: number;
  computeSeconds: number;
  batches: number;
  samples: number;
  /** Optimizer updates in total (fewer than batches with `accumulate`). */
  updates: number;
  /**
   * CPU seconds this process used during the loop (all threads). On a machine shared with other
   * work, wall time includes waiting for a core; CPU time estimates what a dedicated core would take.
   */
  cpuSeconds: number;
  /** Why the loop stopped. */
  stoppedBy: 'epochs' | 'maxSeconds';
  /** The last loss read back. */
  finalLoss: number;
}

/** The tf.Variables behind a model's trainable weights (what `optimizer.minimize` updates). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function* asAsync(it: Iterable<Batch> | AsyncIterable<Batch>): AsyncGenerator<Batch> {
  if (Symbol.asyncIterator in it) yield* it as AsyncIterable<Batch>;
  else yield* it as Iterable<Batch>;
}

/**
 * Train `model` with `optimizer.minimize` over the batches `batchesFor(epoch)` yields: the
 * custom loop of the article's PyTorch code (zero grads, forward, loss, backward, step).
 * Times the input pipeline (waiting for the next batch) and the training steps separately.
 * No tensors are left behind (the batches are disposed unless `disposeBatches: false`).
 */
export async function trainLoop(model: tf.LayersModel, batchesFor: BatchesForEpoch, options: TrainLoopOptions): Promise<TrainResult> {
  const { epochs } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`trainLoop: epochs must be a positive integer, got ${epochs}`);
  const optimizer = options.optimizer ?? seedOptimizer();
  const loss = lossFn(options.loss ?? 'softmaxCrossEntropy');
  const lossEvery = options.lossEvery ?? 0;
  const syncEveryStep = options.syncEveryStep ?? true;
  const disposeBatches = options.disposeBatches ?? true;
  const maxBatches = options.maxBatchesPerEpoch ?? Infinity;
  const accumulate = options.accumulate ?? 1;
  if (!Number.isInteger(accumulate) || accumulate < 1) throw new Error(`trainLoop: accumulate must be a positive integer, got ${accumulate}`);
  const accumulator = accumulate > 1 ? new AccumulatingOptimizer(optimizer, accumulate) : null;
  const vars = trainableVariables(model);
  const logs: EpochLog[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = now();
  let stoppedBy: TrainResult['stoppedBy'] = 'epochs';
  let finalLoss = NaN;
  for (let epoch = 0; epoch < epochs && stoppedBy === 'epochs'; epoch++) {
    const e0 = now();
    let dataSeconds = 0;
    let computeSeconds = 0;
    let batches = 0;
    let samples = 0;
    const updates0 = accumulator?.updates ?? 0;
    const losses: number[] = [];
    let pending: tf.Scalar | null = null;
    const it = asAsync(batchesFor(epoch))[Symbol.asyncIterator]();
    try {
      while (batches < maxBatches) {
        const d0 = now();
        const next = await it.next();
        dataSeconds += now() - d0;
        if (next.done) break;
        const { xs, ys } = next.value;
        const c0 = now();
        pending?.dispose();
        if (accumulator) accumulator.nextWeight = xs.shape[0];
        pending = (accumulator ?? optimizer).minimize(() => loss(ys, model.apply(xs, { training: true }) as tf.Tensor), true, vars) as tf.Scalar;
        const read = lossEvery > 0 && (batches + 1) % lossEvery === 0;
        let lossValue: number | null = null;
        if (read) {
          lossValue = (await pending.data())[0];
          losses.push(lossValue);
          finalLoss = lossValue;
        } else if (syncEveryStep) {
          await syncBackend(pending);
        }
        computeSeconds += now() - c0;
        const size = xs.shape[0];
        if (disposeBatches) tf.dispose([xs, ys]);
        batches++;
        samples += size;
        if (options.onBatchEnd) await options.onBatchEnd({ epoch, batch: batches - 1, size, loss: lossValue, elapsed: now() - t0 });
        if (options.maxSeconds !== undefined && now() - t0 >= options.maxSeconds) {
          stoppedBy = 'maxSeconds';
          break;
        }
      }
      if (accumulator?.pending) {
        const c0 = now();
        accumulator.flush(); // a partial group at the end of the epoch
        computeSeconds += now() - c0;
      }
      const lastWasRead = lossEvery > 0 && batches % lossEvery === 0;
      if (pending && !lastWasRead) {
        const c0 = now();
        finalLoss = (await pending.data())[0];
        computeSeconds += now() - c0;
        losses.push(finalLoss);
      }
    } finally {
      pending?.dispose();
      accumulator?.dispose(); // empty after the flush above; drops a partial sum if a step threw
      await it.return?.(undefined);
    }
    if (batches === 0) throw new Error(`trainLoop: epoch ${epoch} produced no batches`);
    const log: EpochLog = {
      epoch,
      seconds: now() - e0,
      dataSeconds,
      computeSeconds,
      batches,
      samples,
      updates: accumulator ? accumulator.updates - updates0 : batches,
      loss: losses.reduce((a, b) => a + b, 0) / losses.length,
    };
    logs.push(log);
    if (options.onEpochEnd) await options.onEpochEnd(log);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    epochs: logs,
    seconds: now() - t0,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    dataSeconds: logs.reduce((a, l) => a + l.dataSeconds, 0),
    computeSeconds: logs.reduce((a, l) => a + l.computeSeconds, 0),
    batches: logs.reduce((a, l) => a + l.batches, 0),
    samples: logs.reduce((a, l) => a + l.samples, 0),
    updates: logs.reduce((a, l) => a + l.updates, 0),
    stoppedBy,
    finalLoss,
  };
}

/**
 * Wait for the work queued so far, cheaply: synchronous backends (wasm, cpu, tensorflow) have
 * already finished; asynchronous ones (webgpu, webgl) read back one value of `t`.
 */
async function syncBackend(t: tf.Tensor): Promise<void> {
  const b = tf.getBackend();
  if (b === 'wasm' || b === 'cpu' || b === 'tensorflow') return;
  await t.data();
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/** Options of {@link accuracy}. */
export interface AccuracyOptions {
  /** Dispose each batch after use (default true). Batches built from an ImageSet are always disposed. */
  disposeBatches?: boolean;
  /** With an ImageSet: the input layout the model expects (default 'image': [b,28,28,1]). */
  shape?: 'flat' | 'image';
  /** With an ImageSet: examples per predict call (default 500). */
  batchSize?: number;
}

function isImageSet(x: unknown): x is ImageSet {
  return typeof x === 'object' && x !== null && 'images' in x && 'labels' in x && 'count' in x;
}

/**
 * Top-1 classification accuracy of `model` over batches (one-hot or integer targets) or over a
 * whole ImageSet (batched on the host with `data.BatchSource`; labels are class indices),
 * computed batch by batch so no large tensor is built. Throws when there is nothing to count.
 */
export async function accuracy(model: tf.LayersModel, batches: Iterable<Batch> | AsyncIterable<Batch> | ImageSet, options: AccuracyOptions = {}): Promise<number> {
  if (isImageSet(batches)) {
    const src = new BatchSource(batches, { batchSize: options.batchSize ?? 500, shape: options.shape ?? 'image', oneHot: false });
    return accuracy(model, src.epoch(0), { disposeBatches: true });
  }
  let correct = 0;
  let total = 0;
  for await (const { xs, ys } of asAsync(batches)) {
    const hits = tf.tidy(() => {
      const pred = (model.predict(xs) as tf.Tensor).argMax(-1);
      const truth = ys.rank > 1 ? ys.argMax(-1) : ys.toInt();
      return pred.equal(truth).sum();
    });
    correct += (await hits.data())[0];
    total += xs.shape[0];
    hits.dispose();
    if (options.disposeBatches ?? true) tf.dispose([xs, ys]);
  }
  if (total === 0) throw new Error('accuracy: no batches (an empty set?)');
  return correct / total;
}

// ---------------------------------------------------------------------------------------------
// model.fit helpers
// ---------------------------------------------------------------------------------------------

/** Options of {@link fit}. */
export interface FitOptions {
  batchSize: number;
  epochs: number;
  /** Default true (tfjs's default). */
  shuffle?: boolean;
  /** Print a Keras-style line per epoch ({@link KerasEpochLog}). Default false. */
  log?: boolean | ((line: string) => void);
  /** Stop after the epoch in which this many wall seconds have passed. */
  maxSeconds?: number;
  onEpochEnd?: (log: FitEpochLog) => void | Promise<void>;
  onBatchEnd?: (info: { epoch: number; batch: number; logs: tf.Logs | undefined }) => void | Promise<void>;
}

/** One epoch of {@link fit}: wall seconds plus whatever `model.fit` logged (loss, metrics). */
export interface FitEpochLog {
  epoch: number;
  seconds: number;
  logs: Record<string, number>;
}

/** What {@link fit} returns. */
export interface FitResult {
  epochs: FitEpochLog[];
  seconds: number;
  history: tf.History;
}

/**
 * The Keras-style epoch line, one format for every logger in gpulab:
 * `Epoch 3/10 - 32/32 - 1.2s 37ms/step - loss: 0.6912 - accuracy: 0.5000`. The step part is left
 * out when `steps` is not given (or 0); times under a second print as ms; tfjs's `acc`/`val_acc`
 * print under Keras's names `accuracy`/`val_accuracy`.
 */
export function kerasEpochLine(epoch: number, epochs: number | undefined, seconds: number, logs: Record<string, number>, steps?: number): string {
  const fmt = (sec: number) => (sec >= 1 ? `${sec.toFixed(1)}s` : `${(sec * 1e3).toFixed(0)}ms`);
  const time = steps ? `${steps}/${steps} - ${fmt(seconds)} ${(seconds * 1e3 / steps).toFixed(0)}ms/step` : fmt(seconds);
  const metrics = Object.entries(logs).map(([k, v]) => `${k === 'acc' ? 'accuracy' : k === 'val_acc' ? 'val_accuracy' : k}: ${v.toFixed(4)}`);
  return [`Epoch ${epoch + 1}/${epochs ?? '?'}`, time, ...metrics].join(' - ');
}

/**
 * A tfjs callback that prints one {@link kerasEpochLine} per epoch (steps, time, ms/step and every
 * metric), like the output the article shows for Keras's `model.fit`. Lines go to `print`
 * (default console.log) and are kept in `lines`. Works with `fit` and `fitDataset`.
 */
export class KerasEpochLog extends tf.Callback {
  /** Every line printed. */
  readonly lines: string[] = [];
  private t0 = 0;
  private steps = 0;

  constructor(private readonly print: (line: string) => void = (l) => console.log(l)) {
    super();
  }

  /** Starts the epoch's clock. */
  override async onEpochBegin(): Promise<void> {
    this.t0 = performance.now();
    this.steps = 0;
  }

  /** Counts steps. */
  override async onBatchEnd(): Promise<void> {
    this.steps++;
  }

  /** Prints the epoch's line. */
  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    const seconds = (performance.now() - this.t0) / 1e3;
    const values: Record<string, number> = {};
    // Subclassed callbacks may get unresolved logs (scalar tensors) from tfjs.
    for (const [k, v] of Object.entries((logs ?? {}) as Record<string, number | tf.Tensor>)) {
      values[k] = v instanceof tf.Tensor ? (await v.data())[0] : Number(v);
    }
    const line = kerasEpochLine(epoch, this.params?.epochs as number | undefined, seconds, values, this.steps);
    this.lines.push(line);
    this.print(line);
  }
}

/**
 * `model.fit(xs, ys)` (the model must be compiled) with per-epoch wall times, optional
 * Keras-style log lines, per-batch/per-epoch callbacks and a wall-time budget.
 */
export async function fit(model: tf.LayersModel, xs: tf.Tensor | tf.Tensor[], ys: tf.Tensor | tf.Tensor[], options: FitOptions): Promise<FitResult> {
  const epochs: FitEpochLog[] = [];
  const print = options.log === true ? (l: string) => console.log(l) : typeof options.log === 'function' ? options.log : null;
  const t0 = now();
  let e0 = t0;
  const callback = new tf.CustomCallback({
    onEpochBegin: async () => {
      e0 = now();
    },
    onBatchEnd: options.onBatchEnd
      ? async (batch, logs) => {
          await options.onBatchEnd!({ epoch: epochs.length, batch, logs });
        }
      : undefined,
    onEpochEnd: async (epoch, logs) => {
      const rec: FitEpochLog = { epoch, seconds: now() - e0, logs: { ...(logs ?? {}) } as Record<string, number> };
      epochs.push(rec);
      if (options.onEpochEnd) await options.onEpochEnd(rec);
      if (options.maxSeconds !== undefined && now() - t0 >= options.maxSeconds) model.stopTraining = true;
    },
  });
  const history = await model.fit(xs, ys, {
    batchSize: options.batchSize,
    epochs: options.epochs,
    shuffle: options.shuffle ?? true,
    verbose: 0,
    callbacks: print ? [callback, new KerasEpochLog(print)] : [callback],
  });
  return { epochs, seconds: now() - t0, history };
}
