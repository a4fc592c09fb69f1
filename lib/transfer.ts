/**
 * Transfer learning the way the article does it with Keras, in TensorFlow.js: load a
 * pre-trained Layers model (from a URL or a local folder), cut it at a named layer, freeze it,
 * and put the article's head on top (GlobalAveragePooling2D → Dense(1024, relu) →
 * Dense(numClasses, softmax)).
 *
 * ```ts
 * const base = await modelIO.loadModel('https://…/mobilenet/model.json');    // or 'data/models/x'
 * const features = transfer.cutAt(base, 'conv_pw_13_relu');
 * transfer.freeze(features);                       // before compile: tfjs collects trainables there
 * const model = transfer.addClassificationHead(features, 5);
 * transfer.parameterCounts(model);                 // { total, trainable, nonTrainable }
 * ```
 *
 * Loading and saving live in `modelIO` (model.json and weight shards read with clear errors for
 * missing or corrupt files, atomic saves); notebook 06's source-task experiment lives in
 * `experiments.transferSource`.
 */
import * as tf from '@tensorflow/tfjs';
// Convnets must train on wasm: register the filter-gradient kernel tfjs-backend-wasm 4.22 lacks.
import './backends/wasm-conv-grad';

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
