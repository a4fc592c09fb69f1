import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import { generateStandIn } from '../../../lib/data/fashion-mnist';
import * as experiments from '../../../lib/experiments';
import * as kernelSets from '../../../lib/backends/kernel-sets';

const { train: trainSet, test: testSet } = generateStandIn({ trainCount: 400, testCount: 200, seed: 5 });

test('seedRun measures a subset, projects the full run, and leaves no tensors', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const r = await experiments.seedRun(trainSet, { pipeline: 'preloaded', epochs: 2, maxBatchesPerEpoch: 2 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.batches, 4);
  assert.equal(r.fullBatches, 8);
  assert.equal(r.partial, true);
  assert.ok(Math.abs(r.projectedSeconds - 2 * r.seconds) < 1e-9);
  assert.ok(r.gflopsCounted > r.gflopsNeeded && r.gflopsNeeded > 0);
  assert.ok(r.cpuSeconds > 0 && r.gflopsPerCpuSecond > 0);
  const warmed = await experiments.seedRun(trainSet, { pipeline: 'preloaded', epochs: 1, maxBatchesPerEpoch: 2, warmupBatches: 3 });
  assert.equal(warmed.batches, 2, 'warm-up batches are not counted');
  assert.equal(tf.memory().numTensors, before);
  const full = await experiments.seedRun(trainSet, { pipeline: 'naive', epochs: 1 });
  assert.equal(full.partial, false);
  assert.equal(full.samples, 400);
  assert.equal(full.projectedSeconds, full.seconds);
  assert.ok(full.dataSeconds > 0);
});

test('the naive and preloaded pipelines train the same model to the same weights', async () => {
  await useBackend('wasm');
  const { simpleNN } = await import('../../../lib/train');
  const a = simpleNN({ seed: 9 });
  const b = simpleNN({ seed: 9 });
  await experiments.seedRun(trainSet, { pipeline: 'preloaded', epochs: 1, maxBatchesPerEpoch: 3, model: a });
  await experiments.seedRun(trainSet, { pipeline: 'naive', epochs: 1, maxBatchesPerEpoch: 3, model: b });
  const wa = a.getWeights().map((w) => w.dataSync());
  const wb = b.getWeights().map((w) => w.dataSync());
  let d = 0;
  wa.forEach((w, i) => w.forEach((v, j) => (d = Math.max(d, Math.abs(v - wb[i][j])))));
  assert.ok(d < 1e-5, `max weight diff ${d}`);
  a.dispose();
  b.dispose();
});

test('fitRun trains through model.fit and projects from a subset', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const r = await experiments.fitRun(trainSet, { epochs: 2, maxSamples: 200 });
  assert.equal(tf.memory().numTensors, before, 'no tensors left behind (optimiser included)');
  assert.equal(r.epochSeconds.length, 2);
  assert.equal(r.samples, 400);
  assert.equal(r.partial, true);
  assert.ok(Math.abs(r.projectedSeconds - 2 * r.seconds) < 1e-9);
  assert.ok(Number.isFinite(r.finalLoss));
});

test('trainingThroughput: more samples/s and more step memory at a larger batch', async () => {
  await useBackend('wasm');
  const small = await experiments.trainingThroughput(trainSet, { batchSize: 1, samplesPerRepeat: 32, repeats: 2, hidden: [64] });
  const big = await experiments.trainingThroughput(trainSet, { batchSize: 128, samplesPerRepeat: 256, repeats: 2, hidden: [64] });
  assert.equal(small.steps, 32);
  assert.equal(big.steps, 2);
  assert.equal(big.timing.samples.length, 2);
  assert.ok(big.samplesPerSecond > small.samplesPerSecond, `${small.samplesPerSecond} vs ${big.samplesPerSecond}`);
  assert.ok(big.stepBytes > small.stepBytes);
  assert.equal(big.batchBytes, 128 * 784 * 4 + 128 * 10 * 4);
  assert.ok(Math.abs(big.secondsPerEpoch - 400 / big.samplesPerSecond) < 1e-9);
});

test('trainWithBudget stops on epochs or on wall time and reports test accuracy', async () => {
  await useBackend('wasm');
  const byEpochs = await experiments.trainWithBudget(trainSet, testSet, { batchSize: 50, epochs: 2 });
  assert.equal(byEpochs.stoppedBy, 'epochs');
  assert.equal(byEpochs.steps, 16);
  assert.ok(byEpochs.testAccuracy >= 0 && byEpochs.testAccuracy <= 1);
  const byTime = await experiments.trainWithBudget(trainSet, testSet, { batchSize: 50, epochs: 1000, maxSeconds: 0 });
  assert.equal(byTime.stoppedBy, 'maxSeconds');
  assert.equal(byTime.steps, 1);
});

test('loopVsFit alternates loop and fit epochs on the same data and reports per-epoch ratios', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const r = await experiments.loopVsFit(trainSet, { epochs: 3, maxSamples: 200 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.samplesPerEpoch, 200);
  assert.equal(r.partial, true);
  assert.equal(r.loopEpochSeconds.length, 3);
  assert.equal(r.fitEpochSeconds.length, 3);
  assert.deepEqual(r.ratios, r.fitEpochSeconds.map((f, i) => f / r.loopEpochSeconds[i]));
  assert.ok(r.ratios.includes(r.medianRatio));
  assert.ok(Number.isFinite(r.loopFinalLoss) && Number.isFinite(r.fitFinalLoss));
  assert.ok(r.flopsPerEpoch.counted > r.flopsPerEpoch.needed);
});

test('compareTraining runs every variant on the same batches, one epoch each in turn, and restores the kernels', async () => {
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = kernelSets.forBackend('wasm')!;
  assert.equal(wasm.installed(), true);
  const seen: boolean[] = [];
  const spy: kernelSets.KernelSet = { ...wasm, install: () => { seen.push(true); wasm.install(); }, uninstall: () => { seen.push(false); wasm.uninstall(); } };
  const r = await experiments.compareTraining(trainSet, {
    epochs: 2,
    maxSamples: 200,
    variants: [
      { label: 'loop, stock kernels, stock step', kernels: null, path: 'loop', step: 'stock' },
      { label: 'loop, gpulab kernels, fused step', kernels: spy, path: 'loop' },
      { label: 'fit, gpulab kernels', kernels: spy, path: 'fit' },
      { label: 'fit through the fused step', path: 'fit', step: 'fused' },
    ],
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(wasm.installed(), true, 'the gpulab kernels are back');
  assert.ok(seen.includes(false) && seen.includes(true));
  assert.deepEqual(r.rows.map((x) => [x.kernels, x.path, x.step]), [
    ['stock tfjs kernels', 'loop', 'stock'],
    ['gpulab wasm kernels', 'loop', 'fused'],
    ['gpulab wasm kernels', 'fit', 'stock'],
    ['as installed', 'fit', 'fused'],
  ]);
  for (const row of r.rows) {
    assert.equal(row.epochSeconds.length, 2);
    assert.ok(Math.abs(row.projectedSeconds - row.seconds * (5 / 2) * (400 / 200)) < 1e-9);
    assert.ok(row.gflopsCounted > 0 && Number.isFinite(row.finalLoss));
  }
  // The stock and the fused step, from the same start on the same batches, end at (nearly) the same loss.
  assert.ok(Math.abs(r.rows[0].finalLoss - r.rows[1].finalLoss) < 1e-4, `${r.rows[0].finalLoss} vs ${r.rows[1].finalLoss}`);
  await assert.rejects(experiments.compareTraining(trainSet, { variants: [] }), /no variants/);
});
