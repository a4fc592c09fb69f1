/**
 * TensorFlow ops as tfjs kernels (lib/backends/native-ops.ts): each `TF:<Op>` kernel against the
 * tfjs ops it replaces, its input checks, and counting the TensorFlow ops a function runs. Needs
 * the native backend: skipped without it, failed under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../../lib/backends';
import * as nativeOps from '../../../lib/backends/native-ops';
import { relativeError, seeded } from '../../support/parity';
import { inCi } from '../../../scripts/setup/test-deps';

const IN_CI = inCi();

async function onNative(t: { skip: (msg: string) => void }): Promise<boolean> {
  const probe = (await device.listBackends()).find((p) => p.name === 'tensorflow')!;
  if (!probe.available) {
    if (IN_CI) assert.fail(`CI=true but the native tensorflow backend cannot load: ${probe.reason}`);
    t.skip(`no native tensorflow backend: ${probe.reason}`);
    return false;
  }
  await device.activateBackend('tensorflow');
  return true;
}

const op = (name: nativeOps.TfOpName, inputs: Record<string, tf.Tensor>, attrs?: Record<string, boolean | number[]>) => nativeOps.tfOp(name, inputs, attrs) as tf.Tensor;

function close(got: tf.Tensor, want: tf.Tensor, what: string, tolerance = 1e-6): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const e = relativeError(got.dataSync(), want.dataSync());
  assert.ok(e <= tolerance, `${what}: relative error ${e.toExponential(2)}`);
}

test('the kernels are registered under new names (TF:<Op>), and registering twice is harmless', () => {
  nativeOps.registerTensorflowOps();
  nativeOps.registerTensorflowOps();
  for (const name of nativeOps.TF_OPS) {
    assert.equal(nativeOps.kernelName(name), `TF:${name}`);
    assert.ok(tf.getKernel(`TF:${name}`, 'tensorflow'), `TF:${name} registered`);
  }
  assert.ok(nativeOps.TF_OPS.includes('SoftmaxCrossEntropyWithLogits') && nativeOps.TF_OPS.includes('ReluGrad'));
});

test('each TF: kernel computes what the tfjs ops it stands for compute', async (t) => {
  if (!(await onNative(t))) return;
  tf.tidy(() => {
    const a = tf.tensor2d(seeded(6 * 5, 1), [6, 5]);
    const b = tf.tensor2d(seeded(5 * 4, 2), [5, 4]);
    const bias = tf.tensor1d(seeded(4, 3));
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const x = tA ? a.transpose() : a;
      const y = tB ? b.transpose() : b;
      close(op('MatMul', { a: x, b: y }, { transposeA: tA, transposeB: tB }), tf.matMul(x, y, tA, tB), `MatMul ${tA} ${tB}`);
    }
    const z = tf.matMul(a, b);
    close(op('BiasAdd', { value: z, bias }), tf.add(z, bias), 'BiasAdd');
    close(op('BiasAddGrad', { outBackprop: z }), tf.sum(z, 0), 'BiasAddGrad');
    close(op('Relu', { features: z }), tf.relu(z), 'Relu');
    const dy = tf.tensor2d(seeded(6 * 4, 4), [6, 4]);
    close(op('ReluGrad', { gradients: dy, features: tf.relu(z) }), tf.mul(dy, tf.step(z)), 'ReluGrad (features = ReLU output)');
    const labels = tf.oneHot(tf.tensor1d([0, 3, 1, 2, 3, 0], 'int32'), 4).toFloat();
    const [perExample, backprop] = nativeOps.tfOp('SoftmaxCrossEntropyWithLogits', { features: z, labels }) as tf.Tensor[];
    close(perExample, tf.losses.softmaxCrossEntropy(labels, z, undefined, undefined, tf.Reduction.NONE), 'SoftmaxCrossEntropyWithLogits loss', 1e-6);
    close(backprop, tf.sub(tf.softmax(z), labels), 'SoftmaxCrossEntropyWithLogits backprop', 1e-6);
    close(op('Mean', { input: perExample, axis: tf.tensor1d([0], 'int32') }), tf.mean(perExample), 'Mean');
    close(op('Mul', { x: z, y: tf.scalar(0.5) }), tf.mul(z, 0.5), 'Mul');
    close(op('AddV2', { x: z, y: dy }), tf.add(z, dy), 'AddV2');
    close(op('Sub', { x: z, y: dy }), tf.sub(z, dy), 'Sub');
    close(op('Reshape', { tensor: z, shape: tf.tensor1d([-1, 2], 'int32') }), z.reshape([12, 2]), 'Reshape');
  });
});

test('TF: kernels check their inputs; tfOp refuses other backends', async (t) => {
  if (!(await onNative(t))) return;
  const i = tf.ones([2, 2], 'int32');
  const f = tf.ones([2, 2]);
  assert.throws(() => op('MatMul', { a: i, b: f }), /TF:MatMul: input 'a' must be float32, got int32/);
  assert.throws(() => op('MatMul', { a: f }), /TF:MatMul: input 'b' is missing/);
  assert.throws(() => op('Mean', { input: f, axis: tf.tensor1d([0]) }), /input 'axis' must be int32/);
  tf.dispose([i, f]);
  await device.activateBackend('cpu');
  assert.throws(() => op('Relu', { features: tf.ones([1]) }), /current backend is cpu, not tensorflow/);
  assert.throws(() => nativeOps.countTensorflowOps(() => 0), /current backend is cpu/);
});

test('countTensorflowOps counts the TensorFlow ops and uploads of a function, and restores the binding', async (t) => {
  if (!(await onNative(t))) return;
  const backend = tf.backend() as unknown as { binding: object };
  const binding = backend.binding;
  const x = tf.ones([3, 4]);
  x.dataSync(); // uploaded now, not inside the count
  const c = nativeOps.countTensorflowOps(() => tf.tidy(() => tf.relu(tf.add(x, x)).sum().dataSync()[0]));
  assert.equal(c.value, 24);
  assert.equal(c.ops.AddV2 ?? c.ops.Add, 1);
  assert.equal(c.ops.Relu, 1);
  assert.equal(c.ops.Sum, 1);
  assert.equal(c.total, Object.values(c.ops).reduce((a, b) => a + b, 0));
  assert.ok(c.uploads >= 1, "tfjs-node's Sum uploads its axis tensor");
  assert.equal(backend.binding, binding);
  assert.throws(() => nativeOps.countTensorflowOps(() => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(backend.binding, binding, 'restored after a throw');
  x.dispose();
});

test('resource variables: ResourceApplyMomentum is tfjs momentum, and updateInPlace keeps the variable (copying only when shared)', async (t) => {
  if (!(await onNative(t))) return;
  const before = tf.memory().numTensors;
  const init = tf.tensor1d([1, 2, 3]);
  const w = tf.variable(init);
  init.dispose(); // else the initial tensor shares w's data
  const g = tf.tensor1d([0.5, -1, 2]);
  const lr = tf.scalar(0.1);
  const m = tf.scalar(0.9);
  const handle = op('VarHandleOp', {}, { shape: [3] });
  const accum = op('VarHandleOp', {}, { shape: [3] });
  assert.equal(handle.dtype, 'string', 'a resource handle');
  nativeOps.tfOp('AssignVariableOp', { resource: handle, value: w });
  const zeros = tf.zeros([3]);
  nativeOps.tfOp('AssignVariableOp', { resource: accum, value: zeros });
  const apply = () => nativeOps.tfOp('ResourceApplyMomentum', { var: handle, accum, lr, grad: g, momentum: m });
  const read = () => op('ReadVariableOp', { resource: handle });
  const dataId = w.dataId;
  const id0 = nativeOps.handleId(w);
  assert.equal(nativeOps.updateInPlace(w, apply, read), true, 'nothing shares w: in place');
  assert.equal(w.dataId, dataId, 'same data id');
  assert.notEqual(nativeOps.handleId(w), id0, 'a new handle');
  assert.deepEqual(Array.from(w.dataSync()), [1 - 0.05, 2 + 0.1, 3 - 0.2].map(Math.fround));
  const clone = tf.clone(w);
  const kept = Array.from(clone.dataSync());
  assert.equal(nativeOps.updateInPlace(w, apply, read), false, 'a clone shares w: assigned instead');
  assert.notEqual(w.dataId, dataId);
  assert.deepEqual(Array.from(clone.dataSync()), kept, 'the clone kept its values');
  // second momentum step: accum = 0.9·g + g = 1.9·g; w -= 0.1·1.9·g
  assert.ok(relativeError(w.dataSync(), [0.95 - 0.095, 2.1 + 0.19, 2.8 - 0.38]) < 1e-6, `${w.dataSync()}`);
  tf.dispose([w, g, lr, m, handle, accum, zeros, clone]);
  assert.equal(tf.memory().numTensors, before);
});
