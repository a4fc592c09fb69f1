import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import '../../lib/backends/wasm-conv-grad';
import * as transfer from '../../lib/transfer';
import * as transferSource from '../../lib/experiments/transfer-source';

before(async () => {
  await useBackend('wasm');
});

function snapshot(ws: readonly tf.LayerVariable[]): Float32Array[] {
  return ws.map((w) => (w.read().dataSync() as Float32Array).slice());
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function randomImages(n: number, classes: number, seed = 1) {
  const xs = tf.randomNormal([n, 28, 28, 1], 0, 1, 'float32', seed);
  const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([n], 0, classes, 'int32', seed + 1) as tf.Tensor1D, classes));
  return { xs, ys };
}

test('cutAt shares the base layers and ends at the named layer; unknown names are listed', () => {
  const base = transferSource.buildSourceConvnet(5, { seed: 4 });
  const features = transfer.cutAt(base, 'block3_conv');
  assert.deepEqual(features.outputs[0].shape, [null, 7, 7, 64]);
  assert.equal(features.getLayer('block2_conv'), base.getLayer('block2_conv'));
  assert.throws(() => transfer.cutAt(base, 'block9'), /no layer named 'block9' .*block1_conv, block1_pool/);
  base.dispose();
});

test('trainable parameter counts after freezing the base and adding the article\'s head', () => {
  const base = transferSource.buildSourceConvnet(5, { seed: 5 });
  const features = transfer.cutAt(base, 'block3_conv');
  const baseParams = (9 * 1 * 16 + 16) + (9 * 16 * 32 + 32) + (9 * 32 * 64 + 64);
  assert.equal(transfer.freeze(features), 6);
  const model = transfer.addClassificationHead(features, 5);
  const head = (64 * 1024 + 1024) + (1024 * 5 + 5);
  assert.deepEqual(transfer.parameterCounts(model), { total: baseParams + head, trainable: head, nonTrainable: baseParams });
  assert.equal(model.countParams(), baseParams + head);
  assert.deepEqual(model.layers.slice(-3).map((l) => l.getClassName()), ['GlobalAveragePooling2D', 'Dense', 'Dense']);
  transfer.unfreeze(features);
  assert.deepEqual(transfer.parameterCounts(model), { total: baseParams + head, trainable: baseParams + head, nonTrainable: 0 });
  const small = transfer.addClassificationHead(features, 3, { units: 32 });
  assert.equal(transfer.parameterCounts(small).total, baseParams + 64 * 32 + 32 + 32 * 3 + 3);
  assert.throws(() => transfer.addClassificationHead(base, 3), /output has shape \[null, 5\]; GlobalAveragePooling2D needs a 4-D feature map/);
  assert.throws(() => transfer.addClassificationHead(features, 1), /numClasses must be an integer ≥ 2/);
  base.dispose();
});

test('frozen base weights are bit-identical after fit, while the head and an unfrozen base do change', async () => {
  for (const frozen of [true, false]) {
    const base = transferSource.buildSourceConvnet(5, { seed: 6 });
    const features = transfer.cutAt(base, 'block3_conv');
    if (frozen) transfer.freeze(features);
    const model = transfer.addClassificationHead(features, 4, { units: 32 });
    const opt = tf.train.adam(0.01);
    model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
    const baseBefore = snapshot(features.weights);
    const headBefore = snapshot(model.layers.slice(-2).flatMap((l) => l.weights));
    const { xs, ys } = randomImages(48, 4, 7);
    await model.fit(xs, ys, { batchSize: 16, epochs: 2, verbose: 0 });
    const baseAfter = snapshot(features.weights);
    const headAfter = snapshot(model.layers.slice(-2).flatMap((l) => l.weights));
    const baseSame = baseBefore.every((w, i) => bitsEqual(w, baseAfter[i]));
    assert.equal(baseSame, frozen, frozen ? 'frozen base must be bit-identical' : 'an unfrozen base must change (control)');
    assert.deepEqual(headBefore.map((w, i) => bitsEqual(w, headAfter[i])), headBefore.map(() => false), 'every head weight changed');
    tf.dispose([xs, ys]);
    model.dispose();
    opt.dispose();
  }
});

test('freshCopy has the same architecture with new weights; relabel keeps and renumbers classes', () => {
  const base = transferSource.buildSourceConvnet(5, { seed: 8 });
  const fresh = transfer.freshCopy(base);
  assert.deepEqual(fresh.layers.map((l) => l.name), base.layers.map((l) => l.name));
  assert.ok(!bitsEqual(fresh.getLayer('block1_conv').getWeights()[0].dataSync() as Float32Array, base.getLayer('block1_conv').getWeights()[0].dataSync() as Float32Array));
  const set = { images: new Uint8Array([1, 1, 2, 2, 3, 3, 4, 4]), labels: new Uint8Array([5, 0, 9, 7]), count: 4, height: 1, width: 2 };
  const r = transferSource.relabel(set, [5, 6, 7, 8, 9]);
  assert.equal(r.count, 3);
  assert.deepEqual(Array.from(r.labels), [0, 4, 2]);
  assert.deepEqual(Array.from(r.images), [1, 1, 3, 3, 4, 4]);
  base.dispose();
  fresh.dispose();
});

test('disposeModels frees shared layers once, including the layers above a cut', () => {
  const before = tf.memory().numTensors;
  const base = transferSource.buildSourceConvnet(5, { seed: 9 });
  const features = transfer.cutAt(base, 'block2_pool');
  const model = transfer.addClassificationHead(features, 3, { units: 8 });
  transfer.disposeModels(model, features, base);
  assert.equal(tf.memory().numTensors, before);
});
