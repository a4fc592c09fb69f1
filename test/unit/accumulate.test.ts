import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import { sliceTensorBatches } from '../../lib/data/batches';
import * as train from '../../lib/train';
import { onBackendOrSkip, releaseBackends } from '../support/backends';
import { relativeError } from '../support/parity';

after(releaseBackends);

/** What training changed in each weight (final − initial), so a wrong update cannot hide behind the unchanged part. */
const TOLERANCE = 1e-5;

function data(n: number, inputs = 20, classes = 4) {
  return tf.tidy(() => ({
    xs: tf.randomNormal([n, inputs], 0, 1, 'float32', 5),
    ys: tf.oneHot(tf.randomUniform([n], 0, classes, 'int32', 6), classes).toFloat(),
  }));
}

const smallNet = () => train.mlp({ inputs: 20, hidden: [32], outputs: 4, seed: 9 });

/** Train a fresh seeded net over `xs`/`ys` in order with batches of `batchSize`; return the weight deltas. */
async function deltasAfter(xs: tf.Tensor, ys: tf.Tensor, batchSize: number, options: Partial<train.TrainLoopOptions> = {}): Promise<{ deltas: Float32Array[]; result: train.TrainResult }> {
  const model = smallNet();
  const initial = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  const optimizer = tf.train.momentum(0.1, 0.9);
  const result = await train.trainLoop(model, (e) => sliceTensorBatches(xs, ys, { batchSize, epochIndex: e }), { epochs: 2, optimizer, ...options });
  const deltas = model.getWeights().map((w, i) => (w.dataSync() as Float32Array).map((v, j) => v - initial[i][j]));
  train.disposeOptimizer(optimizer);
  model.dispose();
  return { deltas, result };
}

function assertSameUpdates(got: Float32Array[], want: Float32Array[], label: string): void {
  got.forEach((g, i) => {
    const e = relativeError(g, want[i]);
    assert.ok(e <= TOLERANCE, `${label}, weight ${i}: relative error ${e.toExponential(2)} > ${TOLERANCE}`);
  });
}

for (const backend of ['wasm', 'tensorflow'] as const) {
  test(`accumulating micro-batches of 25 and 50 gives the weights of plain batch 100 (${backend})`, async (t) => {
    if (!(await onBackendOrSkip(t, backend))) return;
    const { xs, ys } = data(300);
    const plain = await deltasAfter(xs, ys, 100, { step: 'stock' });   // the same gradient path as accumulation
    const by25 = await deltasAfter(xs, ys, 25, { accumulate: 4 });
    const by50 = await deltasAfter(xs, ys, 50, { accumulate: 2 });
    const real25 = await deltasAfter(xs, ys, 25);
    assertSameUpdates(by25.deltas, plain.deltas, '4 × 25');
    assertSameUpdates(by50.deltas, plain.deltas, '2 × 50');
    assert.equal(plain.result.updates, 6);
    assert.equal(by25.result.updates, 6, 'one update per 4 micro-batches');
    assert.equal(by25.result.batches, 24);
    assert.equal(by50.result.updates, 6);
    assert.ok(relativeError(real25.deltas[0], plain.deltas[0]) > 1e-2, 'a real batch of 25 is a different (more frequent) update');
    tf.dispose([xs, ys]);
  });
}

test('weights change once per effective batch; a partial group is applied at the end of the epoch, weighted by size', async () => {
  await useBackend('wasm');
  const { xs, ys } = data(110);
  const model = smallNet();
  const optimizer = tf.train.sgd(0.1);
  const changedAt: number[] = [];
  let last = model.getWeights()[0].dataSync().slice();
  const r = await train.trainLoop(model, (e) => sliceTensorBatches(xs, ys, { batchSize: 25, epochIndex: e }), {
    epochs: 1, optimizer, accumulate: 4,
    onBatchEnd: ({ batch }) => {
      const now = model.getWeights()[0].dataSync().slice();
      if (now.some((v, i) => v !== last[i])) changedAt.push(batch);
      last = now;
    },
  });
  assert.deepEqual(changedAt, [3], 'only the 4th micro-batch updates inside the epoch');
  assert.equal(r.batches, 5);
  assert.equal(r.updates, 2, 'the 5th micro-batch (10 rows) is applied when the epoch ends');
  assert.equal(r.epochs[0].updates, 2);
  // Micro-batches of 40, 40, 30 accumulated into one update equal one batch of 110: only if weighted by size.
  const oneBatch = await deltasAfter(xs, ys, 110, { step: 'stock' });
  const uneven = await deltasAfter(xs, ys, 40, { accumulate: 3 });
  assertSameUpdates(uneven.deltas, oneBatch.deltas, '40 + 40 + 30');
  await assert.rejects(train.trainLoop(model, () => [], { epochs: 1, accumulate: 0 }), /accumulate must be a positive integer, got 0/);
  await assert.rejects(train.trainLoop(model, () => [], { epochs: 1, accumulate: 2, step: 'fused' }), /accumulate runs the stock step/);
  train.disposeOptimizer(optimizer);
  model.dispose();
  tf.dispose([xs, ys]);
});

test('no tensors pile up across accumulation cycles (numTensors flat), and none are left after the loop', async () => {
  await useBackend('wasm');
  const { xs, ys } = data(200);
  const model = smallNet();
  const optimizer = tf.train.adam(0.01);
  const batches = (e: number) => sliceTensorBatches(xs, ys, { batchSize: 25, epochIndex: e });
  await train.trainLoop(model, batches, { epochs: 1, optimizer, accumulate: 4 }); // creates Adam's slots
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  await train.trainLoop(model, batches, {
    epochs: 2, optimizer, accumulate: 4,
    onBatchEnd: ({ batch }) => {
      if (batch % 4 === 3) counts.push(tf.memory().numTensors);
    },
  });
  assert.equal(new Set(counts).size, 1, `numTensors after each cycle: ${counts.join(', ')}`);
  assert.equal(tf.memory().numTensors, before, 'the loop left tensors behind');
  train.disposeOptimizer(optimizer);
  model.dispose();
  tf.dispose([xs, ys]);
});

test('model.fit with train.accumulating(optimizer, 4) at batch 25 trains like batch 100', async () => {
  await useBackend('wasm');
  const { xs, ys } = data(200);
  const fitWith = async (optimizer: tf.Optimizer, batchSize: number) => {
    const model = smallNet();
    const initial = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    model.compile({ optimizer, loss: (y: tf.Tensor, o: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, o) });
    await model.fit(xs, ys, { batchSize, epochs: 2, shuffle: false, verbose: 0 });
    const deltas = model.getWeights().map((w, i) => (w.dataSync() as Float32Array).map((v, j) => v - initial[i][j]));
    model.dispose();
    return deltas;
  };
  const inner = tf.train.momentum(0.1, 0.9);
  const wrapped = train.accumulating(inner, 4);
  const plainOpt = tf.train.momentum(0.1, 0.9);
  const plain = await fitWith(plainOpt, 100);
  const before = tf.memory().numTensors;
  const accumulated = await fitWith(wrapped, 25);
  assertSameUpdates(accumulated, plain, 'fit 4 × 25');
  assert.equal(wrapped.updates, 4);
  assert.equal(wrapped.pending, 0);
  assert.equal(tf.memory().numTensors - before, 4, 'only the inner optimizer\'s momentum slots (one per variable) stay');
  assert.throws(() => train.accumulating(inner, 0), /steps must be a positive integer/);
  wrapped.dispose();
  train.disposeOptimizer(inner);
  train.disposeOptimizer(plainOpt);
  tf.dispose([xs, ys]);
});
