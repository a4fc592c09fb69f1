import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import '../../lib/backends/wasm-conv-grad';
import * as modelIO from '../../lib/model-io';
import { roundToFormat } from '../../lib/precision';
import { tempDir } from '../support/helpers';

before(async () => {
  await useBackend('wasm');
});

/** A small named convnet for 28×28×1 images. */
function convnet(classes: number, options: { seed: number }): tf.LayersModel {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: options.seed * 10 + k });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: init(1) }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: classes, activation: 'softmax', name: 'predictions', kernelInitializer: init(2) }),
    ],
  });
}

test('save then load round-trips weights, predictions and metadata; saving is atomic and replaces old shards', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const model = convnet(5, { seed: 1 });
    const target = path.join(dir, 'models', 'base');
    await modelIO.saveModel(model, target, { metadata: { sourceTask: 'classes 0-4', accuracy: 0.9 } });
    const files = fs.readdirSync(target).sort();
    assert.equal(files.length, 2);
    assert.match(files[1], /^weights\.[0-9a-f]{16}\.bin$/);
    assert.equal(files[0], 'model.json');
    const loaded = await modelIO.loadModel(target);
    const x = tf.randomNormal([2, 28, 28, 1]);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
    assert.deepEqual(loaded.layers.map((l) => l.name), model.layers.map((l) => l.name));
    assert.deepEqual(modelIO.readModelMetadata(target), { sourceTask: 'classes 0-4', accuracy: 0.9 });
    assert.deepEqual(loaded.getUserDefinedMetadata(), { sourceTask: 'classes 0-4', accuracy: 0.9 });
    // Same model through a file:// URL and a model.json path.
    const viaUrl = await modelIO.loadModel(`file://${path.join(target, 'model.json')}`);
    assert.equal(viaUrl.countParams(), model.countParams());
    // Save different weights into the same folder: one shard remains, no temp files.
    const other = convnet(5, { seed: 2 });
    await modelIO.saveModel(other, target);
    const after = fs.readdirSync(target).sort();
    assert.equal(after.length, 2, after.join(','));
    assert.notEqual(after[1], files[1]);
    tf.dispose([x, a, b]);
    for (const m of [model, loaded, viaUrl, other]) m.dispose();
  } finally {
    cleanup();
  }
});

test('a missing or corrupt model file gives a clear error naming the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await assert.rejects(modelIO.loadModel(path.join(dir, 'nothing-here')), (e: Error) => {
      assert.match(e.message, /nothing-here[\\/]model\.json: cannot read model file \(ENOENT\)/);
      return true;
    });
    const good = path.join(dir, 'good');
    const model = convnet(3, { seed: 3 });
    await modelIO.saveModel(model, good);
    const json = fs.readFileSync(path.join(good, 'model.json'), 'utf8');
    const shard = fs.readdirSync(good).find((f) => f.endsWith('.bin'))!;

    const corruptJson = path.join(dir, 'corrupt-json');
    fs.mkdirSync(corruptJson);
    fs.writeFileSync(path.join(corruptJson, 'model.json'), json.slice(0, json.length / 2));
    await assert.rejects(modelIO.loadModel(corruptJson), /corrupt-json[\\/]model\.json: corrupt model file, not valid JSON/);

    const truncated = path.join(dir, 'truncated');
    fs.mkdirSync(truncated);
    fs.writeFileSync(path.join(truncated, 'model.json'), json);
    const bytes = fs.readFileSync(path.join(good, shard));
    fs.writeFileSync(path.join(truncated, shard), bytes.subarray(0, bytes.length - 100));
    await assert.rejects(modelIO.loadModel(truncated), (e: Error) => {
      assert.match(e.message, /truncated[\\/]weights\.[0-9a-f]+\.bin: weight data is corrupt or truncated/);
      assert.match(e.message, new RegExp(`needs ${bytes.length} bytes .* hold ${bytes.length - 100}`));
      return true;
    });

    const noShard = path.join(dir, 'no-shard');
    fs.mkdirSync(noShard);
    fs.writeFileSync(path.join(noShard, 'model.json'), json);
    await assert.rejects(modelIO.loadModel(noShard), /no-shard[\\/]weights\.[0-9a-f]+\.bin: cannot read weight shard listed in .*no-shard[\\/]model\.json \(ENOENT\)/);

    const graph = path.join(dir, 'not-layers');
    fs.mkdirSync(graph);
    fs.writeFileSync(path.join(graph, 'model.json'), JSON.stringify({ format: 'graph-model', weightsManifest: [] }));
    await assert.rejects(modelIO.loadModel(graph), /not a TensorFlow\.js Layers model \(no "modelTopology"\)/);

    const badTopology = path.join(dir, 'bad-topology');
    fs.mkdirSync(badTopology);
    const parsed = JSON.parse(json);
    parsed.modelTopology.config.layers[1].class_name = 'NoSuchLayer';
    fs.writeFileSync(path.join(badTopology, 'model.json'), JSON.stringify(parsed));
    fs.copyFileSync(path.join(good, shard), path.join(badTopology, shard));
    await assert.rejects(modelIO.loadModel(badTopology), /bad-topology[\\/]model\.json: cannot build the model \(.*NoSuchLayer/);
    model.dispose();
  } finally {
    cleanup();
  }
});

test('encodeWeights decodes with tfjs’s own decoder: float16 exact rounding, uint8 within bound, int32 kept', () => {
  const a = tf.tensor2d([[0.1, -2.5], [65504, 1e-6]]);
  const i = tf.tensor1d([1, -7, 3], 'int32');
  for (const storage of ['float32', 'float16', 'uint8'] as const) {
    const enc = modelIO.encodeWeights({ a, i }, storage);
    assert.equal(enc.data.byteLength, 4 * ({ float32: 4, float16: 2, uint8: 1 } as const)[storage] + 3 * 4);
    const dec = modelIO.decodeWeights(enc);
    assert.deepEqual(dec.a.shape, [2, 2]);
    assert.deepEqual([...dec.i.dataSync()], [1, -7, 3]);
    const got = dec.a.dataSync();
    const want = a.dataSync();
    for (let k = 0; k < want.length; k++) {
      if (storage === 'float32') assert.equal(got[k], want[k]);
      if (storage === 'float16') assert.equal(got[k], roundToFormat(want[k], 'float16'));
      if (storage === 'uint8') assert.ok(Math.abs(got[k] - want[k]) <= ((65504 + 2.5) / 255) / 2 + 1e-3);
    }
    tf.dispose(Object.values(dec));
  }
  const big = tf.tensor1d([1e5]);
  assert.throws(() => modelIO.encodeWeights({ big }, 'float16'), /weight 'big' value 100000 at index 0 overflows float16/);
  assert.throws(() => modelIO.encodeWeights({ big }, 'int4' as 'uint8'), /unknown storage 'int4'/);
  tf.dispose([a, i, big]);
});

test('saveWeights / loadWeights: sizes, atomic overwrite, clear errors', () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = { 'dense/kernel': tf.randomNormal([300, 100], 0, 0.05, 'float32', 1), 'dense/bias': tf.zeros([100]) };
    const sizes: Record<string, number> = {};
    for (const storage of ['float32', 'float16', 'uint8'] as const) {
      const saved = modelIO.saveWeights(dir, w, storage);
      sizes[storage] = saved.weightBytes;
      assert.equal(fs.statSync(saved.weightsFile).size, saved.weightBytes);
      const files = fs.readdirSync(dir).sort();
      assert.deepEqual(files, [path.basename(saved.weightsFile), 'weights.json'].sort(), `only the current files remain: ${files}`);
      const back = modelIO.loadWeights(dir);
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(back['dense/kernel'], w['dense/kernel']))).dataSync()[0]);
      if (storage === 'float32') assert.equal(err, 0);
      if (storage === 'float16') assert.ok(err < 2 ** -11 * 0.25, `float16 error ${err}`);
      if (storage === 'uint8') assert.ok(err > 0 && err < 0.5 / 255 + 1e-6, `uint8 error ${err}`);
      tf.dispose(Object.values(back));
    }
    assert.equal(sizes.float32, 30100 * 4);
    assert.equal(sizes.float16, 30100 * 2);
    assert.equal(sizes.uint8, 30100);
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp files left');
    // a truncated weights file and a missing one are named in the error
    const bin = fs.readdirSync(dir).find((f) => f.endsWith('.bin'))!;
    fs.truncateSync(path.join(dir, bin), 100);
    assert.throws(() => modelIO.loadWeights(dir), /weights\.[0-9a-f]+\.bin: weight data is corrupt or truncated: .*weights\.json needs 30100 bytes .* hold 100/);
    fs.rmSync(path.join(dir, bin));
    assert.throws(() => modelIO.loadWeights(dir), new RegExp(`${bin}: cannot read weight shard listed in .*weights\\.json \\(ENOENT\\)`));
    fs.writeFileSync(path.join(dir, 'weights.json'), '{not json');
    assert.throws(() => modelIO.loadWeights(dir), /weights\.json: corrupt weights manifest, not valid JSON/);
    tf.dispose(Object.values(w));
  } finally {
    cleanup();
  }
});

test('saveModel / loadModel: a tfjs LayersModel round-trips through float16 and uint8', async () => {
  await useBackend('cpu');
  const { dir, cleanup } = tempDir();
  try {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [8], units: 16, activation: 'relu' }), tf.layers.dense({ units: 3 })] });
    const x = tf.randomNormal([5, 8], 0, 1, 'float32', 7);
    const y0 = model.predict(x) as tf.Tensor;
    for (const storage of ['float32', 'float16', 'uint8'] as const) {
      const sub = path.join(dir, storage);
      const saved = await modelIO.saveModel(model, sub, storage);
      assert.equal(saved.weightBytes, (8 * 16 + 16 + 16 * 3 + 3) * ({ float32: 4, float16: 2, uint8: 1 } as const)[storage]);
      const loaded = await modelIO.loadModel(sub);
      const y1 = loaded.predict(x) as tf.Tensor;
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(y1, y0))).dataSync()[0]);
      const tol = { float32: 0, float16: 5e-3, uint8: 0.1 }[storage];
      assert.ok(err <= tol, `${storage}: max prediction change ${err} > ${tol}`);
      tf.dispose([y1]);
      loaded.dispose();
    }
    await assert.rejects(modelIO.loadModel(path.join(dir, 'nope')), /nope[\\/]model\.json: cannot read model file \(ENOENT\)/);
    modelIO.saveWeights(path.join(dir, 'wonly'), { a: x });
    fs.renameSync(path.join(dir, 'wonly', 'weights.json'), path.join(dir, 'wonly', 'model.json'));
    await assert.rejects(modelIO.loadModel(path.join(dir, 'wonly')), /not a TensorFlow\.js Layers model \(no "modelTopology"\)/);
    tf.dispose([x, y0]);
    model.dispose();
  } finally {
    cleanup();
  }
});

test('a save that fails half-way leaves the previous model in place, loadable', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, kernelInitializer: 'ones' })] });
    await modelIO.saveModel(model, dir);
    const before = fs.readdirSync(dir).sort();
    tf.tidy(() => model.layers[0].setWeights([tf.fill([2, 2], 1e6), tf.zeros([2])]));
    await assert.rejects(modelIO.saveModel(model, dir, 'float16'), /overflows float16/);
    assert.deepEqual(fs.readdirSync(dir).sort(), before);
    const back = await modelIO.loadModel(dir);
    assert.deepEqual(Array.from(back.getWeights()[0].dataSync()), [1, 1, 1, 1]);
    back.dispose();
    model.dispose();
  } finally {
    cleanup();
  }
});
