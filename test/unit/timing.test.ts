import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import * as timing from '../../lib/timing';

test('median, summarize', () => {
  assert.equal(timing.median([3, 1, 2]), 2);
  assert.equal(timing.median([4, 1, 2, 3]), 2.5);
  assert.throws(() => timing.median([]), /empty/);
  const s = timing.summarize([0.3, 0.1, 0.2]);
  assert.deepEqual([s.min, s.max, s.median], [0.1, 0.3, 0.2]);
  assert.ok(Math.abs(s.mean - 0.2) < 1e-12);
});

test('benchmark runs warm-up then repeats, and returns every sample with the device', async () => {
  await useBackend('wasm');
  let calls = 0;
  const t = await timing.benchmark(() => {
    calls++;
  }, { warmup: 3, repeats: 4 });
  assert.equal(calls, 7);
  assert.equal(t.samples.length, 4);
  assert.equal(t.device.backend, 'wasm');
  assert.ok(t.min <= t.median && t.median <= t.max);
});

test('benchmark waits for asynchronous work inside each sample', async () => {
  const t = await timing.benchmark(() => new Promise<void>((r) => setTimeout(r, 30)), { warmup: 0, repeats: 2 });
  assert.ok(t.min >= 0.025, `min ${t.min}s should include the 30 ms wait`);
});

test('benchmark syncs and disposes returned tensors (no leak)', async () => {
  const a = tf.ones([64, 64]);
  const before = tf.memory().numTensors;
  await timing.benchmark(() => [tf.matMul(a, a), tf.add(a, 1)], { warmup: 1, repeats: 3 });
  assert.equal(tf.memory().numTensors, before);
  a.dispose();
});

test('benchmark rejects bad options', async () => {
  await assert.rejects(timing.benchmark(() => {}, { repeats: 0 }), /repeats/);
  await assert.rejects(timing.benchmark(() => {}, { warmup: -1 }), /warmup/);
});

test('settle waits without reading everything back, and tinyOpChain leaves no tensors behind', async () => {
  await useBackend('cpu');
  assert.equal(timing.isSynchronousBackend(), true, 'the cpu backend has finished when a kernel returns');
  const t = tf.ones([3, 4]);
  await timing.settle(t);
  assert.equal(t.isDisposed, false, 'settle does not dispose');
  t.dispose();
  const before = tf.memory().numTensors;
  await timing.tinyOpChain(25);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(() => timing.tinyOpChain(0), /positive integer/);
});

test('benchmarkWithin: a run over the budget gets the slow repeat count, a fast one the full count', async () => {
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const slow = await timing.benchmarkWithin(() => sleep(30), { warmup: 0, repeats: 6, slowRepeats: 2, budgetSeconds: 0.01 });
  assert.equal(slow.samples.length, 2);
  assert.ok(slow.min >= 0.025);
  const fast = await timing.benchmarkWithin(() => undefined, { warmup: 1, repeats: 6, budgetSeconds: 1 });
  assert.equal(fast.samples.length, 6);
  assert.equal(fast.median, timing.median(fast.samples));
});
