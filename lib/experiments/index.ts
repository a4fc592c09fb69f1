/**
 * The measured experiments of notebooks 01 and 02 and of `npm run bench`, in one place so the
 * notebooks and the benchmark run the same code: the seed experiment (SimpleNN, SGD momentum,
 * batch 100) through the preloaded or the naive input pipeline, `model.fit` on the same data,
 * and training throughput at a given batch size and model width.
 *
 * ```ts
 * const run = await experiments.seedRun(ds.train, { pipeline: 'preloaded', epochs: 5 });
 * run.seconds; run.projectedSeconds; run.gflopsCounted;
 * const p = await experiments.trainingThroughput(ds.train, { batchSize: 256 });
 * p.samplesPerSecond; p.stepBytes;
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { forBackend, withKernels, type KernelSet } from '../backends/kernel-sets';
import { BatchSource, naivePerSampleBatches, toTensors, type Batch } from '../data/batches';
import { subset } from '../data/fashion-mnist';
import type { ImageSet } from '../data/image-set';
import { mlpTrainingFlops } from '../flops';
import * as memory from '../memory';
import { benchmark, median, type Timing } from '../timing';
import * as train from '../train';

/** Notebook 06's source-task experiment (a small convnet base trained on classes 0–4, transferred to 5–9). */
export * as transferSource from './transfer-source';

/** Notebook 10's measurements: weight comparisons, the checkpointing sweep, the largest batch per technique under a budget. */
export * as trainingMemory from './training-memory';

/** Options of {@link seedRun}. */
export interface SeedRunOptions {
  /** `preloaded`: `data.BatchSource` (normalise once per batch on the host, one tensor). `naive`: the article's per-sample DataLoader. */
  pipeline: 'preloaded' | 'naive';
  /** Epochs (default 5, the article's). */
  epochs?: number;
  /** Measure only this many batches per epoch and project the full epochs from them. */
  maxBatchesPerEpoch?: number;
  /**
   * Untimed training batches before the timed run (default 0): one-off costs such as WebGPU
   * shader compilation then stay out of a projection made from a few batches.
   */
  warmupBatches?: number;
  batchSize?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** The model to train (default a fresh {@link train.simpleNN}); it is trained in place. */
  model?: tf.LayersModel;
  /**
   * The training step (default: the fused step where the backend has one, see
   * `train.seedTrainStep`; `'stock'`: tfjs's `optimizer.minimize`, for before/after).
   */
  step?: train.StepKind;
  onEpochEnd?: (log: train.EpochLog) => void | Promise<void>;
}

/** A seed-experiment run: the measured loop result plus projections and throughput. */
export interface SeedRun extends train.TrainResult {
  pipeline: 'preloaded' | 'naive';
  /** Batches a full run has (epochs × batches per epoch). */
  fullBatches: number;
  /** True when fewer batches than a full run were measured (the full time is then projected). */
  partial: boolean;
  /** Seconds a full run takes: measured when not partial, else measured seconds/batch × fullBatches. */
  projectedSeconds: number;
  /** Data and compute seconds, projected the same way. */
  projectedDataSeconds: number;
  projectedComputeSeconds: number;
  /** Matmul GFLOP/s of the training steps (compute seconds), counting forward+backward as 3× forward. */
  gflopsCounted: number;
  /** The same with only the FLOP really needed (no input gradient for the first layer). */
  gflopsNeeded: number;
  /** Median seconds per batch over the epochs (each epoch's seconds / batches). */
  secondsPerBatch: number;
  /** Counted GFLOP per CPU second of the whole loop (see {@link train.TrainResult.cpuSeconds}). */
  gflopsPerCpuSecond: number;
}

/**
 * The article's CPU-vs-GPU experiment on the current backend: SimpleNN, SGD(0.001, momentum
 * 0.9), softmax cross-entropy, batch 100, `epochs` epochs over `set`, through the chosen input
 * pipeline. With `maxBatchesPerEpoch` it measures a subset and projects the full run (say so
 * wherever the projection is shown).
 */
export async function seedRun(set: ImageSet, options: SeedRunOptions): Promise<SeedRun> {
  const epochs = options.epochs ?? 5;
  const batchSize = options.batchSize ?? train.SEED_EXPERIMENT.batchSize;
  const seed = options.seed ?? 0;
  const model = options.model ?? train.simpleNN();
  const ownModel = !options.model;
  const source = new BatchSource(set, { batchSize, shuffle: true, seed });
  const batchesFor: train.BatchesForEpoch =
    options.pipeline === 'preloaded'
      ? (e) => source.epoch(e)
      : (e) => naivePerSampleBatches(set, { batchSize, shuffle: true, seed, epochIndex: e });
  const optimizer = train.seedOptimizer();
  try {
    if (options.warmupBatches) {
      await train.trainLoop(model, (e) => new BatchSource(set, { batchSize, shuffle: true, seed: seed + 7919 }).epoch(e), { epochs: 1, optimizer, maxBatchesPerEpoch: options.warmupBatches, step: options.step });
    }
    const r = await train.trainLoop(model, batchesFor, {
      epochs,
      optimizer,
      step: options.step,
      maxBatchesPerEpoch: options.maxBatchesPerEpoch,
      onEpochEnd: options.onEpochEnd,
    });
    const fullBatches = epochs * source.numBatches;
    const scale = fullBatches / r.batches;
    const f = mlpTrainingFlops(train.denseWidths(model), r.samples);
    return {
      ...r,
      pipeline: options.pipeline,
      fullBatches,
      partial: r.batches < fullBatches,
      projectedSeconds: r.seconds * scale,
      projectedDataSeconds: r.dataSeconds * scale,
      projectedComputeSeconds: r.computeSeconds * scale,
      gflopsCounted: f.counted / r.computeSeconds / 1e9,
      gflopsNeeded: f.needed / r.computeSeconds / 1e9,
      secondsPerBatch: median(r.epochs.map((e) => e.seconds / e.batches)),
      gflopsPerCpuSecond: f.counted / r.cpuSeconds / 1e9,
    };
  } finally {
    train.disposeOptimizer(optimizer);
    if (ownModel) model.dispose();
  }
}

/** A `model.fit` run of the seed experiment. */
export interface FitRun {
  /** Wall seconds of each epoch. */
  epochSeconds: number[];
  seconds: number;
  samples: number;
  /** Seconds a full run over the whole set would take (projected when `maxSamples` was used). */
  projectedSeconds: number;
  partial: boolean;
  gflopsCounted: number;
  finalLoss: number;
}

/**
 * The seed experiment through `model.fit(xs, ys)` (shuffle on, batch 100, same optimiser and
 * loss as {@link seedRun}). `maxSamples` trains on the first n examples and projects the full set.
 */
export async function fitRun(set: ImageSet, options: { epochs?: number; maxSamples?: number; batchSize?: number } = {}): Promise<FitRun> {
  const epochs = options.epochs ?? 5;
  const part = options.maxSamples !== undefined && options.maxSamples < set.count ? subset(set, options.maxSamples) : set;
  const { xs, ys } = toTensors(part);
  const model = train.simpleNN();
  const optimizer = train.seedOptimizer();
  try {
    model.compile({ optimizer, loss: train.lossFn('softmaxCrossEntropy') });
    const r = await train.fit(model, xs, ys, { batchSize: options.batchSize ?? train.SEED_EXPERIMENT.batchSize, epochs, shuffle: true });
    const samples = part.count * r.epochs.length;
    const f = mlpTrainingFlops(train.denseWidths(model), samples);
    return {
      epochSeconds: r.epochs.map((e) => e.seconds),
      seconds: r.seconds,
      samples,
      projectedSeconds: r.seconds * (set.count / part.count),
      partial: part.count < set.count,
      gflopsCounted: f.counted / r.seconds / 1e9,
      finalLoss: r.epochs[r.epochs.length - 1]?.logs.loss ?? NaN,
    };
  } finally {
    tf.dispose([xs, ys]);
    train.disposeOptimizer(optimizer);
    model.dispose();
  }
}

/** One arm of {@link compareTraining}: which kernels, which path, which step. */
export interface TrainingVariant {
  /** Row label, e.g. 'custom loop, stock kernels'. */
  label: string;
  /**
   * The kernels installed for this variant's epochs: a {@link KernelSet}, null for tfjs's stock
   * kernels (the backend's gpulab set and every set named in the variants taken out), or left
   * out for whatever is installed now.
   */
  kernels?: KernelSet | null;
  /** `'loop'`: {@link train.trainLoop} over `data.BatchSource` batches; `'fit'`: {@link train.fit} on whole-set tensors. */
  path: 'loop' | 'fit';
  /**
   * The training step. Loop: default the fused step where possible (`'stock'`:
   * `optimizer.minimize`). Fit: default `'stock'` (`model.fit` itself); `'fused'` is
   * `train.fit`'s fused path.
   */
  step?: train.StepKind;
}

/** Options of {@link compareTraining}. */
export interface CompareTrainingOptions {
  variants: readonly TrainingVariant[];
  /** Epochs measured per variant (default 3). */
  epochs?: number;
  /** Train on the first n examples (then the full set is projected). */
  maxSamples?: number;
  batchSize?: number;
  /** Epochs the projection is made for (default 5, the article's). */
  projectEpochs?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
}

/** One variant's measurement in {@link compareTraining}. */
export interface VariantRun {
  label: string;
  /** The kernels it ran with: a set's name, 'stock tfjs kernels', or 'as installed'. */
  kernels: string;
  path: 'loop' | 'fit';
  /** The step that really ran, and why (see `train.seedTrainStep`). */
  step: train.StepKind;
  stepReason: string;
  /** Wall seconds of each measured epoch. */
  epochSeconds: number[];
  seconds: number;
  /** CPU seconds of the process during this variant's epochs. */
  cpuSeconds: number;
  /** Seconds for `projectEpochs` epochs over the whole set: measured seconds × the ratio of samples. */
  projectedSeconds: number;
  /** Matmul GFLOP/s over the measured epochs (3× forward convention). */
  gflopsCounted: number;
  finalLoss: number;
}

/** What {@link compareTraining} measured. */
export interface TrainingComparison {
  /** Examples per epoch (the whole set, or `maxSamples`). */
  samplesPerEpoch: number;
  /** True when trained on a subset, so `projectedSeconds` is a projection to the whole set. */
  partial: boolean;
  epochs: number;
  projectEpochs: number;
  /** Counted (3× forward) and needed matmul FLOP of one epoch. */
  flopsPerEpoch: { counted: number; needed: number };
  rows: VariantRun[];
}

/**
 * The same training (SimpleNN, SGD momentum, batch 100) in several variants — kernel set, custom
 * loop or `model.fit`, stock or fused step — one epoch of each in turn, so every variant sees the
 * same machine load; then each variant's time projected to `projectEpochs` epochs over the whole
 * set. Each variant trains its own identical model on the same batches. Runs on the current
 * backend; kernel sets are restored afterwards.
 *
 * ```ts
 * const wasm = kernelSets.forBackend('wasm');
 * const r = await experiments.compareTraining(ds.train, { maxSamples: 6000, variants: [
 *   { label: 'loop, stock kernels', kernels: null, path: 'loop', step: 'stock' },
 *   { label: 'loop, gpulab kernels', kernels: wasm, path: 'loop', step: 'stock' },
 *   { label: 'loop, gpulab kernels, fused step', kernels: wasm, path: 'loop' },
 * ] });
 * ```
 */
export async function compareTraining(set: ImageSet, options: CompareTrainingOptions): Promise<TrainingComparison> {
  const epochs = options.epochs ?? 3;
  const projectEpochs = options.projectEpochs ?? 5;
  const batchSize = options.batchSize ?? train.SEED_EXPERIMENT.batchSize;
  if (!options.variants.length) throw new Error('compareTraining: no variants');
  const part = options.maxSamples !== undefined && options.maxSamples < set.count ? subset(set, options.maxSamples) : set;
  const source = new BatchSource(part, { batchSize, shuffle: true, seed: options.seed ?? 0 });
  const anyFit = options.variants.some((v) => v.path === 'fit');
  const whole = anyFit ? toTensors(part) : null;
  const home = forBackend(tf.getBackend());
  const sets = [...new Set([...(home ? [home] : []), ...options.variants.flatMap((v) => (v.kernels ? [v.kernels] : []))])];
  const arms = options.variants.map((v) => {
    const model = train.simpleNN();
    const optimizer = train.seedOptimizer();
    if (v.path === 'fit') model.compile({ optimizer, loss: train.lossFn('softmaxCrossEntropy') });
    return { v, model, optimizer, epochSeconds: [] as number[], cpuSeconds: 0, finalLoss: NaN, step: { kind: 'stock' as train.StepKind, reason: '' } };
  });
  try {
    for (let e = 0; e < epochs; e++) {
      for (const arm of arms) {
        const run = async () => {
          const c0 = process.cpuUsage();
          if (arm.v.path === 'loop') {
            const r = await train.trainLoop(arm.model, () => source.epoch(e), { epochs: 1, optimizer: arm.optimizer, step: arm.v.step });
            arm.epochSeconds.push(r.seconds);
            arm.finalLoss = r.finalLoss;
            arm.step = r.step;
          } else {
            const f = await train.fit(arm.model, whole!.xs, whole!.ys, { batchSize, epochs: 1, shuffle: true, step: arm.v.step ?? 'stock', seed: (options.seed ?? 0) + e });
            arm.epochSeconds.push(f.seconds);
            arm.finalLoss = f.epochs[0]?.logs.loss ?? NaN;
            arm.step = f.step;
          }
          const c = process.cpuUsage(c0);
          arm.cpuSeconds += (c.user + c.system) / 1e6;
        };
        if (arm.v.kernels === undefined) await run();
        else await withKernels(arm.v.kernels, sets, run);
      }
    }
  } finally {
    if (whole) tf.dispose([whole.xs, whole.ys]);
    for (const arm of arms) {
      train.disposeOptimizer(arm.optimizer);
      arm.model.dispose();
    }
  }
  const f = mlpTrainingFlops(train.SEED_EXPERIMENT.widths, part.count);
  const scale = (projectEpochs / epochs) * (set.count / part.count);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    samplesPerEpoch: part.count,
    partial: part.count < set.count,
    epochs,
    projectEpochs,
    flopsPerEpoch: { counted: f.counted, needed: f.needed },
    rows: arms.map((arm) => ({
      label: arm.v.label,
      kernels: arm.v.kernels === undefined ? 'as installed' : arm.v.kernels === null ? 'stock tfjs kernels' : arm.v.kernels.name,
      path: arm.v.path,
      step: arm.step.kind,
      stepReason: arm.step.reason,
      epochSeconds: arm.epochSeconds,
      seconds: sum(arm.epochSeconds),
      cpuSeconds: arm.cpuSeconds,
      projectedSeconds: sum(arm.epochSeconds) * scale,
      gflopsCounted: (f.counted * epochs) / sum(arm.epochSeconds) / 1e9,
      finalLoss: arm.finalLoss,
    })),
  };
}

/**
 * The standard before/after variants for one backend's kernel set: the custom loop and
 * `model.fit` with tfjs's stock kernels and with `set`, then the custom loop with `set` and the
 * fused step. Labels say which: 'custom loop, stock kernels' … 'custom loop, gpulab kernels,
 * fused step'. Pass them to {@link compareTraining}.
 */
export function kernelSetVariants(set: KernelSet, options: { fusedStep?: boolean } = {}): TrainingVariant[] {
  const variants: TrainingVariant[] = [];
  for (const [tag, kernels] of [['stock kernels', null], ['gpulab kernels', set]] as const) {
    variants.push({ label: `custom loop, ${tag}`, kernels, path: 'loop', step: 'stock' });
    variants.push({ label: `model.fit, ${tag}`, kernels, path: 'fit' });
  }
  if (options.fusedStep ?? true) variants.push({ label: 'custom loop, gpulab kernels, fused step', kernels: set, path: 'loop', step: 'fused' });
  return variants;
}

/** Kernels of one seed training step, stock and fused (see {@link seedStepKernels}). */
export interface SeedStepKernels {
  backend: string;
  stock: train.StepKernelCount;
  fused: train.StepKernelCount;
  /** The fused step's {@link train.SeedTrainStep.reason} (it says so when the stock step ran instead). */
  fusedReason: string;
}

/**
 * {@link seedStepKernels} of several backends as one `train.kernelCountTable`: columns
 * `<backend> stock` and `<backend> fused`, one row per kernel.
 */
export function stepKernelsTable(byBackend: Record<string, SeedStepKernels>): Record<string, string | number>[] {
  return train.kernelCountTable(Object.fromEntries(Object.entries(byBackend).flatMap(([b, k]) => [[`${b} stock`, k.stock], [`${b} fused`, k.fused]])));
}

/**
 * Count the kernels of one seed training step (SimpleNN, SGD momentum, batch 100 of `set`) on
 * the current backend with tfjs's `optimizer.minimize` and with the fused step
 * (`train.countStepKernels`: tfjs kernels, and on native the TensorFlow ops too). Each step runs
 * once before it is counted, so the optimizer state it creates is not counted.
 */
export async function seedStepKernels(set: ImageSet, options: { batchSize?: number } = {}): Promise<SeedStepKernels> {
  const source = new BatchSource(set, { batchSize: options.batchSize ?? train.SEED_EXPERIMENT.batchSize, shuffle: true, seed: 11 });
  const { value: batch } = source.epoch(0).next();
  if (!batch) throw new Error('seedStepKernels: the set has no batch');
  const model = train.simpleNN();
  const counts: Partial<Record<train.StepKind, train.StepKernelCount>> = {};
  let fusedReason = '';
  try {
    for (const kind of ['stock', 'fused'] as const) {
      const step = train.seedTrainStep(model, { step: kind });
      try {
        if (kind === 'fused') fusedReason = step.reason;
        tf.dispose(step.run(batch.xs, batch.ys));
        counts[kind] = await train.countStepKernels(() => step.run(batch.xs, batch.ys));
      } finally {
        step.dispose();
      }
    }
  } finally {
    tf.dispose([batch.xs, batch.ys]);
    model.dispose();
  }
  return { backend: tf.getBackend(), stock: counts.stock!, fused: counts.fused!, fusedReason };
}

/** The seed experiment through the custom loop and through `model.fit`, epoch by epoch, interleaved. */
export interface LoopVsFit {
  /** Examples per epoch (the whole set, or `maxSamples`). */
  samplesPerEpoch: number;
  /** True when trained on a subset of the set (a projection is then needed for the full set). */
  partial: boolean;
  loopEpochSeconds: number[];
  fitEpochSeconds: number[];
  /** fit ÷ loop seconds, per epoch (both ran back to back, so under the same machine load). */
  ratios: number[];
  medianRatio: number;
  /** CPU seconds of the process during the loop epochs and during the fit epochs. */
  loopCpuSeconds: number;
  fitCpuSeconds: number;
  /** Counted (3× forward) and needed matmul FLOP of one epoch. */
  flopsPerEpoch: { counted: number; needed: number };
  loopFinalLoss: number;
  fitFinalLoss: number;
}

/**
 * Train two identical SimpleNNs on the same data, one with {@link train.trainLoop} over
 * `data.BatchSource` batches and one with `model.fit` on whole-set tensors, alternating one
 * epoch each ({@link compareTraining} with those two variants). On a shared machine the load
 * changes over minutes; interleaving makes the fit-vs-loop ratio of each epoch a fair comparison.
 * The loop takes the same step as `model.fit` (`optimizer.minimize`) unless `step: 'fused'`, so
 * the ratio is fit's own overhead. `maxSamples` trains on the first n examples.
 */
export async function loopVsFit(set: ImageSet, options: { epochs?: number; maxSamples?: number; batchSize?: number; seed?: number; step?: train.StepKind } = {}): Promise<LoopVsFit> {
  const r = await compareTraining(set, {
    ...options,
    variants: [
      { label: 'loop', path: 'loop', step: options.step ?? 'stock' },
      { label: 'fit', path: 'fit' },
    ],
  });
  const [loop, fit] = r.rows;
  const ratios = fit.epochSeconds.map((f, i) => f / loop.epochSeconds[i]);
  return {
    samplesPerEpoch: r.samplesPerEpoch,
    partial: r.partial,
    loopEpochSeconds: loop.epochSeconds,
    fitEpochSeconds: fit.epochSeconds,
    ratios,
    medianRatio: median(ratios),
    loopCpuSeconds: loop.cpuSeconds,
    fitCpuSeconds: fit.cpuSeconds,
    flopsPerEpoch: r.flopsPerEpoch,
    loopFinalLoss: loop.finalLoss,
    fitFinalLoss: fit.finalLoss,
  };
}

/** Options of {@link trainingThroughput}. */
export interface ThroughputOptions {
  batchSize: number;
  /** Hidden widths of the MLP (default [500], SimpleNN). */
  hidden?: number[];
  /** Samples trained per timed repeat (rounded up to whole batches; default 2048). */
  samplesPerRepeat?: number;
  warmup?: number;
  repeats?: number;
  /** Samples in one epoch, for the derived time per epoch (default `set.count`). */
  epochSamples?: number;
  /** The training step (default: the fused step where possible; see `train.seedTrainStep`). */
  step?: train.StepKind;
}

/** Training throughput at one batch size / width, measured on preloaded batches (compute only). */
export interface ThroughputPoint {
  batchSize: number;
  hidden: number[];
  /** Steps per timed repeat. */
  steps: number;
  samplesPerSecond: number;
  /** Derived: epochSamples / samplesPerSecond (not a timed full epoch). */
  secondsPerEpoch: number;
  /** Matmul GFLOP/s (3× forward convention). */
  gflops: number;
  /** Peak tensor bytes of one training step above what was alive before it (activations, gradients, batch temporaries). */
  stepBytes: number;
  /** Bytes of one batch's input and target tensors. */
  batchBytes: number;
  /** The repeats' timings (seconds per repeat of `steps` steps). */
  timing: Timing;
  /** The training step that was timed. */
  step: train.StepKind;
}

/**
 * Time `steps` training steps (SGD momentum, softmax cross-entropy) of an MLP at one batch size
 * through `timing.benchmark` (warm-up, sync, repeats). The batches are built before the clock
 * starts, so only compute is timed. Also profiles one step's peak memory.
 */
export async function trainingThroughput(set: ImageSet, options: ThroughputOptions): Promise<ThroughputPoint> {
  const { batchSize } = options;
  const hidden = options.hidden ?? [500];
  const steps = Math.max(1, Math.ceil((options.samplesPerRepeat ?? 2048) / batchSize));
  const source = new BatchSource(set, { batchSize, shuffle: true, seed: 7 });
  const batches: Batch[] = [];
  for (const b of source.epoch(0)) {
    if (batches.length === Math.min(steps, source.numBatches)) {
      tf.dispose([b.xs, b.ys]);
      break;
    }
    batches.push(b);
  }
  const model = train.mlp({ hidden, inputs: set.height * set.width, outputs: 10 });
  const optimizer = train.seedOptimizer();
  let step: train.SeedTrainStep | null = null;
  try {
    const mem = await memory.stepMemory(model, batches[0], { optimizer });
    const trainStep = train.seedTrainStep(model, { optimizer, step: options.step });
    step = trainStep;
    const timing = await benchmark(() => {
      let loss: tf.Scalar | null = null;
      for (let i = 0; i < steps; i++) {
        const { xs, ys } = batches[i % batches.length];
        loss?.dispose();
        loss = trainStep.run(xs, ys);
      }
      return loss!;
    }, { warmup: options.warmup ?? 1, repeats: options.repeats ?? 3 });
    const samples = steps * batchSize;
    const samplesPerSecond = samples / timing.median;
    const f = mlpTrainingFlops([set.height * set.width, ...hidden, 10], samples);
    return {
      batchSize,
      hidden,
      steps,
      samplesPerSecond,
      secondsPerEpoch: (options.epochSamples ?? set.count) / samplesPerSecond,
      gflops: f.counted / timing.median / 1e9,
      stepBytes: mem.stepBytes,
      batchBytes: mem.batchBytes,
      timing,
      step: trainStep.kind,
    };
  } finally {
    step?.dispose();
    for (const b of batches) tf.dispose([b.xs, b.ys]);
    train.disposeOptimizer(optimizer);
    model.dispose();
  }
}

/** Accuracy-under-a-budget result of {@link trainWithBudget}. */
export interface BudgetRun {
  batchSize: number;
  epochs: number;
  seconds: number;
  samples: number;
  /** Weight updates made. */
  steps: number;
  testAccuracy: number;
  stoppedBy: 'epochs' | 'maxSeconds';
}

/**
 * Train a fresh SimpleNN (same seed every time) at `batchSize` until `epochs` epochs or
 * `maxSeconds` wall seconds, whichever first, then measure test accuracy. The fixed-epochs and
 * fixed-time budgets of notebook 01.
 */
export async function trainWithBudget(trainSet: ImageSet, testSet: ImageSet, options: { batchSize: number; epochs: number; maxSeconds?: number; optimizer?: () => tf.Optimizer }): Promise<BudgetRun> {
  const model = train.simpleNN({ seed: 42 });
  const source = new BatchSource(trainSet, { batchSize: options.batchSize, shuffle: true, seed: 3 });
  const optimizer = (options.optimizer ?? train.seedOptimizer)();
  try {
    const r = await train.trainLoop(model, (e) => source.epoch(e), { epochs: options.epochs, maxSeconds: options.maxSeconds, optimizer });
    const testAccuracy = await train.accuracy(model, new BatchSource(testSet, { batchSize: 1000 }).epoch(0));
    return { batchSize: options.batchSize, epochs: r.epochs.length, seconds: r.seconds, samples: r.samples, steps: r.batches, testAccuracy, stoppedBy: r.stoppedBy };
  } finally {
    train.disposeOptimizer(optimizer);
    model.dispose();
  }
}
