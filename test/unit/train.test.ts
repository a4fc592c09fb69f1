import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import { leakGuard } from '../../lib/memory';
import * as train from '../../lib/train';
import { sliceTensorBatches } from '../../lib/data/batches';

/** Per-epoch batches over in-memory tensors. */
function sliceBatches(xs: tf.Tensor, ys: tf.Tensor, batchSize: number, opts: { shuffle?: boolean } = {}): train.BatchesForEpoch {
  return (e) => sliceTensorBatches(xs, ys, { batchSize, shuffle: opts.shuffle, seed: 1, epochIndex: e });
}

/** Two Gaussian-ish blobs per class in `dims` dimensions: learnable by a small MLP. */
function blobs(n: number, dims: number, classes: number, seed: number): { xs: tf.Tensor2D; ys: tf.Tensor2D; labels: tf.Tensor1D } {
  return tf.tidy(() => {
    const labels = tf.randomUniform([n], 0, classes, 'int32', seed) as tf.Tensor1D;
    const centers = tf.randomUniform([classes, dims], -2, 2, 'float32', seed + 1);
    const xs = tf.gather(centers, labels).add(tf.randomNormal([n, dims], 0, 0.3, 'float32', seed + 2)) as tf.Tensor2D;
    return { xs, ys: tf.oneHot(labels, classes).toFloat() as tf.Tensor2D, labels };
  });
}

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

test('simpleNN is the article model: 784→500 relu→10 logits, 397,510 parameters', async () => {
  await useBackend('wasm');
  const m = train.simpleNN();
  assert.deepEqual(train.denseWidths(m), [784, 500, 10]);
  assert.equal(m.countParams(), 784 * 500 + 500 + 500 * 10 + 10);
  const cfg = m.layers.map((l) => (l.getConfig() as { activation: string }).activation);
  assert.deepEqual(cfg, ['relu', 'linear']);
  m.dispose();
});

test('mlp: configurable widths, seeded initialisation, clear errors', async () => {
  await useBackend('wasm');
  const a = train.mlp({ inputs: 20, hidden: [16, 8], outputs: 3, seed: 7 });
  const b = train.mlp({ inputs: 20, hidden: [16, 8], outputs: 3, seed: 7 });
  const c = train.mlp({ inputs: 20, hidden: [16, 8], outputs: 3, seed: 8 });
  assert.deepEqual(train.denseWidths(a), [20, 16, 8, 3]);
  assert.equal(maxDiff(weightsOf(a), weightsOf(b)), 0);
  assert.ok(maxDiff(weightsOf(a), weightsOf(c)) > 0);
  const linear = train.mlp({ inputs: 5, hidden: [], outputs: 2 });
  assert.deepEqual(train.denseWidths(linear), [5, 2]);
  assert.throws(() => train.mlp({ hidden: [0] }), /positive integers/);
  tf.dispose([a, b, c, linear].flatMap((m) => m.getWeights()));
});

test('simpleNN on image-shaped batches: a Flatten first, the same seeded weights and outputs as the flat model', async () => {
  await useBackend('wasm');
  const flat = train.simpleNN({ seed: 3 });
  const image = train.simpleNN({ seed: 3, inputShape: [28, 28, 1] });
  assert.equal(image.layers[0].getClassName(), 'Flatten');
  assert.equal(image.countParams(), flat.countParams());
  assert.equal(maxDiff(weightsOf(flat), weightsOf(image)), 0);
  const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 1);
  const a = flat.predict(x.reshape([2, 784])) as tf.Tensor;
  const b = image.predict(x) as tf.Tensor;
  assert.deepEqual(b.shape, [2, 10]);
  assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-6);
  assert.throws(() => train.mlp({ inputs: 784, inputShape: [28, 28, 3] }), /inputShape \[28,28,3\] has 2352 values, but inputs is 784/);
  tf.dispose([x, a, b, ...flat.getWeights(), ...image.getWeights()]);
});

test('the Keras toy: 4 samples, so batch 32 is one full batch and trains exactly like batch 4', async () => {
  await useBackend('wasm');
  const { xs, ys } = train.kerasToyData();
  assert.deepEqual(xs.shape, [4, 1]);
  const run = async (batchSize: number) => {
    const model = train.kerasToyModel({ seed: 3 });
    let batches = 0;
    const r = await train.fit(model, xs, ys, { batchSize, epochs: 10, shuffle: false, onBatchEnd: () => void batches++ });
    return { r, batches, w: weightsOf(model) };
  };
  const b32 = await run(32);
  const b4 = await run(4);
  const b2 = await run(2);
  assert.equal(b32.r.epochs.length, 10);
  assert.equal(b32.batches, 10, 'one batch per epoch');
  assert.equal(b2.batches, 20);
  assert.ok(maxDiff(b32.w, b4.w) < 1e-6, 'batch 32 and batch 4 are the same full-batch updates');
  assert.ok(maxDiff(b32.w, b2.w) > 1e-4, 'batch 2 makes different (twice as many) updates');
  assert.ok('loss' in b32.r.epochs[0].logs && 'acc' in b32.r.epochs[0].logs);
  tf.dispose([xs, ys]);
});

test('kerasEpochLine formats like Keras', () => {
  assert.equal(train.kerasEpochLine(2, 10, 0.0123, { loss: 0.69123456, acc: 0.5 }), 'Epoch 3/10 - 12ms - loss: 0.6912 - accuracy: 0.5000');
  assert.equal(train.kerasEpochLine(0, 5, 2.5, {}), 'Epoch 1/5 - 2.5s');
  assert.equal(train.kerasEpochLine(0, 5, 1.5, { val_acc: 0.25 }, 32), 'Epoch 1/5 - 32/32 - 1.5s 47ms/step - val_accuracy: 0.2500');
  assert.equal(train.kerasEpochLine(0, undefined, 0.5, {}, 0), 'Epoch 1/? - 500ms');
});

test('trainLoop learns, calls back, splits data/compute time, and leaks nothing', async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(600, 12, 4, 11);
  const model = train.mlp({ inputs: 12, hidden: [32], outputs: 4, seed: 1 });
  const before = await train.accuracy(model, [{ xs, ys }], { disposeBatches: false });
  const batchCalls: train.BatchEnd[] = [];
  const epochCalls: train.EpochLog[] = [];
  const optimizer = tf.train.momentum(0.05, 0.9);
  // The optimiser's state (momentum accumulators, constants) is created on its first step and kept.
  const first = await train.trainLoop(model, sliceBatches(xs, ys, 50), { epochs: 1, optimizer, maxBatchesPerEpoch: 1 });
  const { value: r, report } = await leakGuard('trainLoop', () =>
    train.trainLoop(model, sliceBatches(xs, ys, 50, { shuffle: true }), {
      epochs: 4,
      optimizer,
      lossEvery: 3,
      onBatchEnd: (b) => void batchCalls.push(b),
      onEpochEnd: (e) => void epochCalls.push(e),
    }),
  );
  assert.equal(first.batches, 1);
  assert.equal(report.leakedTensors, 0);
  assert.equal(r.stoppedBy, 'epochs');
  assert.equal(r.batches, 48);
  assert.equal(r.samples, 2400);
  assert.equal(batchCalls.length, 48);
  assert.equal(epochCalls.length, 4);
  assert.deepEqual(batchCalls.slice(0, 3).map((b) => b.loss === null), [true, true, false], 'loss read every 3rd batch');
  assert.ok(epochCalls[3].loss < epochCalls[0].loss, `loss fell: ${epochCalls.map((e) => e.loss.toFixed(3))}`);
  assert.ok(r.dataSeconds > 0 && r.computeSeconds > 0 && r.dataSeconds + r.computeSeconds <= r.seconds + 1e-6);
  const after = await train.accuracy(model, [{ xs, ys }], { disposeBatches: false });
  assert.ok(after > 0.9 && after > before, `accuracy ${before} → ${after}`);
  assert.equal(await train.accuracy(model, [{ xs, ys: labels }], { disposeBatches: false }), after, 'integer labels work too');
  tf.dispose([xs, ys, labels]);
});

test('trainLoop budgets: batches per epoch and wall seconds', async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(200, 8, 3, 21);
  const model = train.mlp({ inputs: 8, hidden: [8], outputs: 3 });
  const capped = await train.trainLoop(model, sliceBatches(xs, ys, 10), { epochs: 2, maxBatchesPerEpoch: 3 });
  assert.deepEqual(capped.epochs.map((e) => [e.batches, e.samples]), [[3, 30], [3, 30]]);
  const timed = await train.trainLoop(model, sliceBatches(xs, ys, 10), { epochs: 50, maxSeconds: 0 });
  assert.equal(timed.stoppedBy, 'maxSeconds');
  assert.equal(timed.batches, 1);
  await assert.rejects(train.trainLoop(model, () => [], { epochs: 1 }), /epoch 0 produced no batches/);
  await assert.rejects(train.trainLoop(model, sliceBatches(xs, ys, 10), { epochs: 0 }), /epochs must be a positive integer/);
  tf.dispose([xs, ys, labels]);
});

test('trainLoop and model.fit make the same updates (same data order, same SGD momentum)', async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(120, 10, 3, 31);
  const a = train.mlp({ inputs: 10, hidden: [16], outputs: 3, seed: 5 });
  const b = train.mlp({ inputs: 10, hidden: [16], outputs: 3, seed: 5 });
  await train.trainLoop(a, sliceBatches(xs, ys, 20), { epochs: 2, optimizer: tf.train.momentum(0.01, 0.9) });
  b.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: (y: tf.Tensor, o: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, o) });
  const r = await train.fit(b, xs, ys, { batchSize: 20, epochs: 2, shuffle: false });
  assert.equal(r.epochs.length, 2);
  assert.ok(maxDiff(weightsOf(a), weightsOf(b)) < 1e-5, `max weight diff ${maxDiff(weightsOf(a), weightsOf(b))}`);
  tf.dispose([xs, ys, labels]);
});

test('fit stops after the epoch that crosses maxSeconds, and can print Keras lines', async () => {
  await useBackend('wasm');
  const { xs, ys } = train.kerasToyData();
  const model = train.kerasToyModel();
  const lines: string[] = [];
  const r = await train.fit(model, xs, ys, { batchSize: 32, epochs: 10, maxSeconds: 0, log: (l) => lines.push(l) });
  assert.equal(r.epochs.length, 1);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^Epoch 1\/10 - (\d+)\/\1 - \d+(\.\d)?m?s \d+ms\/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}$/);
  tf.dispose([xs, ys]);
});

test('seed experiment constants match the article', () => {
  assert.deepEqual([...train.SEED_EXPERIMENT.widths], [784, 500, 10]);
  assert.equal(train.SEED_EXPERIMENT.batchSize, 100);
  assert.equal(train.SEED_EXPERIMENT.articleSeconds.cpu, 70.5448);
  const opt = train.seedOptimizer() as tf.MomentumOptimizer;
  assert.equal(opt.getConfig().learningRate, 0.001);
  assert.equal(opt.getConfig().momentum, 0.9);
});

test('disposeOptimizer frees every tensor of a used momentum optimiser', async () => {
  await useBackend('wasm');
  const v = tf.variable(tf.ones([3]));
  const before = tf.memory().numTensors;
  const opt = train.seedOptimizer();
  opt.minimize(() => v.square().sum() as tf.Scalar, false, [v]);
  assert.ok(tf.memory().numTensors > before);
  train.disposeOptimizer(opt);
  assert.equal(tf.memory().numTensors, before);
  v.dispose();
});

test('trainLoop takes the fused step by default where it can, the stock one when asked, and says which', async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(80, 6, 3, 41);
  const before = tf.memory().numTensors;
  const runs: Record<string, train.TrainResult> = {};
  const weights: Record<string, Float32Array[]> = {};
  for (const step of [undefined, 'stock'] as const) {
    const model = train.mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 2 });
    runs[step ?? 'default'] = await train.trainLoop(model, sliceBatches(xs, ys, 20), { epochs: 2, step });
    weights[step ?? 'default'] = weightsOf(model);
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors left (the loop disposes the optimizer it made)');
  assert.equal(runs.default.step.kind, 'fused');
  assert.match(runs.default.step.reason, /^fused step: 2 dense layer\(s\)/);
  assert.equal(runs.stock.step.kind, 'stock');
  assert.match(runs.stock.step.reason, /asked for/);
  assert.ok(maxDiff(weights.default, weights.stock) < 1e-6, `max weight diff ${maxDiff(weights.default, weights.stock)}`);
  tf.dispose([xs, ys, labels]);
});

test('the fused step is the default only where it measured faster (native, wasm); on cpu it runs when asked for', async () => {
  assert.deepEqual([...train.FUSED_DEFAULT_BACKENDS].sort(), ['tensorflow', 'wasm']);
  await useBackend('cpu');
  const model = train.mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 2 });
  const byDefault = train.seedTrainStep(model);
  assert.equal(byDefault.kind, 'stock');
  assert.match(byDefault.reason, /cpu backend the fused step measured slower/);
  byDefault.dispose();
  const asked = train.seedTrainStep(model, { step: 'fused' });
  assert.equal(asked.kind, 'fused');
  asked.dispose();
  model.dispose();
  await useBackend('wasm');
  const onWasm = train.mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 2 });
  const wasmDefault = train.seedTrainStep(onWasm);
  assert.equal(wasmDefault.kind, 'fused');
  wasmDefault.dispose();
  onWasm.dispose();
});

test('seedTrainStep falls back to the stock step and says why; asking for fused where it cannot warns', async () => {
  await useBackend('wasm');
  const model = train.mlp({ inputs: 4, hidden: [3], outputs: 2 });
  const adam = tf.train.adam(0.01);
  const quiet = train.seedTrainStep(model, { optimizer: adam });
  assert.equal(quiet.kind, 'stock');
  assert.match(quiet.reason, /stock optimizer\.minimize step \(the optimizer is Adam/);
  quiet.dispose();
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (m: string) => void warnings.push(m);
  try {
    const asked = train.seedTrainStep(model, { step: 'fused', loss: 'meanSquaredError' });
    assert.equal(asked.kind, 'stock');
    asked.dispose();
  } finally {
    console.warn = warn;
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /fused step is not possible here \(the loss is meanSquaredError/);
  adam.dispose();
  model.dispose();
});

test('lossFn returns one function per name, and lossName finds the name again', () => {
  assert.equal(train.lossFn('softmaxCrossEntropy'), train.lossFn('softmaxCrossEntropy'));
  assert.equal(train.lossName(train.lossFn('categoricalCrossentropy')), 'categoricalCrossentropy');
  assert.equal(train.lossName('softmaxCrossEntropy'), 'softmaxCrossEntropy');
  assert.equal(train.lossName((y: tf.Tensor, o: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, o) as tf.Scalar), null);
  assert.equal(train.lossName('hinge'), null);
  assert.throws(() => train.lossFn('hinge' as train.LossName), /unknown loss 'hinge'/);
});

test("fit with step 'fused' trains like model.fit, with the same logs, history and callbacks", async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(100, 10, 3, 51);
  const results: Record<string, train.FitResult> = {};
  const weights: Record<string, Float32Array[]> = {};
  const batchCalls: Record<string, number> = { stock: 0, fused: 0 };
  for (const step of ['stock', 'fused'] as const) {
    const model = train.mlp({ inputs: 10, hidden: [16], outputs: 3, seed: 5 });
    model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: train.lossFn('softmaxCrossEntropy') });
    const lines: string[] = [];
    results[step] = await train.fit(model, xs, ys, { batchSize: 20, epochs: 3, shuffle: false, step, log: (l) => lines.push(l), onBatchEnd: () => void batchCalls[step]++ });
    assert.equal(lines.length, 3);
    assert.match(lines[2], /^Epoch 3\/3 - 5\/5 - .* - loss: \d\.\d{4}$/);
    weights[step] = weightsOf(model);
    model.dispose();
  }
  assert.equal(results.fused.step.kind, 'fused');
  assert.equal(results.stock.step.kind, 'stock');
  assert.equal(batchCalls.fused, 15);
  assert.equal(batchCalls.stock, 15);
  assert.ok(maxDiff(weights.fused, weights.stock) < 1e-5, `max weight diff ${maxDiff(weights.fused, weights.stock)}`);
  const lossOf = (r: train.FitResult) => r.history.history.loss as number[];
  assert.equal(lossOf(results.fused).length, 3);
  lossOf(results.fused).forEach((l, i) => assert.ok(Math.abs(l - lossOf(results.stock)[i]) < 1e-5, `epoch ${i} loss ${l} vs ${lossOf(results.stock)[i]}`));
  // A model compiled with metrics cannot take the fused path (it logs the loss only): model.fit runs, with a warning.
  const withMetrics = train.mlp({ inputs: 10, hidden: [4], outputs: 3 });
  withMetrics.compile({ optimizer: tf.train.sgd(0.1), loss: train.lossFn('softmaxCrossEntropy'), metrics: ['accuracy'] });
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (m: string) => void warnings.push(m);
  try {
    const r = await train.fit(withMetrics, xs, ys, { batchSize: 50, epochs: 1, step: 'fused' });
    assert.equal(r.step.kind, 'stock');
  } finally {
    console.warn = warn;
  }
  assert.match(warnings.join('\n'), /compiled with metrics \(acc\)/);
  withMetrics.dispose();
  tf.dispose([xs, ys, labels]);
});

test('stepParity: the fused step against autodiff on one batch, or an error saying why there is no fused step', async () => {
  await useBackend('wasm');
  const { xs, ys, labels } = blobs(40, 784, 10, 61);
  const model = train.simpleNN();
  const p = await train.stepParity(model, xs, ys);
  assert.equal(p.gradients.length, 4);
  assert.ok(p.max < 1e-5 && p.max === Math.max(p.loss, ...p.gradients), JSON.stringify(p));
  const tanh = train.mlp({ inputs: 784, hidden: [4], outputs: 10, activation: 'tanh' });
  await assert.rejects(train.stepParity(tanh, xs, ys), /no fused step here: .*activation tanh/);
  tf.dispose([xs, ys, labels]);
  model.dispose();
  tanh.dispose();
});

test('stepParity also runs where the fused step is not the default (cpu): it asks for the fused step itself', async () => {
  await useBackend('cpu');
  assert.ok(!train.FUSED_DEFAULT_BACKENDS.includes('cpu'), 'this test is about a backend without the fused default');
  const { xs, ys, labels } = blobs(20, 784, 10, 62);
  const model = train.simpleNN();
  const p = await train.stepParity(model, xs, ys);
  assert.ok(p.max < 1e-5, JSON.stringify(p));
  tf.dispose([xs, ys, labels]);
  model.dispose();
});
