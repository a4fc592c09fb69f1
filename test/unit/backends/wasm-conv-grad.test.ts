import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import { conv2DBackpropFilterViaConv, registerWasmConv2DBackpropFilter, KERNEL_NAME } from '../../../lib/backends/wasm-conv-grad';

function maxAbsDiff(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const cases: { x: [number, number, number, number]; f: [number, number, number, number]; s: number | [number, number]; pad: 'same' | 'valid' }[] = [
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], s: 1, pad: 'valid' },
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [3, 9, 8, 2], f: [3, 2, 2, 5], s: [2, 3], pad: 'same' },
  { x: [1, 10, 10, 1], f: [5, 5, 1, 2], s: 2, pad: 'valid' },
];

test('the conv-based filter gradient equals the cpu backend\'s Conv2DBackpropFilter', async () => {
  await useBackend('cpu');
  for (const c of cases) {
    const x = tf.randomNormal(c.x, 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = tf.conv2d(x, tf.zeros(c.f) as tf.Tensor4D, c.s, c.pad);
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 2) as tf.Tensor4D;
    const ref = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f }) as tf.Tensor4D;
    const got = conv2DBackpropFilterViaConv(x, dy, c.f, c.s, c.pad);
    assert.deepEqual(got.shape, c.f);
    assert.ok(maxAbsDiff(got.dataSync(), ref.dataSync()) < 1e-4, `case ${JSON.stringify(c)}`);
    tf.dispose([x, y, dy, ref, got]);
  }
});

test('wasm has the kernel registered, and conv2d gradients on wasm match the cpu backend', async () => {
  assert.equal(registerWasmConv2DBackpropFilter(), false, 'already registered on import: a second call changes nothing');
  assert.ok(tf.getKernel(KERNEL_NAME, 'wasm'));
  const grads: Float32Array[] = [];
  for (const b of ['cpu', 'wasm'] as const) {
    await useBackend(b);
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 6], 0, 1, 'float32', 4) as tf.Tensor4D;
    const g = tf.grad((f: tf.Tensor) => tf.conv2d(x, f as tf.Tensor4D, 1, 'same').square().sum())(w);
    grads.push(g.dataSync() as Float32Array);
    tf.dispose([x, w, g]);
  }
  const scale = Math.max(...Array.from(grads[0], Math.abs));
  assert.ok(maxAbsDiff(grads[0], grads[1]) <= 1e-5 * scale, `max diff ${maxAbsDiff(grads[0], grads[1])} vs scale ${scale}`);
});

test('a small convnet trains on wasm (model.fit runs and lowers the loss), without leaking tensors', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const m = tf.sequential({ layers: [
    tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, activation: 'relu', padding: 'same' }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu' }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 2, activation: 'softmax' }),
  ] });
  const opt = tf.train.adam(0.01);
  m.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([64, 12, 12, 1], 0, 1, 'float32', 5);
  const y = tf.tidy(() => tf.oneHot(x.mean([1, 2, 3]).greater(0).toInt() as tf.Tensor1D, 2));
  const h = await m.fit(x, y, { epochs: 15, batchSize: 16, verbose: 0 });
  const loss = h.history.loss as number[];
  assert.ok(loss[loss.length - 1] < loss[0], `loss ${loss[0]} → ${loss[loss.length - 1]}`);
  tf.dispose([x, y]);
  m.dispose();
  opt.dispose();
  assert.equal(tf.memory().numTensors, before);
});
