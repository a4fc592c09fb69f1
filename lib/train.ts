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
import { BatchSource, sliceTensorBatches, type Batch as DataBatch } from './data/batches';
import type { ImageSet } from './data/image-set';
import { timeBatches } from './monitor/pipeline';
import { isSynchronousBackend, settle } from './timing';
import { createFusedStep, fusedStepAvailable, fusedStepIsDefault, planFusedStep, sgdSettings, type StepKind } from './fused-step';

export { countStepKernels, FUSED_DEFAULT_BACKENDS, fusedStepAvailable, fusedStepIsDefault, kernelCountTable, planFusedStep, type StepKernelCount, type StepKind } from './fused-step';

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
export type LossName = 'softmaxCrossEntropy' | 'sigmoidCrossEntropy' | 'meanSquaredError' | 'binaryCrossentropy' | 'categoricalCrossentropy';

/** A loss: `(targets, outputs) => scalar`. */
export type LossFn = (ys: tf.Tensor, outputs: tf.Tensor) => tf.Scalar;

/**
 * One function per loss name, made once: `lossFn(name)` always returns the same function, so a
 * model compiled with `loss: train.lossFn('softmaxCrossEntropy')` is recognised by name again
 * (the fused step needs to know which loss it is).
 */
const LOSSES: Record<LossName, LossFn> = {
  softmaxCrossEntropy: (y, o) => tf.losses.softmaxCrossEntropy(y, o) as tf.Scalar,
  sigmoidCrossEntropy: (y, o) => tf.losses.sigmoidCrossEntropy(y, o) as tf.Scalar,
  meanSquaredError: (y, o) => tf.losses.meanSquaredError(y, o) as tf.Scalar,
  binaryCrossentropy: (y, o) => tf.metrics.binaryCrossentropy(y, o).mean() as tf.Scalar,
  /** Keras's categorical cross-entropy on probabilities (a softmax output), averaged over the batch. */
  categoricalCrossentropy: (y, o) => tf.metrics.categoricalCrossentropy(y, o).mean() as tf.Scalar,
};

/** The loss function for a name (or the function itself): `(targets, outputs) => scalar`. */
export function lossFn(loss: LossName | LossFn): LossFn {
  if (typeof loss === 'function') return loss;
  const fn = Object.hasOwn(LOSSES, loss) ? LOSSES[loss] : undefined;
  if (!fn) throw new Error(`trainLoop: unknown loss '${String(loss)}'`);
  return fn;
}

/**
 * The name of a loss: the name itself, the name whose {@link lossFn} this function is, or a tfjs
 * compiled loss name (`'categoricalCrossentropy'`); null for any other function.
 */
export function lossName(loss: LossName | LossFn | string): LossName | null {
  if (typeof loss === 'string') return Object.hasOwn(LOSSES, loss) ? (loss as LossName) : null;
  const hit = (Object.keys(LOSSES) as LossName[]).find((k) => LOSSES[k] === loss);
  return hit ?? null;
}

// ---------------------------------------------------------------------------------------------
// One training step: stock or fused
// ---------------------------------------------------------------------------------------------

/** Options of {@link seedTrainStep}. */
export interface SeedStepOptions {
  /** Default {@link SEED_EXPERIMENT}'s 0.001 (ignored when `optimizer` is given). */
  learningRate?: number;
  /** Default {@link SEED_EXPERIMENT}'s 0.9; 0 is plain SGD (ignored when `optimizer` is given). */
  momentum?: number;
  /**
   * Train with this optimizer instead: the stock step calls its `minimize`; the fused step takes
   * its learning rate and momentum and shares its momentum state (read at creation, written back
   * by `dispose()`). It is not disposed by the step.
   */
  optimizer?: tf.Optimizer;
  /** Default `softmaxCrossEntropy` (on logits, one-hot targets). */
  loss?: LossName | LossFn;
  /**
   * `'fused'` or `'stock'`. Default: fused where the model, optimizer and loss allow it
   * ({@link planFusedStep}) on a backend where it measured faster ({@link fusedStepIsDefault}:
   * native TensorFlow and wasm), else stock. `'fused'` also runs it on webgpu and cpu
   * ({@link fusedStepAvailable}). Asking for `'fused'` where it is not possible falls back to
   * stock with a warning that says why.
   */
  step?: StepKind;
}

/** One training step bound to a model: tfjs's `optimizer.minimize` or gpulab's fused step. */
export interface SeedTrainStep {
  /** Which step runs. */
  readonly kind: StepKind;
  /** One sentence: what runs, and for a stock step where the fused one was not asked against, why. */
  readonly reason: string;
  /** Train on one batch; returns the batch's mean loss (the caller disposes it). */
  run(xs: tf.Tensor, ys: tf.Tensor): tf.Scalar;
  /** The batch's mean loss and its gradients with respect to `model.trainableWeights` (in that order); nothing is updated. */
  gradients(xs: tf.Tensor, ys: tf.Tensor): { loss: tf.Scalar; grads: tf.Tensor[] };
  /** Free what the step holds (and hand a fused step's momentum state back to `optimizer`). */
  dispose(): void;
}

/**
 * One training step of `model` on the current backend: the fused step (lib/fused-step: far fewer
 * kernels, the same gradients) where possible, else `optimizer.minimize`. See {@link SeedStepOptions}.
 *
 * ```ts
 * const step = train.seedTrainStep(model, { learningRate: 0.001, momentum: 0.9 });
 * step.kind;                           // 'fused' by default on tensorflow and wasm for a dense MLP
 * const loss = step.run(xs, ys);        // one update; the mean loss
 * step.dispose();
 * ```
 */
export function seedTrainStep(model: tf.LayersModel, options: SeedStepOptions = {}): SeedTrainStep {
  const loss = options.loss ?? 'softmaxCrossEntropy';
  const settings = options.optimizer
    ? sgdSettings(options.optimizer)
    : { ok: true as const, learningRate: options.learningRate ?? SEED_EXPERIMENT.learningRate, momentum: options.momentum ?? SEED_EXPERIMENT.momentum };
  let why: string;
  if (options.step === 'stock') {
    why = 'asked for';
  } else if (!fusedStepAvailable()) {
    why = `the fused step does not run on the ${tf.getBackend()} backend`;
  } else if (options.step === undefined && !fusedStepIsDefault()) {
    why = `on the ${tf.getBackend()} backend the fused step measured slower than the stock one, so it runs only when asked for (step: 'fused')`;
  } else if (!settings.ok) {
    why = settings.reason;
  } else {
    const planned = planFusedStep(model, lossName(loss));
    if (planned.ok) {
      const fused = createFusedStep(planned.plan, { learningRate: settings.learningRate, momentum: settings.momentum, optimizer: options.optimizer });
      const how = tf.getBackend() === 'tensorflow'
        ? "TensorFlow's own ops (SoftmaxCrossEntropyWithLogits, ReluGrad, BiasAddGrad, MatMul) and an in-place ResourceApplyMomentum update"
        : `tfjs kernels on ${tf.getBackend()}`;
      return {
        kind: 'fused',
        reason: `fused step: ${planned.plan.layers.length} dense layer(s), backward pass written out with ${how}`,
        run: (xs, ys) => fused.run(xs, ys),
        gradients: (xs, ys) => fused.gradients(xs, ys),
        dispose: () => fused.dispose(),
      };
    }
    why = planned.reason;
  }
  if (options.step === 'fused') console.warn(`[gpulab] seedTrainStep: the fused step is not possible here (${why}); using the stock optimizer.minimize step`);
  return stockStep(model, loss, options, why);
}

/**
 * ‖a − b‖∞ / ‖b‖∞: the largest difference relative to the reference `b`'s largest magnitude (the
 * absolute difference when `b` is all zero). NaN anywhere makes the result NaN.
 */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** How closely the fused step's loss and gradients match autodiff's on one batch. */
export interface StepParity {
  /** |fused − stock| / |stock| of the mean loss. */
  loss: number;
  /** ‖fused − stock‖∞ / ‖stock‖∞ of each gradient, in `model.trainableWeights` order. */
  gradients: number[];
  /** The largest of all. */
  max: number;
}

/**
 * Compare the fused step's loss and gradients with autodiff's (`tf.variableGrads` through the
 * model, as `optimizer.minimize` computes them) on one batch, on the current backend. Throws when
 * the fused step is not possible for this model (the error says why).
 */
export async function stepParity(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, loss: LossName = 'softmaxCrossEntropy'): Promise<StepParity> {
  const stock = seedTrainStep(model, { step: 'stock', loss });
  const fused = seedTrainStep(model, { step: 'fused', loss });
  try {
    if (fused.kind !== 'fused') throw new Error(`stepParity: no fused step here: ${fused.reason}`);
    const a = stock.gradients(xs, ys);
    const b = fused.gradients(xs, ys);
    try {
      // Read asynchronously: webgpu cannot read synchronously in Node.
      const error = async (x: tf.Tensor, y: tf.Tensor) => relativeDifference(await x.data(), await y.data());
      const lossError = await error(b.loss, a.loss);
      const gradients = await Promise.all(b.grads.map((g, i) => error(g, a.grads[i])));
      return { loss: lossError, gradients, max: Math.max(lossError, ...gradients) };
    } finally {
      tf.dispose([a.loss, b.loss, ...a.grads, ...b.grads]);
    }
  } finally {
    stock.dispose();
    fused.dispose();
  }
}

function stockStep(model: tf.LayersModel, loss: LossName | LossFn, options: SeedStepOptions, why: string): SeedTrainStep {
  const lr = options.learningRate ?? SEED_EXPERIMENT.learningRate;
  const momentum = options.momentum ?? SEED_EXPERIMENT.momentum;
  const own = options.optimizer ? null : momentum > 0 ? tf.train.momentum(lr, momentum) : tf.train.sgd(lr);
  const optimizer = options.optimizer ?? own!;
  const f = lossFn(loss);
  const vars = trainableVariables(model);
  const objective = (xs: tf.Tensor, ys: tf.Tensor) => () => f(ys, model.apply(xs, { training: true }) as tf.Tensor);
  return {
    kind: 'stock',
    reason: `stock optimizer.minimize step (${why})`,
    run: (xs, ys) => optimizer.minimize(objective(xs, ys), true, vars) as tf.Scalar,
    gradients: (xs, ys) => {
      const { value, grads } = tf.variableGrads(objective(xs, ys), vars);
      return { loss: value, grads: vars.map((v) => grads[v.name]) };
    },
    dispose: () => {
      if (own) disposeOptimizer(own);
    },
  };
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
   * The training step (see {@link seedTrainStep}): default the fused step where the model,
   * optimizer and loss allow it on a backend where it measured faster (native TensorFlow, wasm),
   * else tfjs's `optimizer.minimize`; `'stock'` forces the
   * latter (for before/after comparisons). {@link TrainResult.step} says which ran, and why.
   */
  step?: StepKind;
  /**
   * Gradient accumulation: each batch is a micro-batch, and the weights are updated once per
   * `accumulate` batches with the size-weighted mean of their gradients (a partial group is
   * applied at the end of each epoch). 4 micro-batches of 25 update like one batch of 100, while a
   * step holds the activations of 25. Default 1 (an update per batch). It runs the stock step
   * (`optimizer.minimize` through {@link AccumulatingOptimizer}); `step: 'fused'` cannot go with it.
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
  /** The training step that ran ({@link SeedTrainStep.kind}) and the sentence saying why. */
  step: { kind: StepKind; reason: string };
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
 * Train `model` over the batches `batchesFor(epoch)` yields: the custom loop of the article's
 * PyTorch code (zero grads, forward, loss, backward, step), one {@link seedTrainStep} per batch
 * (the fused step by default where possible, else `optimizer.minimize`; option `step`).
 * Times the input pipeline (waiting for the next batch) and the training steps separately, with
 * the same split as `monitor.timePipeline` (`monitor.timeBatches`). No tensors are left behind
 * (the batches are disposed unless `disposeBatches: false`).
 */
export async function trainLoop(model: tf.LayersModel, batchesFor: BatchesForEpoch, options: TrainLoopOptions): Promise<TrainResult> {
  const { epochs } = options;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`trainLoop: epochs must be a positive integer, got ${epochs}`);
  const accumulate = options.accumulate ?? 1;
  if (!Number.isInteger(accumulate) || accumulate < 1) throw new Error(`trainLoop: accumulate must be a positive integer, got ${accumulate}`);
  if (accumulate > 1 && options.step === 'fused') throw new Error("trainLoop: accumulate runs the stock step (optimizer.minimize); it cannot be combined with step: 'fused'");
  // Without a given optimizer, the seed step makes (and frees) its own; only accumulation needs one here.
  const ownOptimizer = accumulate > 1 && !options.optimizer ? seedOptimizer() : null;
  const accumulator = accumulate > 1 ? new AccumulatingOptimizer(options.optimizer ?? ownOptimizer!, accumulate) : null;
  const loss = options.loss ?? 'softmaxCrossEntropy';
  const step = accumulator ? accumulatingStep(model, accumulator, loss) : seedTrainStep(model, { optimizer: options.optimizer, loss, step: options.step });
  try {
    return await loopWith(step, batchesFor, options, accumulator);
  } finally {
    step.dispose();
    accumulator?.dispose(); // drops a partial sum if a step threw
    if (ownOptimizer) disposeOptimizer(ownOptimizer);
  }
}

/** The stock step through an {@link AccumulatingOptimizer}, weighting each micro-batch by its size. */
function accumulatingStep(model: tf.LayersModel, accumulator: AccumulatingOptimizer, loss: LossName | LossFn): SeedTrainStep {
  const stock = seedTrainStep(model, { optimizer: accumulator, loss, step: 'stock' });
  return {
    kind: 'stock',
    reason: `stock optimizer.minimize step, gradients accumulated over ${accumulator.steps} micro-batches per update`,
    run: (xs, ys) => {
      accumulator.nextWeight = xs.shape[0];
      return stock.run(xs, ys);
    },
    gradients: (xs, ys) => stock.gradients(xs, ys),
    dispose: () => stock.dispose(),
  };
}

async function loopWith(step: SeedTrainStep, batchesFor: BatchesForEpoch, options: TrainLoopOptions, accumulator: AccumulatingOptimizer | null): Promise<TrainResult> {
  const { epochs } = options;
  const lossEvery = options.lossEvery ?? 0;
  // On a synchronous backend every step has finished when it returns: nothing to wait for.
  const waitEachStep = (options.syncEveryStep ?? true) && !isSynchronousBackend();
  const disposeBatches = options.disposeBatches ?? true;
  const maxBatches = options.maxBatchesPerEpoch ?? Infinity;
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
    // The step's loss (read back every `lossEvery` batches, else at the end of the epoch).
    const last: { pending: tf.Scalar | null; lossValue: number | null } = { pending: null, lossValue: null };
    try {
      // The split of each batch into waiting for it (data) and the step (compute): monitor's timeBatches.
      await timeBatches(batchesFor(epoch), async ({ xs, ys }, index) => {
        last.pending?.dispose();
        const pending = step.run(xs, ys);
        last.pending = pending;
        last.lossValue = null;
        if (lossEvery > 0 && (index + 1) % lossEvery === 0) {
          last.lossValue = (await pending.data())[0];
          losses.push(last.lossValue);
          finalLoss = last.lossValue;
        } else if (waitEachStep) {
          await settle(pending); // one value read back: the device has finished the step
        }
      }, {
        maxBatches,
        after: async ({ xs, ys }, split) => {
          dataSeconds += split.dataMs / 1000;
          computeSeconds += split.computeMs / 1000;
          const size = xs.shape[0];
          if (disposeBatches) tf.dispose([xs, ys]);
          batches++;
          samples += size;
          if (options.onBatchEnd) await options.onBatchEnd({ epoch, batch: split.index, size, loss: last.lossValue, elapsed: now() - t0 });
          if (options.maxSeconds !== undefined && now() - t0 >= options.maxSeconds) {
            stoppedBy = 'maxSeconds';
            return 'stop';
          }
        },
      });
      if (accumulator?.pending) {
        const c0 = now();
        accumulator.flush(); // a partial group at the end of the epoch
        computeSeconds += now() - c0;
      }
      const lastWasRead = lossEvery > 0 && batches % lossEvery === 0;
      if (last.pending && !lastWasRead) {
        const c0 = now();
        finalLoss = (await last.pending.data())[0];
        computeSeconds += now() - c0;
        losses.push(finalLoss);
      }
    } finally {
      last.pending?.dispose();
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
    step: { kind: step.kind, reason: step.reason },
  };
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
  /**
   * `'stock'` (default): `model.fit` itself. `'fused'`: the same epochs, batches, shuffling, loss
   * logs and callbacks, trained through {@link trainLoop}'s fused step. (`model.fit` cannot take
   * another step: its training function is internal to tfjs and always calls
   * `optimizer.minimize`.) It needs what {@link seedTrainStep} needs (a dense model compiled with
   * SGD or momentum, and `train.lossFn('softmaxCrossEntropy')` on logits or
   * `'categoricalCrossentropy'` on a softmax output), one input and one target tensor, and no
   * compiled metrics (it logs the loss only); otherwise it warns and runs `model.fit`.
   */
  step?: StepKind;
  /** Shuffle seed of the fused path (default 0; `model.fit` shuffles with Math.random). */
  seed?: number;
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
  /** The training step that ran: model.fit's stock step, or the fused one (option `step`), and why. */
  step: { kind: StepKind; reason: string };
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
  let why = 'asked for';
  if (options.step === 'fused') {
    why = fusedFitMisfit(model, xs, ys) ?? '';
    if (!why) return fitFused(model, xs as tf.Tensor, ys as tf.Tensor, options, print);
    console.warn(`[gpulab] fit: the fused step is not possible here (${why}); running model.fit`);
  }
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
  return { epochs, seconds: now() - t0, history, step: { kind: 'stock', reason: `model.fit's own step (${why})` } };
}

/** Why {@link fit} cannot take the fused step for this model and data, or null when it can. */
function fusedFitMisfit(model: tf.LayersModel, xs: tf.Tensor | tf.Tensor[], ys: tf.Tensor | tf.Tensor[]): string | null {
  if (Array.isArray(xs) || Array.isArray(ys)) return 'several input or target tensors';
  if (!model.optimizer) return 'the model is not compiled';
  if (!fusedStepAvailable()) return `the fused step does not run on the ${tf.getBackend()} backend`;
  const settings = sgdSettings(model.optimizer);
  if (!settings.ok) return settings.reason;
  if (model.metricsNames.length > 1) return `the model is compiled with metrics (${model.metricsNames.slice(1).join(', ')}); the fused fit logs the loss only`;
  const compiled = model.loss;
  const planned = planFusedStep(model, typeof compiled === 'string' || typeof compiled === 'function' ? lossName(compiled as LossName | LossFn) : null);
  return planned.ok ? null : planned.reason;
}

/** {@link fit} through the fused step: model.fit's epochs, batches and logs, one trainLoop epoch at a time. */
async function fitFused(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, options: FitOptions, print: ((line: string) => void) | null): Promise<FitResult> {
  const history = new tf.History();
  await history.onTrainBegin();
  const epochs: FitEpochLog[] = [];
  const loss = lossName(model.loss as LossName | LossFn)!;
  const t0 = now();
  let step: FitResult['step'] = { kind: 'fused', reason: '' };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    let sum = 0;
    let count = 0;
    const r = await trainLoop(model, () => sliceTensorBatches(xs, ys, { batchSize: options.batchSize, shuffle: options.shuffle ?? true, seed: options.seed ?? 0, epochIndex: epoch }), {
      epochs: 1,
      optimizer: model.optimizer,
      loss,
      step: 'fused',
      lossEvery: 1, // model.fit reads every batch's loss too
      onBatchEnd: async (b) => {
        sum += (b.loss ?? 0) * b.size;
        count += b.size;
        if (options.onBatchEnd) await options.onBatchEnd({ epoch, batch: b.batch, logs: { batch: b.batch, size: b.size, loss: b.loss ?? NaN } });
      },
    });
    step = r.step;
    const rec: FitEpochLog = { epoch, seconds: r.seconds, logs: { loss: sum / count } };
    epochs.push(rec);
    await history.onEpochEnd(epoch, rec.logs);
    print?.(kerasEpochLine(epoch, options.epochs, rec.seconds, rec.logs, r.batches));
    if (options.onEpochEnd) await options.onEpochEnd(rec);
    if (options.maxSeconds !== undefined && now() - t0 >= options.maxSeconds) break;
  }
  return { epochs, seconds: now() - t0, history, step };
}
