/**
 * Notebook 10's measurements (the memory of training): comparing weights after different
 * training runs, the gradient-checkpointing sweep, and the largest batch that fits one memory
 * budget with each technique (plain, gradient accumulation, checkpointing, float16 weight
 * storage, a smaller optimizer state), with its time per epoch.
 *
 * ```ts
 * const model = train.mlp({ hidden: [256, 256, 256, 256, 256, 256, 256, 256] });
 * const rows = await experiments.trainingMemory.checkpointSweep(model, batch, [1, 3, 9]);
 * const plain = await experiments.trainingMemory.largestBatch(build, { name: 'plain', optimizer: 'momentum' }, { budgetBytes: 64 * MiB });
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import * as memory from '../memory';
import { roundTensor } from '../precision';
import { benchmark } from '../timing';
import * as train from '../train';
import { MiB } from '../units';

// ---------------------------------------------------------------------------------------------
// Comparing weights
// ---------------------------------------------------------------------------------------------

/** A copy of every weight's values (to compare later, whatever happens to the model). */
export function snapshotWeights(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

/** What training changed in each weight: current values − `initial` (a {@link snapshotWeights}). */
export function weightDeltas(model: tf.LayersModel, initial: readonly Float32Array[]): Float32Array[] {
  const now = snapshotWeights(model);
  if (now.length !== initial.length) throw new Error(`weightDeltas: the model has ${now.length} weights, the snapshot ${initial.length}`);
  return now.map((w, i) => w.map((v, j) => v - initial[i][j]));
}

/**
 * The largest relative difference between two lists of arrays: max over arrays of
 * ‖a − b‖∞ / ‖b‖∞ (b is the reference). Compare weight *deltas* (what training changed), so a
 * different update cannot hide behind the large unchanged part of the weights.
 */
export function maxRelativeDifference(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  if (a.length !== b.length) throw new Error(`maxRelativeDifference: ${a.length} arrays vs ${b.length}`);
  let worst = 0;
  a.forEach((x, i) => {
    if (x.length !== b[i].length) throw new Error(`maxRelativeDifference: array ${i} has ${x.length} values vs ${b[i].length}`);
    worst = Math.max(worst, train.relativeDifference(x, b[i]));
  });
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Random batches (memory and time do not depend on the values)
// ---------------------------------------------------------------------------------------------

/** `count` random batches of `batchSize` examples of `inputShape`, with one-hot labels of `classes`. */
function* randomBatches(count: number, batchSize: number, inputShape: readonly number[], classes = 10): Generator<train.Batch> {
  for (let i = 0; i < count; i++) {
    yield tf.tidy(() => ({
      xs: tf.randomNormal([batchSize, ...inputShape]),
      ys: tf.oneHot(tf.randomUniform([batchSize], 0, classes, 'int32'), classes).toFloat(),
    }));
  }
}

function inputShapeOf(model: tf.LayersModel): number[] {
  const shape = model.inputs[0].shape.slice(1);
  if (shape.some((d) => d === null)) throw new Error(`trainingMemory: model input shape [${model.inputs[0].shape}] has an unknown dimension`);
  return shape as number[];
}

// ---------------------------------------------------------------------------------------------
// Gradient checkpointing: peak and time at several segment counts
// ---------------------------------------------------------------------------------------------

/** One row of {@link checkpointSweep} (a type, not an interface, so that tables and charts take it as a row). */
export type CheckpointRow = {
  /** 'plain' or 'N segments'. */
  variant: string;
  /** null for plain. */
  segments: number | null;
  /** Peak tensor MiB of one gradient computation above what was alive before it. */
  peakMiB: number;
  /** Median ms of one training step (forward, backward, SGD update). */
  msPerStep: number;
  /** Fastest and slowest repeat, ms. */
  lo: number;
  hi: number;
  /** Largest relative error of the gradients against plain autodiff (0 for plain). */
  maxRelativeError: number;
};

/**
 * Peak memory and time of a training step of `model` on `batch`, plain and checkpointed with
 * each of `segmentCounts`; and how far each one's gradients are from the plain ones. The step
 * uses SGD with learning rate 0, so every variant sees the same weights.
 */
export async function checkpointSweep(model: tf.LayersModel, batch: train.Batch, segmentCounts: readonly number[], options: { repeats?: number; loss?: train.LossName | train.LossFn } = {}): Promise<CheckpointRow[]> {
  const loss = train.lossFn(options.loss ?? 'softmaxCrossEntropy');
  const repeats = options.repeats ?? 5;
  const optimizer = tf.train.sgd(0);
  const measure = async (net: tf.LayersModel, variant: string, segments: number | null, reference: Float32Array[] | null) => {
    const vars = train.trainableVariables(net);
    const f = () => loss(batch.ys, net.apply(batch.xs, { training: true }) as tf.Tensor);
    const grads = await memory.tensorPeak(() => {
      const { value, grads: g } = tf.variableGrads(f, vars);
      value.dispose();
      const out = vars.map((v) => Float32Array.from(g[v.name].dataSync() as Float32Array));
      tf.dispose(Object.values(g));
      return out;
    });
    const t = await benchmark(() => optimizer.minimize(f, true, vars) as tf.Scalar, { warmup: 1, repeats });
    const row: CheckpointRow = {
      variant,
      segments,
      peakMiB: grads.addedBytes / MiB,
      msPerStep: t.median * 1e3,
      lo: t.min * 1e3,
      hi: t.max * 1e3,
      maxRelativeError: reference ? maxRelativeDifference(grads.value, reference) : 0,
    };
    return { row, grads: grads.value };
  };
  try {
    const plain = await measure(model, 'plain', null, null);
    const rows = [plain.row];
    for (const segments of segmentCounts) {
      const ck = train.checkpointed(model, { segments });
      try {
        rows.push((await measure(ck, `${segments} segment${segments === 1 ? '' : 's'}`, segments, plain.grads)).row);
      } finally {
        ck.dispose();
      }
    }
    return rows;
  } finally {
    train.disposeOptimizer(optimizer);
  }
}

// ---------------------------------------------------------------------------------------------
// The largest batch that fits a budget, per technique
// ---------------------------------------------------------------------------------------------

/** One way to train, as the budget table compares them. */
export interface Technique {
  name: string;
  optimizer: train.OptimizerKind;
  /** Micro-batches per update (gradient accumulation); default 1. */
  accumulate?: number;
  /** Gradient checkpointing with this many segments (`'sqrt'`: √layers); default none. */
  segments?: number | 'sqrt';
  /**
   * Round every weight to float16 after each update (`precision.roundTensor`): the values a
   * float16 weight store would hold. tfjs has no float16 dtype, so they still take 4 bytes.
   */
  float16Weights?: boolean;
  /**
   * The training step (`train.trainLoop`'s `step`). Default `'stock'` (tfjs's autodiff), so
   * that the rows differ only by the technique; `'fused'` is gpulab's fused step, where the model
   * allows it. Accumulation always runs the stock step.
   */
  step?: train.StepKind;
}

/** Options of {@link largestBatch}. */
export interface LargestBatchOptions {
  /** Tensor bytes the whole training (model, optimizer state, batch, step) may use. */
  budgetBytes: number;
  /** Examples per epoch for the time per epoch (default 60,000, Fashion-MNIST's training set). */
  epochSamples?: number;
  /** First micro-batch size tried (default 16). */
  start?: number;
  /** Largest micro-batch size tried (default 8192). */
  maxBatch?: number;
  /** Bisection steps after the growth phase (default 4; fewer is faster and coarser). */
  refineSteps?: number;
  /** Updates timed at the best batch (default 3, after one untimed). */
  timedUpdates?: number;
  /** Classes of the random labels (default 10). */
  classes?: number;
}

/** One row of the budget table. */
export interface BudgetRow {
  technique: string;
  optimizer: train.OptimizerKind;
  accumulate: number;
  /** The largest micro-batch that fit (null: not even the first size). */
  microBatch: number | null;
  /** microBatch × accumulate: the batch an update sees. */
  effectiveBatch: number | null;
  /** Peak tensor MiB of a step (an accumulation cycle) at that batch, everything included. */
  peakMiB: number | null;
  /** Wall seconds of the training steps for one epoch of `epochSamples` at that batch, extrapolated from a few timed updates. */
  secondsPerEpoch: number | null;
  stoppedBy: memory.BatchSizeSearch['stoppedBy'];
  search: memory.BatchSizeSearch;
}

/**
 * Find the largest (micro-)batch with which `build()`'s model trains within `budgetBytes` of
 * tensor memory using `technique` (`memory.findMaxBatchSize`, one update per trial: `accumulate`
 * micro-batches), then time a few updates at that batch and extrapolate to an epoch. The budget
 * counts everything the training holds: weights, optimizer state, the accumulation sum, the batch
 * and the step's activations and temporaries. Batches are random (memory and time do not depend
 * on the values); the time counts the steps, not the making of the random batches.
 */
export async function largestBatch(build: () => tf.LayersModel, technique: Technique, options: LargestBatchOptions): Promise<BudgetRow> {
  const accumulate = technique.accumulate ?? 1;
  const classes = options.classes ?? 10;
  const base = tf.memory().numBytes;
  const model = build();
  const net = technique.segments !== undefined ? train.checkpointed(model, { segments: technique.segments }) : model;
  const optimizer = train.makeOptimizer(technique.optimizer);
  const vars = train.trainableVariables(model);
  const shape = inputShapeOf(model);
  const roundWeights = technique.float16Weights ? () => vars.forEach((v) => tf.tidy(() => v.assign(roundTensor(v, 'float16')))) : undefined;
  const update = (batchSize: number, updates: number) =>
    train.trainLoop(net, () => randomBatches(updates * accumulate, batchSize, shape, classes), {
      epochs: 1, optimizer, accumulate, step: accumulate > 1 ? undefined : technique.step ?? 'stock', onBatchEnd: roundWeights && (({ batch }) => { if ((batch + 1) % accumulate === 0) roundWeights(); }),
    });
  try {
    const search = await memory.findMaxBatchSize((b) => update(b, 1), { budgetBytes: base + options.budgetBytes, start: options.start ?? 16, maxBatch: options.maxBatch ?? 8192, refineSteps: options.refineSteps });
    const best = search.best;
    let secondsPerEpoch: number | null = null;
    let peakMiB: number | null = null;
    if (best !== null) {
      const trial = search.trials.find((t) => t.batchSize === best && t.ok);
      peakMiB = trial?.peakBytes != null ? (trial.peakBytes - base) / MiB : null;
      await update(best, 1);
      const timed = options.timedUpdates ?? 3;
      const r = await update(best, timed);
      secondsPerEpoch = (r.computeSeconds / r.samples) * (options.epochSamples ?? 60000);
    }
    return {
      technique: technique.name,
      optimizer: technique.optimizer,
      accumulate,
      microBatch: best,
      effectiveBatch: best === null ? null : best * accumulate,
      peakMiB,
      secondsPerEpoch,
      stoppedBy: search.stoppedBy,
      search,
    };
  } finally {
    train.disposeOptimizer(optimizer);
    if (net !== model) net.dispose();
    model.dispose();
  }
}

/**
 * The batch a search would have reached with `savedBytes` fewer bytes per step, from the line
 * through its two largest batches that fit (peak = a + b·batch): arithmetic, for a saving this
 * stack cannot make (e.g. weights stored in 2 bytes instead of 4). Null without two good trials.
 */
export function batchIfSaved(search: memory.BatchSizeSearch, savedBytes: number): number | null {
  const ok = search.trials.filter((t) => t.ok && t.peakBytes !== null).sort((x, y) => x.batchSize - y.batchSize);
  if (ok.length < 2) return null;
  const [p, q] = ok.slice(-2);
  const perExample = (q.peakBytes! - p.peakBytes!) / (q.batchSize - p.batchSize);
  if (!(perExample > 0)) return null;
  const fixed = q.peakBytes! - perExample * q.batchSize;
  return Math.floor((search.budgetBytes + savedBytes - fixed) / perExample);
}
