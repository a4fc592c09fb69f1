import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../lib/backends';
import * as monitor from '../../lib/monitor';
import { toSvg } from '../../lib/charts';
import { ROOT, tempDir } from '../support/helpers';

const FIX = path.join(ROOT, 'test', 'fixtures', 'nvidia-smi');
const fixture = (name: string) => path.join(FIX, name);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A stand-in nvidia-smi: replays one recorded line per --loop-ms interval with a fresh timestamp, and logs its arguments. */
function fakeNvidiaSmi(dir: string, opts: { fail?: boolean } = {}): { exe: string; argsFile: string } {
  const exe = path.join(dir, 'nvidia-smi');
  const argsFile = path.join(dir, 'args.txt');
  const body = opts.fail
    ? `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2\nexit 9\n`
    : [
        'ms=200',
        'for a in "$@"; do case "$a" in --loop-ms=*) ms="${a#--loop-ms=}";; esac; done',
        'echo "timestamp, index, name, utilization.gpu [%], utilization.memory [%], memory.used [MiB], memory.total [MiB], temperature.gpu, power.draw [W]"',
        'while true; do',
        '  echo "$(date +"%Y/%m/%d %H:%M:%S.%3N"), 0, NVIDIA GeForce RTX 2070, 37 %, 19 %, 865 MiB, 8192 MiB, 54, [N/A]"',
        '  sleep "$(awk "BEGIN{print $ms/1000}")"',
        'done',
      ].join('\n') + '\n';
  fs.writeFileSync(exe, `#!/bin/bash\necho "$@" > ${JSON.stringify(argsFile)}\n${body}`, { mode: 0o755 });
  return { exe, argsFile };
}

// ---------------------------------------------------------------- nvidia-smi CSV

test('parses recorded nvidia-smi CSV: units stripped, repeated headers skipped, timestamps read', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('rtx2070-repeated-header.csv'));
  assert.equal(r.errors.length, 0);
  assert.equal(r.records.length, 6, 'six samples, each under its own repeated header');
  assert.deepEqual(r.fields, ['timestamp', 'index', 'name', 'pci.bus_id', 'utilization.gpu', 'utilization.memory', 'memory.used', 'memory.free', 'memory.total']);
  assert.equal(r.units['utilization.gpu'], '%');
  assert.equal(r.units['memory.used'], 'MiB');
  const first = r.records[0];
  assert.equal(first.raw.name, 'NVIDIA GeForce RTX 2070');
  assert.equal(first.raw['pci.bus_id'], '00000000:01:00.0');
  assert.equal(first.values['utilization.gpu'], 22);
  assert.equal(first.values['memory.used'], 841);
  assert.equal(first.values['memory.total'], 8192);
  assert.equal(first.timestampMs, new Date(2023, 5, 22, 18, 56, 56, 252).getTime());
  assert.deepEqual(r.records.map((x) => x.values['utilization.gpu']), [22, 24, 29, 28, 20, 37]);
  assert.equal(r.records[1].timestampMs! - r.records[0].timestampMs!, 1022);
});

test('parses a -l loop with index first, a -lms power stream, and an idle GPU whose zeros are real', () => {
  const v100 = monitor.readNvidiaSmiCsv(fixture('v100-loop-5s.csv'));
  assert.equal(v100.records.length, 8);
  assert.equal(v100.records[0].values.index, 0);
  assert.equal(v100.records[5].values['utilization.gpu'], 32);
  assert.equal(v100.records[0].values['memory.total'], 32480);
  const power = monitor.readNvidiaSmiCsv(fixture('power-loop-50ms.csv'));
  assert.deepEqual(power.records.slice(0, 3).map((x) => x.values['power.draw']), [22.89, 22.73, 22.73]);
  assert.equal(power.units['power.draw'], 'W');
  const h100 = monitor.readNvidiaSmiCsv(fixture('h100-idle.csv'));
  const g = monitor.gpuSampleFromRecord(h100.records[0], 0);
  assert.equal(g.name, 'NVIDIA H100 80GB HBM3');
  assert.equal(g.utilizationPct, 0, 'an idle GPU reports a real 0 %');
  assert.equal(g.memoryUsedMiB, 0);
  assert.equal(g.memoryTotalMiB, 81559);
  assert.equal(g.powerW, null, 'power.draw was not queried: null, not 0');
  assert.equal(h100.records[0].raw.driver_version, '595.71.05');
});

test('[N/A] becomes null with the printed text kept, never 0', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('rtx5070ti-not-available.csv'));
  assert.equal(r.errors.length, 0);
  const rec = r.records[0];
  assert.equal(rec.values['memory.total'], 16303);
  assert.equal(rec.values['power.limit'], null);
  assert.equal(rec.missing['power.limit'], '[N/A]');
  assert.equal(rec.missing['power.default_limit'], '[N/A]');
  const ns = monitor.parseNvidiaSmiCsv('name, utilization.gpu [%], power.draw [W]\nTesla T4, [Not Supported], 27.5 W\n');
  assert.equal(ns.records[0].values['utilization.gpu'], null);
  assert.equal(ns.records[0].missing['utilization.gpu'], '[Not Supported]');
  assert.equal(ns.records[0].values['power.draw'], 27.5);
});

test('a malformed recording keeps the good lines and names each bad line and why', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('malformed.csv'));
  assert.deepEqual(r.records.map((x) => x.line), [2, 3, 5]);
  assert.deepEqual(r.errors.map((e) => e.line), [4, 6, 7]);
  assert.match(r.errors[0].reason, /not a CSV data line/);
  assert.match(r.errors[0].text, /NVIDIA-SMI has failed/);
  assert.match(r.errors[1].reason, /'utilization\.gpu' is not a number: "lots %"/);
  assert.match(r.errors[2].reason, /expected 9 fields, got 7 \(line cut off\?\)/);
  assert.throws(() => monitor.readNvidiaSmiCsv(fixture('malformed.csv'), { strict: true }), /malformed\.csv:4: not a CSV data line/);
  assert.throws(() => monitor.readNvidiaSmiCsv(path.join(FIX, 'no-such.csv')), /no-such\.csv: cannot read nvidia-smi CSV \(ENOENT\)/);
});

test('noheader output needs the field list; the stream reader gives the same records for any chunking', () => {
  const noHeader = '37 %, 865 MiB\n41 %, 821 MiB\n';
  const bare = monitor.parseNvidiaSmiCsv(noHeader, { source: 'q' });
  assert.equal(bare.records.length, 0);
  assert.match(bare.errors[0].reason, /data line before any header/);
  const withFields = monitor.parseNvidiaSmiCsv(noHeader, { fields: ['utilization.gpu', 'memory.used'] });
  assert.deepEqual(withFields.records.map((x) => x.values['memory.used']), [865, 821]);

  const text = fs.readFileSync(fixture('rtx2070-repeated-header.csv'), 'utf8');
  const whole = monitor.parseNvidiaSmiCsv(text).records;
  const s = new monitor.NvidiaSmiCsvStream();
  const chunked: monitor.NvidiaSmiRecord[] = [];
  for (let i = 0; i < text.length; i += 37) chunked.push(...s.push(text.slice(i, i + 37)));
  chunked.push(...s.end());
  assert.deepEqual(chunked, whole);
  // A line still being written is not parsed until it is complete.
  const s2 = new monitor.NvidiaSmiCsvStream();
  assert.equal(s2.push('timestamp, utilization.gpu [%]\n2024/10/30 18:42:33.189, 4').length, 0);
  assert.equal(s2.push('2 %\n')[0].values['utilization.gpu'], 42);
});

test('parseNvidiaSmiTimestamp reads local time and rejects other text', () => {
  assert.equal(monitor.parseNvidiaSmiTimestamp('2024/10/30 18:42:33.5'), new Date(2024, 9, 30, 18, 42, 33, 500).getTime());
  assert.equal(monitor.parseNvidiaSmiTimestamp('2024-10-30T18:42:33'), null);
});

// ---------------------------------------------------------------- sampler

test('sampler: start/stop, samples at its interval, nothing after stop, cannot restart', async () => {
  await useBackend('wasm');
  const s = new monitor.Sampler({ intervalMs: 40, nvidiaSmi: false });
  assert.equal(s.running, false);
  await assert.rejects(s.stop(), /never started/);
  s.start();
  assert.equal(s.running, true);
  assert.throws(() => s.start(), /already running/);
  await sleep(420);
  const run = await s.stop();
  assert.equal(s.running, false);
  const timer = run.samples.filter((x) => x.trigger === 'timer');
  assert.equal(run.samples[0].trigger, 'start');
  assert.equal(run.samples[run.samples.length - 1].trigger, 'stop');
  assert.ok(timer.length >= 3, `expected several timer samples, got ${timer.length}`);
  assert.ok(timer.length <= Math.ceil(run.durationMs / 40) + 1, `${timer.length} timer samples in ${run.durationMs.toFixed(0)} ms is more than one per 40 ms`);
  const gaps = timer.slice(1).map((x, i) => x.tMs - timer[i].tMs);
  for (const g of gaps) assert.ok(g >= 35, `timer samples ${g.toFixed(1)} ms apart, interval is 40 ms`);
  for (const x of run.samples) {
    assert.ok(x.rssBytes > 0 && x.heapUsedBytes > 0);
    assert.equal(typeof x.tfNumTensors, 'number');
    assert.equal(x.backend, 'wasm');
  }
  assert.ok(run.samples.slice(1).every((x) => x.cpuPct !== null && x.cpuPct >= 0));
  const n = run.samples.length;
  await sleep(120);
  assert.equal(s.snapshot().samples.length, n, 'no samples after stop');
  assert.equal(await s.stop(), run, 'stop twice returns the same run');
  assert.throws(() => s.start(), /already stopped/);
  assert.throws(() => new monitor.Sampler({ intervalMs: 0 }), /intervalMs must be ≥ 1/);
});

test('monitor() stops the sampler when training throws and hands back what it recorded', async () => {
  let sampler: monitor.Sampler | null = null;
  const err = await monitor
    .monitor(async (s) => {
      sampler = s;
      s.event('epoch-begin', { epoch: 0 });
      await sleep(80);
      throw new Error('planted training failure');
    }, { intervalMs: 20, nvidiaSmi: false })
    .then(() => null, (e: unknown) => e);
  assert.ok(err instanceof monitor.MonitoredError, 'a MonitoredError');
  assert.match(err.message, /planted training failure/);
  assert.equal((err.cause as Error).message, 'planted training failure');
  assert.ok(err.run.samples.length >= 3);
  assert.equal(err.run.events[0].kind, 'epoch-begin');
  const s = sampler as unknown as monitor.Sampler;
  assert.equal(s.running, false);
  const n = s.snapshot().samples.length;
  await sleep(80);
  assert.equal(s.snapshot().samples.length, n, 'the timer is gone');
});

test('without nvidia-smi the GPU columns are null with the reason, never zeros', async () => {
  const oldPath = process.env.PATH;
  const { dir, cleanup } = tempDir();
  try {
    process.env.PATH = dir; // an empty PATH: no nvidia-smi
    const { run } = await monitor.monitor(() => sleep(60), { intervalMs: 20 });
    const gpu = run.sources.find((x) => x.source === 'nvidia-smi')!;
    assert.equal(gpu.status, 'missing');
    assert.match(gpu.reason!, /nvidia-smi is not on PATH/);
    const df = monitor.toDataFrame(run);
    assert.equal(df.height, run.samples.length);
    for (const c of ['gpu_util_pct', 'gpu_mem_used_mib', 'gpu_power_w']) {
      assert.equal(df.getColumn(c).nullCount(), df.height, `${c} is all null`);
    }
    assert.ok(df.getColumn('gpu_note').toArray().every((x) => /not on PATH/.test(String(x))));
    const { omitted } = monitor.timelineRows(run);
    assert.ok(omitted.some((o) => /GPU utilization/.test(o.label) && /not on PATH/.test(o.reason)));
  } finally {
    process.env.PATH = oldPath;
    cleanup();
  }
});

test('with nvidia-smi it is polled at the sampler interval, parsed, lined up, and stopped', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { exe, argsFile } = fakeNvidiaSmi(dir);
    const s = new monitor.Sampler({ intervalMs: 50, nvidiaSmi: exe }).start();
    const pid = s.nvidiaSmiPid!;
    assert.ok(pid > 0);
    await sleep(700);
    const run = await s.stop();
    assert.equal(alive(pid), false, 'the nvidia-smi child is gone after stop');
    const args = fs.readFileSync(argsFile, 'utf8');
    assert.match(args, /--query-gpu=timestamp,index,name,utilization\.gpu,/);
    assert.match(args, /--format=csv/);
    assert.match(args, /--loop-ms=50/);
    assert.equal(run.sources.find((x) => x.source === 'nvidia-smi')!.status, 'ok');
    assert.ok(run.gpu.length >= 2, `got ${run.gpu.length} GPU samples`);
    assert.equal(run.gpu[0].utilizationPct, 37);
    assert.equal(run.gpu[0].memoryUsedMiB, 865);
    assert.equal(run.gpu[0].powerW, null);
    assert.equal(run.gpu[0].missing['power.draw'], '[N/A]');
    assert.ok(Math.abs(run.gpu[0].tMs) < 2000, `GPU samples on the sampler clock (${run.gpu[0].tMs} ms)`);
    const df = monitor.toDataFrame(run);
    const util = df.getColumn('gpu_util_pct').toArray();
    assert.ok(util.some((x) => x === 37), 'GPU readings lined up with process samples');
    assert.equal(df.getColumn('gpu_power_w').toArray().filter((x) => x !== null).length, 0);
    assert.ok(df.getColumn('gpu_note').toArray().some((x) => /power\.draw: \[N\/A\]/.test(String(x))));
    const g = monitor.gpuToDataFrame(run);
    assert.equal(g.height, run.gpu.length);
  } finally {
    cleanup();
  }
});

test('an nvidia-smi that fails is recorded as missing with its message', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { exe } = fakeNvidiaSmi(dir, { fail: true });
    const { run } = await monitor.monitor(() => sleep(300), { intervalMs: 50, nvidiaSmi: exe });
    const gpu = run.sources.find((x) => x.source === 'nvidia-smi')!;
    assert.equal(gpu.status, 'missing');
    assert.match(gpu.reason!, /exited with 9: NVIDIA-SMI has failed/);
    assert.equal(run.gpu.length, 0);
  } finally {
    cleanup();
  }
});

test("tf.memory()'s unreliable flag is recorded, not hidden (cpu backend)", async () => {
  await useBackend('cpu');
  try {
    const { run } = await monitor.monitor(() => sleep(50), { intervalMs: 20, nvidiaSmi: false });
    assert.ok(run.samples.every((x) => x.tfUnreliable));
    const src = run.sources.find((x) => x.source === 'tf.memory')!;
    assert.equal(src.status, 'unreliable');
    assert.match(src.reason!, /'cpu' backend reports unreliable memory: .*upper bound/);
    assert.equal(monitor.toDataFrame(run).getColumn('tf_memory_unreliable').toArray()[0], true);
  } finally {
    await useBackend('wasm');
  }
  const { run } = await monitor.monitor(() => sleep(30), { intervalMs: 20, nvidiaSmi: false });
  assert.equal(run.sources.find((x) => x.source === 'tf.memory')!.status, 'ok');
  assert.equal(run.sources.find((x) => x.source === 'tf.memory (GPU bytes)')!.status, 'missing');
  assert.ok(run.samples.every((x) => x.tfNumBytesInGPU === null));
});

test('the fit callback lines samples up with epochs and batches', async () => {
  await useBackend('wasm');
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [8], units: 4, activation: 'relu' }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const xs = tf.randomNormal([40, 8]);
  const ys = tf.oneHot(tf.tensor1d([...Array(40)].map((_, i) => i % 2), 'int32'), 2).toFloat();
  const { run } = await monitor.monitor(
    (s) => model.fit(xs, ys, { epochs: 3, batchSize: 10, callbacks: [s.callback()], verbose: 0 }),
    { intervalMs: 10, nvidiaSmi: false },
  );
  tf.dispose([xs, ys]);
  model.dispose();
  const kinds = run.events.map((e) => e.kind);
  assert.equal(kinds[0], 'train-begin');
  assert.equal(kinds[kinds.length - 1], 'train-end');
  assert.equal(kinds.filter((k) => k === 'epoch-end').length, 3);
  assert.equal(kinds.filter((k) => k === 'batch-end').length, 12);
  const lastBatch = run.events.filter((e) => e.kind === 'batch-end').pop()!;
  assert.equal(lastBatch.epoch, 2);
  assert.equal(lastBatch.batch, 3);
  assert.equal(typeof lastBatch.logs.loss, 'number');
  const ev = monitor.eventsToDataFrame(run);
  assert.ok(ev.columns.includes('loss'));
  assert.ok(ev.columns.includes('log_batch'), "tfjs's own batch log is kept under another name");
  const df = monitor.toDataFrame(run);
  const epochs = df.getColumn('epoch').toArray();
  assert.equal(epochs[0], null, 'before the first event: no epoch');
  assert.equal(epochs[epochs.length - 1], 2);
  assert.deepEqual([...new Set(epochs.filter((e) => e !== null))], [0, 1, 2]);
  assert.ok(run.samples.filter((x) => x.trigger === 'event').length >= 6, 'a sample at every epoch begin and end');
  const { marks } = monitor.timelineRows(run);
  assert.deepEqual(marks.map((m) => m.label), ['epoch 1', 'epoch 2', 'epoch 3']);
  const svg = await toSvg(monitor.timelineSpec(run, { title: 'fit timeline' }));
  assert.match(svg, /^<svg/);
  assert.match(svg, /epoch 3/);
});

// ---------------------------------------------------------------- kernel profile

test('matMulLayout infers the transposes autodiff emits', () => {
  assert.equal(monitor.matMulLayout([[1, 100, 784], [1, 784, 500]], [[1, 100, 500]]), '');
  assert.equal(monitor.matMulLayout([[1, 100, 784], [1, 100, 500]], [[1, 784, 500]]), 'transposeA');
  assert.equal(monitor.matMulLayout([[1, 100, 10], [1, 500, 10]], [[1, 100, 500]]), 'transposeB');
  assert.equal(monitor.matMulLayout([[1, 7, 3], [1, 5, 7]], [[1, 3, 5]]), 'transposeA+B');
  assert.equal(monitor.matMulLayout([[1, 4, 4], [1, 4, 4]], [[1, 4, 4]]), '', 'square: the plain layout is assumed');
  assert.equal(monitor.matMulLayout([[3]], [[3]]), '');
});

test('profileStep: kernels of one training step by time and bytes, kernelMs vs wallMs, no leak', async () => {
  await useBackend('wasm');
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [64], units: 32, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
  const opt = tf.train.momentum(0.01, 0.9);
  const xs = tf.randomNormal([16, 64]);
  const ys = tf.oneHot(tf.tensor1d([...Array(16)].map((_, i) => i % 10), 'int32'), 10).toFloat();
  const step = () => opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor) as tf.Scalar, true)!;
  await monitor.profileStep(step, { warmup: 1 }); // creates the optimizer's slots once
  const before = tf.memory().numTensors;
  const p = await monitor.profileStep(step, { warmup: 1 });
  assert.equal(tf.memory().numTensors, before, 'profiling leaves no tensors behind');
  assert.equal(p.backend, 'wasm');
  const names = p.kernels.map((k) => k.kernel);
  assert.ok(names.includes('BatchMatMul · transposeA'), `weight gradients xᵀ·dy in ${names.join(', ')}`);
  assert.ok(names.some((n) => n.startsWith('BatchMatMul') || n.startsWith('_FusedMatMul')));
  assert.ok(!names.some((n) => n.endsWith('__op')), 'composite op entries are not counted as kernels');
  assert.ok(p.calls.some((c) => c.composite), 'but they are kept in the raw calls');
  const sorted = p.kernels.map((k) => k.totalMs!);
  assert.deepEqual(sorted, [...sorted].sort((a, b) => b - a), 'sorted by total time');
  assert.ok(p.kernelSumMs! > 0);
  const shares = p.kernels.reduce((a, k) => a + k.sharePct!, 0);
  assert.ok(Math.abs(shares - 100) < 1e-6);
  assert.ok(p.kernels.some((k) => k.allocatedMB > 0));
  assert.equal(typeof p.kernelMs, 'number');
  assert.ok(p.wallMs >= p.kernelMs!, 'on wasm tf.time kernelMs is host time inside wallMs');
  assert.ok(p.syncedWallMs > 0 && p.profiledWallMs > 0);
  assert.equal(p.missingReason, null);
  assert.match(p.timerNote, /^wasm: kernels run synchronously/);
  assert.equal(p.repeats, 3);
  assert.equal(p.samples.syncedWallMs.length, 3);
  assert.equal(p.samples.kernelMs.length, 3);
  assert.ok(p.syncedWallMs >= Math.min(...p.samples.syncedWallMs) && p.syncedWallMs <= Math.max(...p.samples.syncedWallMs));
  const matmul = p.kernels.find((k) => k.kernel === 'BatchMatMul · transposeA')!;
  assert.equal(matmul.calls, 2, 'calls are per step (two weight gradients), not summed over rounds');
  const rows = monitor.stepTimingRows(p);
  assert.equal(rows.length, 5);
  for (const r of rows) assert.ok(Number(r.minMs) <= Number(r.medianMs) && Number(r.medianMs) <= Number(r.maxMs));
  await assert.rejects(monitor.profileStep(step, { repeats: 0 }), /repeats must be ≥ 1/);
  tf.dispose([xs, ys]);
  model.dispose();
  opt.dispose();
});

test('explainTimers says what tf.time means on each backend', () => {
  assert.match(monitor.explainTimers('tensorflow'), /host wall time around the call into libtensorflow/);
  assert.match(monitor.explainTimers('webgpu'), /timestamp-query/);
  assert.match(monitor.explainTimers('cpu'), /synchronously/);
  assert.match(monitor.explainTimers('mystery'), /depends on the backend/);
});

// ---------------------------------------------------------------- pipeline split

test('timePipeline splits each batch into input-pipeline and compute time', async () => {
  await useBackend('wasm');
  const busy = (ms: number) => {
    const t = performance.now();
    while (performance.now() - t < ms) { /* spin */ }
  };
  function* slowData() {
    for (let i = 0; i < 6; i++) {
      busy(12);
      yield { xs: tf.ones([4, 3]), ys: tf.zeros([4, 2]) };
    }
  }
  const before = tf.memory().numTensors;
  const s = new monitor.Sampler({ intervalMs: 1000, nvidiaSmi: false }).start();
  const split = await monitor.timePipeline('slow data', slowData(), ({ xs }) => {
    busy(3);
    return xs.sum();
  }, { warmup: 1, sampler: s, epoch: 0 });
  const run = await s.stop();
  assert.equal(tf.memory().numTensors, before, 'batches and step results are disposed');
  assert.equal(split.batches.length, 6);
  assert.equal(split.counted, 5);
  assert.equal(split.batches[0].warmup, true);
  assert.ok(split.medianDataMs >= 11, `data ${split.medianDataMs} ms per batch includes the 12 ms spin`);
  assert.ok(split.medianComputeMs >= 2.5);
  assert.ok(split.dataShare > 0.5, 'the slow input pipeline dominates');
  assert.ok(Math.abs(split.totalMs - split.dataMs - split.computeMs) < 1e-9);
  assert.equal(run.events.filter((e) => e.kind === 'batch-end').length, 6);
  assert.equal(typeof run.events[0].logs.dataMs, 'number');
  const rows = monitor.splitRows([split]);
  assert.deepEqual(rows.map((r) => r.part), ['input pipeline', 'compute']);
  await assert.rejects(monitor.timePipeline('empty', [], () => undefined), /no batches left/);
});

test('timeBatches times fetching apart from the step, stops on request, and closes the iterator', async () => {
  const spin = (ms: number) => {
    const t = performance.now();
    while (performance.now() - t < ms) { /* spin */ }
  };
  let closed = false;
  function* source() {
    try {
      for (let i = 0; ; i++) {
        spin(8);
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  const seen: number[] = [];
  const splits = await monitor.timeBatches(source(), (b) => { spin(2); seen.push(b); }, { after: (b) => (b === 3 ? 'stop' : undefined) });
  assert.deepEqual(seen, [0, 1, 2, 3]);
  assert.deepEqual(splits.map((s) => s.index), [0, 1, 2, 3]);
  assert.ok(splits.every((s) => s.dataMs >= 7 && s.computeMs >= 1.5), JSON.stringify(splits));
  assert.equal(closed, true, 'the source is closed when the loop stops early');
  assert.equal((await monitor.timeBatches([1, 2, 3, 4], () => undefined, { maxBatches: 2 })).length, 2);
});

// ---------------------------------------------------------------- external tools

test('external tools: a missing tool says so; a failing one reports its exit and message', async () => {
  assert.equal(monitor.findOnPath('surely-not-a-real-tool-xyz'), null);
  assert.ok(monitor.findOnPath('sh'));
  const missing = await monitor.runTool('surely-not-a-real-tool-xyz', ['--version']);
  assert.equal(missing.found, false);
  assert.match(missing.reason!, /is not on PATH/);
  const failing = await monitor.runTool('sh', ['-c', 'echo out; echo broken >&2; exit 3']);
  assert.equal(failing.exitCode, 3);
  assert.equal(failing.stdout, 'out\n');
  assert.match(failing.reason!, /exited with 3: broken/);
  const slow = await monitor.runTool('sh', ['-c', 'sleep 5'], { timeoutMs: 100 });
  assert.match(slow.reason!, /did not finish within 100 ms/);
  const ok = await monitor.runTool('sh', ['-c', 'echo fine']);
  assert.equal(ok.reason, null);
  const tools = await monitor.externalTools();
  assert.deepEqual(tools.map((t) => t.tool), ['nvidia-smi', 'nsys', 'ncu', 'nvprof']);
  for (const t of tools) assert.ok(t.path !== null || /not on PATH/.test(t.reason ?? ''), `${t.tool}: a path or a reason`);
});

test('queryNvidiaSmi parses a one-shot query, or says why it could not run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const exe = path.join(dir, 'fake-smi');
    fs.writeFileSync(exe, `#!/bin/sh\ncat ${JSON.stringify(fixture('h100-idle.csv'))}\n`, { mode: 0o755 });
    const q = await monitor.queryNvidiaSmi(undefined, { command: exe });
    assert.equal(q.reason, null);
    assert.equal(q.csv!.records[0].raw.name, 'NVIDIA H100 80GB HBM3');
    const none = await monitor.queryNvidiaSmi(undefined, { command: path.join(dir, 'absent') });
    assert.equal(none.csv, null);
    assert.match(none.reason!, /not on PATH/);
    // The device banners' GPU name comes from the same query.
    assert.equal(monitor.nvidiaGpuName({ command: exe }), 'NVIDIA H100 80GB HBM3');
    assert.equal(monitor.nvidiaGpuName({ command: path.join(dir, 'absent') }), null);
    const failing = path.join(dir, 'failing-smi');
    fs.writeFileSync(failing, '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver" >&2\nexit 9\n', { mode: 0o755 });
    const bad = monitor.queryNvidiaSmiSync(undefined, { command: failing });
    assert.equal(bad.csv, null);
    assert.match(bad.reason!, /exited with 9: NVIDIA-SMI has failed/);
    const slow = path.join(dir, 'slow-smi');
    fs.writeFileSync(slow, '#!/bin/sh\nsleep 5\n', { mode: 0o755 });
    assert.match(monitor.queryNvidiaSmiSync(undefined, { command: slow, timeoutMs: 200 }).reason!, /did not finish within 200 ms/);
  } finally {
    cleanup();
  }
});

test('writeStepScript writes a runnable profiler target; profilerCommands name the tools', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const script = monitor.writeStepScript(dir, { steps: 2 });
    const r = await monitor.runTool(process.execPath, ['--import', 'tsx', script], { timeoutMs: 120_000, cwd: ROOT, env: { ...process.env, GPULAB_BACKEND: 'wasm' } });
    assert.equal(r.reason, null, r.stderr);
    assert.match(r.stdout, /gpulab-step: 2 steps on wasm/);
    const cmds = monitor.profilerCommands(script, dir);
    assert.deepEqual(cmds.map((c) => c.tool), ['nsys', 'ncu', 'nvprof']);
    for (const c of cmds) assert.equal(c.args[c.args.length - 1], script);
  } finally {
    cleanup();
  }
});
