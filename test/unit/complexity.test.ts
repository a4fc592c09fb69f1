import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import '../../lib/backends/wasm-conv-grad';
import * as complexity from '../../lib/complexity';
import * as train from '../../lib/train';
import { paretoFrontier } from '../../lib/charts';

before(async () => {
  await useBackend('wasm');
});

function tinySet(count: number) {
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  const images = Uint8Array.from({ length: count * 784 }, (_, j) => (labels[Math.floor(j / 784)] * 25 + (j % 7)) & 255);
  return { images, labels, count, height: 28, width: 28 };
}

test('buildArchitecture: parameter counts and FLOPs of MLPs and convnets', () => {
  const mlp = complexity.buildArchitecture({ kind: 'mlp', width: 64, depth: 2 });
  assert.equal(mlp.countParams(), 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10);
  assert.equal(complexity.forwardFlops(mlp), 2 * (784 * 64 + 64 * 64 + 64 * 10));
  const cnn = complexity.buildArchitecture({ kind: 'convnet', width: 8, depth: 2 });
  // conv 1→8 (3×3) at 28×28, pool → 14×14, conv 8→16 at 14×14, pool → 7×7×16 → dense 10
  assert.equal(cnn.countParams(), (9 * 8 + 8) + (9 * 8 * 16 + 16) + (7 * 7 * 16 * 10 + 10));
  assert.equal(complexity.forwardFlops(cnn), 2 * (28 * 28 * 9 * 8 + 14 * 14 * 9 * 8 * 16 + 7 * 7 * 16 * 10));
  assert.equal(complexity.archName({ kind: 'convnet', width: 8, depth: 2 }), 'cnn 2×8');
  assert.throws(() => complexity.buildArchitecture({ kind: 'convnet', width: 8, depth: 4 }), /depth 1–3/);
  assert.throws(() => complexity.buildArchitecture({ kind: 'mlp', width: 0, depth: 1 }), /width must be a positive integer/);
  mlp.dispose();
  cnn.dispose();
});

test('train.accuracy on an ImageSet counts correct top-1 predictions over batches; an empty set throws', async () => {
  const set = tinySet(30); // labels 0..9 three times
  // A model that always predicts class 3: bias only.
  const m = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, kernelInitializer: 'zeros', biasInitializer: 'zeros' })] });
  tf.tidy(() => m.layers[1].setWeights([tf.zeros([784, 10]), tf.oneHot(3, 10).toFloat()]));
  assert.equal(await train.accuracy(m, set, { batchSize: 7 }), 3 / 30);
  await assert.rejects(train.accuracy(m, { ...set, count: 0, images: new Uint8Array(0), labels: new Uint8Array(0) }), /no batches/);
  m.dispose();
});

test('measureArchitecture returns every figure, and leaks nothing', async () => {
  const before = tf.memory().numTensors;
  const r = await complexity.measureArchitecture({ kind: 'convnet', width: 4, depth: 1 }, tinySet(64), tinySet(20), { epochs: 2, batchSize: 32, latencyRepeats: 2, seed: 1 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.name, 'cnn 1×4');
  assert.equal(r.timedEpochs, 1);
  assert.equal(r.params, 9 * 4 + 4 + 14 * 14 * 4 * 10 + 10);
  for (const k of ['epochSeconds', 'latency1Ms', 'latency256Ms'] as const) assert.ok(r[k] > 0, k);
  assert.ok(r.testAccuracy >= 0 && r.testAccuracy <= 1);
});

test('kneePoint finds the elbow of a frontier', () => {
  const rows = [
    { name: 'a', t: 1, acc: 0.6 },
    { name: 'b', t: 2, acc: 0.85 },
    { name: 'c', t: 4, acc: 0.88 },
    { name: 'd', t: 16, acc: 0.9 },
    { name: 'slow-bad', t: 10, acc: 0.7 },
  ];
  const frontier = paretoFrontier(rows, 't', 'acc');
  assert.deepEqual(frontier.map((r) => r.name), ['a', 'b', 'c', 'd']);
  assert.equal(complexity.kneePoint(frontier, 't', 'acc').name, 'b');
  assert.equal(complexity.kneePoint(frontier.slice(0, 2), 't', 'acc').name, 'b', 'fewer than 3 points: the last');
  assert.throws(() => complexity.kneePoint([], 't', 'acc'), /empty frontier/);
});
