import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as tm from '../../../lib/experiments/training-memory';
import type { BatchSizeSearch, BatchTrial } from '../../../lib/memory';
import * as train from '../../../lib/train';

test('maxRelativeDifference: ‖a − b‖∞ / ‖b‖∞, worst over the arrays; clear errors on mismatched shapes', () => {
  const b = [Float32Array.from([1, -2, 4]), Float32Array.from([0.5])];
  assert.equal(tm.maxRelativeDifference(b, b), 0);
  assert.ok(Math.abs(tm.maxRelativeDifference([Float32Array.from([1, -2, 4.4]), Float32Array.from([0.5])], b) - 0.1) < 1e-6, 'the first array is off by 0.4 of 4');
  assert.ok(Math.abs(tm.maxRelativeDifference([Float32Array.from([1, -2, 4]), Float32Array.from([0.55])], b) - 0.1) < 1e-6, 'the second array is off by 10%');
  assert.equal(tm.maxRelativeDifference([Float32Array.from([0.1])], [Float32Array.from([0])]), Math.fround(0.1), 'an all-zero reference: the absolute difference');
  assert.throws(() => tm.maxRelativeDifference([b[0]], b), /1 arrays vs 2/);
  assert.throws(() => tm.maxRelativeDifference([b[1], b[1]], b), /array 0 has 1 values vs 3/);
});

test('snapshotWeights and weightDeltas: what a training step changed', async () => {
  await useBackend('cpu');
  const model = train.mlp({ inputs: 4, hidden: [3], outputs: 2, seed: 1 });
  const start = tm.snapshotWeights(model);
  const zero = tm.weightDeltas(model, start);
  assert.ok(zero.every((d) => d.every((v) => v === 0)));
  model.setWeights(model.getWeights().map((w) => tf.add(w, 0.5)));
  const deltas = tm.weightDeltas(model, start);
  assert.ok(deltas.every((d) => d.every((v) => Math.abs(v - 0.5) < 1e-6)));
  assert.ok(start[0].every((v, i) => v !== tm.snapshotWeights(model)[0][i]), 'the snapshot is a copy');
  assert.throws(() => tm.weightDeltas(model, start.slice(1)), /the model has 4 weights, the snapshot 3/);
  model.dispose();
});

test('batchIfSaved: the line through the two largest good trials, moved by the saved bytes', () => {
  const trial = (batchSize: number, peakBytes: number, ok = true): BatchTrial => ({ batchSize, ok, peakBytes, seconds: 0, reason: ok ? null : 'over budget', phase: 'grow' });
  // peak = 1000 + 10·batch; budget 2000 → best 100; saving 500 bytes → 150.
  const search: BatchSizeSearch = { best: 100, budgetBytes: 2000, stoppedBy: 'budget', failure: null, trials: [trial(25, 1250), trial(50, 1500), trial(100, 2000), trial(200, 3000, false)] };
  assert.equal(tm.batchIfSaved(search, 0), 100);
  assert.equal(tm.batchIfSaved(search, 500), 150);
  assert.equal(tm.batchIfSaved({ ...search, trials: [trial(25, 1250)] }, 500), null, 'one good trial is no line');
});

test('checkpointSweep: the plain row and one per segment count, exact gradients, and the peak drops', async () => {
  await useBackend('wasm');
  const model = train.mlp({ inputs: 32, hidden: Array(7).fill(32), outputs: 4, seed: 2 });
  const batch = tf.tidy(() => ({ xs: tf.randomNormal([256, 32], 0, 1, 'float32', 1), ys: tf.oneHot(tf.randomUniform([256], 0, 4, 'int32', 2), 4).toFloat() }));
  const before = tf.memory().numTensors;
  const rows = await tm.checkpointSweep(model, batch, [1, 3], { repeats: 1 });
  assert.deepEqual(rows.map((r) => r.variant), ['plain', '1 segment', '3 segments']);
  assert.deepEqual(rows.map((r) => r.segments), [null, 1, 3]);
  assert.ok(rows.every((r) => r.maxRelativeError <= 1e-5 && r.msPerStep > 0 && r.lo <= r.msPerStep && r.msPerStep <= r.hi));
  assert.ok(rows[2].peakMiB < rows[0].peakMiB, `3 segments ${rows[2].peakMiB} MiB vs plain ${rows[0].peakMiB} MiB`);
  assert.equal(tf.memory().numTensors, before, 'the sweep left tensors behind');
  const w = tm.snapshotWeights(model);
  assert.deepEqual(w.map((x) => x.length), model.getWeights().map((t) => t.size), 'the weights are still there (learning rate 0)');
  tf.dispose([batch.xs, batch.ys]);
  model.dispose();
});

test('largestBatch: plain, accumulation and checkpointing under one budget, time per epoch, nothing left behind', async () => {
  await useBackend('wasm');
  const build = () => train.mlp({ inputs: 16, hidden: Array(6).fill(64), outputs: 4, seed: 3 });
  const budgetBytes = 4 * 2 ** 20;
  const before = tf.memory().numTensors;
  const options = { budgetBytes, start: 32, maxBatch: 4096, refineSteps: 3, timedUpdates: 1, classes: 4, epochSamples: 1000 };
  const plain = await tm.largestBatch(build, { name: 'plain', optimizer: 'momentum' }, options);
  const acc = await tm.largestBatch(build, { name: 'acc', optimizer: 'momentum', accumulate: 4 }, options);
  const ck = await tm.largestBatch(build, { name: 'ck', optimizer: 'momentum', segments: 'sqrt' }, options);
  for (const r of [plain, acc, ck]) {
    assert.equal(r.stoppedBy, 'budget', r.technique);
    assert.ok(r.microBatch !== null && r.peakMiB !== null && r.peakMiB <= budgetBytes / 2 ** 20, `${r.technique}: ${r.microBatch} at ${r.peakMiB} MiB`);
    assert.ok(r.secondsPerEpoch !== null && r.secondsPerEpoch > 0);
  }
  assert.equal(acc.effectiveBatch, acc.microBatch! * 4);
  assert.ok(acc.microBatch! <= plain.microBatch!, 'the accumulation sum takes room from the micro-batch');
  assert.ok(acc.effectiveBatch! > 2 * plain.effectiveBatch!, `accumulation ${acc.effectiveBatch} vs plain ${plain.effectiveBatch}`);
  assert.ok(ck.microBatch! > plain.microBatch!, `checkpointing ${ck.microBatch} vs plain ${plain.microBatch}`);
  assert.equal(tf.memory().numTensors, before, 'models, optimizers and batches were disposed');
});
