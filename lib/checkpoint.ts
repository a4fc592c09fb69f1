/**
 * Gradient checkpointing: store fewer activations, recompute them in the backward pass.
 *
 * Plain autodiff keeps what every op of the forward pass needs for its gradient until the
 * backward pass is over, so a step's memory grows with depth × batch. {@link checkpointed} cuts a
 * stack of layers into segments and wraps each segment in `tf.customGrad`: the forward pass runs
 * the segment without recording it (its intermediates are freed as soon as it returns) and keeps
 * only the segment's input; the backward pass runs the segment again, from that input, under its
 * own small gradient tape, and returns the gradients of the input and of the segment's weights.
 * One extra forward pass per step buys memory that grows with (segments + layers per segment)
 * instead of layers: about √n segments for n layers is the classic sweet spot.
 *
 * ```ts
 * const deep = train.mlp({ hidden: [512, 512, 512, 512, 512, 512, 512, 512] });
 * const ck = train.checkpointed(deep, { segments: 3 });  // a tf.Sequential sharing deep's weights
 * await train.trainLoop(ck, batches, { epochs: 1 });     // or ck.compile(...) and ck.fit(...)
 * ```
 *
 * The gradients are those of the plain model: the segment is recomputed with the same ops on
 * the same inputs. Layers must be pure functions of their input and weights (Dense, Conv2D,
 * pooling, Flatten, activations): layers with randomness or state updates (Dropout,
 * BatchNormalization) would see different values the second time and are refused.
 */
import * as tf from '@tensorflow/tfjs';

/** Layers whose second run would not repeat the first (random masks, moving statistics). */
const IMPURE_LAYERS = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise', 'BatchNormalization']);

/** Options of {@link checkpointed}. */
export interface CheckpointOptions {
  /**
   * How many segments to cut the layers into (contiguous, sizes as equal as possible), or
   * `'sqrt'` (default): round(√layers). 1 keeps only the model input and recomputes everything;
   * one segment per layer keeps every layer's input.
   */
  segments?: number | 'sqrt';
  /**
   * Compute the gradient of the model's input too (default false: like plain training, which
   * needs gradients of the weights only). The first segment then keeps its input as a
   * differentiable argument.
   */
  inputGradient?: boolean;
}

/**
 * Sizes of `segments` contiguous groups of `layers` layers, as equal as possible, larger ones
 * first: `segmentSizes(8, 3)` is `[3, 3, 2]`.
 */
export function segmentSizes(layers: number, segments: number): number[] {
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`checkpointed: needs at least one layer, got ${layers}`);
  if (!Number.isInteger(segments) || segments < 1 || segments > layers) {
    throw new Error(`checkpointed: segments must be an integer in [1, ${layers}] (the number of layers), got ${segments}`);
  }
  const base = Math.floor(layers / segments);
  const extra = layers % segments;
  return Array.from({ length: segments }, (_, i) => base + (i < extra ? 1 : 0));
}

/** The engine's gradient tape; a nested gradient computation replaces it, so it is put back. */
interface TapeState {
  state: { activeTape: unknown };
}

/**
 * One segment: a Layer that runs `inner` layers in order, forward without a tape, backward by
 * recomputing them. It shares (does not own) the inner layers' weights: disposing it leaves them.
 */
export class CheckpointedSegment extends tf.layers.Layer {
  /** Keras-style class name. */
  static readonly className = 'CheckpointedSegment';
  /** The layers this segment runs, in order. */
  readonly inner: readonly tf.layers.Layer[];
  private readonly differentiateInput: boolean;

  constructor(inner: readonly tf.layers.Layer[], config: { name: string; differentiateInput: boolean; batchInputShape?: (number | null)[] }) {
    super({ name: config.name, ...(config.batchInputShape ? { batchInputShape: config.batchInputShape } : {}) });
    if (inner.length === 0) throw new Error(`checkpointed: segment '${config.name}' has no layers`);
    for (const l of inner) {
      if (IMPURE_LAYERS.has(l.getClassName())) {
        throw new Error(`checkpointed: layer '${l.name}' (${l.getClassName()}) does not repeat itself when recomputed; checkpoint only pure layers (Dense, Conv2D, pooling, Flatten, activations)`);
      }
      if (!l.built) throw new Error(`checkpointed: layer '${l.name}' is not built yet (build the model first, e.g. give it an inputShape)`);
    }
    this.inner = inner;
    this.differentiateInput = config.differentiateInput;
    this.built = true;
  }

  /** The inner layers' trainable weights (shared). */
  override get trainableWeights(): tf.LayerVariable[] {
    return this.trainable ? this.inner.flatMap((l) => l.trainableWeights) : [];
  }

  override set trainableWeights(_weights: tf.LayerVariable[]) {
    // Segments own no weights of their own; the inner layers keep theirs.
  }

  /** The inner layers' non-trainable weights (shared). */
  override get nonTrainableWeights(): tf.LayerVariable[] {
    return this.inner.flatMap((l) => (this.trainable ? l.nonTrainableWeights : l.weights));
  }

  override set nonTrainableWeights(_weights: tf.LayerVariable[]) {
    // See trainableWeights.
  }

  /** The output shape after every inner layer. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return this.inner.reduce((shape, l) => l.computeOutputShape(shape), inputShape);
  }

  /** Runs the segment; under a gradient tape, through `tf.customGrad` (see the module notes). */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const run = (h: tf.Tensor) => this.inner.reduce((a, l) => l.apply(a, kwargs) as tf.Tensor, h);
    const weights = this.inner.flatMap((l) => l.trainableWeights.map((w) => w.read()));
    if (weights.length === 0 && !this.differentiateInput) return run(x);
    const withInput = this.differentiateInput;
    const forward = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      save([x]);
      return {
        value: run(x),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => recompute(run, saved[0], weights, withInput, dy),
      };
    });
    return forward(...(withInput ? [x, ...weights] : weights));
  }

  /** The inner layers' weights belong to the model they came from: nothing to dispose here. */
  protected override disposeWeights(): number {
    return 0;
  }
}

/**
 * The backward pass of one segment: run it again from its saved input under a fresh tape and
 * return the gradients of [input?, ...weights] for `dy`. The outer backward pass is walking its
 * own tape meanwhile; a nested `tf.grads` at gradient depth 0 replaces the engine's tape (and
 * clears it when done), so the outer one is put back afterwards.
 */
function recompute(run: (h: tf.Tensor) => tf.Tensor, x: tf.Tensor, weights: tf.Tensor[], withInput: boolean, dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as TapeState;
  const outer = engine.state.activeTape;
  try {
    if (withInput) return tf.grads((h: tf.Tensor) => run(h))([x, ...weights], dy);
    return tf.grads(() => run(x))(weights, dy);
  } finally {
    engine.state.activeTape = outer;
  }
}

/**
 * A model that trains like `source` while keeping only each segment's input for the backward
 * pass (gradient checkpointing). `source` is a built model or its layers, in order (a stack:
 * each layer's output is the next one's input). The result is a `tf.Sequential` of
 * {@link CheckpointedSegment}s that **shares** the source's weights: train either, and the
 * other sees the update; dispose the source, not the checkpointed model. It works with
 * `optimizer.minimize`, `train.trainLoop` and `compile` + `fit`; it cannot be saved (use the
 * source for that).
 */
export function checkpointed(source: tf.LayersModel | readonly tf.layers.Layer[], options: CheckpointOptions = {}): tf.Sequential {
  const isModel = source instanceof tf.LayersModel;
  const layers = (isModel ? source.layers : [...source]).filter((l) => l.getClassName() !== 'InputLayer');
  if (layers.length === 0) throw new Error('checkpointed: no layers to checkpoint');
  const inputShape = isModel ? source.inputs[0].shape : layers[0].batchInputShape;
  if (!inputShape) throw new Error(`checkpointed: the first layer '${layers[0].name}' has no input shape (pass the built model instead)`);
  const segments = options.segments === undefined || options.segments === 'sqrt' ? Math.max(1, Math.round(Math.sqrt(layers.length))) : options.segments;
  const sizes = segmentSizes(layers.length, segments);
  const model = tf.sequential({ name: `${isModel ? source.name : 'layers'}_checkpointed_${segments}` });
  let start = 0;
  sizes.forEach((n, i) => {
    model.add(new CheckpointedSegment(layers.slice(start, start + n), {
      name: `${model.name}_segment_${i}`,
      differentiateInput: i > 0 || (options.inputGradient ?? false),
      ...(i === 0 ? { batchInputShape: [...inputShape] } : {}),
    }));
    start += n;
  });
  return model;
}
