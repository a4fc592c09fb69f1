import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import * as train from '../../lib/train';
import { onBackendOrSkip, releaseBackends } from '../support/backends';
import { relativeError } from '../support/parity';

after(releaseBackends);

/** The bound: ‖checkpointed − plain‖∞ / ‖plain‖∞ per gradient. */
const TOLERANCE = 1e-5;

/** A deep, narrow MLP (activations dominate at a large batch) and one seeded batch. */
function deepNet(width = 32, depth = 6, inputs = 16) {
  const model = train.mlp({ inputs, hidden: Array(depth).fill(width), outputs: 5, seed: 11 });
  return model;
}

function seededBatch(n: number, inputs: number, classes = 5) {
  return tf.tidy(() => ({
    xs: tf.randomNormal([n, inputs], 0, 1, 'float32', 21),
    ys: tf.oneHot(tf.randomUniform([n], 0, classes, 'int32', 22), classes).toFloat(),
  }));
}

/** Gradients of the softmax cross-entropy loss w.r.t. every trainable weight of `model`, and the step's peak above the start. */
async function gradientsOf(model: tf.LayersModel, batch: { xs: tf.Tensor; ys: tf.Tensor }): Promise<{ grads: Float32Array[]; peak: number }> {
  const vars = train.trainableVariables(model);
  const start = tf.memory().numBytes;
  let grads: Float32Array[] = [];
  const info = await tf.profile(async () => {
    const { value, grads: g } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(batch.ys, model.apply(batch.xs, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    grads = await Promise.all(vars.map(async (v) => new Float32Array(await g[v.name].data())));
    tf.dispose([value, ...Object.values(g)]);
  });
  return { grads, peak: info.peakBytes - start };
}

test('segmentSizes: contiguous, as equal as possible, larger first; clear errors', () => {
  assert.deepEqual(train.segmentSizes(8, 3), [3, 3, 2]);
  assert.deepEqual(train.segmentSizes(9, 3), [3, 3, 3]);
  assert.deepEqual(train.segmentSizes(5, 5), [1, 1, 1, 1, 1]);
  assert.deepEqual(train.segmentSizes(7, 1), [7]);
  assert.throws(() => train.segmentSizes(4, 5), /segments must be an integer in \[1, 4\]/);
  assert.throws(() => train.segmentSizes(4, 0), /segments must be an integer/);
  assert.throws(() => train.segmentSizes(0, 1), /at least one layer/);
});

test('checkpointed builds segments that share the source weights; refuses impure or unbuilt layers', async () => {
  await useBackend('wasm');
  const model = deepNet();
  const ck = train.checkpointed(model, { segments: 3 });
  assert.equal(ck.layers.length, 3);
  assert.deepEqual(ck.layers.map((l) => (l as train.CheckpointedSegment).inner.length), [3, 2, 2]);
  assert.equal(ck.countParams(), model.countParams());
  assert.deepEqual(ck.trainableWeights.map((w) => w.read().id), model.trainableWeights.map((w) => w.read().id), 'the same variables, in order');
  assert.deepEqual(ck.outputs[0].shape, model.outputs[0].shape);
  const sqrt = train.checkpointed(model);
  assert.equal(sqrt.layers.length, Math.round(Math.sqrt(7)), "'sqrt' by default");
  ck.dispose();
  sqrt.dispose();
  assert.equal(model.getWeights().length, 14, 'disposing the checkpointed model leaves the source weights');
  const withDropout = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 4 }), tf.layers.dropout({ rate: 0.5 }), tf.layers.dense({ units: 2 })] });
  assert.throws(() => train.checkpointed(withDropout, { segments: 2 }), /'dropout_\w*' \(Dropout\) does not repeat itself when recomputed/);
  assert.throws(() => train.checkpointed([tf.layers.dense({ units: 3 })]), /is not built yet|has no input shape/);
  model.dispose();
  withDropout.dispose();
});

for (const backend of ['wasm', 'tensorflow', 'webgpu'] as const) {
  test(`checkpointed gradients equal the plain ones within ${TOLERANCE} relative error (${backend}), at every segment count, with no tensor left behind`, async (t) => {
    if (!(await onBackendOrSkip(t, backend))) return;
    const small = backend === 'webgpu';   // lavapipe compiles a shader per new op: keep it short
    const model = small ? deepNet(16, 3, 8) : deepNet();
    const batch = seededBatch(small ? 16 : 64, small ? 8 : 16);
    const plain = await gradientsOf(model, batch);
    const layers = model.layers.length;
    for (const segments of small ? [1, 2] : [1, 2, 3, layers]) {
      const ck = train.checkpointed(model, { segments });
      await gradientsOf(ck, batch); // warm-up: kernels that keep constants do so once (native)
      const before = tf.memory().numTensors;
      const got = await gradientsOf(ck, batch);
      assert.equal(tf.memory().numTensors, before, `segments=${segments}: the checkpointed step left tensors behind`);
      got.grads.forEach((g, i) => {
        const e = relativeError(g, plain.grads[i]);
        assert.ok(e <= TOLERANCE, `segments=${segments}, weight ${i}: relative error ${e.toExponential(2)} > ${TOLERANCE}`);
      });
      ck.dispose();
    }
    tf.dispose([batch.xs, batch.ys]);
    model.dispose();
  });
}

test('checkpointing lowers the peak of a deep net whose activations dominate; √n segments beat 1 and n', async () => {
  await useBackend('wasm');
  const model = deepNet(64, 15, 64); // 16 layers
  const batch = seededBatch(512, 64);
  const plain = await gradientsOf(model, batch);
  const peaks = new Map<number, number>();
  for (const segments of [1, 4, 16]) {
    const ck = train.checkpointed(model, { segments });
    peaks.set(segments, (await gradientsOf(ck, batch)).peak);
    ck.dispose();
  }
  const sqrt = peaks.get(4)!;
  assert.ok(sqrt < 0.6 * plain.peak, `4 segments: ${sqrt} bytes vs plain ${plain.peak}`);
  assert.ok(sqrt < peaks.get(1)! && sqrt < peaks.get(16)!, `√n should be the sweet spot: ${JSON.stringify([...peaks])}`);
  assert.ok(peaks.get(1)! >= 0.9 * plain.peak, 'one segment recomputes everything at once: no saving');
  tf.dispose([batch.xs, batch.ys]);
  model.dispose();
});

test('a checkpointed model trains with trainLoop and model.fit like the plain one', async () => {
  await useBackend('wasm');
  const batch = seededBatch(64, 16);
  const a = deepNet();
  const b = deepNet();
  const ck = train.checkpointed(b, { segments: 3 });
  const batches = () => [{ xs: batch.xs.slice([0, 0], [32, 16]), ys: batch.ys.slice([0, 0], [32, 5]) }, { xs: batch.xs.slice([32, 0], [32, 16]), ys: batch.ys.slice([32, 0], [32, 5]) }];
  const optA = tf.train.sgd(0.1);
  const optB = tf.train.sgd(0.1);
  await train.trainLoop(a, batches, { epochs: 2, optimizer: optA, step: 'stock' });
  await train.trainLoop(ck, batches, { epochs: 2, optimizer: optB });
  const wa = a.getWeights().map((w) => w.dataSync() as Float32Array);
  b.getWeights().forEach((w, i) => assert.ok(relativeError(w.dataSync(), wa[i]) < 1e-6, `weight ${i} after trainLoop`));
  ck.compile({ optimizer: tf.train.sgd(0.1), loss: (y: tf.Tensor, o: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, o) });
  const h = await ck.fit(batch.xs, batch.ys, { epochs: 2, batchSize: 32, shuffle: false, verbose: 0 });
  assert.equal(h.history.loss.length, 2);
  assert.ok((h.history.loss[1] as number) < (h.history.loss[0] as number), 'fit lowers the loss');
  train.disposeOptimizer(optA);
  train.disposeOptimizer(optB);
  ck.dispose();
  tf.dispose([batch.xs, batch.ys]);
  a.dispose();
  b.dispose();
});
