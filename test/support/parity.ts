/**
 * Shared pieces of the backend correctness suites (webgpu.test.ts, native.test.ts): deterministic
 * inputs, the relative-error measure, running one computation on a backend, and the two
 * computations both suites compare with the cpu backend (gradients through a small convnet, and a
 * short 784-500-10 training run); and the fused training step's gradients against autodiff's on
 * one backend.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../lib/backends';
import * as train from '../../lib/train';

/** A computation compared across backends: one tensor, several, or a promise of several. */
export type Computation = () => tf.Tensor | tf.Tensor[] | Promise<tf.Tensor[]>;

/** Deterministic uniform numbers in [lo, hi) (a small LCG, so every backend gets the same inputs). */
export function seeded(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  }
  return out;
}

/**
 * ‖a − b‖∞ / ‖b‖∞: the error relative to the reference's largest magnitude. A value of `a` must
 * be finite, except where the reference `b` is NaN, where `a` must be NaN too.
 */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'result sizes differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) {
      assert.ok(Number.isNaN(a[i]), `expected NaN at ${i}, got ${a[i]}`);
      continue;
    }
    assert.ok(Number.isFinite(a[i]), `non-finite value at ${i}: ${a[i]}`);
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Run `fn` on `backend` (after `prepare`, if given); return each output's values and dispose the outputs. */
export async function valuesOn(backend: string, fn: Computation, prepare?: () => void): Promise<Float32Array[]> {
  await device.activateBackend(backend);
  prepare?.();
  const out = await fn();
  const list = Array.isArray(out) ? out : [out];
  const values = await Promise.all(list.map(async (t) => new Float32Array(await t.data())));
  tf.dispose(list);
  return values;
}

/**
 * Gradients of a softmax cross-entropy loss through conv → relu → max-pool → dense, with
 * respect to the input, the filter and the dense weights. Inputs come from seeds `seed`,
 * `seed + 1` and `seed + 2`.
 */
export function gradientComputation(seed: number): Computation {
  const x = seeded(2 * 8 * 8 * 3, seed);
  const k = seeded(3 * 3 * 3 * 4, seed + 1, -0.5, 0.5);
  const w = seeded(4 * 4 * 4 * 10, seed + 2, -0.3, 0.3);
  const labels = new Float32Array(2 * 10);
  labels[3] = 1;
  labels[10 + 7] = 1;
  return () => {
    const X = tf.tensor4d(x, [2, 8, 8, 3]);
    const K = tf.tensor4d(k, [3, 3, 3, 4]);
    const W = tf.tensor2d(w, [64, 10]);
    const Y = tf.tensor2d(labels, [2, 10]);
    const loss = (xx: tf.Tensor4D, kk: tf.Tensor4D, ww: tf.Tensor2D) => {
      const h = tf.maxPool(tf.relu(tf.conv2d(xx, kk, 1, 'same')), 2, 2, 'valid').reshape([2, 64]) as tf.Tensor2D;
      return tf.losses.softmaxCrossEntropy(Y, tf.matMul(h, ww));
    };
    const g = tf.grads((xx, kk, ww) => loss(xx as tf.Tensor4D, kk as tf.Tensor4D, ww as tf.Tensor2D))([X, K, W]);
    tf.dispose([X, K, W, Y]);
    return g;
  };
}

/**
 * Two epochs of the 784-500-10 model (SGD momentum 0.05/0.9, batch 32) on 96 seeded samples;
 * returns the per-epoch losses and what training changed in each weight. Inputs come from seed
 * `seed`, initial weights from `seed + 1` … `seed + 4`.
 */
export function trainingComputation(seed: number): Computation {
  const n = 96;
  const batch = 32;
  const xs = seeded(n * 784, seed, 0, 1);
  const labels = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) labels[i * 10 + ((i * 7) % 10)] = 1;
  const init = [seeded(784 * 500, seed + 1, -0.03, 0.03), seeded(500, seed + 2, -0.01, 0.01), seeded(500 * 10, seed + 3, -0.05, 0.05), seeded(10, seed + 4, -0.01, 0.01)];
  const shapes = [[784, 500], [500], [500, 10], [10]];
  return async () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [784], units: 500, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })],
    });
    model.setWeights(init.map((v, i) => tf.tensor(v, shapes[i])));
    model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });
    const X = tf.tensor2d(xs, [n, 784]);
    const Y = tf.tensor2d(labels, [n, 10]);
    const history = await model.fit(X, Y, { batchSize: batch, epochs: 2, shuffle: false, verbose: 0 });
    // Compare what training changed (final − initial weights), not the weights themselves,
    // so that a wrong update cannot hide behind the large unchanged part. The floor of this
    // check is float32 rounding of the weights at each step (≈ steps·ulp(w)/max|Δw|), which is
    // why the initial weights are small and the learning rate is 0.05: the floor is then ≈1e-6.
    const deltas = model.getWeights().map((w, i) => tf.sub(w, tf.tensor(init[i], shapes[i])));
    const losses = tf.tensor1d(history.history.loss as number[]);
    tf.dispose([X, Y]);
    model.dispose();
    return [losses, ...deltas];
  };
}

/**
 * The fused training step against autodiff on the current backend (`train.stepParity`): relative
 * errors of the mean loss and of each gradient. Throws unless the fused step ran.
 */
export async function fusedStepErrors(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, loss: train.LossName = 'softmaxCrossEntropy'): Promise<{ loss: number; grads: number[] }> {
  const p = await train.stepParity(model, xs, ys, loss);
  return { loss: p.loss, grads: p.gradients };
}

/** A seeded one-hot batch for an MLP: inputs in [0, 1) of shape `[batch, ...inputShape]` and labels `[batch, classes]`. */
export function seededBatch(batch: number, inputShape: number[], classes: number, seed: number): { xs: tf.Tensor; ys: tf.Tensor2D } {
  const features = inputShape.reduce((a, b) => a * b, 1);
  const labels = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) labels[i * classes + ((i * 7 + seed) % classes)] = 1;
  return { xs: tf.tensor(seeded(batch * features, seed, 0, 1), [batch, ...inputShape]), ys: tf.tensor2d(labels, [batch, classes]) };
}
