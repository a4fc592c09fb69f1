import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as batches from '../../../lib/data/batches';
import { generateStandIn } from '../../../lib/data/fashion-mnist';
import type { ImageSet } from '../../../lib/data/image-set';

const set: ImageSet = generateStandIn({ seed: 9, trainCount: 250, testCount: 10 }).train;

before(async () => {
  await useBackend('wasm');
});

function collect(it: Iterable<batches.Batch>): { xs: Float32Array[]; ys: (Float32Array | Int32Array)[]; shapes: number[][][] } {
  const out = { xs: [] as Float32Array[], ys: [] as (Float32Array | Int32Array)[], shapes: [] as number[][][] };
  for (const b of it) {
    out.xs.push(b.xs.dataSync() as Float32Array);
    out.ys.push(b.ys.dataSync() as Float32Array | Int32Array);
    out.shapes.push([b.xs.shape, b.ys.shape]);
    b.xs.dispose();
    b.ys.dispose();
  }
  return out;
}

test('normalizePixels is (x/255 − 0.5)/0.5', () => {
  const out = batches.normalizePixels(Uint8Array.from([0, 255, 51, 128]));
  assert.equal(out[0], -1);
  assert.equal(out[1], 1);
  assert.ok(Math.abs(out[2] - (51 / 255 - 0.5) / 0.5) < 1e-7);
  assert.ok(Math.abs(out[3] - (128 / 255 - 0.5) / 0.5) < 1e-7);
  const buf = new Float32Array(6);
  assert.equal(batches.normalizePixels(Uint8Array.from([255]), buf), buf);
  assert.equal(buf[0], 1);
  assert.throws(() => batches.normalizePixels(new Uint8Array(3), new Float32Array(2)), /out has 2 elements, need 3/);
});

test('normalizedPixelsOf normalises a set once and shares it', () => {
  const a = batches.normalizedPixelsOf(set);
  assert.equal(batches.normalizedPixelsOf({ ...set }), a, 'same images array, same cached copy');
  assert.deepEqual(a, batches.normalizePixels(set.images));
  const other = { ...set, images: set.images.slice() };
  assert.notEqual(batches.normalizedPixelsOf(other), a);
});

test('BatchSource: shapes, counts and the remainder', () => {
  const src = new batches.BatchSource(set, { batchSize: 100 });
  assert.equal(src.numBatches, 3);
  assert.equal(src.numExamples, 250);
  const got = collect(src.epoch(0));
  assert.deepEqual(got.shapes, [[[100, 784], [100, 10]], [[100, 784], [100, 10]], [[50, 784], [50, 10]]]);
  const dropped = new batches.BatchSource(set, { batchSize: 100, dropRemainder: true, shape: 'image', oneHot: false });
  assert.equal(dropped.numBatches, 2);
  assert.equal(dropped.numExamples, 200);
  const b = [...dropped.epoch(0)];
  assert.deepEqual(b.map((x) => [x.xs.shape, x.ys.shape, x.ys.dtype]), [[[100, 28, 28, 1], [100], 'int32'], [[100, 28, 28, 1], [100], 'int32']]);
  b.forEach((x) => tf.dispose([x.xs, x.ys]));
  assert.throws(() => new batches.BatchSource(set, { batchSize: 0 }), /batchSize must be a positive integer/);
});

test('BatchSource without shuffle: examples in order, normalised, one-hot labels', () => {
  const src = new batches.BatchSource(set, { batchSize: 64 });
  const got = collect(src.epoch(0));
  const xs = new Float32Array(250 * 784);
  let o = 0;
  for (const x of got.xs) {
    xs.set(x, o);
    o += x.length;
  }
  assert.deepEqual(xs, batches.normalizePixels(set.images));
  const labels = got.ys.flatMap((y) => {
    const out: number[] = [];
    for (let i = 0; i < y.length; i += 10) {
      const row = Array.from(y.subarray(i, i + 10));
      assert.equal(row.reduce((a, b) => a + b, 0), 1);
      out.push(row.indexOf(1));
    }
    return out;
  });
  assert.deepEqual(labels, Array.from(set.labels));
  // epoch index does not matter without shuffling
  assert.deepEqual(src.batchIndices(3, 1), Uint32Array.from({ length: 64 }, (_, i) => 64 + i));
});

test('shuffle by seed: a permutation per epoch, repeatable, different across epochs and seeds', () => {
  const a = new batches.BatchSource(set, { batchSize: 50, shuffle: true, seed: 1, oneHot: false });
  const b = new batches.BatchSource(set, { batchSize: 50, shuffle: true, seed: 1, oneHot: false });
  const c = new batches.BatchSource(set, { batchSize: 50, shuffle: true, seed: 2, oneHot: false });
  const order = (s: batches.BatchSource, e: number) => Array.from({ length: s.numBatches }, (_, k) => [...s.batchIndices(e, k)]).flat();
  const e0 = order(a, 0);
  assert.deepEqual([...e0].sort((x, y) => x - y), Array.from({ length: 250 }, (_, i) => i), 'every example exactly once');
  assert.notDeepEqual(e0, Array.from({ length: 250 }, (_, i) => i));
  assert.deepEqual(e0, order(b, 0));
  assert.notDeepEqual(e0, order(a, 1));
  assert.notDeepEqual(e0, order(c, 0));
  // the batches really follow that order
  const got = collect(a.epoch(0));
  assert.deepEqual(got.ys.flatMap((y) => Array.from(y)), e0.map((i) => set.labels[i]));
  assert.deepEqual(got.xs[0].subarray(784, 2 * 784), batches.normalizePixels(set.images.subarray(e0[1] * 784, (e0[1] + 1) * 784)));
  assert.deepEqual(batches.epochOrder(5, { shuffle: true, seed: 1, epochIndex: 0 }), batches.epochOrder(5, { shuffle: true, seed: 1, epochIndex: 0 }));
});

test('naivePerSampleBatches and sliceTensorBatches give the same batches as BatchSource', () => {
  for (const opts of [
    { batchSize: 40, shuffle: true, seed: 4, shape: 'image' as const },
    { batchSize: 100, oneHot: false },
  ]) {
    const fast = collect(new batches.BatchSource(set, opts).epoch(2));
    const naive = collect(batches.naivePerSampleBatches(set, { ...opts, epochIndex: 2 }));
    const all = batches.toTensors(set, opts);
    const sliced = collect(batches.sliceTensorBatches(all.xs, all.ys, { ...opts, epochIndex: 2 }));
    tf.dispose([all.xs, all.ys]);
    for (const other of [naive, sliced]) {
      assert.deepEqual(other.shapes, fast.shapes);
      assert.deepEqual(other.ys, fast.ys);
      other.xs.forEach((x, i) => {
        let max = 0;
        for (let j = 0; j < x.length; j++) max = Math.max(max, Math.abs(x[j] - fast.xs[i][j]));
        assert.ok(max < 1e-6, `batch ${i} differs by ${max}`);
      });
    }
  }
});

test('toTensors: the whole set, normalised, one-hot or int labels', () => {
  const t = batches.toTensors(set);
  assert.deepEqual([t.xs.shape, t.ys.shape, t.ys.dtype], [[250, 784], [250, 10], 'float32']);
  assert.deepEqual(t.xs.dataSync(), batches.normalizePixels(set.images));
  const i = batches.toTensors(set, { oneHot: false, shape: 'image' });
  assert.deepEqual([i.xs.shape, i.ys.shape, i.ys.dtype], [[250, 28, 28, 1], [250], 'int32']);
  assert.deepEqual(Array.from(i.ys.dataSync()), Array.from(set.labels));
  tf.dispose([t.xs, t.ys, i.xs, i.ys]);
});

test('numTensors stays flat across epochs: custom loop, naive batches, toDataset', async () => {
  const src = new batches.BatchSource(set, { batchSize: 32, shuffle: true, seed: 3 });
  const counts: number[] = [];
  for (let e = 0; e < 3; e++) {
    for (const { xs, ys } of src.epoch(e)) {
      tf.tidy(() => {
        tf.sum(tf.mul(xs, 2)).add(tf.sum(ys));
      });
      tf.dispose([xs, ys]);
    }
    for (const { xs, ys } of batches.naivePerSampleBatches(set, { batchSize: 50, epochIndex: e })) tf.dispose([xs, ys]);
    // an abandoned epoch (break early) leaks nothing either
    for (const { xs, ys } of src.epoch(e)) {
      tf.dispose([xs, ys]);
      break;
    }
    counts.push(tf.memory().numTensors);
  }
  assert.equal(new Set(counts).size, 1, `numTensors per epoch: ${counts}`);

  const ds = src.toDataset();
  const perEpoch: number[] = [];
  const firstLabels: number[][] = [];
  for (let e = 0; e < 3; e++) {
    let n = 0;
    let first = true;
    await ds.forEachAsync(({ xs, ys }) => {
      n++;
      if (first) firstLabels.push(tf.tidy(() => Array.from(tf.argMax(ys, 1).dataSync()).slice(0, 8)));
      first = false;
      tf.dispose([xs, ys]);
    });
    assert.equal(n, src.numBatches);
    perEpoch.push(tf.memory().numTensors);
  }
  assert.equal(new Set(perEpoch).size, 1, `numTensors per dataset epoch: ${perEpoch}`);
  assert.notDeepEqual(firstLabels[0], firstLabels[1], 'each dataset iteration is a reshuffled epoch');
});

test('model.fitDataset over several epochs keeps numTensors flat', async () => {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [784], units: 16, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })],
  });
  model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'categoricalCrossentropy' });
  const src = new batches.BatchSource(set, { batchSize: 50, shuffle: true, seed: 0 });
  const counts: number[] = [];
  await model.fitDataset(src.toDataset(), {
    epochs: 4,
    verbose: 0,
    callbacks: { onEpochEnd: async () => void counts.push(tf.memory().numTensors) },
  });
  assert.equal(counts.length, 4);
  assert.equal(new Set(counts).size, 1, `numTensors at each epoch end: ${counts}`);
  model.dispose();
});
