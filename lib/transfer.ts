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
// Convnets must train on wasm: register the filter-gradient kernel tfjs-backend-wasm 4.22 lacks.
import './backends/wasm-conv-grad';

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
// Notebook 06's source-task experiment lives in experiments/transfer-source; re-exported here so
// `transfer.ensureSourceBase`, `transfer.trainOnTarget`, … keep working.
// ---------------------------------------------------------------------------------------------

export {
  SOURCE_LAYERS, buildSourceConvnet, relabel, SOURCE_CLASSES, TARGET_CLASSES, SOURCE_CUT_LAYER,
  defaultSourceBaseDir, trainSourceBase, ensureSourceBase, trainOnTarget,
  type Relabelled, type SourceBaseMetadata, type SourceBaseOptions, type TransferMethod, type TargetRunOptions, type TargetRunResult,
} from './experiments/transfer-source';
