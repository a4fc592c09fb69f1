/**
 * Writing images as a class-per-folder PNG tree (`dir/<NN_class>/<index>.png`), the input
 * `imageDirectory.flowFromDirectory` streams: any image set ({@link writeImageTree}) or
 * Fashion-MNIST / its stand-in ({@link writeFashionMnistTree}). Every file is written atomically
 * and a complete tree is reused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../fsutil';
import { dataDir } from '../env';
import { loadFashionMnist, type FashionMnist } from './fashion-mnist';
import type { ImageSet } from './image-set';

/** What {@link writeImageTree} did. */
export interface ImageTreeInfo {
  dir: string;
  /** Class folder names in label order. */
  classDirs: string[];
  /** Images in the tree. */
  count: number;
  /** True when a complete tree with the same content key was already there. */
  reused: boolean;
  /** Bytes of all PNG files. */
  bytes: number;
}

/** A class folder name that sorts in label order and is safe on every file system: `3_Dress`. */
export function classFolderName(index: number, name: string, classes: number): string {
  const width = String(Math.max(classes - 1, 0)).length;
  return `${String(index).padStart(width, '0')}_${name.replace(/[^A-Za-z0-9._-]+/g, '-')}`;
}

/**
 * Write the first `limit` images of a set as `dir/<NN_class>/<index>.png` (one PNG each, encoded
 * by sharp, every file written atomically), so a class-per-folder tree exists to stream. A marker
 * file written last makes a later call with the same `key` reuse the complete tree; a partial
 * tree (interrupted run) is rewritten.
 */
export async function writeImageTree(set: ImageSet, classNames: readonly string[], dir: string, options: { limit?: number; key?: string; concurrency?: number } = {}): Promise<ImageTreeInfo> {
  const count = Math.min(options.limit ?? set.count, set.count);
  const channels = set.channels ?? 1;
  const pixels = set.height * set.width * channels;
  if (set.images.length < count * pixels) throw new Error(`writeImageTree: images hold ${set.images.length} bytes, need ${count * pixels} for ${count} images`);
  const classDirs = classNames.map((c, i) => classFolderName(i, c, classNames.length));
  const key = `${options.key ?? 'images'}:${count}:${set.height}x${set.width}x${channels}:${classDirs.join('|')}`;
  const marker = path.join(dir, '.gpulab-tree.json');
  try {
    const m = JSON.parse(fs.readFileSync(marker, 'utf8')) as { key?: string; bytes?: number };
    if (m.key === key) return { dir, classDirs, count, reused: true, bytes: m.bytes ?? 0 };
  } catch {
    /* no complete tree yet */
  }
  fs.rmSync(marker, { force: true });
  for (const d of classDirs) fs.mkdirSync(path.join(dir, d), { recursive: true });
  let bytes = 0;
  let next = 0;
  const digits = String(Math.max(count - 1, 0)).length;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const label = Number(set.labels[i]);
      if (!(label >= 0 && label < classNames.length)) throw new Error(`writeImageTree: image ${i} has label ${label}, outside 0..${classNames.length - 1}`);
      const png = await sharp(Buffer.from(set.images.buffer, set.images.byteOffset + i * pixels, pixels), {
        raw: { width: set.width, height: set.height, channels: channels as 1 | 3 | 4 },
      }).png().toBuffer();
      writeFileAtomic(path.join(dir, classDirs[label], `${String(i).padStart(digits, '0')}.png`), png);
      bytes += png.byteLength;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  writeFileAtomic(marker, JSON.stringify({ key, count, classDirs, bytes, written: new Date().toISOString() }) + '\n');
  return { dir, classDirs, count, reused: false, bytes };
}

/** Options of {@link writeFashionMnistTree}. */
export interface FashionMnistTreeOptions {
  /** Which set (default `train`). */
  split?: 'train' | 'test';
  /** Write only the first `limit` images (default all). */
  limit?: number;
  /** Target folder (default `<data dir>/fashion-mnist-png/<source>/<split>-<count>`). */
  dir?: string;
  /** An already loaded dataset (default: `loadFashionMnist()`, real or the stand-in). */
  ds?: FashionMnist;
}

/**
 * Write Fashion-MNIST (or the generated stand-in, whichever the data layer provides) as a
 * class-per-folder PNG tree (`0_T-shirt-top/00042.png` …) with {@link writeImageTree}, so there is
 * a real directory to stream. Reuses a complete tree; the folder name says which data it holds.
 */
export async function writeFashionMnistTree(options: FashionMnistTreeOptions = {}): Promise<ImageTreeInfo & { source: FashionMnist['source']; label: string }> {
  const ds = options.ds ?? (await loadFashionMnist());
  const split = options.split ?? 'train';
  const set = ds[split];
  const count = Math.min(options.limit ?? set.count, set.count);
  const dir = options.dir ?? path.join(dataDir(), 'fashion-mnist-png', ds.source, `${split}-${count}`);
  const info = await writeImageTree(set, ds.classNames, dir, { limit: count, key: `${ds.source}:${split}` });
  return { ...info, source: ds.source, label: ds.label };
}
