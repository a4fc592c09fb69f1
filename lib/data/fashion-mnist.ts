/**
 * Fashion-MNIST in one call: the real data from its official URLs (checksummed, cached under
 * `data/fashion-mnist/`), or, where it is absent and cannot be downloaded, a generated stand-in
 * with the same shapes, written as real IDX .gz files and read back through the same parser.
 *
 * ```ts
 * const ds = await data.loadFashionMnist();   // real if cached/downloadable, else the stand-in
 * ds.source                                   // 'fashion-mnist' or 'generated-stand-in' (and ds.reason)
 * ds.train.images.length                      // 60000 * 784
 * ```
 *
 * The loader returns the facts and prints nothing; the notebook layer shows them
 * (`nb.announce(ds)`: a visible notice when it is the stand-in).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dataDir } from '../env';
import { writeFileAtomic } from '../fsutil';
import { readIdxFile, writeIdxFile } from './idx';
import { mixSeed, mulberry32 } from '../random';
import type { ImageSet } from './image-set';
import { generateImages } from './stand-in';

/** The ten Fashion-MNIST classes, indexed by label. */
export const CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

/** Where a {@link FashionMnist} came from. */
export type FashionMnistSource = 'fashion-mnist' | 'generated-stand-in';

/** The loaded dataset: train and test sets, class names, and where it came from. */
export interface FashionMnist {
  /** 60,000 training images. */
  train: ImageSet;
  /** 10,000 test images. */
  test: ImageSet;
  classNames: readonly string[];
  source: FashionMnistSource;
  /** Human label for charts and notices. */
  label: string;
  /** The cache folder the files came from. */
  dir: string;
  /** Why the stand-in is in use (absent for the real data), e.g. the download error. */
  reason?: string;
}

/** One of the four official files with its published MD5 checksum and size. */
export interface FashionMnistFile {
  name: string;
  md5: string;
  bytes: number;
}

/** The four official files (names, MD5s and sizes as published in zalandoresearch/fashion-mnist). */
export const FASHION_MNIST_FILES: readonly FashionMnistFile[] = Object.freeze([
  { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d', bytes: 26421880 },
  { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe', bytes: 29515 },
  { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79', bytes: 4422102 },
  { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310', bytes: 5148 },
]);

/** The official download locations, tried in order: the published S3 site, then the GitHub repository. */
export const FASHION_MNIST_MIRRORS: readonly string[] = Object.freeze([
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
]);

/** The human label of the real data. */
export const REAL_LABEL = 'Fashion-MNIST';
/** The human label of the stand-in, used in notices and chart subtitles. */
export const STAND_IN_LABEL = 'generated stand-in (not Fashion-MNIST)';
/** The default stand-in seed. */
export const STAND_IN_SEED = 42;
/** Bumped whenever the generator changes, so stale cached stand-ins are not reused. */
export const STAND_IN_VERSION = 1;

const TRAIN_FILES = { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' };
const TEST_FILES = { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' };

/** The default cache folder of the real data: `<dataDir>/fashion-mnist`. */
export function defaultFashionMnistDir(): string {
  return path.join(dataDir(), 'fashion-mnist');
}

/** The cache folder of the stand-in for a seed: `<dataDir>/fashion-mnist-stand-in/v<version>-seed<seed>`. */
export function defaultStandInDir(seed = STAND_IN_SEED): string {
  return path.join(dataDir(), 'fashion-mnist-stand-in', `v${STAND_IN_VERSION}-seed${seed}`);
}

/** Hex MD5 of bytes. */
export function md5Hex(bytes: Uint8Array): string {
  return crypto.createHash('md5').update(bytes).digest('hex');
}

/**
 * Read an images file and a labels file (gzip'd IDX) into an {@link ImageSet}, checking that
 * images are 3-D, labels 1-D, the counts agree, and every label is 0–9.
 */
export function readImageSet(imagesFile: string, labelsFile: string, expectCount?: number): ImageSet {
  const imgs = readIdxFile(imagesFile, { ndims: 3, dims: [expectCount ?? null, null, null] });
  const labs = readIdxFile(labelsFile, { ndims: 1, dims: [expectCount ?? null] });
  const [count, height, width] = imgs.dims;
  if (labs.dims[0] !== count) {
    throw new Error(
      `${labelsFile}: label/image count mismatch: ${labs.dims[0]} labels, but ${imagesFile} holds ${count} images`,
    );
  }
  for (let i = 0; i < labs.data.length; i++) {
    if (labs.data[i] > 9) {
      throw new Error(`${labelsFile}: label ${labs.data[i]} at index ${i} is outside 0–9`);
    }
  }
  return { images: imgs.data, labels: labs.data, count, height, width };
}

function hasAll(dir: string, names: readonly string[]): boolean {
  return names.every((n) => fs.existsSync(path.join(dir, n)));
}

function readPair(dir: string): { train: ImageSet; test: ImageSet } {
  return {
    train: readImageSet(path.join(dir, TRAIN_FILES.images), path.join(dir, TRAIN_FILES.labels)),
    test: readImageSet(path.join(dir, TEST_FILES.images), path.join(dir, TEST_FILES.labels)),
  };
}

/** Options for {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected MD5 (hex); a mismatch deletes the download and throws. */
  md5?: string;
  /** Abort when no bytes arrive for this long (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Download `url` to `dest` atomically: the bytes go to a temp file beside `dest`, are checked
 * against `md5`, then renamed into place. On any failure the temp file is removed and the
 * Error says which URL failed and why; `dest` is never left half-written.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<void> {
  const idle = options.idleTimeoutMs ?? 30_000;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.download.tmp`;
  const ctrl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new Error(`no data for ${idle} ms`)), idle);
  };
  try {
    arm();
    let res: Response;
    try {
      res = await fetch(url, { signal: ctrl.signal });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      throw new Error(`download of ${url} failed: ${why} (offline, or the host is unreachable)`, { cause: err });
    }
    if (!res.ok || !res.body) throw new Error(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`);
    const hash = crypto.createHash('md5');
    const fd = fs.openSync(tmp, 'w');
    let received = 0;
    try {
      const reader = res.body.getReader();
      for (;;) {
        arm();
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          throw new Error(`download of ${url} failed after ${received} bytes: ${(err as Error).message}`, { cause: err });
        }
        if (chunk.done) break;
        hash.update(chunk.value);
        fs.writeSync(fd, chunk.value);
        received += chunk.value.length;
      }
    } finally {
      fs.closeSync(fd);
    }
    const md5 = hash.digest('hex');
    if (options.md5 && md5 !== options.md5.toLowerCase()) {
      throw new Error(
        `download of ${url} failed: checksum mismatch for ${path.basename(dest)} (MD5 ${md5}, expected ${options.md5}, ${received} bytes)`,
      );
    }
    fs.renameSync(tmp, dest);
  } finally {
    clearTimeout(timer);
    fs.rmSync(tmp, { force: true });
  }
}

/** Options for {@link downloadFashionMnist}. */
export interface FashionMnistDownloadOptions {
  /** Cache folder (default `data/fashion-mnist`). */
  dir?: string;
  /** Base URLs tried in order (default {@link FASHION_MNIST_MIRRORS}). */
  mirrors?: readonly string[];
  /** The files and checksums (default {@link FASHION_MNIST_FILES}). */
  files?: readonly FashionMnistFile[];
  /** Called with a progress line per file. */
  log?: (line: string) => void;
  /** Abort a file when no bytes arrive for this long (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Download the four official files into the cache (skipping files already there with the
 * right checksum), each verified against its published MD5 and written atomically. Each file
 * is tried from every mirror in turn; if all fail, throws an Error listing each mirror's reason.
 * On success it clears the record of a failed automatic download. Returns the cache folder.
 */
export async function downloadFashionMnist(options: FashionMnistDownloadOptions = {}): Promise<string> {
  const dir = options.dir ?? defaultFashionMnistDir();
  const mirrors = options.mirrors ?? FASHION_MNIST_MIRRORS;
  const files = options.files ?? FASHION_MNIST_FILES;
  const log = options.log ?? (() => {});
  for (const f of files) {
    const dest = path.join(dir, f.name);
    if (fs.existsSync(dest) && md5Hex(fs.readFileSync(dest)) === f.md5) {
      log(`${f.name}: cached, checksum ok`);
      continue;
    }
    const errors: string[] = [];
    let ok = false;
    for (const base of mirrors) {
      const url = base.endsWith('/') ? base + f.name : `${base}/${f.name}`;
      // one retry when a reused connection was reset (a stale keep-alive socket)
      for (let attempt = 0; attempt < 2 && !ok; attempt++) {
        try {
          await downloadFile(url, dest, { md5: f.md5, idleTimeoutMs: options.idleTimeoutMs });
          log(`${f.name}: downloaded from ${url}, MD5 ${f.md5} ok`);
          ok = true;
        } catch (err) {
          const msg = (err as Error).message;
          if (attempt === 0 && /ECONNRESET|UND_ERR_SOCKET|other side closed/.test(msg)) continue;
          errors.push(msg);
          break;
        }
      }
      if (ok) break;
    }
    if (!ok) throw new Error(`Could not download Fashion-MNIST file ${f.name}:\n  ${errors.join('\n  ')}`);
  }
  fs.rmSync(path.join(dir, DOWNLOAD_FAILED_FILE), { force: true });
  return dir;
}

/** Options for {@link writeStandIn} and {@link generateStandIn}. */
export interface StandInOptions {
  seed?: number;
  /** Training images (default 60,000). */
  trainCount?: number;
  /** Test images (default 10,000). */
  testCount?: number;
}

/**
 * Generate the stand-in in memory (no files): `trainCount` train and `testCount` test images,
 * deterministic from `seed` (train and test use different streams).
 */
export function generateStandIn(options: StandInOptions = {}): { train: ImageSet; test: ImageSet } {
  const seed = options.seed ?? STAND_IN_SEED;
  const mk = (count: number, salt: number): ImageSet => {
    return generateImages(count, mixSeed(seed, salt));
  };
  return { train: mk(options.trainCount ?? 60000, 1), test: mk(options.testCount ?? 10000, 2) };
}

/**
 * Generate the stand-in and write it into `dir` as the four Fashion-MNIST IDX .gz file names
 * (each written atomically), plus a `stand-in.json` marker written last. Returns `dir`.
 */
export function writeStandIn(dir: string, options: StandInOptions = {}): string {
  const { train, test } = generateStandIn(options);
  writeIdxFile(path.join(dir, TRAIN_FILES.images), [train.count, 28, 28], train.images);
  writeIdxFile(path.join(dir, TRAIN_FILES.labels), [train.count], train.labels);
  writeIdxFile(path.join(dir, TEST_FILES.images), [test.count, 28, 28], test.images);
  writeIdxFile(path.join(dir, TEST_FILES.labels), [test.count], test.labels);
  const marker = {
    generator: 'gpulab Fashion-MNIST stand-in',
    version: STAND_IN_VERSION,
    seed: options.seed ?? STAND_IN_SEED,
    trainCount: train.count,
    testCount: test.count,
  };
  writeFileAtomic(path.join(dir, 'stand-in.json'), JSON.stringify(marker, null, 2) + '\n');
  return dir;
}

/**
 * The stand-in's cache folder, generated and written once if missing (a few seconds), then
 * reused. The files are IDX .gz exactly like the real ones.
 */
export function ensureStandIn(options: StandInOptions & { dir?: string } = {}): string {
  const dir = options.dir ?? defaultStandInDir(options.seed ?? STAND_IN_SEED);
  const names = [TRAIN_FILES.images, TRAIN_FILES.labels, TEST_FILES.images, TEST_FILES.labels, 'stand-in.json'];
  if (!hasAll(dir, names)) writeStandIn(dir, options);
  return dir;
}

/** Options for {@link loadFashionMnist}. */
export interface LoadFashionMnistOptions {
  /** Cache folder of the real data (default `data/fashion-mnist`). */
  dir?: string;
  /**
   * `true`: try to download the real data when it is not cached. `false`: never. Unset (the
   * default): try, unless an attempt failed in the last {@link DOWNLOAD_RETRY_MS} (recorded in
   * `<dir>/.download-failed.json`), so offline notebooks do not retry on every run.
   */
  download?: boolean;
  /** Stand-in seed (default 42). */
  seed?: number;
  /** Where the stand-in is cached (default `data/fashion-mnist-stand-in/v<version>-seed<seed>`). */
  standInDir?: string;
  /** Download mirrors (for tests; default the official ones). */
  mirrors?: readonly string[];
}

/** How long an automatic download attempt is skipped after one failed (1 hour). */
export const DOWNLOAD_RETRY_MS = 60 * 60 * 1000;
/** The file in the cache folder recording the last failed automatic download. */
export const DOWNLOAD_FAILED_FILE = '.download-failed.json';

function recentFailure(dir: string): { at: string; error: string } | null {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(dir, DOWNLOAD_FAILED_FILE), 'utf8')) as { at: string; error: string };
    return Date.now() - Date.parse(rec.at) < DOWNLOAD_RETRY_MS ? rec : null;
  } catch {
    return null;
  }
}

/**
 * Real Fashion-MNIST from the cache (or downloaded when `download` is true and the network
 * works); otherwise the generated stand-in (created once from a seed, written as IDX .gz, parsed
 * back through the same reader). Corrupt cached real files throw rather than fall back silently.
 * When the stand-in is returned, `reason` says why.
 */
export async function loadFashionMnist(opts: LoadFashionMnistOptions = {}): Promise<FashionMnist> {
  const dir = opts.dir ?? defaultFashionMnistDir();
  const real = FASHION_MNIST_FILES.map((f) => f.name);
  let reason = `the real files are not in ${dir} (download disabled)`;
  if (!hasAll(dir, real) && opts.download !== false) {
    const failed = opts.download === undefined ? recentFailure(dir) : null;
    if (failed) {
      reason = `the real data is not cached in ${dir} and could not be downloaded at ${failed.at} (${failed.error}); not retried for an hour (npm run data:fetch retries now)`;
    } else {
      try {
        await downloadFashionMnist({ dir, mirrors: opts.mirrors, idleTimeoutMs: 20_000 });
      } catch (err) {
        const msg = (err as Error).message;
        const first = msg.split('\n')[1]?.trim() ?? msg;
        reason = `the real data is not cached in ${dir} and could not be downloaded (${first})`;
        try {
          writeFileAtomic(path.join(dir, DOWNLOAD_FAILED_FILE), JSON.stringify({ at: new Date().toISOString(), error: first }) + '\n');
        } catch {
          /* a read-only cache only costs a retry next time */
        }
      }
    }
  }
  if (hasAll(dir, real)) {
    return { ...readPair(dir), classNames: CLASS_NAMES, source: 'fashion-mnist', label: REAL_LABEL, dir };
  }
  const seed = opts.seed ?? STAND_IN_SEED;
  const sdir = ensureStandIn({ seed, dir: opts.standInDir });
  return {
    ...readPair(sdir),
    classNames: CLASS_NAMES,
    source: 'generated-stand-in',
    label: STAND_IN_LABEL,
    dir: sdir,
    reason,
  };
}

/**
 * The first n examples (or a seeded random n) of a set, as a new ImageSet (copies n·784 bytes).
 * `classes` keeps only those labels (in their original order). `n` larger than what is
 * available is clamped to it.
 */
export function subset(set: ImageSet, n: number, opts: { seed?: number; classes?: number[] } = {}): ImageSet {
  if (!Number.isInteger(n) || n < 0) throw new Error(`subset: n must be a non-negative integer, got ${n}`);
  let idx: number[] = [];
  const keep = opts.classes ? new Set(opts.classes) : null;
  for (let i = 0; i < set.count; i++) if (!keep || keep.has(set.labels[i])) idx.push(i);
  if (opts.seed !== undefined) {
    const rand = mulberry32(mixSeed(opts.seed, 0x5eb5e7));
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
  }
  idx = idx.slice(0, Math.min(n, idx.length));
  const px = set.height * set.width;
  const images = new Uint8Array(idx.length * px);
  const labels = new Uint8Array(idx.length);
  idx.forEach((src, k) => {
    images.set(set.images.subarray(src * px, (src + 1) * px), k * px);
    labels[k] = set.labels[src];
  });
  return { images, labels, count: idx.length, height: set.height, width: set.width };
}
