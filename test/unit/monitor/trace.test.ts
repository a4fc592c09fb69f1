import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as trace from '../../../lib/monitor/trace';
import { monitor, type MonitorRun } from '../../../lib/monitor/sampler';
import { toSvg } from '../../../lib/charts';
import { markProblems, svgMarks } from '../../support/chart-check';
import { tempDir } from '../../support/helpers';

/** The registry's kernels for a backend: name → the exact config functions. */
function registry(backend: string): Map<string, tf.KernelConfig> {
  return new Map(tf.getKernelsForBackend(backend).map((k) => [k.kernelName, k]));
}

function assertSameRegistry(before: Map<string, tf.KernelConfig>, after: Map<string, tf.KernelConfig>): void {
  assert.deepEqual([...after.keys()], [...before.keys()], 'the same kernels, in the same order');
  for (const [name, k] of before) {
    const a = after.get(name) as tf.KernelConfig;
    assert.equal(a.kernelFunc, k.kernelFunc, `${name}: the original kernelFunc is back`);
    assert.equal(a.setupFunc, k.setupFunc, `${name}: setupFunc`);
    assert.equal(a.disposeFunc, k.disposeFunc, `${name}: disposeFunc`);
  }
}

test('recording wraps every kernel of the backend and restores the registry exactly, also when the work throws', async () => {
  await useBackend('cpu');
  const before = registry('cpu');
  const rec = new trace.TraceRecorder().start();
  const during = registry('cpu');
  assert.equal(during.size, before.size);
  assert.notEqual(during.get('Add')?.kernelFunc, before.get('Add')?.kernelFunc, 'wrapped while recording');
  const t = rec.stop();
  assert.equal(t.wrappedKernels, before.size);
  assertSameRegistry(before, registry('cpu'));
  await assert.rejects(() => trace.recordTrace(() => {
    tf.tidy(() => tf.add(tf.ones([2]), tf.ones([2])));
    throw new Error('boom');
  }), /boom/);
  assertSameRegistry(before, registry('cpu'));
  assert.throws(() => rec.stop(), /stopped/);
  assert.throws(() => rec.start(), /make a new one/);
});

test('every kernel becomes a span with its shapes, dtypes, attributes and phase; nested in its phase', async () => {
  await useBackend('cpu');
  const a = tf.ones([4, 3]);
  const b = tf.ones([3, 2]);
  const t = await trace.recordTrace(async (rec) => {
    await rec.phase('work', 'other', () => tf.tidy(() => tf.matMul(a, b, false, false).add(1).sum().dataSync()));
    tf.tidy(() => tf.neg(a));
  });
  tf.dispose([a, b]);
  const names = t.kernels.map((k) => k.name);
  assert.deepEqual(names.slice(0, 3), ['BatchMatMul', 'Add', 'Sum']);
  assert.equal(names[names.length - 1], 'Neg');
  const mm = t.kernels[0];
  assert.deepEqual(mm.inputShapes, [[4, 3], [3, 2]]);
  assert.deepEqual(mm.outputShapes, [[4, 2]]);
  assert.deepEqual(mm.outputDtypes, ['float32']);
  assert.equal(mm.attrs.transposeA, false);
  assert.equal(t.phases.length, 1);
  const work = t.phases[0];
  for (const k of t.kernels) {
    assert.ok(k.durUs >= 0 && k.selfUs >= 0 && k.selfUs <= k.durUs + 1e-9, `${k.name}: durations`);
    if (k.phase === 0) assert.ok(k.startUs >= work.startUs && k.startUs + k.durUs <= work.startUs + work.durUs + 1e-6, `${k.name} inside its phase`);
  }
  assert.equal(t.kernels[t.kernels.length - 1].phase, null, 'outside every phase');
  assert.ok(t.kernels.every((k, i) => i === 0 || k.startUs >= t.kernels[i - 1].startUs), 'in call order');
  assert.equal(t.gpuTimestamps, false);
  assert.match(t.gpuNote, /no GPU clock/);
});

/** A small training step on the current backend. */
function seedLikeStep() {
  const w = tf.variable(tf.randomNormal([6, 3], 0, 0.1, 'float32', 1));
  const opt = tf.train.momentum(0.01, 0.9);
  const step = (batch: trace.TraceBatch) => opt.minimize(() => tf.losses.softmaxCrossEntropy(batch.ys, tf.matMul(batch.xs, w)) as tf.Scalar, true) as tf.Scalar;
  function* batches() {
    for (let i = 0; ; i++) yield tf.tidy(() => ({ xs: tf.randomUniform([5, 6], 0, 1, 'float32', i), ys: tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1], 'int32'), 3) }));
  }
  return { step, batches, dispose: () => { w.dispose(); opt.dispose(); } };
}

test('traceSteps: input and step phases alternate, every step runs the same kernels, batches are disposed', async () => {
  await useBackend('cpu');
  const s = seedLikeStep();
  await trace.traceSteps(s.step, s.batches(), { steps: 1, warmup: 1 }); // optimizer slots exist from here on
  const tensors = tf.memory().numTensors;
  const t = await trace.traceSteps(s.step, s.batches(), { steps: 3, warmup: 1 });
  assert.equal(tf.memory().numTensors, tensors, 'no tensors left behind');
  assert.deepEqual(t.phases.map((p) => `${p.kind}:${p.name}`), ['input:batch 0', 'step:step 0', 'input:batch 1', 'step:step 1', 'input:batch 2', 'step:step 2']);
  const steps = trace.kernelsByPhase(t, 'step');
  assert.equal(steps.length, 3);
  assert.ok(steps[0].kernels.length > 5);
  assert.deepEqual(steps[1].kernels.map((k) => k.name), steps[0].kernels.map((k) => k.name));
  assert.ok(trace.kernelsByPhase(t, 'input').every((p) => p.kernels.length > 0), 'building a batch runs kernels too (randomUniform, oneHot)');
  await assert.rejects(() => trace.traceSteps(s.step, [], { steps: 1, warmup: 0 }), /ran out after 0 of 1/);
  s.dispose();
});

test('the Chrome trace validates: required fields, non-negative durations, spans nested in time, counters', async () => {
  await useBackend('cpu');
  const s = seedLikeStep();
  const t = await trace.traceSteps(s.step, s.batches(), { steps: 2, warmup: 1 });
  s.dispose();
  const startedAt = new Date(t.startEpochMs).toISOString();
  const sample = (tMs: number) => ({ tMs, lagMs: 0, trigger: 'timer' as const, rssBytes: 2 ** 27, heapUsedBytes: 2 ** 25, heapTotalBytes: 2 ** 26, externalBytes: 0, arrayBuffersBytes: 0, cpuPct: 90, tfNumTensors: 12, tfNumBytes: 2 ** 20, tfNumBytesInGPU: null, tfUnreliable: false, backend: 'cpu' });
  const counters: MonitorRun = { intervalMs: 1, startedAt, durationMs: 1, samples: [sample(0), sample(t.durationUs / 2000), sample(1e9)], gpu: [], events: [], sources: [], gpuErrors: [] };
  const doc = trace.toChromeTrace(t, { counters });
  assert.deepEqual(trace.traceProblems(doc), []);
  const x = doc.traceEvents.filter((e) => e.ph === 'X');
  assert.equal(x.length, t.kernels.length + t.phases.length);
  for (const e of x) {
    assert.equal(typeof e.name, 'string');
    assert.ok(typeof e.pid === 'number' && typeof e.tid === 'number');
    assert.ok(e.ts >= 0 && (e.dur as number) >= 0);
  }
  const c = doc.traceEvents.filter((e) => e.ph === 'C');
  assert.ok(c.length >= 2 && c.length <= 6, 'samples inside the trace window only');
  assert.ok(c.every((e) => e.ts <= t.durationUs));
  assert.ok(doc.traceEvents.some((e) => e.ph === 'M' && e.name === 'thread_name'));

  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'sub', 'trace.json');
    const w = trace.writeChromeTrace(file, t, { counters });
    assert.equal(w.bytes, fs.statSync(file).size);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['trace.json'], 'no temporary file left');
    const back = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(trace.traceProblems(back), []);
    assert.equal(back.traceEvents.length, w.events);
  } finally {
    cleanup();
  }
});

test('traceProblems catches what a trace viewer would reject', () => {
  const ok = { name: 'a', ph: 'X', ts: 0, dur: 10, pid: 1, tid: 1 };
  assert.deepEqual(trace.traceProblems({ traceEvents: [ok, { ...ok, name: 'b', ts: 2, dur: 3 }, { ...ok, name: 'c', ts: 10, dur: 5 }] }), [], 'nested, then adjacent');
  assert.deepEqual(trace.traceProblems({}), ['no traceEvents array']);
  assert.match(trace.traceProblems({ traceEvents: [{ ...ok, dur: -1 }] })[0], /dur -1 is not a finite number ≥ 0/);
  assert.match(trace.traceProblems({ traceEvents: [{ ...ok, ts: -5 }] })[0], /ts -5/);
  assert.match(trace.traceProblems({ traceEvents: [{ ...ok, pid: undefined }] })[0], /pid and tid/);
  assert.match(trace.traceProblems({ traceEvents: [{ ...ok, ph: 'B' }] })[0], /ph 'B'/);
  assert.match(trace.traceProblems({ traceEvents: [ok, { ...ok, name: 'b', ts: 5, dur: 10 }] })[0], /'b' .* starts inside 'a' .* but ends after it/);
  assert.deepEqual(trace.traceProblems({ traceEvents: [ok, { ...ok, name: 'b', ts: 5, dur: 10, tid: 2 }] }), [], 'other threads may overlap');
  assert.match(trace.traceProblems({ traceEvents: [{ name: 'm', ph: 'C', ts: 0, pid: 1, tid: 0, args: { v: 'x' } }] })[0], /counter's args/);
});

test('the Gantt chart draws every span with a visible bar', async () => {
  await useBackend('cpu');
  const s = seedLikeStep();
  const t = await trace.traceSteps(s.step, s.batches(), { steps: 2, warmup: 1 });
  s.dispose();
  const spec = trace.ganttSpec(t, { title: 'one batch' });
  const values = (spec as { data: { values: { lane: string }[] } }).data.values;
  const oneBatch = t.kernels.filter((k) => k.phase === 0 || k.phase === 1).length;
  assert.equal(values.length, oneBatch + 2, 'the first input phase, the first step, and their kernels');
  assert.deepEqual([...new Set(values.map((v) => v.lane))], ['phase', 'kernels (host)']);
  assert.deepEqual(markProblems(svgMarks(await toSvg(spec))), []);
  assert.throws(() => trace.ganttSpec({ ...t, phases: [] }, { title: 'x' }), /no phases/);
});

test('recordingCost times the same step with and without the recorder', async () => {
  await useBackend('cpu');
  const s = seedLikeStep();
  const batch = s.batches().next().value as trace.TraceBatch;
  const cost = await trace.recordingCost(() => s.step(batch), { repeats: 2, warmup: 1, rounds: 1 });
  tf.dispose([batch.xs, batch.ys]);
  s.dispose();
  assert.equal(cost.backend, 'cpu');
  assert.ok(cost.plainSeconds > 0 && cost.recordedSeconds > 0);
  assert.ok(cost.kernelsPerStep > 5);
  assert.equal(cost.repeats, 2);
  assert.ok(Number.isFinite(cost.chainUsPerKernel) && Number.isFinite(cost.usPerKernel));
  assertSameRegistry(registry('cpu'), registry('cpu'));
});

test('a sampler running alongside traceSteps gets its samples in between steps: they become the trace\'s counters', async () => {
  await useBackend('cpu');
  const s = seedLikeStep();
  const { value: t, run } = await monitor((_sampler) => trace.traceSteps(s.step, s.batches(), { steps: 4, warmup: 1 }), { intervalMs: 1, nvidiaSmi: false });
  s.dispose();
  const doc = trace.toChromeTrace(t, { counters: run });
  assert.deepEqual(trace.traceProblems(doc), []);
  assert.ok(doc.traceEvents.some((e) => e.ph === 'C' && e.name === 'tf.memory()'), `no counter inside the trace window (${run.samples.length} samples)`);
});
