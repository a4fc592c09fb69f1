/**
 * A TypeScript `flow_from_directory`: stream images from `dir/<class>/*.png|jpg…` as batches,
 * decoded and resized with sharp (libvips, shipped as a binary inside the npm package), as a
 * tfjs-data Dataset for `model.fitDataset`. Only a bounded number of batches is ever decoded at
 * once, so memory stays flat however many images the folder holds.
 *
 * ```ts
 * const flow = await imageDirectory.flowFromDirectory('data/train', {
 *   targetSize: [150, 150], rescale: 1 / 255, batchSize: 32, classMode: 'binary' });
 * console.log(flow.summary());          // "Found 2000 images belonging to 2 classes."
 * await model.fitDataset(flow.toDataset(), { epochs: 10 });
 * ```
 *
 * **Bad input, case by case** (the stream never dies silently mid-epoch):
 *
 * | case | handling |
 * |---|---|
 * | missing directory, a file instead of a directory, no class folders | `Error` at creation, naming the path |
 * | `classes` option naming a folder that does not exist | `Error` at creation |
 * | empty class folder (no image files) | kept in the class mapping (indices must not shift), counted in `report.emptyClasses`, one warning; `Error` only if *every* class is empty |
 * | non-image file (`.txt`, `.DS_Store`, `.bmp` and other formats sharp cannot read) | skipped at listing time, counted and listed in `report.nonImageFiles` |
 * | corrupt / truncated / unreadable image (found while decoding) | `onBadImage: 'skip'` (default): skipped, the batch is topped up from the next files, counted in `report.skipped` with the file and sharp's message, one warning per file, and left out of later epochs; `'throw'`: the epoch's iterator rejects with an `Error` naming the file, so `fitDataset` rejects |
 * | more than `maxSkipFraction` of an epoch's files bad | the iterator rejects with an `Error` listing them (a folder of mostly broken files is not "data") |
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../random';
import type { ImageSet } from './image-set';

/** How labels come out: one-hot `[b, classes]`, `[b, 1]` 0/1 for two classes, or `[b]` class indices. */
export type ClassMode = 'categorical' | 'binary' | 'sparse';

/** Random augmentation applied per image (training only; Keras `ImageDataGenerator` options). */
export interface AugmentOptions {
  /** Mirror left-right with probability 0.5. */
  horizontalFlip?: boolean;
  /** Rotate by a uniform random angle in [−r, r] degrees. */
  rotationRange?: number;
  /** Zoom by a uniform random factor per axis in [1 − z, 1 + z] (or [lo, hi]); < 1 zooms in. */
  zoomRange?: number | [number, number];
}

/** Options of {@link flowFromDirectory} (Keras names, camel-cased). */
export interface ImageDirectoryOptions {
  /** Output `[height, width]`; every image is resized to it (aspect not kept, like Keras). Default [256, 256]. */
  targetSize?: [number, number];
  /** `grayscale` (1 channel) or `rgb` (3). Default `rgb`. */
  colorMode?: 'grayscale' | 'rgb';
  /** Multiply pixel values (0..255) by this, e.g. 1/255. Default 1. */
  rescale?: number;
  /** Added after `rescale` (like `tf.keras.layers.Rescaling(scale, offset)`): `rescale: 1/127.5, offset: -1` maps to [−1, 1]. Default 0. */
  offset?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default `categorical`. `binary` needs exactly two classes. */
  classMode?: ClassMode;
  /** Class folder names, in label order. Default: every sub-folder, sorted. */
  classes?: string[];
  /** Reshuffle the files every epoch (from `seed` + epoch). Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle and the augmentation. Default 0. */
  seed?: number;
  /** Fraction of each class (its first files, sorted, as Keras does) reserved for validation. Default 0. */
  validationSplit?: number;
  /** Which side of `validationSplit` to stream. Default `training`. */
  subset?: 'training' | 'validation';
  /** Random augmentation, applied only when `subset` is `training` (Keras also augments the validation subset, a known gotcha). */
  augment?: AugmentOptions;
  /** Resize kernel. Default `nearest` (Keras's default). */
  interpolation?: 'nearest' | 'bilinear' | 'bicubic';
  /** A corrupt image: skip it and report (default), or reject the epoch with an Error naming it. */
  onBadImage?: 'skip' | 'throw';
  /** Reject the epoch when more than this fraction of its files could not be decoded. Default 0.1. */
  maxSkipFraction?: number;
  /** Batches decoded ahead of the one being trained on. Default 1. */
  prefetch?: number;
  /** Images decoded in parallel (sharp runs them on libuv's thread pool). Default 4. */
  concurrency?: number;
  /** Called for every skipped image (default: one `console.warn` per file). */
  onSkip?: (skip: SkippedImage) => void;
}

/** An image listed for streaming. */
export interface ImageFile {
  /** Absolute path. */
  path: string;
  /** Index into `classNames`. */
  label: number;
}

/** An image that could not be decoded, and why. */
export interface SkippedImage {
  file: string;
  reason: string;
  /** The epoch it failed in. */
  epoch: number;
}

/** What the listing and the stream found: counted, never silent. */
export interface ImageDirectoryReport {
  /** Images per class after the split. */
  classCounts: Record<string, number>;
  /** Class folders holding no image file. */
  emptyClasses: string[];
  /** Files that are not images sharp can read (extension not png/jpg/jpeg/webp/gif/tif/tiff/avif). */
  nonImageFiles: string[];
  /** Images that failed to decode (each once). */
  skipped: SkippedImage[];
  /** Images decoded so far, over all epochs. */
  decoded: number;
  /** High-water mark of decoded pixel bytes (and batch arrays) held by the stream at once. */
  peakBufferedBytes: number;
}

/** A whole decoded folder, held in memory (the "load everything" approach): an ImageSet with its class names. */
export interface LoadedImages extends ImageSet {
  channels: number;
  classNames: string[];
}

/** Extensions the stream reads (what sharp's prebuilt binary decodes). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

// ---------------------------------------------------------------------------------------------
// helpers

function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h;
}

function shuffled(n: number, seed: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

function listFilesRecursive(dir: string, out: string[]): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) listFilesRecursive(p, out);
    else if (e.isFile()) out.push(p);
  }
}

/** Parameters of one image's random augmentation. */
export interface AugmentDraw {
  flip: boolean;
  /** Radians. */
  angle: number;
  zoomX: number;
  zoomY: number;
}

function drawAugment(a: AugmentOptions | undefined, r: () => number): AugmentDraw | null {
  if (!a || (!a.horizontalFlip && !a.rotationRange && !a.zoomRange)) return null;
  const z = a.zoomRange ?? 0;
  const [zlo, zhi] = Array.isArray(z) ? z : [1 - z, 1 + z];
  const rot = a.rotationRange ?? 0;
  return {
    flip: !!a.horizontalFlip && r() < 0.5,
    angle: rot ? ((r() * 2 - 1) * rot * Math.PI) / 180 : 0,
    zoomX: z ? zlo + r() * (zhi - zlo) : 1,
    zoomY: z ? zlo + r() * (zhi - zlo) : 1,
  };
}

/**
 * Warp one H×W×C uint8 image by an augmentation draw into `out` (float32, `value × scale + offset`),
 * with bilinear sampling and nearest-edge fill, as Keras's `apply_affine_transform` does:
 * source = R(angle)·Z(zoom)·(target − centre) + centre, then an optional left-right flip.
 */
export function applyAugment(src: Uint8Array, h: number, w: number, c: number, d: AugmentDraw, out: Float32Array, outOffset: number, scale: number, offset = 0): void {
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const cos = Math.cos(d.angle);
  const sin = Math.sin(d.angle);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const tx = (d.flip ? w - 1 - x : x) - cx;
      const ty = y - cy;
      const zx = tx * d.zoomX;
      const zy = ty * d.zoomY;
      let sx = cos * zx - sin * zy + cx;
      let sy = sin * zx + cos * zy + cy;
      sx = Math.min(Math.max(sx, 0), w - 1);
      sy = Math.min(Math.max(sy, 0), h - 1);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, w - 1);
      const y1 = Math.min(y0 + 1, h - 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = outOffset + (y * w + x) * c;
      for (let k = 0; k < c; k++) {
        const v00 = src[(y0 * w + x0) * c + k];
        const v01 = src[(y0 * w + x1) * c + k];
        const v10 = src[(y1 * w + x0) * c + k];
        const v11 = src[(y1 * w + x1) * c + k];
        out[o + k] = ((v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy) * scale + offset;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the iterator

/** Options after defaults and validation (internal to {@link flowFromDirectory}). */
export interface ResolvedImageDirectoryOptions {
  height: number;
  width: number;
  channels: 1 | 3;
  rescale: number;
  offset: number;
  batchSize: number;
  classMode: ClassMode;
  shuffle: boolean;
  seed: number;
  augment: AugmentOptions | undefined;
  kernel: 'nearest' | 'linear' | 'cubic';
  onBadImage: 'skip' | 'throw';
  maxSkipFraction: number;
  prefetch: number;
  concurrency: number;
  onSkip: (s: SkippedImage) => void;
}

/** One decoded batch on the host: `xs` float32 NHWC (rescaled, augmented), `labels` class indices, `bytes` held. */
export interface HostBatch {
  xs: Float32Array;
  labels: number[];
  bytes: number;
}

/**
 * Images of a class-per-folder directory, streamed as batches. Create it with
 * {@link flowFromDirectory}. Each epoch lists its files up front (cheap) and decodes only the
 * batches it is about to yield.
 */
export class ImageDirectoryIterator {
  /** The folder streamed. */
  readonly directory: string;
  /** Class names in label order. */
  readonly classNames: string[];
  /** Class name → label. */
  readonly classIndices: Record<string, number>;
  /** The images of this subset, in listing order (class, then file name). */
  readonly files: ImageFile[];
  /** Output `[height, width, channels]`. */
  readonly imageShape: [number, number, number];
  readonly batchSize: number;
  readonly classMode: ClassMode;
  /** What was found: empty classes, non-image files, skipped images, peak buffered bytes. */
  readonly report: ImageDirectoryReport;
  private readonly opt: ResolvedImageDirectoryOptions;
  private readonly bad = new Set<string>();
  private buffered = 0;
  private epochsStarted = 0;

  /** @internal use {@link flowFromDirectory}. */
  constructor(directory: string, classNames: string[], files: ImageFile[], report: ImageDirectoryReport, opt: ResolvedImageDirectoryOptions) {
    this.directory = directory;
    this.classNames = classNames;
    this.classIndices = Object.fromEntries(classNames.map((c, i) => [c, i]));
    this.files = files;
    this.report = report;
    this.opt = opt;
    this.imageShape = [opt.height, opt.width, opt.channels];
    this.batchSize = opt.batchSize;
    this.classMode = opt.classMode;
  }

  /** Number of images streamed per epoch (before any skips). */
  get samples(): number {
    return this.files.length;
  }

  /** Batches per epoch: ceil(samples / batchSize) (fewer if images are skipped). */
  get numBatches(): number {
    return Math.ceil(this.files.length / this.opt.batchSize);
  }

  /** Bytes of one full batch of `xs` (float32). */
  get batchBytes(): number {
    return this.opt.batchSize * this.opt.height * this.opt.width * this.opt.channels * 4;
  }

  /** Keras's line: "Found N images belonging to K classes." plus anything skipped. */
  summary(): string {
    const r = this.report;
    const extra = [
      r.nonImageFiles.length ? `${r.nonImageFiles.length} non-image file(s) ignored` : '',
      r.emptyClasses.length ? `empty class folder(s): ${r.emptyClasses.join(', ')}` : '',
      r.skipped.length ? `${r.skipped.length} corrupt image(s) skipped` : '',
    ].filter(Boolean);
    return `Found ${this.files.length} images belonging to ${this.classNames.length} classes.${extra.length ? ` (${extra.join('; ')})` : ''}`;
  }

  /** The order of file indices in epoch `epoch` (seeded shuffle, known-bad files left out). */
  order(epoch: number): number[] {
    const idx = this.opt.shuffle ? shuffled(this.files.length, mix(this.opt.seed, epoch)) : this.files.map((_, i) => i);
    return idx.filter((i) => !this.bad.has(this.files[i].path));
  }

  private hold(bytes: number): void {
    this.buffered += bytes;
    if (this.buffered > this.report.peakBufferedBytes) this.report.peakBufferedBytes = this.buffered;
  }

  private release(bytes: number): void {
    this.buffered -= bytes;
  }

  /** Decode one image to raw uint8 H×W×C at the target size; null (and a report entry) if it fails and skipping is on. */
  private async decode(file: ImageFile, epoch: number): Promise<Uint8Array | null> {
    const o = this.opt;
    try {
      let p = sharp(file.path, { failOn: 'warning' }).resize(o.width, o.height, { fit: 'fill', kernel: o.kernel });
      p = o.channels === 1 ? p.toColourspace('b-w').removeAlpha() : p.removeAlpha().toColourspace('srgb');
      const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.width !== o.width || info.height !== o.height || info.channels !== o.channels) {
        throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${o.width}×${o.height}×${o.channels}`);
      }
      this.hold(data.byteLength);
      this.report.decoded++;
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (err) {
      const reason = (err as Error).message;
      if (o.onBadImage === 'throw') throw new Error(`${file.path}: cannot decode image (${reason})`, { cause: err });
      if (!this.bad.has(file.path)) {
        this.bad.add(file.path);
        const s: SkippedImage = { file: file.path, reason, epoch };
        this.report.skipped.push(s);
        o.onSkip(s);
      }
      return null;
    }
  }

  /** Decode `indices` with at most `concurrency` in flight; results in order (null = skipped). */
  private async decodeMany(indices: number[], epoch: number): Promise<(Uint8Array | null)[]> {
    const out: (Uint8Array | null)[] = new Array(indices.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < indices.length) {
        const k = next++;
        out[k] = await this.decode(this.files[indices[k]], epoch);
      }
    };
    const workers = Array.from({ length: Math.min(this.opt.concurrency, indices.length) }, worker);
    const settled = await Promise.allSettled(workers);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      for (const d of out) if (d) this.release(d.byteLength);
      throw failed.reason;
    }
    return out;
  }

  /**
   * The host-side batches of one epoch (no tensors): `xs` float32 NHWC already rescaled and
   * augmented, `labels` class indices. Used by {@link epoch}; exposed so the decode cost can be
   * timed on its own. The consumer must call `done()` on each batch when it no longer needs it.
   */
  async *hostBatches(epochIndex: number): AsyncGenerator<HostBatch & { done: () => void }> {
    const o = this.opt;
    const order = this.order(epochIndex);
    if (order.length === 0 && this.files.length > 0) {
      throw new Error(`${this.directory}: every image of this subset failed to decode in an earlier epoch (${this.bad.size} skipped); nothing left to stream`);
    }
    const pixels = o.height * o.width * o.channels;
    let pos = 0;
    const nextBatch = async (): Promise<HostBatch | null> => {
      const picked: { raw: Uint8Array; label: number; draw: AugmentDraw | null }[] = [];
      while (picked.length < o.batchSize && pos < order.length) {
        const chunk = order.slice(pos, pos + o.batchSize - picked.length);
        pos += chunk.length;
        const raws = await this.decodeMany(chunk, epochIndex);
        raws.forEach((raw, k) => {
          if (!raw) return;
          const i = chunk[k];
          picked.push({ raw, label: this.files[i].label, draw: drawAugment(o.augment, mulberry32(mix(o.seed, epochIndex, i, 0x5eed))) });
        });
      }
      if (picked.length === 0) return null;
      const xs = new Float32Array(picked.length * pixels);
      this.hold(xs.byteLength);
      picked.forEach((p, b) => {
        if (p.draw) applyAugment(p.raw, o.height, o.width, o.channels, p.draw, xs, b * pixels, o.rescale, o.offset);
        else for (let k = 0; k < pixels; k++) xs[b * pixels + k] = p.raw[k] * o.rescale + o.offset;
        this.release(p.raw.byteLength);
      });
      return { xs, labels: picked.map((p) => p.label), bytes: xs.byteLength };
    };
    // prefetch: a chain of batch promises, each started when the previous one is decoded
    const queue: Promise<HostBatch | null>[] = [];
    const enqueue = () => {
      const prev = queue.length ? queue[queue.length - 1] : Promise.resolve(null as HostBatch | null);
      const p = prev.then(() => nextBatch());
      p.catch(() => undefined); // handled by the await below; never an unhandled rejection if abandoned
      queue.push(p);
    };
    enqueue();
    let yielded = 0;
    try {
      for (;;) {
        while (queue.length < 1 + o.prefetch) enqueue();
        const batch = await queue.shift()!;
        if (!batch) break;
        yielded += batch.labels.length;
        let released = false;
        yield {
          ...batch,
          done: () => {
            if (!released) this.release(batch.bytes);
            released = true;
          },
        };
        if (!released) this.release(batch.bytes);
      }
    } finally {
      // an abandoned epoch: wait for in-flight decodes, then drop what they hold
      for (const p of queue) {
        const b = await p.catch(() => null);
        if (b) this.release(b.bytes);
      }
    }
    const failedThisEpoch = this.report.skipped.filter((s) => s.epoch === epochIndex);
    if (order.length > 0 && (yielded === 0 || failedThisEpoch.length / order.length > o.maxSkipFraction)) {
      throw new Error(
        `${this.directory}: ${failedThisEpoch.length} of ${order.length} images could not be decoded in epoch ${epochIndex} ` +
          `(more than maxSkipFraction ${o.maxSkipFraction}): ${failedThisEpoch.slice(0, 5).map((s) => `${s.file} (${s.reason})`).join('; ')}${failedThisEpoch.length > 5 ? '; …' : ''}`,
      );
    }
  }

  private labelsTensor(labels: number[]): tf.Tensor {
    const n = this.classNames.length;
    if (this.opt.classMode === 'categorical') return tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), n).toFloat());
    if (this.opt.classMode === 'binary') return tf.tensor2d(labels, [labels.length, 1], 'float32');
    return tf.tensor1d(labels, 'float32');
  }

  /**
   * The batches of one epoch as tensors: `xs` `[b, height, width, channels]` float32 and `ys`
   * per `classMode`. The caller disposes them (fitDataset does).
   */
  async *epoch(epochIndex: number): AsyncGenerator<{ xs: tf.Tensor4D; ys: tf.Tensor }> {
    const o = this.opt;
    for await (const b of this.hostBatches(epochIndex)) {
      const xs = tf.tensor4d(b.xs, [b.labels.length, o.height, o.width, o.channels]);
      const ys = this.labelsTensor(b.labels);
      b.done();
      yield { xs, ys };
    }
  }

  /**
   * A tf.data.Dataset of `{xs, ys}` for `model.fitDataset`: every iteration is a new epoch,
   * reshuffled from `seed` + epoch number.
   */
  toDataset(): tf.data.Dataset<{ xs: tf.Tensor4D; ys: tf.Tensor }> {
    let live: AsyncGenerator<{ xs: tf.Tensor4D; ys: tf.Tensor }> | null = null;
    return tf.data.generator(() => {
      // a new iteration means the previous epoch is over (fitDataset with batchesPerEpoch stops
      // early): close it so its prefetched batches are released
      if (live) void live.return(undefined).catch(() => undefined);
      live = this.epoch(this.epochsStarted++);
      return live;
    });
  }

  /**
   * Decode every image into memory at once (what streaming avoids): one Uint8Array of
   * count × H × W × C pixels plus labels, in listing order. Corrupt images follow `onBadImage`.
   */
  async loadAll(): Promise<LoadedImages> {
    if (this.classNames.length > 256) throw new Error(`loadAll: ${this.classNames.length} classes do not fit uint8 labels`);
    const o = this.opt;
    const pixels = o.height * o.width * o.channels;
    const order = this.files.map((_, i) => i).filter((i) => !this.bad.has(this.files[i].path));
    const images = new Uint8Array(order.length * pixels);
    const labels = new Uint8Array(order.length);
    let count = 0;
    const chunk = Math.max(o.batchSize, o.concurrency * 8);
    for (let s = 0; s < order.length; s += chunk) {
      const part = order.slice(s, s + chunk);
      const raws = await this.decodeMany(part, -1);
      raws.forEach((raw, k) => {
        if (!raw) return;
        images.set(raw, count * pixels);
        labels[count++] = this.files[part[k]].label;
        this.release(raw.byteLength);
      });
    }
    return { images: count === order.length ? images : images.slice(0, count * pixels), labels: labels.slice(0, count), count, height: o.height, width: o.width, channels: o.channels, classNames: [...this.classNames] };
  }
}

/**
 * List `dir/<class>/…` and return an {@link ImageDirectoryIterator} streaming it in batches
 * (Keras's `ImageDataGenerator().flow_from_directory`). Throws, naming the path, when the folder
 * is missing, is not a folder, has no class folders, or holds no image at all; the other bad
 * inputs are counted in `report` (see the module documentation for the table).
 */
export async function flowFromDirectory(dir: string, options: ImageDirectoryOptions = {}): Promise<ImageDirectoryIterator> {
  const root = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch (err) {
    throw new Error(`${root}: image directory does not exist (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  if (!st.isDirectory()) throw new Error(`${root}: not a directory (flowFromDirectory needs a folder with one sub-folder per class)`);

  const [height, width] = options.targetSize ?? [256, 256];
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new Error(`flowFromDirectory: targetSize must be two positive integers [height, width], got ${JSON.stringify(options.targetSize)}`);
  }
  const batchSize = options.batchSize ?? 32;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`flowFromDirectory: batchSize must be a positive integer, got ${batchSize}`);
  const split = options.validationSplit ?? 0;
  if (!(split >= 0 && split < 1)) throw new Error(`flowFromDirectory: validationSplit must be in [0, 1), got ${split}`);
  const subset = options.subset ?? 'training';
  if (subset !== 'training' && subset !== 'validation') throw new Error(`flowFromDirectory: subset must be 'training' or 'validation', got '${String(subset)}'`);
  const classMode = options.classMode ?? 'categorical';
  if (!['categorical', 'binary', 'sparse'].includes(classMode)) throw new Error(`flowFromDirectory: classMode must be categorical, binary or sparse, got '${String(classMode)}'`);

  const subdirs = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const classNames = options.classes ? [...options.classes] : subdirs;
  if (classNames.length === 0) throw new Error(`${root}: no class sub-folders (expected ${root}/<class>/<image files>)`);
  for (const c of classNames) {
    if (!subdirs.includes(c)) throw new Error(`${path.join(root, c)}: class folder named in 'classes' does not exist`);
  }
  if (classMode === 'binary' && classNames.length !== 2) {
    throw new Error(`${root}: classMode 'binary' needs exactly 2 classes, found ${classNames.length} (${classNames.join(', ')})`);
  }

  const report: ImageDirectoryReport = { classCounts: {}, emptyClasses: [], nonImageFiles: [], skipped: [], decoded: 0, peakBufferedBytes: 0 };
  const files: ImageFile[] = [];
  classNames.forEach((c, label) => {
    const all: string[] = [];
    listFilesRecursive(path.join(root, c), all);
    const images: string[] = [];
    for (const f of all) {
      if (IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase())) images.push(f);
      else report.nonImageFiles.push(f);
    }
    if (images.length === 0) report.emptyClasses.push(c);
    const cut = Math.floor(split * images.length);
    const mine = subset === 'validation' ? images.slice(0, cut) : images.slice(cut);
    report.classCounts[c] = mine.length;
    for (const p of mine) files.push({ path: p, label });
  });
  if (report.emptyClasses.length === classNames.length) {
    throw new Error(`${root}: no image files in any class folder (${classNames.join(', ')}); readable extensions: ${IMAGE_EXTENSIONS.join(' ')}`);
  }
  if (report.emptyClasses.length) {
    console.warn(`flowFromDirectory: ${root}: empty class folder(s) kept in the class mapping: ${report.emptyClasses.join(', ')}`);
  }

  const warned = new Set<string>();
  const interp = options.interpolation ?? 'nearest';
  const resolved: ResolvedImageDirectoryOptions = {
    height,
    width,
    channels: (options.colorMode ?? 'rgb') === 'grayscale' ? 1 : 3,
    rescale: options.rescale ?? 1,
    offset: options.offset ?? 0,
    batchSize,
    classMode,
    shuffle: options.shuffle ?? true,
    seed: options.seed ?? 0,
    augment: subset === 'training' ? options.augment : undefined,
    kernel: interp === 'bilinear' ? 'linear' : interp === 'bicubic' ? 'cubic' : 'nearest',
    onBadImage: options.onBadImage ?? 'skip',
    maxSkipFraction: options.maxSkipFraction ?? 0.1,
    prefetch: Math.max(0, Math.floor(options.prefetch ?? 1)),
    concurrency: Math.max(1, Math.floor(options.concurrency ?? 4)),
    onSkip:
      options.onSkip ??
      ((s) => {
        if (warned.has(s.file)) return;
        warned.add(s.file);
        console.warn(`flowFromDirectory: skipped ${s.file}: ${s.reason}`);
      }),
  };
  return new ImageDirectoryIterator(root, classNames, files, report, resolved);
}

/**
 * Decode a whole class-per-folder directory into memory at once ({@link flowFromDirectory} then
 * {@link ImageDirectoryIterator.loadAll}): the "load everything" approach streaming avoids.
 */
export async function loadImageDirectory(dir: string, options: ImageDirectoryOptions = {}): Promise<LoadedImages> {
  const flow = await flowFromDirectory(dir, { ...options, shuffle: false });
  return flow.loadAll();
}

// Writing a tree lives in ./image-tree; re-exported so `imageDirectory.writeFashionMnistTree` keeps working.
export { writeImageTree, writeFashionMnistTree, classFolderName, type ImageTreeInfo, type FashionMnistTreeOptions } from './image-tree';
