/**
 * Batches for training: the article's normalisation, per-epoch seeded shuffling, batches for a
 * custom loop (`epoch()`), for `model.fitDataset` (`toDataset()`) and for `model.fit`
 * (`toTensors`), plus the two slow ways on purpose, for the notebooks that measure them:
 * the article's per-sample DataLoader (`naivePerSampleBatches`) and slicing one big tensor
 * (`sliceTensorBatches`, which on wasm copies the whole tensor for every batch).
 */
import * as tf from '@tensorflow/tfjs';
import { mixSeed, mulberry32 } from '../random';
import type { ImageSet } from './image-set';

/** The article's `transforms.Normalize((0.5,), (0.5,))` after `ToTensor()`: (x/255 − 0.5)/0.5. */
function normalizeOne(x: number): number {
  return (x / 255 - 0.5) / 0.5;
}

/** The normalised value of every byte 0..255 (float32), so batches are normalised by lookup. */
export const NORMALIZE_TABLE: Float32Array = Float32Array.from({ length: 256 }, (_, x) => normalizeOne(x));

/** (x/255 − 0.5)/0.5, like the article's transforms.Normalize((0.5,), (0.5,)). Writes into `out` when given. */
export function normalizePixels(pixels: Uint8Array, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(pixels.length);
  if (dst.length < pixels.length) {
    throw new Error(`normalizePixels: out has ${dst.length} elements, need ${pixels.length}`);
  }
  for (let i = 0; i < pixels.length; i++) dst[i] = NORMALIZE_TABLE[pixels[i]];
  return dst;
}

const normalizedCache = new WeakMap<Uint8Array, Float32Array>();

/**
 * The set's pixels normalised with {@link normalizePixels}, computed once per `images` array and
 * cached (weakly: dropped with the images). 4 bytes per pixel: 188 MB for 60,000 images.
 * Treat the result as read-only.
 */
export function normalizedPixelsOf(set: ImageSet): Float32Array {
  let out = normalizedCache.get(set.images);
  if (!out) {
    out = normalizePixels(set.images);
    normalizedCache.set(set.images, out);
  }
  return out;
}

/** Options for {@link BatchSource} and the other batch producers. */
export interface BatchOptions {
  batchSize: number;
  /** Reshuffle each epoch, from seed + epoch (default false). */
  shuffle?: boolean;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** ys as [b,10] one-hot float32 (default true) or [b] int32 labels. */
  oneHot?: boolean;
  /** xs as [b,784] (`'flat'`, default) or [b,28,28,1] (`'image'`). */
  shape?: 'flat' | 'image';
  /** Drop the last, smaller batch (default false). */
  dropRemainder?: boolean;
}

/** One batch: inputs and targets. */
export interface Batch {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

const NUM_CLASSES = 10;

function checkOptions(set: ImageSet, opts: BatchOptions, who: string): void {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw new Error(`${who}: batchSize must be a positive integer, got ${opts.batchSize}`);
  }
  if (set.images.length !== set.count * set.height * set.width) {
    throw new Error(`${who}: images hold ${set.images.length} bytes, expected ${set.count}×${set.height}×${set.width}`);
  }
  if (set.labels.length !== set.count) throw new Error(`${who}: ${set.labels.length} labels for ${set.count} images`);
}

/**
 * The example order of one epoch: 0..count-1, or, with `shuffle`, a Fisher–Yates permutation
 * seeded from (seed, epochIndex), so every epoch differs and every run repeats.
 */
export function epochOrder(count: number, opts: { shuffle?: boolean; seed?: number; epochIndex?: number }): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  if (opts.shuffle) {
    const rand = mulberry32(mixSeed(opts.seed ?? 0, opts.epochIndex ?? 0));
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  return order;
}

/** Number of batches of `count` examples. */
export function batchCount(count: number, batchSize: number, dropRemainder = false): number {
  return dropRemainder ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

function xsShape(b: number, set: ImageSet, shape: 'flat' | 'image' | undefined): number[] {
  return shape === 'image' ? [b, set.height, set.width, 1] : [b, set.height * set.width];
}

function labelsTensor(labels: ArrayLike<number>, oneHot: boolean): tf.Tensor {
  const b = labels.length;
  if (!oneHot) return tf.tensor1d(Int32Array.from(labels), 'int32');
  const y = new Float32Array(b * NUM_CLASSES);
  for (let i = 0; i < b; i++) y[i * NUM_CLASSES + labels[i]] = 1;
  return tf.tensor2d(y, [b, NUM_CLASSES]);
}

/**
 * Fast batches from a preloaded set. The set's pixels are normalised once into a Float32Array
 * (shared by every BatchSource over the same images: see {@link normalizedPixelsOf}); each batch
 * copies its rows from it into a fresh batch-sized Float32Array and becomes one tensor: no
 * per-sample tensors, no full-dataset tensor, no `slice` of a big tensor (which on wasm copies
 * all of it for every batch).
 *
 * ```ts
 * const src = new data.BatchSource(ds.train, { batchSize: 100, shuffle: true, seed: 1 });
 * for (const { xs, ys } of src.epoch(0)) { ...; xs.dispose(); ys.dispose(); }
 * await model.fitDataset(src.toDataset(), { epochs: 5 });
 * ```
 */
export class BatchSource {
  /** Batches per epoch. */
  readonly numBatches: number;
  private readonly set: ImageSet;
  private readonly opts: BatchOptions;
  private readonly pixels: Float32Array;

  constructor(set: ImageSet, opts: BatchOptions) {
    checkOptions(set, opts, 'BatchSource');
    this.set = set;
    this.opts = { ...opts };
    this.numBatches = batchCount(set.count, opts.batchSize, opts.dropRemainder);
    this.pixels = normalizedPixelsOf(set);
  }

  /** Examples per epoch (after dropping the remainder, when asked). */
  get numExamples(): number {
    return this.opts.dropRemainder ? this.numBatches * this.opts.batchSize : this.set.count;
  }

  /** The example indices of batch `b` of epoch `epochIndex` (for tests and inspection). */
  batchIndices(epochIndex: number, b: number): Uint32Array {
    const order = epochOrder(this.set.count, { ...this.opts, epochIndex });
    const start = b * this.opts.batchSize;
    return order.slice(start, Math.min(start + this.opts.batchSize, this.set.count));
  }

  /** Build one batch's tensors from example indices (host gather of normalised rows, one tensor each). */
  makeBatch(indices: ArrayLike<number>): Batch {
    const { set, pixels } = this;
    const px = set.height * set.width;
    const b = indices.length;
    const x = new Float32Array(b * px);
    const labels = new Uint8Array(b);
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      x.set(pixels.subarray(i * px, (i + 1) * px), k * px);
      labels[k] = set.labels[i];
    }
    return {
      xs: tf.tensor(x, xsShape(b, set, this.opts.shape), 'float32'),
      ys: labelsTensor(labels, this.opts.oneHot ?? true),
    };
  }

  /** Batches of one epoch; caller disposes xs/ys (or uses tf.tidy). Tensors are made lazily, one batch per step. */
  epoch(epochIndex: number): IterableIterator<Batch> {
    return this.epochBatches(epochIndex);
  }

  private *epochBatches(epochIndex: number): Generator<Batch, void, undefined> {
    const order = epochOrder(this.set.count, { ...this.opts, epochIndex });
    const bs = this.opts.batchSize;
    for (let b = 0; b < this.numBatches; b++) {
      const start = b * bs;
      yield this.makeBatch(order.subarray(start, Math.min(start + bs, this.set.count)));
    }
  }

  /**
   * A tf.data.Dataset of {xs, ys} for model.fitDataset: each iteration over it is one epoch,
   * reshuffled (epoch 0, 1, 2, … in iteration order). fitDataset disposes the batches.
   */
  toDataset(): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
    let epochIndex = 0;
    return tf.data.generator(() => this.epochBatches(epochIndex++) as Iterator<{ xs: tf.Tensor; ys: tf.Tensor }>);
  }
}

/**
 * The whole set as tensors, for model.fit(xs, ys): xs [n,784] or [n,28,28,1] normalised,
 * ys one-hot [n,10] float32 (or [n] int32 with `oneHot: false`). Caller disposes both.
 */
export function toTensors(
  set: ImageSet,
  opts: { oneHot?: boolean; shape?: 'flat' | 'image' } = {},
): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = tf.tensor(normalizePixels(set.images), xsShape(set.count, set, opts.shape), 'float32');
  return { xs, ys: labelsTensor(set.labels, opts.oneHot ?? true) };
}

/**
 * The article's DataLoader on purpose: per-sample transform on the host (ToTensor + Normalize
 * per image, one small tensor each), then stack into a batch. For notebooks 02 and 08 to show
 * the input-pipeline cost. Same order and values as {@link BatchSource} for the same options.
 */
export function naivePerSampleBatches(set: ImageSet, opts: BatchOptions & { epochIndex?: number }): IterableIterator<Batch> {
  checkOptions(set, opts, 'naivePerSampleBatches');
  return naiveGen(set, opts);
}

function* naiveGen(set: ImageSet, opts: BatchOptions & { epochIndex?: number }): Generator<Batch, void, undefined> {
  const order = epochOrder(set.count, opts);
  const bs = opts.batchSize;
  const n = batchCount(set.count, bs, opts.dropRemainder);
  const px = set.height * set.width;
  for (let b = 0; b < n; b++) {
    const idx = order.subarray(b * bs, Math.min((b + 1) * bs, set.count));
    yield tf.tidy(() => {
      const samples: tf.Tensor[] = [];
      const ys: tf.Tensor[] = [];
      for (const i of idx) {
        // ToTensor(): uint8 HxW -> float CxHxW in [0, 1]
        const pixels = tf.tensor3d(set.images.subarray(i * px, (i + 1) * px), [set.height, set.width, 1], 'int32');
        const scaled = tf.div(tf.cast(pixels, 'float32'), 255);
        // Normalize((0.5,), (0.5,))
        samples.push(tf.div(tf.sub(scaled, 0.5), 0.5));
        ys.push(tf.scalar(set.labels[i], 'int32'));
      }
      const stacked = tf.stack(samples);
      const xs = opts.shape === 'image' ? stacked : tf.reshape(stacked, [idx.length, px]);
      const labels = tf.stack(ys);
      return { xs, ys: (opts.oneHot ?? true) ? tf.cast(tf.oneHot(labels, NUM_CLASSES), 'float32') : labels };
    });
  }
}

/**
 * Batches sliced out of whole-set tensors (e.g. from {@link toTensors}): `tf.slice` per batch
 * in order, `tf.gather` per batch when shuffled. The obvious way, shown for comparison: on the
 * wasm backend each slice reads the whole source tensor. Does not dispose `xs`/`ys`.
 */
export function sliceTensorBatches(
  xs: tf.Tensor,
  ys: tf.Tensor,
  opts: { batchSize: number; shuffle?: boolean; seed?: number; epochIndex?: number; dropRemainder?: boolean },
): IterableIterator<Batch> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw new Error(`sliceTensorBatches: batchSize must be a positive integer, got ${opts.batchSize}`);
  }
  return sliceGen(xs, ys, opts);
}

function* sliceGen(
  xs: tf.Tensor,
  ys: tf.Tensor,
  opts: { batchSize: number; shuffle?: boolean; seed?: number; epochIndex?: number; dropRemainder?: boolean },
): Generator<Batch, void, undefined> {
  const count = xs.shape[0];
  const bs = opts.batchSize;
  const n = batchCount(count, bs, opts.dropRemainder);
  const order = opts.shuffle ? epochOrder(count, opts) : null;
  for (let b = 0; b < n; b++) {
    const start = b * bs;
    const size = Math.min(bs, count - start);
    if (order) {
      yield tf.tidy(() => {
        const idx = tf.tensor1d(Int32Array.from(order.subarray(start, start + size)), 'int32');
        return { xs: tf.gather(xs, idx), ys: tf.gather(ys, idx) };
      });
    } else {
      yield { xs: tf.slice(xs, start, size), ys: tf.slice(ys, start, size) };
    }
  }
}
