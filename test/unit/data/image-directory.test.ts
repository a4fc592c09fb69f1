import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as imageDirectory from '../../../lib/data/image-directory';
import { tempDir } from '../../support/helpers';

const { flowFromDirectory } = imageDirectory;

/**
 * Write a class-per-folder tree of grayscale PNGs. Pixel (0,0) holds the image's global index,
 * every other pixel holds 40·class + 10, so a batch tells which file and class each row came from.
 */
async function makeTree(dir: string, classes: Record<string, number>, size = 6, channels: 1 | 3 = 1): Promise<string[]> {
  const files: string[] = [];
  let index = 0;
  const names = Object.keys(classes);
  for (const [k, name] of names.entries()) {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < classes[name]; i++) {
      const px = Buffer.alloc(size * size * channels, 40 * k + 10);
      px[0] = index;
      const f = path.join(dir, name, `img${String(i).padStart(3, '0')}.png`);
      await sharp(px, { raw: { width: size, height: size, channels } }).png().toFile(f);
      files.push(f);
      index++;
    }
  }
  return files;
}

async function collect(flow: imageDirectory.ImageDirectoryIterator, epoch = 0) {
  const out: { shape: number[]; ids: number[]; cls: number[]; ys: number[][]; ysShape: number[] }[] = [];
  const [h, w, c] = flow.imageShape;
  for await (const { xs, ys } of flow.epoch(epoch)) {
    const x = xs.dataSync();
    const n = xs.shape[0];
    const per = h * w * c;
    out.push({
      shape: xs.shape,
      ids: Array.from({ length: n }, (_, i) => Math.round(x[i * per] / (flow as unknown as { opt: { rescale: number } }).opt.rescale)),
      cls: Array.from({ length: n }, (_, i) => Math.round((x[i * per + per - 1] / (flow as unknown as { opt: { rescale: number } }).opt.rescale - 10) / 40)),
      ys: (ys.arraySync() as number[] | number[][]).map((r) => (Array.isArray(r) ? r : [r])),
      ysShape: ys.shape,
    });
    tf.dispose([xs, ys]);
  }
  return out;
}

test('categorical batches: shapes, sorted class mapping, labels match the files, Keras summary', async () => {
  await useBackend('cpu');
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { cat: 5, ant: 3, bee: 4 });
    const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 5, shuffle: false });
    assert.deepEqual(flow.classNames, ['ant', 'bee', 'cat']);
    assert.deepEqual(flow.classIndices, { ant: 0, bee: 1, cat: 2 });
    assert.equal(flow.summary(), 'Found 12 images belonging to 3 classes.');
    assert.equal(flow.numBatches, 3);
    const batches = await collect(flow);
    assert.deepEqual(batches.map((b) => b.shape), [[5, 6, 6, 1], [5, 6, 6, 1], [2, 6, 6, 1]]);
    assert.deepEqual(batches.map((b) => b.ysShape), [[5, 3], [5, 3], [2, 3]]);
    // tree order: cat (class written first) has ids 0..4, ant 5..7, bee 8..11; listing is by sorted class
    assert.deepEqual(batches.flatMap((b) => b.ids), [5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4]);
    const written = { 0: 'cat', 1: 'ant', 2: 'bee' } as const;
    for (const b of batches) {
      b.ys.forEach((row, i) => {
        assert.equal(row.reduce((s, v) => s + v, 0), 1, 'one-hot');
        assert.equal(flow.classNames[row.indexOf(1)], written[b.cls[i] as 0 | 1 | 2]);
      });
    }
  } finally {
    cleanup();
  }
});

test('sparse and binary class modes; binary needs two classes', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { no: 3, yes: 4 });
    const sparse = await collect(await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 4, shuffle: false, classMode: 'sparse' }));
    assert.deepEqual(sparse.map((b) => b.ysShape), [[4], [3]]);
    assert.deepEqual(sparse.flatMap((b) => b.ys.map((r) => r[0])), [0, 0, 0, 1, 1, 1, 1]);
    const binary = await collect(await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 4, shuffle: false, classMode: 'binary' }));
    assert.deepEqual(binary.map((b) => b.ysShape), [[4, 1], [3, 1]]);
    assert.deepEqual(binary.flatMap((b) => b.ys.map((r) => r[0])), [0, 0, 0, 1, 1, 1, 1]);
    fs.mkdirSync(path.join(dir, 'maybe'));
    await sharp(Buffer.alloc(36, 1), { raw: { width: 6, height: 6, channels: 1 } }).png().toFile(path.join(dir, 'maybe', 'a.png'));
    await assert.rejects(flowFromDirectory(dir, { classMode: 'binary' }), /classMode 'binary' needs exactly 2 classes, found 3 \(maybe, no, yes\)/);
    await assert.rejects(flowFromDirectory(dir, { classMode: 'input' as 'binary' }), /classMode must be/);
  } finally {
    cleanup();
  }
});

test('seeded shuffle: each epoch is a permutation, reproducible from the seed, different per epoch', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { a: 10, b: 10, c: 10 });
    const opts = { targetSize: [6, 6] as [number, number], colorMode: 'grayscale' as const, batchSize: 7, seed: 42 };
    const ids = async (seed: number, epoch: number) => (await collect(await flowFromDirectory(dir, { ...opts, seed }), epoch)).flatMap((b) => b.ids);
    const e0 = await ids(42, 0);
    assert.deepEqual([...e0].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i), 'every image exactly once');
    assert.deepEqual(await ids(42, 0), e0, 'same seed and epoch → same order');
    assert.notDeepEqual(await ids(42, 1), e0, 'the next epoch is reshuffled');
    assert.notDeepEqual(await ids(7, 0), e0, 'another seed → another order');
    const flow = await flowFromDirectory(dir, opts);
    assert.deepEqual(flow.order(3), flow.order(3));
  } finally {
    cleanup();
  }
});

test('validationSplit: the first files of each class are validation, the rest training, disjoint', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { a: 10, b: 5 });
    const common = { targetSize: [6, 6] as [number, number], colorMode: 'grayscale' as const, validationSplit: 0.2, shuffle: false };
    const train = await flowFromDirectory(dir, { ...common, subset: 'training' });
    const val = await flowFromDirectory(dir, { ...common, subset: 'validation' });
    assert.deepEqual(val.report.classCounts, { a: 2, b: 1 });
    assert.deepEqual(train.report.classCounts, { a: 8, b: 4 });
    assert.deepEqual(val.files.map((f) => path.basename(f.path)), ['img000.png', 'img001.png', 'img000.png']);
    const t = new Set(train.files.map((f) => f.path));
    assert.ok(val.files.every((f) => !t.has(f.path)), 'no overlap');
    assert.equal(t.size + val.files.length, 15);
    await assert.rejects(flowFromDirectory(dir, { validationSplit: 1 }), /validationSplit must be in \[0, 1\)/);
  } finally {
    cleanup();
  }
});

test('rescale, rgb, resize, and the interpolation option', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { a: 2, b: 2 }, 10, 1);
    const flow = await flowFromDirectory(dir, { targetSize: [4, 6], rescale: 1 / 255, batchSize: 4, shuffle: false, interpolation: 'bilinear' });
    const [b] = await collect(flow);
    assert.deepEqual(b.shape, [4, 4, 6, 3]);
    const it = flow.epoch(0);
    const { value } = await it.next();
    const v = value!.xs.dataSync();
    assert.ok(Array.from(v as Float32Array).every((x) => x >= 0 && x <= 1), 'rescaled into [0, 1]');
    assert.ok(Math.abs(v[v.length - 1] - 50 / 255) < 1e-6, 'class b pixel 50 → 50/255, identical in all three channels');
    tf.dispose([value!.xs, value!.ys]);
    await it.return(undefined);
    const [m] = await collect(await flowFromDirectory(dir, { targetSize: [10, 10], colorMode: 'grayscale', rescale: 1 / 127.5, offset: -1, shuffle: false }));
    void m;
    {
      const it2 = (await flowFromDirectory(dir, { targetSize: [10, 10], colorMode: 'grayscale', rescale: 1 / 127.5, offset: -1, shuffle: false })).epoch(0);
      const { value: v2 } = await it2.next();
      const px = v2!.xs.dataSync();
      assert.ok(Math.abs(px[1] - (10 / 127.5 - 1)) < 1e-6, 'offset is added after rescale');
      tf.dispose([v2!.xs, v2!.ys]);
      await it2.return(undefined);
    }
    await assert.rejects(flowFromDirectory(dir, { targetSize: [0, 5] }), /targetSize must be two positive integers/);
    await assert.rejects(flowFromDirectory(dir, { batchSize: 0 }), /batchSize must be a positive integer/);
  } finally {
    cleanup();
  }
});

test('augmentation: flip mirrors exactly, draws are seeded, rotation and zoom keep shape and range', async () => {
  // unit: applyAugment
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]); // 3×3×1
  const out = new Float32Array(9);
  imageDirectory.applyAugment(src, 3, 3, 1, { flip: true, angle: 0, zoomX: 1, zoomY: 1 }, out, 0, 1);
  assert.deepEqual([...out], [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  imageDirectory.applyAugment(src, 3, 3, 1, { flip: false, angle: Math.PI / 2, zoomX: 1, zoomY: 1 }, out, 0, 1);
  assert.deepEqual([...out].map(Math.round), [3, 6, 9, 2, 5, 8, 1, 4, 7], '+90° turns the image counter-clockwise');
  imageDirectory.applyAugment(src, 3, 3, 1, { flip: false, angle: 0, zoomX: 1, zoomY: 1 }, out, 0, 2);
  assert.deepEqual([...out], [2, 4, 6, 8, 10, 12, 14, 16, 18], 'identity, scaled');

  const { dir, cleanup } = tempDir();
  try {
    // an asymmetric image per file: left half dark, right half bright
    for (const c of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, c));
      for (let i = 0; i < 12; i++) {
        const px = Buffer.alloc(8 * 8);
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) px[y * 8 + x] = x < 4 ? 10 : 200;
        await sharp(px, { raw: { width: 8, height: 8, channels: 1 } }).png().toFile(path.join(dir, c, `${i}.png`));
      }
    }
    const flips = async (seed: number) => {
      const flow = await flowFromDirectory(dir, { targetSize: [8, 8], colorMode: 'grayscale', batchSize: 24, seed, augment: { horizontalFlip: true } });
      const [b] = await collect(flow);
      void b;
      const it = flow.epoch(0);
      const { value } = await it.next();
      const x = value!.xs.dataSync();
      tf.dispose([value!.xs, value!.ys]);
      await it.return(undefined);
      return Array.from({ length: 24 }, (_, i) => {
        const left = x[i * 64];
        assert.ok(left === 10 || left === 200, 'flip is exact (no interpolation blur)');
        return left === 200;
      });
    };
    const f1 = await flips(1);
    assert.ok(f1.some(Boolean) && f1.some((v) => !v), 'some images flipped, some not');
    assert.deepEqual(await flips(1), f1, 'same seed → same flips');
    const rz = await flowFromDirectory(dir, { targetSize: [8, 8], colorMode: 'grayscale', batchSize: 24, augment: { rotationRange: 20, zoomRange: 0.2 } });
    const [b] = await collect(rz);
    assert.deepEqual(b.shape, [24, 8, 8, 1]);
    const val = await flowFromDirectory(dir, { targetSize: [8, 8], colorMode: 'grayscale', validationSplit: 0.5, subset: 'validation', augment: { horizontalFlip: true }, shuffle: false });
    const it = val.epoch(0);
    const { value } = await it.next();
    const x = value!.xs.dataSync();
    assert.ok(Array.from({ length: 12 }, (_, i) => x[i * 64]).every((v) => v === 10), 'no augmentation on the validation subset');
    tf.dispose([value!.xs, value!.ys]);
    await it.return(undefined);
  } finally {
    cleanup();
  }
});

test('bad input at creation: missing directory, a file, no class folders, unknown class → clear errors', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await assert.rejects(flowFromDirectory(path.join(dir, 'nope')), new RegExp(`${path.join(dir, 'nope').replace(/[/\\]/g, '.')}: image directory does not exist \\(ENOENT\\)`));
    fs.writeFileSync(path.join(dir, 'file.txt'), 'x');
    await assert.rejects(flowFromDirectory(path.join(dir, 'file.txt')), /file\.txt: not a directory/);
    fs.mkdirSync(path.join(dir, 'flat'));
    await assert.rejects(flowFromDirectory(path.join(dir, 'flat')), /flat: no class sub-folders/);
    await makeTree(path.join(dir, 'tree'), { a: 1 });
    await assert.rejects(flowFromDirectory(path.join(dir, 'tree'), { classes: ['a', 'zebra'] }), /zebra: class folder named in 'classes' does not exist/);
    fs.mkdirSync(path.join(dir, 'empty', 'x'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'empty', 'y'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'empty', 'y', 'notes.txt'), 'x');
    await assert.rejects(flowFromDirectory(path.join(dir, 'empty')), /empty: no image files in any class folder \(x, y\)/);
  } finally {
    cleanup();
  }
});

test('empty class folder is kept in the mapping and reported; non-image files are counted and ignored', async () => {
  const { dir, cleanup } = tempDir();
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (m: string) => warnings.push(m);
  try {
    await makeTree(dir, { a: 2, c: 3 });
    fs.mkdirSync(path.join(dir, 'b'));
    fs.writeFileSync(path.join(dir, 'a', 'readme.txt'), 'not an image');
    fs.writeFileSync(path.join(dir, 'a', '.DS_Store'), 'x');
    fs.writeFileSync(path.join(dir, 'c', 'old.bmp'), 'BM');
    fs.mkdirSync(path.join(dir, 'c', 'nested'));
    fs.copyFileSync(path.join(dir, 'c', 'img000.png'), path.join(dir, 'c', 'nested', 'copy.png'));
    const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', shuffle: false, classMode: 'sparse' });
    assert.deepEqual(flow.classNames, ['a', 'b', 'c'], 'the empty class keeps its index, so c stays 2');
    assert.deepEqual(flow.report.emptyClasses, ['b']);
    assert.deepEqual(flow.report.nonImageFiles.map((f) => path.basename(f)).sort(), ['.DS_Store', 'old.bmp', 'readme.txt']);
    assert.deepEqual(flow.report.classCounts, { a: 2, b: 0, c: 4 }, 'images in sub-folders of a class belong to it');
    assert.match(flow.summary(), /Found 6 images belonging to 3 classes\. \(3 non-image file\(s\) ignored; empty class folder\(s\): b\)/);
    assert.ok(warnings.some((w) => /empty class folder\(s\) kept in the class mapping: b/.test(w)));
    const labels = (await collect(flow)).flatMap((b) => b.ys.map((r) => r[0]));
    assert.deepEqual(labels, [0, 0, 2, 2, 2, 2]);
  } finally {
    console.warn = warn;
    cleanup();
  }
});

async function corruptTree(dir: string) {
  const files = await makeTree(dir, { a: 10, b: 10 });
  const good = fs.readFileSync(files[0]);
  fs.writeFileSync(files[3], good.subarray(0, Math.floor(good.length / 2))); // truncated PNG
  fs.writeFileSync(files[12], 'this is not a png'); // wrong content, right extension
  fs.writeFileSync(path.join(dir, 'b', 'zero.jpg'), ''); // zero bytes
  return { files, bad: [files[3], files[12], path.join(dir, 'b', 'zero.jpg')] };
}

test('corrupt images: skipped, counted, batches topped up, later epochs leave them out', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { bad } = await corruptTree(dir);
    const skips: imageDirectory.SkippedImage[] = [];
    const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 6, seed: 3, onSkip: (s) => skips.push(s), maxSkipFraction: 0.2 });
    assert.equal(flow.samples, 21);
    const e0 = await collect(flow, 0);
    assert.deepEqual(e0.map((b) => b.shape[0]), [6, 6, 6], 'full batches: each gap is filled from the next files (18 good images)');
    assert.deepEqual(flow.report.skipped.map((s) => s.file).sort(), [...bad].sort());
    assert.deepEqual(skips.map((s) => s.file).sort(), [...bad].sort());
    assert.ok(flow.report.skipped.every((s) => s.epoch === 0 && s.reason.length > 0));
    assert.match(flow.summary(), /3 corrupt image\(s\) skipped/);
    const e1 = await collect(flow, 1);
    assert.deepEqual(e1.map((b) => b.shape[0]), [6, 6, 6]);
    assert.equal(flow.report.skipped.length, 3, 'reported once, not again every epoch');
    assert.equal(flow.order(1).length, 18);
  } finally {
    cleanup();
  }
});

test('corrupt images never kill the stream silently: throw mode, too many skips, and fitDataset all reject with the file named', async () => {
  await useBackend('cpu');
  const { dir, cleanup } = tempDir();
  const warn = console.warn;
  console.warn = () => {};
  try {
    const { bad } = await corruptTree(dir);
    const strict = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 4, shuffle: false, onBadImage: 'throw' });
    await assert.rejects(collect(strict), new RegExp(`${path.basename(bad[0])}: cannot decode image`));
    const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [6, 6, 1] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
    await assert.rejects(model.fitDataset(strict.toDataset(), { epochs: 1, verbose: 0 }), /cannot decode image/);
    // default skip mode, but 3 of 21 bad is above maxSkipFraction 0.1 → the epoch rejects at its end, listing them
    const lax = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 4 });
    await assert.rejects(collect(lax), /3 of 21 images could not be decoded in epoch 0 \(more than maxSkipFraction 0\.1\): .*(img003|img002|zero)/);
    // every image bad → rejects, even with a permissive fraction
    const allBad = path.join(dir, 'allbad');
    fs.mkdirSync(path.join(allBad, 'x'), { recursive: true });
    fs.writeFileSync(path.join(allBad, 'x', 'a.png'), 'junk');
    const f = await flowFromDirectory(allBad, { targetSize: [6, 6], maxSkipFraction: 1 });
    await assert.rejects(collect(f), /1 of 1 images could not be decoded/);
    await assert.rejects(collect(f, 1), /every image of this subset failed to decode in an earlier epoch/);
    model.dispose();
  } finally {
    console.warn = warn;
    cleanup();
  }
});

test('an image deleted after listing is skipped and reported, not fatal', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = await makeTree(dir, { a: 12, b: 12 });
    const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', batchSize: 8, onSkip: () => {} });
    fs.rmSync(files[5]);
    const e = await collect(flow);
    assert.equal(e.reduce((s, b) => s + b.shape[0], 0), 23);
    assert.equal(flow.report.skipped.length, 1);
    assert.match(flow.report.skipped[0].reason, /missing|no such file/i);
  } finally {
    cleanup();
  }
});

test('fitDataset trains on the stream for several epochs without leaking tensors', async () => {
  await useBackend('cpu');
  const { dir, cleanup } = tempDir();
  try {
    await makeTree(dir, { a: 20, b: 20, c: 20 });
    for (const classMode of ['categorical', 'sparse'] as const) {
      const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', rescale: 1 / 255, batchSize: 16, classMode });
      const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [6, 6, 1] }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
      model.compile({ optimizer: tf.train.adam(0.05), loss: classMode === 'sparse' ? 'sparseCategoricalCrossentropy' : 'categoricalCrossentropy', metrics: ['accuracy'] });
      const before = tf.memory().numTensors;
      const h = await model.fitDataset(flow.toDataset(), { epochs: 3, verbose: 0 });
      assert.equal(h.history.loss.length, 3);
      assert.ok((h.history.loss[2] as number) < (h.history.loss[0] as number), `${classMode}: loss goes down`);
      assert.ok(tf.memory().numTensors - before < 10, `${classMode}: no per-batch tensor leak`);
      // batchesPerEpoch shorter than the folder: the abandoned epoch releases its prefetched batches
      await model.fitDataset(flow.toDataset(), { epochs: 2, batchesPerEpoch: 1, verbose: 0 });
      model.dispose();
    }
  } finally {
    cleanup();
  }
});

test('flat memory: peak tf bytes and buffered host bytes stay within a small budget, whatever the folder size', async () => {
  await useBackend('cpu');
  const { dir, cleanup } = tempDir();
  try {
    const size = 16;
    await makeTree(path.join(dir, 'small'), { a: 20, b: 20 }, size);
    await makeTree(path.join(dir, 'large'), { a: 100, b: 100 }, size);
    const batchSize = 8;
    const prefetch = 2;
    const pixels = size * size;
    const batchTfBytes = batchSize * pixels * 4 + batchSize * 2 * 4; // xs + one-hot ys
    const budgetHost = (prefetch + 1) * (batchSize * pixels * 4 + batchSize * pixels); // float batches + raw decodes
    const peaks: { tf: number; host: number; images: number }[] = [];
    for (const which of ['small', 'large']) {
      const flow = await flowFromDirectory(path.join(dir, which), { targetSize: [size, size], colorMode: 'grayscale', batchSize, prefetch });
      const base = tf.memory().numBytes;
      let peakTf = 0;
      for (let epoch = 0; epoch < 2; epoch++) {
        for await (const { xs, ys } of flow.epoch(epoch)) {
          peakTf = Math.max(peakTf, tf.memory().numBytes - base);
          tf.dispose([xs, ys]);
        }
      }
      assert.equal(tf.memory().numBytes, base, 'nothing left behind');
      peaks.push({ tf: peakTf, host: flow.report.peakBufferedBytes, images: flow.samples });
    }
    for (const p of peaks) {
      assert.ok(p.tf <= batchTfBytes, `tf peak ${p.tf} > one batch ${batchTfBytes}`);
      assert.ok(p.host > 0 && p.host <= budgetHost, `host peak ${p.host} outside (0, ${budgetHost}]`);
    }
    assert.equal(peaks[0].tf, peaks[1].tf, 'the tf peak does not grow with the folder');
    const fullLarge = peaks[1].images * pixels * 4;
    assert.ok(peaks[1].host < fullLarge / 5, `streaming holds ${peaks[1].host} B, loading would hold ${fullLarge} B`);
  } finally {
    cleanup();
  }
});

test('loadAll decodes the whole folder in listing order (what streaming avoids), skipping corrupt files', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = await makeTree(dir, { a: 3, b: 2 });
    fs.writeFileSync(files[1], 'junk');
    const flow = await flowFromDirectory(dir, { targetSize: [6, 6], colorMode: 'grayscale', onSkip: () => {} });
    const all = await flow.loadAll();
    assert.deepEqual([all.count, all.height, all.width, all.channels], [4, 6, 6, 1]);
    assert.deepEqual([...all.labels], [0, 0, 1, 1]);
    assert.deepEqual([0, 1, 2, 3].map((i) => all.images[i * 36]), [0, 2, 3, 4]);
    assert.equal(flow.report.skipped.length, 1);
  } finally {
    cleanup();
  }
});
