/**
 * Notebook 06's source-task experiment: a small VGG-style base trained on Fashion-MNIST classes
 * 0–4 (saved once under data/, reused after), and one target-task run (classes 5–9) per transfer
 * method: frozen base, fine-tuned base, or the same architecture from scratch. The transfer
 * mechanics themselves (cut, freeze, head) are in `transfer`, loading and saving in `modelIO`;
 * notebook 06 reaches this module as `experiments.transferSource`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { dataDir, isQuick } from '../env';
import { deviceLabel, describeDevice } from '../backends/device';
import { median } from '../timing';
import { accuracy, fit } from '../train';
// Convnets must train on wasm: register the filter-gradient kernel tfjs-backend-wasm 4.22 lacks.
import '../backends/wasm-conv-grad';
import { loadFashionMnist, subset, type FashionMnist } from '../data/fashion-mnist';
import type { ImageSet } from '../data/image-set';
import { normalizePixels } from '../data/batches';
import { loadModel, modelJsonPath, readModelMetadata, saveModel } from '../model-io';
import { addClassificationHead, cutAt, disposeModels, freeze, freshCopy, parameterCounts } from '../transfer';

// ---------------------------------------------------------------------------------------------
// The small source base used when no pre-trained model can be downloaded
// ---------------------------------------------------------------------------------------------

/**
 * A small VGG-style convnet for 28×28×1 images: three conv blocks (16, 32, 64 filters, 3×3,
 * relu, 'same'; the first two followed by 2×2 max-pooling), then GlobalAveragePooling2D →
 * Dense(numClasses, softmax). Cut it at `block3_conv` to get a feature extractor.
 */
export function buildSourceConvnet(numClasses: number, options: { filters?: [number, number, number]; seed?: number } = {}): tf.LayersModel {
  const [f1, f2, f3] = options.filters ?? [16, 32, 64];
  const init = (k: number) => tf.initializers.heNormal({ seed: options.seed === undefined ? undefined : options.seed + k });
  const input = tf.input({ shape: [28, 28, 1], name: 'image' });
  let x = tf.layers.conv2d({ filters: f1, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'block1_conv' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'block1_pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: f2, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'block2_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'block2_pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: f3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(3), name: 'block3_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: numClasses, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }), name: 'source_predictions' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'source_convnet' });
}

/**
 * The set remapped so that `classes[i]` becomes label `i`: keep only the rows whose label is in
 * `classes` and renumber their labels 0…k−1 in the order given (e.g. classes [5,6,7,8,9] →
 * labels 0–4), for a k-class head.
 */
export function relabel(set: ImageSet, classes: readonly number[]): ImageSet {
  const map = new Int16Array(256).fill(-1);
  classes.forEach((c, i) => (map[c] = i));
  const px = set.height * set.width;
  let n = 0;
  for (let i = 0; i < set.count; i++) if (map[set.labels[i]] >= 0) n++;
  const images = new Uint8Array(n * px);
  const labels = new Uint8Array(n);
  let j = 0;
  for (let i = 0; i < set.count; i++) {
    const m = map[set.labels[i]];
    if (m < 0) continue;
    images.set(set.images.subarray(i * px, (i + 1) * px), j * px);
    labels[j++] = m;
  }
  return { images, labels, count: n, height: set.height, width: set.width };
}

// ---------------------------------------------------------------------------------------------
// The source task: a base trained here, because no pre-trained weights can be downloaded
// ---------------------------------------------------------------------------------------------

/** The source task's classes (Fashion-MNIST labels 0–4: T-shirt/top, Trouser, Pullover, Dress, Coat). */
export const SOURCE_CLASSES: readonly number[] = [0, 1, 2, 3, 4];
/** The target task's classes (labels 5–9: Sandal, Shirt, Sneaker, Bag, Ankle boot). */
export const TARGET_CLASSES: readonly number[] = [5, 6, 7, 8, 9];
/** The layer the transfer notebook cuts the source base at. */
export const SOURCE_CUT_LAYER = 'block3_conv';

/** What is stored with the source base (model.json `userDefinedMetadata`). */
export interface SourceBaseMetadata {
  [key: string]: string | number | number[] | boolean;
  sourceTask: string;
  sourceClasses: number[];
  dataset: string;
  datasetSource: string;
  trainExamples: number;
  epochs: number;
  /** Accuracy on the source classes of the test set. */
  sourceTestAccuracy: number;
  trainSeconds: number;
  trainedOn: string;
  trainedAt: string;
  quick: boolean;
}

/** Options of {@link ensureSourceBase} / {@link trainSourceBase}. */
export interface SourceBaseOptions {
  /** Where to keep it (default `data/models/fmnist-source-0to4-convnet-<dataset>`). */
  dir?: string;
  /** The dataset (default: `data.loadFashionMnist()`). */
  ds?: FashionMnist;
  /** Source-task training examples (default 15,000; 3,000 in quick mode). */
  trainExamples?: number;
  /** Source-task test images for the reported accuracy (default all 5,000; 1,000 in quick mode). */
  testExamples?: number;
  /** Epochs (default 3; 2 in quick mode). */
  epochs?: number;
  batchSize?: number;
  seed?: number;
  /** Retrain even if a saved base exists. */
  force?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** The default folder of the source base for a dataset source. */
export function defaultSourceBaseDir(datasetSource: string, quick = false): string {
  return path.join(dataDir(), 'models', `fmnist-source-0to4-convnet-${datasetSource}${quick ? '-quick' : ''}`);
}

/**
 * Train {@link buildSourceConvnet} on the source task (classes 0–4) and save it with its
 * {@link SourceBaseMetadata}. What `scripts/setup/train-transfer-base.ts` runs.
 */
export async function trainSourceBase(options: SourceBaseOptions = {}): Promise<{ dir: string; metadata: SourceBaseMetadata }> {
  const ds = options.ds ?? (await loadFashionMnist());
  const quick = isQuick();
  const dir = options.dir ?? defaultSourceBaseDir(ds.source, quick);
  const n = options.trainExamples ?? (quick ? 3000 : 15000);
  const epochs = options.epochs ?? (quick ? 2 : 3);
  const seed = options.seed ?? 0;
  const train = relabel(subset(ds.train, n, { seed, classes: [...SOURCE_CLASSES] }), SOURCE_CLASSES);
  const test = relabel(subset(ds.test, options.testExamples ?? (quick ? 1000 : ds.test.count), { seed, classes: [...SOURCE_CLASSES] }), SOURCE_CLASSES);
  const model = buildSourceConvnet(SOURCE_CLASSES.length, { seed });
  const optimizer = tf.train.adam(1e-3);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor4d(normalizePixels(train.images), [train.count, 28, 28, 1]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(train.labels, 'int32'), SOURCE_CLASSES.length));
  const t0 = performance.now();
  try {
    await model.fit(xs, ys, {
      epochs,
      batchSize: options.batchSize ?? 64,
      shuffle: true,
      verbose: 0,
      callbacks: { onEpochEnd: async (e, logs) => options.log?.(`source base: epoch ${e + 1}/${epochs}, loss ${logs?.loss?.toFixed(4)}, train accuracy ${logs?.acc?.toFixed(4)}`) },
    });
    const trainSeconds = (performance.now() - t0) / 1000;
    const sourceTestAccuracy = await accuracy(model, test);
    const metadata: SourceBaseMetadata = {
      sourceTask: `${ds.label}, classes ${SOURCE_CLASSES.join(', ')} (${SOURCE_CLASSES.map((c) => ds.classNames[c]).join(', ')})`,
      sourceClasses: [...SOURCE_CLASSES],
      dataset: ds.label,
      datasetSource: ds.source,
      trainExamples: train.count,
      epochs,
      sourceTestAccuracy,
      trainSeconds,
      trainedOn: deviceLabel(describeDevice()),
      trainedAt: new Date().toISOString(),
      quick,
    };
    await saveModel(model, dir, { metadata });
    options.log?.(`source base saved to ${dir} (source test accuracy ${(sourceTestAccuracy * 100).toFixed(1)}%, ${trainSeconds.toFixed(1)} s)`);
    return { dir, metadata };
  } finally {
    tf.dispose([xs, ys]);
    model.dispose();
    optimizer.dispose();
  }
}

/**
 * The source base for the transfer notebook: the saved one if `data/models/` has it (the full
 * one preferred, the quick one accepted in quick mode), else trained now with
 * {@link trainSourceBase} (e.g. on a fresh clone). Returns where it is, whether it was trained
 * in this call, and its metadata (where it came from).
 */
export async function ensureSourceBase(options: SourceBaseOptions = {}): Promise<{ dir: string; trainedNow: boolean; metadata: SourceBaseMetadata }> {
  const ds = options.ds ?? (await loadFashionMnist());
  const candidates = options.dir ? [options.dir] : [defaultSourceBaseDir(ds.source, false), ...(isQuick() ? [defaultSourceBaseDir(ds.source, true)] : [])];
  if (!options.force) {
    for (const dir of candidates) {
      if (fs.existsSync(modelJsonPath(dir))) {
        return { dir, trainedNow: false, metadata: readModelMetadata(dir) as SourceBaseMetadata };
      }
    }
  }
  const { dir, metadata } = await trainSourceBase({ ...options, ds, dir: options.dir });
  return { dir, trainedNow: true, metadata };
}

/** The three ways of training on the target task. */
export type TransferMethod = 'frozen' | 'fine-tune' | 'scratch';

/** Options of {@link trainOnTarget}. */
export interface TargetRunOptions {
  method: TransferMethod;
  /** The saved source base (folder or model.json). */
  baseDir: string;
  /** Layer to cut the base at (default {@link SOURCE_CUT_LAYER}). */
  cutLayer?: string;
  /** Target training set, labels already 0…numClasses−1 (see {@link relabel}). */
  train: ImageSet;
  test: ImageSet;
  numClasses: number;
  epochs: number;
  batchSize?: number;
  /** Default: 1e-3 for frozen and scratch, 1e-4 for fine-tuning (pre-trained weights need small steps). */
  learningRate?: number;
  /** Head width (the article: 1024). */
  headUnits?: number;
  seed?: number;
}

/** What one target-task run measured. */
export interface TargetRunResult {
  [key: string]: string | number;
  method: TransferMethod;
  examples: number;
  epochs: number;
  trainableParams: number;
  totalParams: number;
  /** Test accuracy on the target classes after training. */
  accuracy: number;
  /** Wall seconds of the whole fit. */
  fitSeconds: number;
  /** Median seconds per epoch (first epoch excluded when there are ≥ 2). */
  epochSeconds: number;
}

/**
 * One target-task run: load the base from disk (a fresh copy, so runs don't share weights),
 * cut it, then
 * - `frozen`: freeze the base, train only the head (the article's recipe);
 * - `fine-tune`: train base and head together, from the pre-trained weights;
 * - `scratch`: the same architecture with random weights, everything trained.
 * Then measure test accuracy. Everything it creates is disposed.
 */
export async function trainOnTarget(o: TargetRunOptions): Promise<TargetRunResult> {
  const loaded = await loadModel(o.baseDir);
  const base = o.method === 'scratch' ? freshCopy(loaded) : loaded;
  const features = cutAt(base, o.cutLayer ?? SOURCE_CUT_LAYER);
  if (o.method === 'frozen') freeze(features);
  const model = addClassificationHead(features, o.numClasses, { units: o.headUnits });
  const optimizer = tf.train.adam(o.learningRate ?? (o.method === 'fine-tune' ? 1e-4 : 1e-3));
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const counts = parameterCounts(model);
  const xs = tf.tensor4d(normalizePixels(o.train.images), [o.train.count, 28, 28, 1]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(o.train.labels, 'int32'), o.numClasses));
  try {
    const run = await fit(model, xs, ys, { epochs: o.epochs, batchSize: o.batchSize ?? 32, shuffle: true });
    const fitSeconds = run.seconds;
    const times = run.epochs.map((e) => e.seconds);
    const timed = times.length >= 2 ? times.slice(1) : times;
    return {
      method: o.method,
      examples: o.train.count,
      epochs: o.epochs,
      trainableParams: counts.trainable,
      totalParams: counts.total,
      accuracy: await accuracy(model, o.test),
      fitSeconds,
      epochSeconds: median(timed),
    };
  } finally {
    tf.dispose([xs, ys]);
    disposeModels(model, base, loaded);
    optimizer.dispose();
  }
}
