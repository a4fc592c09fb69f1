import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import * as flops from '../../lib/flops';
import * as roofline from '../../lib/roofline';
import type { KernelSpan, Trace } from '../../lib/monitor/trace';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} ≠ ${b}`);

// ---------------------------------------------------------------- FLOPs and bytes

test('kernelCost: matmul FLOPs and bytes from shapes, whatever the layout', () => {
  const fwd = flops.kernelCost({ name: 'BatchMatMul', inputShapes: [[100, 784], [784, 500]], outputShapes: [[100, 500]] });
  assert.equal(fwd.kind, 'matmul');
  assert.equal(fwd.flops, 2 * 100 * 784 * 500);
  assert.equal(fwd.bytes, 4 * (100 * 784 + 784 * 500 + 100 * 500));
  close(fwd.intensity as number, (2 * 100 * 784 * 500) / (4 * (100 * 784 + 784 * 500 + 100 * 500)), 'intensity');
  // dW = xᵀ·dy: a is [100,784] read transposed, the output is [784,500]: m = 784, k = 100, n = 500.
  const dw = flops.kernelCost({ name: 'BatchMatMul', inputShapes: [[1, 100, 784], [1, 100, 500]], outputShapes: [[1, 784, 500]] });
  assert.equal(dw.flops, 2 * 784 * 100 * 500);
  // A batch of 3 products, the second operand broadcast.
  const batched = flops.kernelCost({ name: 'BatchMatMul', inputShapes: [[3, 8, 4], [1, 4, 5]], outputShapes: [[3, 8, 5]] });
  assert.equal(batched.flops, 3 * 2 * 8 * 4 * 5);
  assert.equal(batched.bytes, 4 * (3 * 8 * 4 + 4 * 5 + 3 * 8 * 5));
});

test('kernelCost: a fused matmul counts its bias and, when the attribute says so, its activation', () => {
  const shapes = { inputShapes: [[1, 100, 500], [1, 500, 10], [10], null], outputShapes: [[1, 100, 10]] };
  const mm = 2 * 100 * 500 * 10;
  assert.equal(flops.kernelCost({ name: '_FusedMatMul', ...shapes }).flops, mm + 1000, 'bias counted, activation unknown');
  assert.match(flops.kernelCost({ name: '_FusedMatMul', ...shapes }).note, /activation not known/);
  assert.equal(flops.kernelCost({ name: '_FusedMatMul', ...shapes, attrs: { activation: 'relu' } }).flops, mm + 2000);
  assert.equal(flops.kernelCost({ name: '_FusedMatMul', ...shapes, attrs: { activation: 'linear' } }).flops, mm + 1000);
  assert.equal(flops.kernelCost({ name: '_FusedMatMul', ...shapes }).bytes, 4 * (100 * 500 + 500 * 10 + 10 + 100 * 10));
});

test('kernelCost: elementwise, reduction, softmax, conversion, movement and no-op arithmetic', () => {
  const add = flops.kernelCost({ name: 'Add', inputShapes: [[100, 500], [500]], outputShapes: [[100, 500]] });
  assert.deepEqual([add.kind, add.flops, add.bytes], ['elementwise', 50000, 4 * (50000 + 500 + 50000)]);
  const scaled = flops.kernelCost({ name: 'Multiply', inputShapes: [[], [784, 500]], outputShapes: [[784, 500]] });
  assert.deepEqual([scaled.flops, scaled.bytes], [392000, 4 * (1 + 392000 + 392000)], 'a scalar operand is one element');
  const eq = flops.kernelCost({ name: 'Equal', inputShapes: [[10], [10]], outputShapes: [[10]], inputDtypes: ['int32', 'int32'], outputDtypes: ['bool'] });
  assert.equal(eq.bytes, 4 * 20 + 10, 'bool outputs are one byte each');
  assert.equal(flops.kernelCost({ name: 'SquaredDifference', inputShapes: [[6], [6]], outputShapes: [[6]] }).flops, 12);
  const sum = flops.kernelCost({ name: 'Sum', inputShapes: [[100, 500]], outputShapes: [[500]] });
  assert.deepEqual([sum.kind, sum.flops, sum.bytes], ['reduction', 50000, 4 * (50000 + 500)]);
  const max = flops.kernelCost({ name: 'Max', inputShapes: [[100, 10]], outputShapes: [[100, 1]] });
  assert.deepEqual([max.flops, max.bytes], [1000, 4 * 1100]);
  const sm = flops.kernelCost({ name: 'Softmax', inputShapes: [[100, 10]], outputShapes: [[100, 10]] });
  assert.deepEqual([sm.kind, sm.flops, sm.bytes], ['softmax', 5000, 8000]);
  const cast = flops.kernelCost({ name: 'Cast', inputShapes: [[100, 10]], outputShapes: [[100, 10]] });
  assert.deepEqual([cast.flops, cast.bytes, cast.intensity], [0, 8000, 0]);
  const tr = flops.kernelCost({ name: 'Transpose', inputShapes: [[30, 20]], outputShapes: [[20, 30]] });
  assert.deepEqual([tr.kind, tr.flops, tr.bytes], ['movement', 0, 2 * 4 * 600]);
  const slice = flops.kernelCost({ name: 'Slice', inputShapes: [[1000, 10]], outputShapes: [[100, 10]] });
  assert.equal(slice.bytes, 2 * 4 * 1000, 'a slice reads only what it keeps');
  const reshape = flops.kernelCost({ name: 'Reshape', inputShapes: [[100, 500]], outputShapes: [[1, 100, 500]] });
  assert.deepEqual([reshape.kind, reshape.flops, reshape.bytes, reshape.intensity], ['no-op', 0, 0, null]);
});

test("kernelCost: TensorFlow's own ops (TF:<Op> kernels of the native fused step) read like tfjs's", () => {
  const dw = flops.kernelCost({ name: 'TF:MatMul', inputShapes: [[100, 784], [100, 500]], outputShapes: [[784, 500]], attrs: { transposeA: true } });
  assert.deepEqual([dw.kernel, dw.kind, dw.flops], ['TF:MatMul', 'matmul', 2 * 784 * 100 * 500]);
  assert.equal(flops.kernelCost({ name: 'TF:Mul', inputShapes: [[100, 10], []], outputShapes: [[100, 10]] }).flops, 1000);
  const bgrad = flops.kernelCost({ name: 'TF:BiasAddGrad', inputShapes: [[100, 10]], outputShapes: [[10]] });
  assert.deepEqual([bgrad.kind, bgrad.flops], ['reduction', 1000]);
  const xent = flops.kernelCost({ name: 'TF:SoftmaxCrossEntropyWithLogits', inputShapes: [[100, 10], [100, 10]], outputShapes: [[100], [100, 10]] });
  assert.deepEqual([xent.kind, xent.flops, xent.bytes], ['softmax', 8000, 4 * (1000 + 1000 + 100 + 1000)]);
  // The weight and its accumulator arrive as resource handles (shape []): the gradient gives the size.
  const apply = flops.kernelCost({ name: 'TF:ResourceApplyMomentum', inputShapes: [[], [], [], [784, 500], []], inputDtypes: ['string', 'string', 'float32', 'float32', 'float32'], outputShapes: [] });
  assert.deepEqual([apply.kind, apply.flops, apply.bytes], ['elementwise', 4 * 392000, 5 * 4 * 392000]);
  assert.equal(flops.kernelCost({ name: 'TF:ResourceApplyGradientDescent', inputShapes: [[], [], [10]], outputShapes: [] }).flops, 20);
  assert.equal(flops.kernelCost({ name: 'TF:ReadVariableOp', inputShapes: [[]], outputShapes: [[784, 500]] }).kind, 'no-op');
  assert.equal(flops.baseKernelName('TF:MatMul'), 'MatMul');
  assert.equal(flops.baseKernelName('BatchMatMul'), 'BatchMatMul');
  assert.equal(flops.kernelCost({ name: 'TF:Conv2D', inputShapes: [[1, 8, 8, 1]], outputShapes: [[1, 6, 6, 1]] }).kind, 'unknown');
});

test('kernelCost: an unknown kernel is listed with null FLOPs and bytes, never guessed', () => {
  const c = flops.kernelCost({ name: 'Conv2D', inputShapes: [[1, 28, 28, 1], [3, 3, 1, 8]], outputShapes: [[1, 26, 26, 8]] });
  assert.deepEqual([c.kind, c.flops, c.bytes, c.intensity], ['unknown', null, null, null]);
  assert.match(c.note, /Conv2D: not in the cost model/);
});

// ---------------------------------------------------------------- regimes

const roof: roofline.Roof = { peakFlopsPerSecond: 100e9, bytesPerSecond: 10e9, overheadSeconds: 10e-6 }; // ridge: 10 FLOP/byte

test('classify: compute-, memory- and overhead-bound on constructed kernels', () => {
  const big = roofline.classify({ flops: 2e9, bytes: 4e7 }, 0.05, roof); // 50 FLOP/byte
  assert.equal(big.regime, 'compute-bound');
  close(big.attainableFlopsPerSecond as number, 100e9, 'attainable at the roof');
  const add = roofline.classify({ flops: 1e6, bytes: 12e6 }, 2e-3, roof);
  assert.equal(add.regime, 'memory-bound');
  close(add.attainableFlopsPerSecond as number, 10e9 / 12, 'attainable on the slope');
  assert.equal(roofline.classify({ flops: 1e6, bytes: 1e5 }, 1e-3, roof).regime, 'compute-bound', 'exactly at the ridge counts as compute-bound');
  assert.equal(roofline.classify({ flops: 1e6, bytes: 1e5 + 1 }, 1e-3, roof).regime, 'memory-bound', 'just below the ridge');
  // Time close to the per-op overhead wins over intensity.
  const tiny = roofline.classify({ flops: 2e4, bytes: 400 }, 15e-6, roof);
  assert.equal(tiny.regime, 'overhead-bound');
  close(tiny.overheads, 1.5, 'overheads');
  assert.equal(roofline.classify({ flops: 2e4, bytes: 400 }, 25e-6, roof).regime, 'compute-bound', 'past 2× the overhead the intensity decides');
  assert.equal(roofline.classify({ flops: 2e4, bytes: 400 }, 25e-6, roof, { overheadFactor: 3 }).regime, 'overhead-bound');
  // No arithmetic and no bytes: only the fixed cost, however long it took.
  assert.equal(roofline.classify({ flops: 0, bytes: 0 }, 1e-3, roof).regime, 'overhead-bound');
  // Data movement without arithmetic sits at intensity 0: memory-bound when it is not tiny.
  assert.equal(roofline.classify({ flops: 0, bytes: 8e6 }, 1e-3, roof).regime, 'memory-bound');
  // Unknown cost: overhead-bound when tiny, else unknown.
  assert.equal(roofline.classify({ flops: null, bytes: null }, 5e-6, roof).regime, 'overhead-bound');
  assert.equal(roofline.classify({ flops: null, bytes: null }, 1e-3, roof).regime, 'unknown');
  assert.throws(() => roofline.classify({ flops: 1, bytes: 1 }, -1, roof), /seconds must be/);
  assert.throws(() => roofline.classify({ flops: 1, bytes: 1 }, 1, { ...roof, bytesPerSecond: 0 }), /positive/);
});

// ---------------------------------------------------------------- MFU

const ceiling: roofline.MatmulCeiling = {
  backend: 'wasm', device: 'wasm · test', gflops: 40, gflopsMedian: 35, shape: { m: 1024, k: 1024, n: 1024 }, shapeLabel: '1024×1024·1024×1024',
  tried: [], skipped: [], timing: { samples: [1], median: 1, min: 1, max: 1, mean: 1, device: {} as never },
};

test('mfu: achieved GFLOP/s as a share of the measured ceiling, labelled with its backend and shape', () => {
  const m = roofline.mfu({ flops: 4e9, seconds: 1 }, ceiling);
  close(m.gflops, 4, 'gflops');
  close(m.pct, 10, 'pct');
  assert.equal(m.text, '4.00 GFLOP/s = 10 % of the 40.0 GFLOP/s matmul ceiling (wasm, 1024×1024·1024×1024)');
  close(roofline.mfu({ gflops: 2 }, ceiling, 'wasm').pct, 5, 'from GFLOP/s');
  assert.throws(() => roofline.mfu({ gflops: 2 }, ceiling, 'tensorflow'), /measured on 'tensorflow' but the ceiling on 'wasm'/);
  assert.throws(() => roofline.mfu({ flops: 1, seconds: 0 }, ceiling), /finite/);
});

// ---------------------------------------------------------------- kernels of a traced step

function span(id: number, name: string, phase: number, selfUs: number, inputShapes: number[][], outputShapes: number[][]): KernelSpan {
  return { id, name, startUs: id * 100, durUs: selfUs, selfUs, depth: 0, phase, inputShapes, outputShapes, inputDtypes: [], outputDtypes: [], attrs: {}, gpu: null };
}

function twoSteps(times: [number, number, number][]): Trace {
  const kernels: KernelSpan[] = [];
  times.forEach(([mm, add, rs], s) => {
    const base = s * 3;
    kernels.push(span(base, 'BatchMatMul', s, mm, [[100, 784], [784, 500]], [[100, 500]]));
    kernels.push(span(base + 1, 'Add', s, add, [[100, 500], [500]], [[100, 500]]));
    kernels.push(span(base + 2, 'Reshape', s, rs, [[100, 500]], [[1, 100, 500]]));
  });
  return {
    backend: 'test', device: 'test', startedAt: '', startEpochMs: 0, durationUs: 1e4, clock: 'host', gpuTimestamps: false, gpuNote: '', wrappedKernels: 3,
    phases: times.map((_, s) => ({ index: s, name: `step ${s}`, kind: 'step' as const, startUs: s * 300, durUs: 300 })),
    kernels,
  };
}

test('kernelPoints and kernelTable: per call the fastest of the traced steps, shares, regimes', () => {
  const trace = twoSteps([[3000, 300, 5], [1000, 100, 5], [2000, 200, 5]]);
  const points = roofline.kernelPoints(trace, roof);
  assert.deepEqual(points.map((p) => p.kernel), ['BatchMatMul', 'Add', 'Reshape']);
  close(points[0].seconds, 1e-3, 'the fastest matmul call');
  close(points[0].gflops as number, (2 * 100 * 784 * 500) / 1e-3 / 1e9, 'achieved GFLOP/s');
  assert.deepEqual(points.map((p) => p.regime), ['compute-bound', 'memory-bound', 'overhead-bound']);
  assert.equal(points[2].gflops, null, 'no FLOPs, no rate');
  const table = roofline.kernelTable(points);
  assert.deepEqual(table.map((r) => r.kernel), ['BatchMatMul', 'Add', 'Reshape'], 'by time, descending');
  close(table.reduce((a, r) => a + r.sharePct, 0), 100, 'shares add up');
  close(table[0].ms, 1, 'ms per step');
  const summary = roofline.regimeSummary(points);
  assert.deepEqual(summary.map((r) => r.regime), ['compute-bound', 'memory-bound', 'overhead-bound']);
  assert.equal(roofline.regimeShare(summary, 'memory-bound'), summary[1].sharePct);
  assert.equal(roofline.regimeShare(summary, 'unknown'), 0, 'a regime no kernel is in has no share');
  assert.throws(() => roofline.kernelPoints({ ...trace, phases: [] }, roof), /no step phases/);
});

test('kernelTable: a kernel whose calls fall in different regimes is marked mixed', () => {
  const points = roofline.kernelPoints(twoSteps([[1000, 100, 5]]), roof);
  const extra = { ...points[1], call: 3, seconds: 5e-6, regime: 'overhead-bound' as const };
  const row = roofline.kernelTable([...points, extra]).find((r) => r.kernel === 'Add');
  assert.equal(row?.calls, 2);
  assert.equal(row?.regime, 'mixed (1 memory-bound, 1 overhead-bound)');
  assert.equal(row?.mainRegime, 'memory-bound');
});

// ---------------------------------------------------------------- measured ceilings

test('measureCeilings: positive, labelled ceilings and the ridge point from them (cpu backend, tiny sizes)', async () => {
  await useBackend('cpu');
  const c = await roofline.measureCeilings({
    matmul: { shapes: [{ m: 32, k: 32, n: 32 }, { m: 48, k: 32, n: 64 }], repeats: 2, warmup: 1, budgetSeconds: 10 },
    bandwidth: { elements: 2 ** 14, opsPerRun: 2, repeats: 2, warmup: 1 },
    overhead: { chain: 20, repeats: 2, warmup: 1 },
  });
  assert.equal(c.backend, 'cpu');
  assert.match(c.device, /^cpu · /);
  assert.ok(c.matmul.gflops > 0 && c.bandwidth.gbPerSecond > 0 && c.overhead.perOpSeconds > 0);
  assert.ok(c.matmul.tried.some((t) => t.shape === c.matmul.shapeLabel && t.gflops === c.matmul.gflops), 'the ceiling is the best shape tried');
  assert.ok(c.matmul.tried.every((t) => t.gflops <= c.matmul.gflops));
  close(c.ridgeFlopsPerByte, c.matmul.gflops / c.bandwidth.gbPerSecond, 'ridge');
  close(c.bandwidth.gbPerSecond, (12 * 2 ** 14 * 2) / c.bandwidth.timing.min / 1e9, 'bandwidth from the fastest run');
  close(c.overhead.perOpSeconds, c.overhead.timing.min / 20, 'per-op overhead: the fastest run');
  assert.equal(roofline.ceilingRows([c])[0]['at shape'], c.matmul.shapeLabel);
});

test('searchMatMul: shapes over the time budget are skipped and listed, the smallest always runs', async () => {
  await useBackend('cpu');
  const s = await flops.searchMatMul([{ m: 64, k: 64, n: 64 }, { m: 16, k: 16, n: 16 }], { repeats: 1, warmup: 0, budgetSeconds: 0 });
  assert.deepEqual(s.tried.map((t) => t.m), [16], 'smallest first');
  assert.equal(s.skipped.length, 1);
  assert.match(s.skipped[0].reason, /over the 0 s budget/);
  await assert.rejects(() => flops.searchMatMul([]), /no shapes/);
});

// ---------------------------------------------------------------- the overhead test

function sweep(minMs: Record<number, number>): roofline.BatchSweep {
  const batches = Object.keys(minMs).map(Number);
  const first = minMs[batches[0]];
  return {
    backend: 'test',
    skipped: null,
    rows: batches.map((batch) => ({ backend: 'test', batch, msPerStep: minMs[batch] * 2, minMs: minMs[batch], maxMs: minMs[batch] * 2, usPerSample: (minMs[batch] * 1e3) / batch, relative: minMs[batch] / first })),
  };
}

test('overheadVerdict: the flat part ends where the fastest step passes 1.5× batch 1; batch 100 is read against it', () => {
  const flat = roofline.overheadVerdict(sweep({ 1: 4, 16: 4.2, 100: 5, 256: 7, 1024: 20 }));
  assert.equal(flat.flatUpTo, 100);
  assert.equal(flat.regime, 'overhead-bound');
  close(flat.fixedShare, 0.8, 'fixed share');
  assert.match(flat.sentence, /overhead-bound here: 80 % of its step/);
  const steep = roofline.overheadVerdict(sweep({ 1: 1, 16: 1.2, 100: 6, 256: 15 }));
  assert.deepEqual([steep.flatUpTo, steep.regime], [16, 'compute/memory-bound']);
  assert.match(steep.sentence, /flat part ends at batch 16 and a step of 1 costs only 17 %/);
  // Past the flat part, but a step of 1 still costs over half the step at 100: fixed cost dominates.
  const mostlyFixed = roofline.overheadVerdict(sweep({ 1: 3.3, 16: 4.4, 100: 5.4 }));
  assert.deepEqual([mostlyFixed.flatUpTo, mostlyFixed.regime], [16, 'overhead-bound']);
  assert.match(mostlyFixed.sentence, /past the flat part .* 61 % of it, so more than half/);
  assert.equal(roofline.overheadVerdict(sweep({ 1: 1, 16: 1.2, 100: 6 }), { flatFactor: 10 }).regime, 'overhead-bound');
  assert.throws(() => roofline.overheadVerdict(sweep({ 1: 1, 16: 2 })), /batch 100 was not timed on test \(timed: 1, 16\)/);
});

test('stepTimeByBatch stops past the budget but always times the batches asked for; analyzeStep and fusedMatMulComparison on a tiny step', async () => {
  await useBackend('cpu');
  const w = tf.variable(tf.randomNormal([8, 3], 0, 0.1, 'float32', 1));
  const opt = tf.train.sgd(0.1);
  const step: roofline.StepLike = { run: (xs, ys) => opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, tf.matMul(xs, w)) as tf.Scalar, true) as tf.Scalar };
  const s = await roofline.stepTimeByBatch(step, [4, 1, 2, 8], { features: 8, classes: 3, repeats: 1, warmup: 0, budgetSeconds: 0, alwaysUpTo: 2 });
  assert.deepEqual(s.rows.map((r) => r.batch), [1, 2], 'ascending; every step is over a 0 s budget, but up to batch 2 is always timed');
  assert.deepEqual(s.skipped?.batches, [4, 8]);
  assert.match(s.skipped?.reason ?? '', /one step at batch 2 took .* over the 0 ms budget/);
  close(s.rows[0].relative, 1, 'relative to the smallest');
  await assert.rejects(() => roofline.stepTimeByBatch(step, [0]), /positive integers/);

  const ceilings = await roofline.measureCeilings({ matmul: { shapes: [{ m: 16, k: 16, n: 16 }], repeats: 1, warmup: 0 }, bandwidth: { elements: 1024, repeats: 1, warmup: 0 }, overhead: { chain: 5, repeats: 1, warmup: 0 } });
  function* batches() {
    for (;;) yield tf.tidy(() => ({ xs: tf.randomUniform([4, 8]), ys: tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3) }));
  }
  const tensors = tf.memory().numTensors;
  const a = await roofline.analyzeStep('tiny', step, batches(), ceilings, { steps: 2, warmup: 1, repeats: 1 });
  assert.equal(tf.memory().numTensors, tensors, 'no tensors left behind');
  assert.equal(a.backend, 'cpu');
  assert.equal(a.points.length, roofline.kernelPoints(a.trace, ceilings).length);
  assert.ok(a.kernelsPerStep > 3 && a.kernelsPerStep <= a.points.length);
  assert.ok(a.points.some((p) => p.kind === 'matmul'));
  assert.ok(a.msPerStep > 0);
  await assert.rejects(() => roofline.analyzeStep('x', step, batches(), { ...ceilings, backend: 'wasm' }), /measured on 'wasm' but 'cpu' is running/);

  const rows = await roofline.fusedMatMulComparison({ m: 4, k: 8, n: 6 }, { repeats: 1, warmup: 0 });
  const three = rows.find((r) => r.variant === 'three ops');
  const fused = rows.find((r) => r.variant === 'tf.fused.matMul');
  assert.deepEqual([three?.kernelNames, three?.workKernels], ['BatchMatMul, Add, Relu', 3]);
  assert.equal(fused?.workKernels, 1, 'one kernel that does work (the rest only reshape)');
  assert.match(fused?.kernelNames ?? '', /_FusedMatMul/);
  assert.ok((fused?.maxAbsDiff ?? 1) < 1e-5);
  w.dispose();
  opt.dispose();
});
