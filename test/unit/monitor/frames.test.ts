/**
 * lib/monitor/frames.ts: a recorded run as DataFrames, tables and a timeline, on hand-made runs
 * (no sampling, so every time and value is known): GPU readings lined up by time, epochs and
 * batches by event, and missing sources named, never drawn as zeros.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as monitor from '../../../lib/monitor';

const MIB = 1024 * 1024;

function sample(tMs: number, over: Partial<monitor.ProcessSample> = {}): monitor.ProcessSample {
  return {
    tMs, lagMs: 0, trigger: 'timer', rssBytes: 100 * MIB, heapUsedBytes: 10 * MIB, heapTotalBytes: 20 * MIB, externalBytes: 0,
    arrayBuffersBytes: 0, cpuPct: 50, tfNumTensors: 3, tfNumBytes: 2 * MIB, tfNumBytesInGPU: null, tfUnreliable: false, backend: 'wasm', ...over,
  };
}

function reading(tMs: number, over: Partial<monitor.GpuSample> = {}): monitor.GpuSample {
  return {
    tMs, gpu: 0, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 40, memoryUtilizationPct: 10, memoryUsedMiB: 1000,
    memoryTotalMiB: 81559, temperatureC: 50, powerW: 100, missing: {}, ...over,
  };
}

function event(tMs: number, kind: monitor.TrainingEventKind, epoch: number | null = null, batch: number | null = null, logs: Record<string, number> = {}, label: string | null = null): monitor.TrainingEvent {
  return { tMs, kind, epoch, batch, label, logs };
}

function run(over: Partial<monitor.MonitorRun>): monitor.MonitorRun {
  return {
    intervalMs: 100, startedAt: '2026-01-01T00:00:00.000Z', durationMs: 1600, samples: [], gpu: [], events: [], gpuErrors: [],
    sources: [{ source: 'process', status: 'ok', reason: null }, { source: 'nvidia-smi', status: 'ok', reason: null }],
    ...over,
  };
}

test('toDataFrame: each sample gets the latest reading of its GPU no older than the limit, and the epoch and batch at that moment', () => {
  const r = run({
    samples: [sample(0), sample(150), sample(250), sample(1500)],
    gpu: [
      reading(100),
      reading(140, { gpu: 1, utilizationPct: 99 }),
      reading(200, { utilizationPct: 60, powerW: null, missing: { 'power.draw': '[N/A]' } }),
    ],
    events: [event(100, 'epoch-begin', 0), event(200, 'batch-end', 0, 0, { loss: 2 }), event(300, 'epoch-end', 0), event(1000, 'epoch-begin', 1)],
  });
  const df = monitor.toDataFrame(r);
  const col = (name: string) => df.getColumn(name).toArray();
  assert.deepEqual(col('gpu_util_pct'), [null, 40, 60, null], 'GPU 1 is not mixed in; a reading 1.3 s old is not used');
  assert.deepEqual(col('gpu_power_w'), [null, 100, null, null]);
  assert.deepEqual(col('gpu_note'), [
    'no nvidia-smi reading of GPU 0 within 1000 ms',
    null,
    'power.draw: [N/A]',
    'no nvidia-smi reading of GPU 0 within 1000 ms',
  ]);
  assert.deepEqual(col('epoch'), [null, 0, 0, 1]);
  assert.deepEqual(col('batch'), [null, null, 0, null], 'the last finished batch, reset by a new epoch');
  assert.deepEqual(col('t_s'), [0, 0.15, 0.25, 1.5]);
  assert.deepEqual(col('rss_mib'), [100, 100, 100, 100]);
  assert.deepEqual(col('tf_gpu_mib'), [null, null, null, null]);
  assert.deepEqual(monitor.toDataFrame(r, { gpuIndex: 1 }).getColumn('gpu_util_pct').toArray(), [null, 99, 99, null]);
  assert.equal(monitor.gpuToDataFrame(r).height, 3);
});

test('without nvidia-smi: GPU columns are null with the reason, the timeline leaves those series out and its subtitle names them', () => {
  const r = run({
    samples: [sample(0), sample(100, { cpuPct: 80 }), sample(200)],
    sources: [{ source: 'process', status: 'ok', reason: null }, { source: 'nvidia-smi', status: 'missing', reason: 'nvidia-smi is not on PATH' }],
    events: [event(0, 'epoch-begin', 0), event(150, 'mark', null, null, {}, 'warm-up done'), event(200, 'epoch-end', 0)],
  });
  const df = monitor.toDataFrame(r);
  assert.equal(df.getColumn('gpu_util_pct').nullCount(), 3);
  assert.deepEqual(df.getColumn('gpu_note').toArray(), Array(3).fill('nvidia-smi is not on PATH'));
  const { rows, marks, omitted } = monitor.timelineRows(r);
  assert.deepEqual(omitted, [
    { label: 'GPU utilization (nvidia-smi)', reason: 'nvidia-smi is not on PATH' },
    { label: 'GPU memory used (nvidia-smi, MiB)', reason: 'nvidia-smi is not on PATH' },
  ]);
  assert.deepEqual(rows.filter((x) => x.series === 'process CPU (% of one core)').map((x) => x.value), [50, 80, 50]);
  assert.ok(rows.every((x) => typeof x.value === 'number'), 'no missing value drawn as a number');
  assert.deepEqual(marks, [{ x: 0.15, label: 'warm-up done' }, { x: 0.2, label: 'epoch 1' }]);
  const spec = JSON.stringify(monitor.timelineSpec(r, { title: 'a run' }));
  assert.ok(spec.includes('missing: GPU utilization (nvidia-smi), GPU memory used (nvidia-smi, MiB): nvidia-smi is not on PATH'), spec.slice(0, 400));
});

test('eventsToDataFrame: one column per log key, null where an event has none; sourcesTable says what was missing and why', () => {
  const r = run({
    events: [event(0, 'train-begin'), event(10, 'batch-end', 0, 0, { loss: 2.5, acc: 0.5 }), event(20, 'batch-end', 0, 1, { loss: 2 }), event(30, 'mark', null, null, {}, 'x')],
    sources: [{ source: 'process', status: 'ok', reason: null }, { source: 'tf.memory', status: 'unreliable', reason: 'upper bound' }],
  });
  const ev = monitor.eventsToDataFrame(r);
  assert.deepEqual(ev.columns, ['t_s', 'kind', 'epoch', 'batch', 'label', 'acc', 'loss']);
  assert.deepEqual(ev.getColumn('loss').toArray(), [null, 2.5, 2, null]);
  assert.deepEqual(ev.getColumn('acc').toArray(), [null, 0.5, null, null]);
  assert.deepEqual(ev.getColumn('label').toArray(), [null, null, null, 'x']);
  assert.deepEqual(monitor.sourcesTable(r), [
    { source: 'process', status: 'ok', reason: '' },
    { source: 'tf.memory', status: 'unreliable', reason: 'upper bound' },
  ]);
});
