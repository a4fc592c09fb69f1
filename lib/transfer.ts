/**
 * Transfer learning the way the article does it with Keras, in TensorFlow.js: load a
 * pre-trained Layers model (from a URL or a local folder), cut it at a named layer, freeze it,
 * and put the article's head on top (GlobalAveragePooling2D → Dense(1024, relu) →
 * Dense(numClasses, softmax)).
 *
 * ```ts
 * const base = await transfer.loadModel('https://…/mobilenet/model.json');   // or 'data/models/x'
 * const features = transfer.cutAt(base, 'conv_pw_13_relu');
 * transfer.freeze(features);                       // before compile: tfjs collects trainables there
 * const model = transfer.addClassificationHead(features, 5);
 * transfer.parameterCounts(model);                 // { total, trainable, nonTrainable }
 * ```
 *
 * In Node, `tf.loadLayersModel('file://…')` needs tfjs-node's file handler; {@link fileIO} is
 * a small one of our own: it reads model.json and its weight shards with clear errors for
 * missing or corrupt files, and saves atomically.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from './fsutil';
import { dataDir, isQuick } from './env';
import { deviceLabel, describeDevice } from './backends/device';
import { evaluateAccuracy } from './complexity';
import { median } from './timing';
import { fit } from './train';
// Convnets must train on wasm: register the filter-gradient kernel tfjs-backend-wasm 4.22 lacks.
import './backends/wasm-conv-grad';
import { loadFashionMnist, subset, type FashionMnist } from './data/fashion-mnist';
import { normalizePixels } from './data/batches';

// ---------------------------------------------------------------------------------------------
// Loading and saving
// ---------------------------------------------------------------------------------------------

/** The model.json file of a model folder, a model.json path, or a `file://` URL. */
export function modelJsonPath(location: string): string {
  let p = location.startsWith('file://') ? fileURLToPath(location) : location;
  p = path.resolve(p);
  if (p.endsWith('.json')) return p;
  return path.join(p, 'model.json');
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Bytes a weightsManifest entry occupies in its shard (quantized entries use the quantized dtype). */
export function weightEntryBytes(entry: tf.io.WeightsManifestEntry): number {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const dtype = entry.quantization?.dtype ?? entry.dtype;
  const b = BYTES[dtype];
  if (b === undefined) throw new Error(`weight '${entry.name}': unsupported dtype '${dtype}'`);
  return n * b;
}

function readJson(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) {
    throw new Error(`${file}: model file not found (expected a TensorFlow.js Layers model.json, as written by model.save or tensorflowjs_converter)`);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read the model file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: corrupt model file, not valid JSON (${(err as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file}: corrupt model file, expected a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * A tfjs IOHandler for a model on the local disk (what tfjs-node's `file://` handler does):
 * `load()` reads `model.json` and its weight shards and checks every shard has exactly the
 * bytes the manifest promises; `save()` writes one content-named shard, then model.json, each
 * atomically, so a crash never leaves a model.json pointing at a half-written shard.
 *
 * @param location a model folder, a path to its model.json, or a `file://` URL.
 */
export function fileIO(location: string): tf.io.IOHandler {
  const jsonPath = modelJsonPath(location);
  const dir = path.dirname(jsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = readJson(jsonPath);
      if (!json.modelTopology || typeof json.modelTopology !== 'object') {
        throw new Error(`${jsonPath}: not a TensorFlow.js Layers model (no "modelTopology"); a graph model needs tf.loadGraphModel`);
      }
      if (!Array.isArray(json.weightsManifest)) throw new Error(`${jsonPath}: corrupt model file, "weightsManifest" is missing or not a list`);
      return tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: Buffer[] = [];
        manifest.forEach((group, g) => {
          if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
            throw new Error(`${jsonPath}: corrupt weightsManifest group ${g} (needs "paths" and "weights")`);
          }
          let need = 0;
          for (const w of group.weights) {
            if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape)) throw new Error(`${jsonPath}: corrupt weight entry in group ${g}`);
            need += w.dtype === 'string' ? 0 : weightEntryBytes(w);
          }
          let have = 0;
          const shards = group.paths.map((p) => {
            const file = path.resolve(dir, p);
            if (!fs.existsSync(file)) throw new Error(`${file}: weight shard not found (listed in ${jsonPath})`);
            const buf = fs.readFileSync(file);
            have += buf.length;
            return { file, buf };
          });
          if (have !== need && !group.weights.some((w) => w.dtype === 'string')) {
            throw new Error(
              `${shards.map((s) => s.file).join(', ')}: weight data is corrupt or truncated: ${jsonPath} needs ${need} bytes for ` +
                `${group.weights.map((w) => w.name).join(', ')}, the shard file(s) hold ${have}`,
            );
          }
          specs.push(...group.weights);
          buffers.push(...shards.map((s) => s.buf));
        });
        const all = Buffer.concat(buffers);
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer];
      });
    },

    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error(`${jsonPath}: saving a binary (graph) topology is not supported`);
      const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      const bytes = Buffer.from(weightData);
      const shard = `weights.${crypto.createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
      writeFileAtomic(path.join(dir, shard), bytes);
      const modelJSON: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJSON.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      writeFileAtomic(jsonPath, JSON.stringify(modelJSON));
      // Old shards from earlier saves to this folder are no longer referenced.
      for (const f of fs.readdirSync(dir)) {
        if (/^weights\.[0-9a-f]{16}\.bin$/.test(f) && f !== shard) fs.rmSync(path.join(dir, f), { force: true });
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/**
 * Load a Layers model: an `http(s)://` URL goes through tfjs's own HTTP loader (the real path
 * for published models, e.g. a converted MobileNet or VGG16); a local folder, model.json path
 * or `file://` URL goes through {@link fileIO}. Errors name the source and the problem.
 * `timeoutMs` bounds each HTTP request (so an offline machine fails fast).
 */
export async function loadModel(source: string, options: tf.io.LoadOptions & { timeoutMs?: number } = {}): Promise<tf.LayersModel> {
  if (/^https?:\/\//i.test(source)) {
    const { timeoutMs, ...load } = options;
    if (timeoutMs !== undefined && !load.fetchFunc) {
      load.fetchFunc = (input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    }
    try {
      return await tf.loadLayersModel(source, load);
    } catch (err) {
      throw new Error(`Cannot load the Layers model at ${source}: ${(err as Error).message}`);
    }
  }
  const file = modelJsonPath(source);
  try {
    return await tf.loadLayersModel(fileIO(file), options);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.startsWith(file) || msg.includes(path.dirname(file)) ? msg : `${file}: cannot build the model (${msg})`);
  }
}

/**
 * Save a model to a local folder (model.json + one weight shard), atomically, with optional
 * metadata (stored in model.json as `userDefinedMetadata`; read back with
 * `model.getUserDefinedMetadata()` or {@link readModelMetadata}).
 */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<tf.io.SaveResult> {
  if (metadata) model.setUserDefinedMetadata(metadata as { [k: string]: {} });
  return model.save(fileIO(dir));
}

/** The `userDefinedMetadata` of a saved model (without loading its weights); {} when none. */
export function readModelMetadata(location: string): Record<string, unknown> {
  const json = readJson(modelJsonPath(location));
  return (json.userDefinedMetadata as Record<string, unknown> | undefined) ?? {};
}

// ---------------------------------------------------------------------------------------------
// Cut, freeze, head
// ---------------------------------------------------------------------------------------------

/**
 * The sub-model from the inputs of `model` to the output of the layer named `layerName`
 * (Keras: `Model(base.input, base.get_layer(name).output)`). Layers and weights are SHARED
 * with `model`, like in Keras.
 */
export function cutAt(model: tf.LayersModel, layerName: string): tf.LayersModel {
  const layer = model.layers.find((l) => l.name === layerName);
  if (!layer) {
    throw new Error(`cutAt: no layer named '${layerName}' in model '${model.name}' (layers: ${model.layers.map((l) => l.name).join(', ')})`);
  }
  return tf.model({ inputs: model.inputs, outputs: layer.output as tf.SymbolicTensor, name: `${model.name}_to_${layerName}` });
}

/**
 * Freeze every layer of `model` (`layer.trainable = false`, the article's loop). Call it BEFORE
 * `compile`: tfjs collects the trainable weights when compiling. Returns the number of weights frozen.
 */
export function freeze(model: tf.LayersModel): number {
  let n = 0;
  for (const l of model.layers) {
    n += l.trainableWeights.length;
    l.trainable = false;
  }
  return n;
}

/** Undo {@link freeze}: make every layer trainable again (recompile afterwards). */
export function unfreeze(model: tf.LayersModel): void {
  for (const l of model.layers) l.trainable = true;
}

/** Options of {@link addClassificationHead}. */
export interface HeadOptions {
  /** Width of the hidden Dense layer (the article: 1024). */
  units?: number;
  /** Name of the resulting model. */
  name?: string;
}

/**
 * The article's head on top of `base`: GlobalAveragePooling2D → Dense(units=1024, relu) →
 * Dense(numClasses, softmax). The base must end in a 4-D feature map `[batch, h, w, channels]`.
 * Returns a new model from the base's inputs to the predictions (base layers shared).
 */
export function addClassificationHead(base: tf.LayersModel, numClasses: number, options: HeadOptions = {}): tf.LayersModel {
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`addClassificationHead: numClasses must be an integer ≥ 2, got ${numClasses}`);
  const out = base.outputs[0];
  if (base.outputs.length !== 1 || out.shape.length !== 4) {
    throw new Error(
      `addClassificationHead: the base's output has shape [${out.shape.map((d) => d ?? 'null').join(', ')}]; GlobalAveragePooling2D needs a ` +
        `4-D feature map [batch, height, width, channels]. Cut the base at a convolutional or pooling layer (transfer.cutAt).`,
    );
  }
  let x = tf.layers.globalAveragePooling2d({}).apply(out) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: options.units ?? 1024, activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const predictions = tf.layers.dense({ units: numClasses, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: base.inputs, outputs: predictions, name: options.name });
}

/**
 * Dispose the weights of several models that share layers (a base, a cut of it, a model with a
 * head on it): every distinct layer is disposed once. Plain `model.dispose()` on each would
 * fail on the second model ("already disposed") or leave the layers above a cut alive.
 */
export function disposeModels(...models: tf.LayersModel[]): void {
  const layers = new Set(models.flatMap((m) => m.layers));
  for (const l of layers) {
    try {
      l.dispose();
    } catch (err) {
      if (!/already disposed/i.test((err as Error).message)) throw err;
    }
  }
}

/** Parameter counts of a model: all, trainable, and frozen (non-trainable). */
export interface ParameterCounts {
  [key: string]: number;
  total: number;
  trainable: number;
  nonTrainable: number;
}

function countOf(ws: readonly tf.LayerVariable[]): number {
  return ws.reduce((a, w) => a + w.shape.reduce((p: number, d) => p * (d ?? 1), 1), 0);
}

/** Parameter counts (Keras's summary footer): total, trainable and non-trainable. */
export function parameterCounts(model: tf.LayersModel): ParameterCounts {
  const trainable = countOf(model.trainableWeights);
  const nonTrainable = countOf(model.nonTrainableWeights);
  return { total: trainable + nonTrainable, trainable, nonTrainable };
}

function dropSeeds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropSeeds);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === 'seed' ? null : dropSeeds(x);
    return out;
  }
  return v;
}

/**
 * The same architecture as `model` with freshly initialised weights (for training from
 * scratch). Initializer seeds are dropped, so the new weights differ from the original's init.
 */
export function freshCopy(model: tf.LayersModel): tf.LayersModel {
  const config = dropSeeds(model.getConfig()) as tf.serialization.ConfigDict;
  return model instanceof tf.Sequential
    ? (tf.Sequential.fromConfig(tf.Sequential, config) as tf.LayersModel)
    : (tf.LayersModel.fromConfig(tf.LayersModel, config) as tf.LayersModel);
}

// ---------------------------------------------------------------------------------------------
// The small source base used when no pre-trained model can be downloaded
// ---------------------------------------------------------------------------------------------

/** Layer names of {@link buildSourceConvnet}, VGG-style. */
export const SOURCE_LAYERS = ['block1_conv', 'block1_pool', 'block2_conv', 'block2_pool', 'block3_conv', 'gap', 'source_predictions'] as const;

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

/** A label set remapped so that `classes[i]` becomes label `i` (rows of other classes are dropped). */
export interface Relabelled {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/**
 * Keep only the rows whose label is in `classes` and renumber their labels 0…k−1 in the order
 * given (e.g. classes [5,6,7,8,9] → labels 0–4), for a k-class head.
 */
export function relabel(set: { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number }, classes: readonly number[]): Relabelled {
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
 * {@link SourceBaseMetadata}. What `scripts/train-transfer-base.ts` runs.
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
    const sourceTestAccuracy = await evaluateAccuracy(model, test);
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
    await saveModel(model, dir, metadata);
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
  train: { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number };
  test: { images: Uint8Array; labels: Uint8Array; count: number; height: number; width: number };
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
      accuracy: await evaluateAccuracy(model, o.test),
      fitSeconds,
      epochSeconds: median(timed),
    };
  } finally {
    tf.dispose([xs, ys]);
    disposeModels(model, base, loaded);
    optimizer.dispose();
  }
}
