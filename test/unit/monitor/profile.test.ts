/** lib/monitor/profile.ts: the kernel profile of one training step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as monitor from '../../../lib/monitor';

test('matMulLayout infers the transposes autodiff emits', () => {
  assert.equal(monitor.matMulLayout([[1, 100, 784], [1, 784, 500]], [[1, 100, 500]]), '');
  assert.equal(monitor.matMulLayout([[1, 100, 784], [1, 100, 500]], [[1, 784, 500]]), 'transposeA');
  assert.equal(monitor.matMulLayout([[1, 100, 10], [1, 500, 10]], [[1, 100, 500]]), 'transposeB');
  assert.equal(monitor.matMulLayout([[1, 7, 3], [1, 5, 7]], [[1, 3, 5]]), 'transposeA+B');
  assert.equal(monitor.matMulLayout([[1, 4, 4], [1, 4, 4]], [[1, 4, 4]]), '', 'square: the plain layout is assumed');
  assert.equal(monitor.matMulLayout([[3]], [[3]]), '');
});

test('profileStep: kernels of one training step by time and bytes, kernelMs vs wallMs, no leak', async () => {
  await useBackend('wasm');
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [64], units: 32, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
  const opt = tf.train.momentum(0.01, 0.9);
  const xs = tf.randomNormal([16, 64]);
  const ys = tf.oneHot(tf.tensor1d([...Array(16)].map((_, i) => i % 10), 'int32'), 10).toFloat();
  const step = () => opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor) as tf.Scalar, true)!;
  await monitor.profileStep(step, { warmup: 1 }); // creates the optimizer's slots once
  const before = tf.memory().numTensors;
  const p = await monitor.profileStep(step, { warmup: 1 });
  assert.equal(tf.memory().numTensors, before, 'profiling leaves no tensors behind');
  assert.equal(p.backend, 'wasm');
  const names = p.kernels.map((k) => k.kernel);
  assert.ok(names.includes('BatchMatMul · transposeA'), `weight gradients xᵀ·dy in ${names.join(', ')}`);
  assert.ok(names.some((n) => n.startsWith('BatchMatMul') || n.startsWith('_FusedMatMul')));
  assert.ok(!names.some((n) => n.endsWith('__op')), 'composite op entries are not counted as kernels');
  assert.ok(p.calls.some((c) => c.composite), 'but they are kept in the raw calls');
  const sorted = p.kernels.map((k) => k.totalMs!);
  assert.deepEqual(sorted, [...sorted].sort((a, b) => b - a), 'sorted by total time');
  assert.ok(p.kernelSumMs! > 0);
  const shares = p.kernels.reduce((a, k) => a + k.sharePct!, 0);
  assert.ok(Math.abs(shares - 100) < 1e-6);
  assert.ok(p.kernels.some((k) => k.allocatedMiB > 0));
  assert.equal(typeof p.kernelMs, 'number');
  assert.ok(p.wallMs >= p.kernelMs!, 'on wasm tf.time kernelMs is host time inside wallMs');
  assert.ok(p.syncedWallMs > 0 && p.profiledWallMs > 0);
  assert.equal(p.missingReason, null);
  assert.match(p.timerNote, /^wasm: kernels run synchronously/);
  assert.equal(p.repeats, 3);
  assert.equal(p.samples.syncedWallMs.length, 3);
  assert.equal(p.samples.kernelMs.length, 3);
  assert.ok(p.syncedWallMs >= Math.min(...p.samples.syncedWallMs) && p.syncedWallMs <= Math.max(...p.samples.syncedWallMs));
  const matmul = p.kernels.find((k) => k.kernel === 'BatchMatMul · transposeA')!;
  assert.equal(matmul.calls, 2, 'calls are per step (two weight gradients), not summed over rounds');
  const rows = monitor.stepTimingRows(p);
  assert.equal(rows.length, 5);
  for (const r of rows) assert.ok(Number(r.minMs) <= Number(r.medianMs) && Number(r.medianMs) <= Number(r.maxMs));
  await assert.rejects(monitor.profileStep(step, { repeats: 0 }), /repeats must be ≥ 1/);
  tf.dispose([xs, ys]);
  model.dispose();
  opt.dispose();
});

test('explainTimers says what tf.time means on each backend', () => {
  assert.match(monitor.explainTimers('tensorflow'), /host wall time around the call into libtensorflow/);
  assert.match(monitor.explainTimers('webgpu'), /timestamp-query/);
  assert.match(monitor.explainTimers('cpu'), /synchronously/);
  assert.match(monitor.explainTimers('mystery'), /depends on the backend/);
});
