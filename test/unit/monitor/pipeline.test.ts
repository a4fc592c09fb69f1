/** lib/monitor/pipeline.ts: input pipeline vs compute, per batch (timeBatches, timePipeline). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as monitor from '../../../lib/monitor';

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
