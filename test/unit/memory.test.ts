import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import * as memory from '../../lib/memory';
import * as train from '../../lib/train';

test('measurePeakMemory sees a host array and a tensor that were freed before it ended', async () => {
  await useBackend('cpu');
  assert.equal(memory.collectGarbage(), true);
  const { value, peak } = await memory.measurePeakMemory(async (s) => {
    {
      const big = new Float32Array(8 * 1024 * 1024); // 32 MiB, unreachable after this block
      big.fill(1);
      s.sample();
    }
    const t = tf.ones([1024, 1024]); // 4 MiB of tensor
    s.sample();
    t.dispose();
    await new Promise((r) => setTimeout(r, 30)); // the timer ticks too
    return 7;
  });
  assert.equal(value, 7);
  assert.ok(peak.addedArrayBuffers >= 32 * 1024 * 1024, `added array buffers ${peak.addedArrayBuffers}`);
  assert.ok(peak.addedTfBytes >= 4 * 1024 * 1024, `added tf bytes ${peak.addedTfBytes}`);
  assert.ok(peak.run.samples.length >= 4);
  assert.ok(peak.peakRss >= peak.baseline.rssBytes);
  assert.equal(peak.addedGpuBytes, null, 'the cpu backend reports no GPU bytes');
  await assert.rejects(memory.measurePeakMemory(() => { throw new Error('boom'); }), /boom/);
});

test('isAllocationFailure: allocation messages yes, ordinary bugs no', () => {
  let real: unknown;
  try {
    new Float64Array(2 ** 50);
  } catch (err) {
    real = err;
  }
  assert.ok(real, 'the runtime refuses a 8 PiB array');
  assert.equal(memory.isAllocationFailure(real), true);
  assert.equal(memory.isAllocationFailure(new RangeError('Array buffer allocation failed')), true);
  assert.equal(memory.isAllocationFailure(new Error('GPUOutOfMemoryError: buffer')), true);
  assert.equal(memory.isAllocationFailure(new Error('Cannot enlarge memory arrays')), true);
  assert.equal(memory.isAllocationFailure(new TypeError('x is not a function')), false);
  assert.equal(memory.isAllocationFailure(new Error('Shapes [2,3] and [4] must match')), false);
});

test('findMaxBatchSize grows until the budget, then backs off by bisection; no leaks', async () => {
  await useBackend('cpu');
  const w = tf.variable(tf.ones([1000, 10]), true, 'finder_w');
  const before = tf.memory().numTensors;
  const base = tf.memory().numBytes;
  const budget = base + 4040 * 100 + 100; // ones [b,1000] + the [b,10] product alive after matMul
  const step = (b: number) => {
    const x = tf.ones([b, 1000]);
    tf.matMul(x, w); // left for the finder's scope to free
  };
  const r = await memory.findMaxBatchSize(step, { budgetBytes: budget, start: 8, refineSteps: 6 });
  assert.equal(r.stoppedBy, 'budget');
  assert.equal(r.failure, null);
  assert.deepEqual(r.trials.filter((t) => t.phase === 'grow').map((t) => t.batchSize), [8, 16, 32, 64, 128]);
  assert.ok(r.trials.some((t) => t.phase === 'back-off'), 'backs off between 64 and 128');
  assert.ok(r.best !== null && r.best >= 64 && r.best < 128, `best ${r.best}`);
  const bestTrial = r.trials.find((t) => t.batchSize === r.best)!;
  assert.ok(bestTrial.ok && bestTrial.peakBytes! <= budget);
  const worse = r.trials.filter((t) => !t.ok);
  assert.ok(worse.every((t) => t.peakBytes! > budget && t.reason === 'over budget' && t.batchSize > r.best!));
  // peak grows with the batch
  const grow = r.trials.filter((t) => t.phase === 'grow');
  for (let i = 1; i < grow.length; i++) assert.ok(grow[i].peakBytes! > grow[i - 1].peakBytes!);
  assert.equal(tf.memory().numTensors, before, 'every trial was cleaned up');
  w.dispose();
});

test('findMaxBatchSize catches an allocation failure, reports it and backs off; other errors propagate', async () => {
  await useBackend('cpu');
  const step = (b: number) => {
    if (b > 200) new Float64Array(2 ** 50); // a real RangeError from the runtime
    return tf.ones([b, 4]);
  };
  const r = await memory.findMaxBatchSize(step, { budgetBytes: Infinity, start: 25, refineSteps: 8 });
  assert.equal(r.stoppedBy, 'allocation-failure');
  assert.ok(r.failure && /array|allocation|length/i.test(r.failure), String(r.failure));
  assert.equal(r.best, 200);
  assert.ok(r.trials.find((t) => t.batchSize === 400 && !t.ok && t.reason === r.failure));
  const capped = await memory.findMaxBatchSize(() => undefined, { budgetBytes: Infinity, start: 1, maxBatch: 6 });
  assert.equal(capped.stoppedBy, 'max-batch');
  assert.equal(capped.best, 6);
  assert.deepEqual(capped.trials.map((t) => t.batchSize), [1, 2, 4, 6]);
  await assert.rejects(memory.findMaxBatchSize(() => { throw new TypeError('bug in the step'); }, { budgetBytes: 1e9 }), /bug in the step/);
  await assert.rejects(memory.findMaxBatchSize(() => undefined, { budgetBytes: 0 }), /budgetBytes must be > 0/);
});

test('leakGuard reports a planted leak and throws when asked', async () => {
  const { report } = await memory.leakGuard('clean', () => tf.tidy(() => tf.ones([4]).add(1).sum().dataSync()[0]));
  assert.equal(report.leakedTensors, 0);
  const kept: tf.Tensor[] = [];
  const leaky = await memory.leakGuard('leaky', () => {
    kept.push(tf.ones([10]), tf.zeros([5]));
  });
  assert.equal(leaky.report.leakedTensors, 2);
  assert.equal(leaky.report.leakedBytes, 60);
  await assert.rejects(memory.leakGuard('planted', () => { kept.push(tf.ones([1])); }, { throwOnLeak: true }), /planted: leaked 1 tensors/);
  tf.dispose(kept);
});

test('stepMemory grows with the batch size, and counts the model\'s weights, optimiser state and batch', async () => {
  await useBackend('wasm');
  const model = train.mlp({ inputs: 64, hidden: [128], outputs: 10 });
  const params = 64 * 128 + 128 + 128 * 10 + 10;
  const mem = async (n: number) => {
    const batch = tf.tidy(() => ({ xs: tf.randomNormal([n, 64]), ys: tf.oneHot(tf.zeros([n], 'int32'), 10) }));
    const m = await memory.stepMemory(model, batch);
    tf.dispose([batch.xs, batch.ys]);
    return m;
  };
  const before = tf.memory().numTensors;
  const small = await mem(8);
  const big = await mem(512);
  assert.equal(tf.memory().numTensors, before, 'the default optimiser is disposed, and nothing else is left behind');
  assert.ok(small.peakBytes >= small.beforeBytes);
  assert.ok(big.stepBytes > small.stepBytes * 10, `${small.stepBytes} vs ${big.stepBytes}`);
  assert.equal(small.weightBytes, 4 * params);
  assert.equal(small.optimizerBytes, 4 * params + 4, 'one momentum slot per weight, and the iteration count');
  assert.equal(big.batchBytes, 4 * 512 * (64 + 10));
  assert.equal(big.totalBytes, big.weightBytes + big.optimizerBytes + big.batchBytes + big.stepBytes);
});

test('stepMemory steps a compiled model with its own optimiser and loss', async () => {
  await useBackend('wasm');
  const model = train.mlp({ inputs: 64, hidden: [32], outputs: 10 });
  const optimizer = tf.train.adam(0.01);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const batch = tf.tidy(() => ({ xs: tf.randomNormal([16, 64]), ys: tf.oneHot(tf.zeros([16], 'int32'), 10) }));
  const w0 = (model.getWeights()[0].dataSync() as Float32Array).slice();
  const m = await memory.stepMemory(model, batch);
  const params = 64 * 32 + 32 + 32 * 10 + 10;
  assert.equal(m.optimizerBytes, 4 * 2 * params + 4, "Adam's two slots per weight: the compiled model's optimiser stepped");
  assert.ok(m.stepBytes > 0);
  assert.notDeepEqual(model.getWeights()[0].dataSync(), w0, 'the weights were updated');
  tf.dispose([batch.xs, batch.ys]);
  train.disposeOptimizer(optimizer);
  model.dispose();
});

test('the leak helper detects a planted leak and clears a tidy loop', async () => {
  await useBackend('wasm');
  const w = tf.variable(tf.zeros([10]));
  const kept: tf.Tensor[] = [];
  const leaky = await memory.trackEpochMemory('leaky', 4, () => {
    for (let b = 0; b < 3; b++) {
      const g = tf.ones([10]).mul(0.1); // two tensors per batch, never disposed
      w.assign(w.sub(g));
      kept.push(g);
    }
  });
  const clean = await memory.trackEpochMemory('tidy', 4, () => {
    for (let b = 0; b < 3; b++) tf.tidy(() => w.assign(w.sub(tf.ones([10]).mul(0.1))));
  });
  let slot: tf.Tensor | null = null;
  const oneOff = await memory.trackEpochMemory('slots in epoch 1', 3, () => {
    if (!slot) slot = tf.zeros([100]); // allocated once, like optimizer slots
  });
  const v1 = memory.leakVerdict(leaky);
  const v2 = memory.leakVerdict(clean);
  const v3 = memory.leakVerdict(oneOff);
  assert.equal(v1.leaking, true);
  assert.equal(v1.tensorsPerEpoch, 9, '3 batches × (ones, mul, sub) per epoch');
  assert.equal(v1.bytesPerEpoch, 9 * 40);
  assert.equal(leaky[4].tensorsAdded, 36);
  assert.match(v1.summary, /leaky: leaks ≈9 tensors/);
  assert.equal(v2.leaking, false);
  assert.equal(v2.tensorsAdded, 0);
  assert.equal(v3.leaking, false, 'a one-off allocation in the first epoch is not a leak');
  assert.equal(v3.tensorsAdded, 1);
  assert.throws(() => memory.leakVerdict(leaky.slice(0, 2)), /needs at least 2 epochs/);
  await assert.rejects(memory.trackEpochMemory('x', 0, () => {}), /epochs must be ≥ 1/);
  const df = memory.epochMemoryToDataFrame([...leaky, ...clean]);
  assert.equal(df.height, 10);
  assert.deepEqual(df.columns, ['variant', 'epoch', 'num_tensors', 'mb', 'tensors_added', 'mb_added']);
  tf.dispose(kept);
  tf.dispose(slot ? [slot, w] : [w]);
});

/** The small convnet of the anatomy tests: conv 3×3 (1→8, same) → max-pool 2 → flatten → dense 10. */
function smallConvnet(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

test('layerAnatomy: parameters and outputs per example of dense and conv layers, views count no activations', async () => {
  await useBackend('cpu');
  const mlp = train.mlp({ inputs: 20, hidden: [16], outputs: 3 });
  assert.deepEqual(memory.layerAnatomy(mlp).map((l) => [l.className, l.params, l.activationsPerExample]), [
    ['Dense', 20 * 16 + 16, 16],
    ['Dense', 16 * 3 + 3, 3],
  ]);
  const cnn = smallConvnet();
  assert.deepEqual(memory.layerAnatomy(cnn).map((l) => [l.className, l.params, l.activationsPerExample]), [
    ['Conv2D', 3 * 3 * 1 * 8 + 8, 28 * 28 * 8],
    ['MaxPooling2D', 0, 14 * 14 * 8],
    ['Flatten', 0, 0],
    ['Dense', 14 * 14 * 8 * 10 + 10, 10],
  ]);
  mlp.dispose();
  cnn.dispose();
});

test('predictAnatomy: 4 bytes per parameter for weights and gradients, 0/4/8 for SGD/momentum/Adam, activations from the shapes × batch', async () => {
  await useBackend('cpu');
  const cnn = smallConvnet();
  const P = 80 + 15690;
  const acts = 28 * 28 * 8 + 14 * 14 * 8 + 10;
  for (const [kind, perParam] of [['sgd', 0], ['momentum', 4], ['adam', 8]] as const) {
    const p = memory.predictAnatomy(cnn, kind, 32);
    assert.equal(p.parameters, P);
    assert.equal(p.weights, 4 * P);
    assert.equal(p.gradients, 4 * P);
    assert.equal(p.optimizer, perParam * P, kind);
    assert.equal(p.batch, 4 * 32 * (784 + 10));
    assert.equal(p.activations, 4 * 32 * acts);
    assert.equal(p.total, p.weights + p.gradients + p.optimizer + p.batch + p.activations);
  }
  assert.equal(memory.predictAnatomy(cnn, 'sgd', 64).activations, 2 * memory.predictAnatomy(cnn, 'sgd', 32).activations, 'activations grow with the batch');
  cnn.layers[0].trainable = false;   // frozen: weights stay, no gradients or optimizer state for them
  const frozen = memory.predictAnatomy(cnn, 'adam', 32);
  assert.equal(frozen.weights, 4 * P);
  assert.equal(frozen.gradients, 4 * 15690);
  assert.equal(frozen.optimizer, 8 * 15690);
  assert.throws(() => memory.predictAnatomy(cnn, 'sgd', 0), /batchSize must be a positive integer/);
  assert.throws(() => memory.predictAnatomy(cnn, 'rmsprop' as train.OptimizerKind, 8), /unknown optimizer 'rmsprop'/);
  cnn.dispose();
});

test('anatomy measures weights, gradients and optimizer state as predicted, activations above it, and leaves nothing behind', async () => {
  await useBackend('wasm');
  const build = () => train.mlp({ inputs: 64, hidden: [128], outputs: 10, seed: 1 });
  const P = 64 * 128 + 128 + 128 * 10 + 10;
  const batchOf = (n: number) => tf.tidy(() => ({ xs: tf.randomNormal([n, 64], 0, 1, 'float32', 3), ys: tf.oneHot(tf.randomUniform([n], 0, 10, 'int32', 4), 10).toFloat() }));
  const small = batchOf(16);
  const big = batchOf(512);
  const before = tf.memory().numTensors;
  for (const kind of ['sgd', 'momentum', 'adam'] as const) {
    const a = await memory.anatomy(build, kind, small);
    assert.equal(a.parameters, P);
    assert.equal(a.measured.weights, 4 * P, `${kind}: weights`);
    assert.equal(a.measured.gradients, 4 * P, `${kind}: gradients`);
    const extra = a.measured.optimizer - a.predicted.optimizer;   // the optimizer's scalars (learning rate, momentum, Adam's β powers)
    assert.ok(extra >= 0 && extra <= 16, `${kind}: optimizer state ${a.measured.optimizer} vs ${a.predicted.optimizer}`);
    assert.equal(a.measured.batch, 4 * 16 * (64 + 10));
    assert.equal(a.measured.total, a.measured.weights + a.measured.optimizer + a.measured.batch + a.measured.gradients + a.measured.activations);
    assert.ok(a.measured.activations > 0 && a.phases.forwardKept > 0);
    assert.deepEqual([...new Set(a.timeline.map((p) => p.phase))], ['forward', 'backward', 'update']);
    assert.ok(Math.max(...a.timeline.map((p) => p.bytes)) === Math.max(a.phases.backward, a.phases.update), 'the timeline reaches the peak');
    assert.equal(a.ratio.weights, 1);
  }
  const sgdBig = await memory.anatomy(build, 'sgd', big);
  const sgdSmall = await memory.anatomy(build, 'sgd', small);
  assert.equal(sgdBig.peakPhase, 'backward');
  assert.ok(sgdBig.phases.forwardKept >= sgdBig.predicted.activations, 'tfjs keeps at least the textbook activations');
  assert.ok(sgdBig.measured.activations > 10 * sgdSmall.measured.activations, 'activations grow with the batch');
  assert.equal(tf.memory().numTensors, before, 'anatomy disposed the models and optimizers it made');
  const model = build();
  const opt = tf.train.adam();
  const given = await memory.anatomy(model, opt, small);
  assert.equal(given.optimizer, 'adam');
  assert.equal(given.measured.weights, 4 * P, 'a built model is counted by its weight tensors');
  assert.throws(() => train.optimizerKind(tf.train.rmsprop(0.1)), /'RMSProp' is not one of SGD, Momentum, Adam/);
  train.disposeOptimizer(opt);
  model.dispose();
  tf.dispose([small.xs, small.ys, big.xs, big.ys]);
});

test('tensorPeak: the peak of a piece of work above its start, with its value and the tensors it kept', async () => {
  await useBackend('wasm');
  const { value, peakBytes, addedBytes, newTensors } = await memory.tensorPeak(() => {
    const big = tf.ones([1000]);       // 4000 bytes, freed below
    const kept = tf.tidy(() => big.mul(2).sum());
    big.dispose();
    return kept;
  });
  assert.equal(addedBytes, 4000 + 4000 + 4, 'ones, its doubled copy and the sum were alive at once');
  assert.ok(peakBytes >= addedBytes);
  assert.equal(newTensors, 1, 'the returned sum');
  assert.equal((await value.data())[0], 2000);
  value.dispose();
  const none = await memory.tensorPeak(() => 7);
  assert.deepEqual([none.value, none.addedBytes, none.newTensors], [7, 0, 0]);
});
