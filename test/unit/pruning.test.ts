import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import '../../lib/backends/wasm-conv-grad';
import * as pruning from '../../lib/pruning';
import { compile } from '../../lib/charts';
import { tempDir } from '../support/helpers';

before(async () => {
  await useBackend('wasm');
});

/** The article's model: Flatten → Dense(128 relu) → Dense(64 relu) → Dense(1 sigmoid), on 28×28 inputs. */
function articleModel(): tf.LayersModel {
  const input = tf.input({ shape: [28, 28] });
  let x = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 128, activation: 'relu', name: 'd128' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 64, activation: 'relu', name: 'd64' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'out' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function randomData(n: number, seed = 1) {
  const xs = tf.randomUniform([n, 28, 28], 0, 1, 'float32', seed);
  const ys = tf.tidy(() => tf.randomUniform([n, 1], 0, 2, 'float32', seed + 1).floor());
  return { xs, ys };
}

/** A callback that runs `fn` after every batch (placed after UpdatePruningStep in the list). */
class AfterBatch extends tf.Callback {
  constructor(private readonly fn: () => void) {
    super();
  }
  override async onBatchEnd(): Promise<void> {
    this.fn();
  }
}

test('ConstantSparsity: tfmot\'s values and pruning steps', () => {
  const s = new pruning.ConstantSparsity({ targetSparsity: 0.5, beginStep: 10, endStep: 250, frequency: 100 });
  assert.deepEqual(s.at(0), { shouldPrune: false, sparsity: 0.5 });
  assert.deepEqual(s.at(10), { shouldPrune: true, sparsity: 0.5 });
  assert.equal(s.at(11).shouldPrune, false);
  assert.equal(s.at(110).shouldPrune, true);
  assert.equal(s.at(210).shouldPrune, true);
  assert.equal(s.at(310).shouldPrune, false, 'after endStep');
  const forever = new pruning.ConstantSparsity({ targetSparsity: 0.9 });
  assert.equal(forever.at(100_000).shouldPrune, true, 'endStep -1 prunes forever, every 100 steps');
  assert.equal(forever.at(100_001).shouldPrune, false);
  assert.deepEqual(forever.getConfig(), { className: 'ConstantSparsity', config: { targetSparsity: 0.9, beginStep: 0, endStep: -1, frequency: 100 } });
});

test('PolynomialDecay: the schedule values at given steps', () => {
  const s = new pruning.PolynomialDecay({ initialSparsity: 0.2, finalSparsity: 0.8, beginStep: 100, endStep: 300, frequency: 50 });
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(s.at(0).sparsity, 0.2); // before begin: initial
  close(s.at(100).sparsity, 0.2);
  close(s.at(200).sparsity, (0.2 - 0.8) * 0.5 ** 3 + 0.8); // 0.725
  close(s.at(250).sparsity, (0.2 - 0.8) * 0.25 ** 3 + 0.8);
  close(s.at(300).sparsity, 0.8);
  close(s.at(1000).sparsity, 0.8);
  assert.deepEqual([0, 100, 125, 150, 300, 350].map((k) => s.at(k).shouldPrune), [false, true, false, true, true, false]);
  const linear = new pruning.PolynomialDecay({ initialSparsity: 0, finalSparsity: 0.5, beginStep: 0, endStep: 10, power: 1 });
  close(linear.at(4).sparsity, 0.2);
});

test('schedules reject bad arguments with clear errors', () => {
  assert.throws(() => new pruning.ConstantSparsity({ targetSparsity: 1 }), /targetSparsity must be in \[0, 1\)/);
  assert.throws(() => new pruning.ConstantSparsity({ targetSparsity: 0.5, frequency: 0 }), /frequency/);
  assert.throws(() => new pruning.ConstantSparsity({ targetSparsity: 0.5, beginStep: 10, endStep: 5 }), /endStep/);
  assert.throws(() => new pruning.PolynomialDecay({ initialSparsity: 0, finalSparsity: 0.5, beginStep: 10, endStep: 10 }), /endStep \(10\) must be > beginStep/);
  assert.throws(() => new pruning.PolynomialDecay({ initialSparsity: -0.1, finalSparsity: 0.5, beginStep: 0, endStep: 10 }), /initialSparsity/);
});

test('lowMagnitudeMask zeroes exactly round(n × s) entries, smallest first, ties by position', () => {
  const m = pruning.lowMagnitudeMask([0.5, -0.1, 0.1, 0.3, -0.1, 2], 0.5);
  assert.deepEqual(Array.from(m.mask), [1, 0, 0, 1, 0, 1]);
  assert.equal(m.pruned, 3);
  assert.ok(Math.abs(m.threshold - 0.1) < 1e-7);
  const ties = pruning.lowMagnitudeMask([1, 1, 1, 1], 0.5);
  assert.deepEqual(Array.from(ties.mask), [0, 0, 1, 1]);
  assert.equal(pruning.lowMagnitudeMask([3, 2, 1], 0).pruned, 0);
});

test('pruneLowMagnitude clones the model and leaves the original untouched; dispose frees the masks', async () => {
  const before = tf.memory().numTensors;
  const model = articleModel();
  const w0 = (model.getLayer('d128').getWeights()[0].dataSync() as Float32Array).slice();
  const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.5, beginStep: 0 }) });
  assert.ok(pruning.isPruned(pruned));
  assert.ok(!pruning.isPruned(model));
  assert.deepEqual(pruning.pruningState(pruned)!.weights.map((w) => `${w.layerName}/${w.weightName}`), ['d128/kernel', 'd64/kernel', 'out/kernel']);
  pruning.updateMasks(pruning.pruningState(pruned)!, 0.5);
  assert.deepEqual(model.getLayer('d128').getWeights()[0].dataSync(), w0, 'original weights unchanged');
  assert.equal(pruning.sparsityReport(model)[0].zeros, 0);
  assert.equal(pruning.sparsityReport(pruned)[0].zeros, 128 * 784 / 2);
  pruned.dispose();
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => pruning.pruneLowMagnitude(articleModel(), { layers: ['nope'] }), /no layer named nope/);
});

test('after fit, each layer\'s sparsity equals the scheduled target exactly', async () => {
  for (const target of [0.5, 0.75]) {
    const model = articleModel();
    const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: target, beginStep: 0, frequency: 3 }) });
    const opt = tf.train.adam();
    pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
    const { xs, ys } = randomData(96);
    await pruned.fit(xs, ys, { batchSize: 32, epochs: 3, verbose: 0, callbacks: [new pruning.UpdatePruningStep()] });
    for (const row of pruning.sparsityReport(pruned)) {
      // 784·128, 128·64 and 64 are all divisible by 4: the target is hit exactly.
      assert.equal(row.zeros, row.params * target, `${row.layer}: ${row.zeros} zeros of ${row.params} at target ${target}`);
    }
    assert.equal(pruning.pruningState(pruned)!.step, 9);
    tf.dispose([xs, ys]);
    pruned.dispose();
    model.dispose();
    opt.dispose();
  }
});

test('pruned weights stay zero through training (checked after every optimizer step)', async () => {
  const model = articleModel();
  const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.8, beginStep: 0, frequency: 1000 }) });
  const opt = tf.train.adam(0.01);
  pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
  const state = pruning.pruningState(pruned)!;
  let firstMask: Float32Array | null = null;
  let checks = 0;
  let violations = 0;
  const check = new AfterBatch(() => {
    const w = state.weights[0];
    if (!firstMask) firstMask = (w.mask.dataSync() as Float32Array).slice();
    const v = w.variable.read().dataSync();
    for (let i = 0; i < v.length; i++) if (firstMask[i] === 0 && v[i] !== 0) violations++;
    checks++;
  });
  const { xs, ys } = randomData(128, 7);
  await pruned.fit(xs, ys, { batchSize: 32, epochs: 3, verbose: 0, callbacks: [new pruning.UpdatePruningStep(), check] });
  assert.equal(checks, 12);
  assert.equal(violations, 0);
  // Control: the same optimizer step WITHOUT re-masking does move pruned weights (so the check above can fail).
  const plain = pruning.stripPruning(pruned);
  const opt2 = tf.train.adam(0.01);
  plain.compile({ optimizer: opt2, loss: 'binaryCrossentropy' });
  await plain.fit(xs, ys, { batchSize: 32, epochs: 1, verbose: 0 });
  assert.ok(pruning.sparsityReport(plain)[0].zeros < 0.8 * 784 * 128, 'without the callback the zeros fill back in');
  tf.dispose([xs, ys]);
  for (const m of [pruned, model, plain]) m.dispose();
  opt.dispose();
  opt2.dispose();
});

test('PolynomialDecay during fit: masks follow the schedule, sparsity only grows', async () => {
  const model = articleModel();
  const schedule = new pruning.PolynomialDecay({ initialSparsity: 0.1, finalSparsity: 0.9, beginStep: 0, endStep: 8, frequency: 2, power: 1 });
  const pruned = pruning.pruneLowMagnitude(model, { schedule });
  const opt = tf.train.adam();
  pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
  const state = pruning.pruningState(pruned)!;
  const seen: number[] = [];
  const { xs, ys } = randomData(64, 3);
  await pruned.fit(xs, ys, { batchSize: 16, epochs: 3, verbose: 0, callbacks: [new pruning.UpdatePruningStep(), new AfterBatch(() => seen.push(pruning.sparsityReport(pruned)[1].sparsity))] });
  // steps 0..11; masks recomputed at 0,2,4,6,8 → targets 0.1, 0.3, 0.5, 0.7, 0.9
  const expected = [0.1, 0.1, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7, 0.9, 0.9, 0.9, 0.9];
  seen.forEach((s, i) => assert.ok(Math.abs(s - Math.round(expected[i] * 8192) / 8192) < 1e-12, `step ${i}: ${s} vs ${expected[i]}`));
  assert.equal(state.updates, 5);
  tf.dispose([xs, ys]);
  pruned.dispose();
  model.dispose();
  opt.dispose();
});

test('stripPruning returns a plain model with the same predictions', async () => {
  const model = articleModel();
  const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.6, frequency: 1 }) });
  const opt = tf.train.adam();
  pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
  const { xs, ys } = randomData(64, 5);
  await pruned.fit(xs, ys, { batchSize: 32, epochs: 2, verbose: 0, callbacks: [new pruning.UpdatePruningStep()] });
  const plain = pruning.stripPruning(pruned);
  assert.ok(!pruning.isPruned(plain));
  assert.ok(plain instanceof tf.LayersModel);
  const a = pruned.predict(xs) as tf.Tensor;
  const b = plain.predict(xs) as tf.Tensor;
  assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
  assert.deepEqual(pruning.sparsityReport(plain), pruning.sparsityReport(pruned));
  assert.throws(() => pruning.stripPruning(model), /not made by pruning\.pruneLowMagnitude/);
  tf.dispose([xs, ys, a, b]);
  for (const m of [pruned, model, plain]) m.dispose();
  opt.dispose();
});

test('PruningSummaries writes per-layer sparsity as JSON lines, readable and chartable', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const model = articleModel();
    const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.5, frequency: 2 }) });
    const opt = tf.train.adam();
    pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
    const { xs, ys } = randomData(64, 9);
    const summaries = new pruning.PruningSummaries(dir);
    await pruned.fit(xs, ys, { batchSize: 32, epochs: 2, verbose: 0, callbacks: [new pruning.UpdatePruningStep(), summaries] });
    const recs = pruning.readPruningSummaries(dir);
    assert.equal(recs.length, 2 * 3);
    assert.deepEqual(recs.map((r) => r.step), [2, 2, 2, 4, 4, 4]);
    assert.deepEqual(recs.slice(0, 3).map((r) => r.layer), ['d128', 'd64', 'out']);
    for (const r of recs) assert.equal(r.sparsity, 0.5);
    assert.deepEqual(recs, summaries.records);
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp files left');
    compile(pruning.pruningSummaryChart(recs));

    // Without UpdatePruningStep tfmot fails; so does this.
    const opt2 = tf.train.adam();
    const again = pruning.pruneLowMagnitude(model);
    again.compile({ optimizer: opt2, loss: 'binaryCrossentropy' });
    await assert.rejects(again.fit(xs, ys, { batchSize: 32, epochs: 1, verbose: 0, callbacks: [new pruning.PruningSummaries(dir)] }), /add `new pruning.UpdatePruningStep\(\)`/);
    // A plain model is refused with a clear message.
    const opt3 = tf.train.adam();
    model.compile({ optimizer: opt3, loss: 'binaryCrossentropy' });
    await assert.rejects(model.fit(xs, ys, { epochs: 1, verbose: 0, callbacks: [new pruning.UpdatePruningStep()] }), /not made by pruning\.pruneLowMagnitude/);

    fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"step":1,"layer":"a","sparsity":0.5}\n{oops\n');
    assert.throws(() => pruning.readPruningSummaries(path.join(dir, 'bad.jsonl')), /bad\.jsonl:2: invalid JSON/);
    assert.throws(() => pruning.readPruningSummaries(path.join(dir, 'missing.jsonl')), /missing\.jsonl: cannot read pruning summaries \(ENOENT\)/);
    tf.dispose([xs, ys]);
    for (const m of [pruned, model, again]) m.dispose();
    for (const o of [opt, opt2, opt3]) o.dispose();
  } finally {
    cleanup();
  }
});

test('gzip\'d weights shrink with sparsity', async () => {
  const model = articleModel();
  const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.8 }) });
  pruning.updateMasks(pruning.pruningState(pruned)!, 0.8);
  const dense = pruning.gzippedWeightBytes(model);
  const sparse = pruning.gzippedWeightBytes(pruning.stripPruning(pruned));
  assert.equal(dense.rawBytes, sparse.rawBytes);
  assert.equal(dense.rawBytes, 4 * model.countParams());
  assert.ok(sparse.gzipBytes < dense.gzipBytes / 2, `${sparse.gzipBytes} vs ${dense.gzipBytes}`);
  pruned.dispose();
  model.dispose();
});

test('pruneStructured removes dead neurons from an MLP without changing its predictions', () => {
  const model = tf.sequential({ layers: [
    tf.layers.dense({ inputShape: [20], units: 16, activation: 'relu', name: 'h1' }),
    tf.layers.dropout({ rate: 0.1 }),
    tf.layers.dense({ units: 8, activation: 'relu', name: 'h2' }),
    tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
  ] });
  // Kill half the neurons of h1 (odd ones) and of h2 (first half): zero incoming weights and bias.
  tf.tidy(() => {
    const [k1, b1] = model.getLayer('h1').getWeights();
    const m1 = tf.tensor1d(Array.from({ length: 16 }, (_, i) => (i % 2 ? 0 : 1)));
    model.getLayer('h1').setWeights([k1.mul(m1), b1.mul(m1)]);
    const [k2, b2] = model.getLayer('h2').getWeights();
    const m2 = tf.tensor1d(Array.from({ length: 8 }, (_, i) => (i < 4 ? 0 : 1)));
    model.getLayer('h2').setWeights([k2.mul(m2), b2.mul(m2)]);
  });
  const { model: small, report, kept } = pruning.pruneStructured(model, { fraction: 0.5 });
  assert.deepEqual(report.map((r) => [r.layer, r.unitsBefore, r.unitsAfter]), [['h1', 16, 8], ['h2', 8, 4]]);
  assert.deepEqual(kept.h1, [0, 2, 4, 6, 8, 10, 12, 14]);
  assert.deepEqual(kept.h2, [4, 5, 6, 7]);
  assert.deepEqual(small.getLayer('h2').getWeights()[0].shape, [8, 4]);
  assert.deepEqual(small.getLayer('out').getWeights()[0].shape, [4, 3]);
  assert.ok(small.countParams() < model.countParams() / 2);
  const x = tf.randomNormal([5, 20]);
  const a = model.predict(x) as tf.Tensor;
  const b = small.predict(x) as tf.Tensor;
  assert.ok(tf.abs(tf.sub(a, b)).max().dataSync()[0] < 1e-6);
  tf.dispose([x, a, b]);
  small.dispose();
  model.dispose();
});

test('pruneStructured removes filters from a convnet (through BatchNorm, pooling and Flatten)', () => {
  const input = tf.input({ shape: [8, 8, 1] });
  let h = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ name: 'bn' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'out' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  // Make c2's filters 0 and 2 dead (zero weights, zero bias): removing them must not change outputs.
  tf.tidy(() => {
    const [k, b] = model.getLayer('c2').getWeights();
    const m = tf.tensor1d([0, 1, 0, 1]);
    model.getLayer('c2').setWeights([k.mul(m), b.mul(m)]);
  });
  const { model: small, report, kept } = pruning.pruneStructured(model, { keep: { c1: 6, c2: 2 } });
  assert.deepEqual(kept.c2, [1, 3]);
  assert.deepEqual(report.map((r) => r.unitsAfter), [6, 2]);
  assert.deepEqual(small.getLayer('out').getWeights()[0].shape, [4 * 4 * 2, 2]);
  const x = tf.randomNormal([3, 8, 8, 1]);
  const a = model.predict(x) as tf.Tensor;
  const b = small.predict(x) as tf.Tensor;
  assert.ok(tf.abs(tf.sub(a, b)).max().dataSync()[0] < 1e-5);
  // Shrinking c1 also slices the BatchNorm parameters and c2's input channels.
  const r2 = pruning.pruneStructured(model, { fraction: 0.5, layers: ['c1'] });
  assert.deepEqual(r2.model.getLayer('bn').getWeights()[0].shape, [3]);
  assert.deepEqual(r2.model.getLayer('c2').getWeights()[0].shape, [3, 3, 3, 4]);
  assert.throws(() => pruning.pruneStructured(model, { layers: ['out'] }), /output layer/);
  assert.throws(() => pruning.pruneStructured(model, { layers: ['bn'] }), /only Dense\/Conv1D\/Conv2D/);
  tf.dispose([x, a, b]);
  for (const m of [small, r2.model, model]) m.dispose();
});

test('pruning works on a Sequential model too (callbacks see its inner model)', async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [8], units: 8, activation: 'relu' }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
  const pruned = pruning.pruneLowMagnitude(model, { schedule: new pruning.ConstantSparsity({ targetSparsity: 0.5, frequency: 1 }) });
  assert.ok(pruned instanceof tf.Sequential);
  const opt = tf.train.adam();
  pruned.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
  const xs = tf.randomNormal([32, 8]);
  const ys = tf.tidy(() => xs.sum(1, true).greater(0).toFloat());
  await pruned.fit(xs, ys, { batchSize: 8, epochs: 2, verbose: 0, callbacks: [new pruning.UpdatePruningStep()] });
  assert.deepEqual(pruning.sparsityReport(pruned).map((r) => r.zeros), [32, 4]);
  const plain = pruning.stripPruning(pruned);
  assert.ok(plain instanceof tf.Sequential);
  tf.dispose([xs, ys]);
  for (const m of [pruned, model, plain]) m.dispose();
  opt.dispose();
});
