import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import { generateImages } from '../../../lib/data/stand-in';
import { mixSeed, mulberry32 } from '../../../lib/random';
import { BatchSource, toTensors } from '../../../lib/data/batches';

test('mulberry32 and mixSeed are deterministic and spread', () => {
  const a = mulberry32(1);
  const b = mulberry32(1);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.notEqual(mixSeed(1, 0), mixSeed(1, 1));
  assert.notEqual(mixSeed(1, 0), mixSeed(2, 0));
  assert.equal(mixSeed(5, 6), mixSeed(5, 6));
});

test('generateImages: deterministic bytes, balanced labels, pixels in range', () => {
  const g = generateImages(100, 123);
  assert.deepEqual(g, generateImages(100, 123));
  assert.equal(g.images.length, 100 * 784);
  const counts = new Array(10).fill(0);
  for (const l of g.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(10));
  // class means differ: the classes have different silhouettes
  const mean = (cls: number) => {
    const m = new Float64Array(784);
    g.labels.forEach((l, i) => {
      if (l === cls) for (let j = 0; j < 784; j++) m[j] += g.images[i * 784 + j] / 10;
    });
    return m;
  };
  const trouser = mean(1);
  const bag = mean(8);
  let diff = 0;
  for (let j = 0; j < 784; j++) diff += Math.abs(trouser[j] - bag[j]) / 784;
  assert.ok(diff > 20, `mean |trouser − bag| per pixel ${diff}`);
});

test('the stand-in is learnable, and not trivially: a small MLP beats chance by far, yet errs', async () => {
  await useBackend('wasm');
  const train = generateImages(3000, mixSeed(42, 1));
  const test_ = generateImages(1000, mixSeed(42, 2));
  const toSet = (g: typeof train) => ({ images: g.images, labels: g.labels, count: g.count, height: 28, width: 28 });
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [784], units: 64, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })],
  });
  model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  await model.fitDataset(new BatchSource(toSet(train), { batchSize: 50, shuffle: true, seed: 0 }).toDataset(), { epochs: 2, verbose: 0 });
  const t = toTensors(toSet(test_));
  const [loss, acc] = (model.evaluate(t.xs, t.ys) as tf.Scalar[]).map((s) => s.dataSync()[0]);
  tf.dispose([t.xs, t.ys]);
  model.dispose();
  assert.ok(acc > 0.5, `accuracy ${acc} should be far above chance (0.1)`);
  assert.ok(acc < 0.99, `accuracy ${acc}: the stand-in should not be trivially separable`);
  assert.ok(Number.isFinite(loss));
});
