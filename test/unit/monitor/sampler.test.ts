/** lib/monitor/sampler.ts: the sampler (process, tf.memory, nvidia-smi at an interval) and monitor(). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as monitor from '../../../lib/monitor';
import { toSvg } from '../../../lib/charts';
import { tempDir } from '../../support/helpers';

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
