import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBackend } from '../../lib/backends';
import * as flops from '../../lib/flops';

test('matMulFlops and mlpTrainingFlops count the seed experiment as the notes do', () => {
  assert.equal(flops.matMulFlops(2, 3, 4), 48);
  const f = flops.mlpTrainingFlops([784, 500, 10], 60000 * 5);
  assert.equal(f.forwardPerSample, 2 * (784 * 500 + 500 * 10));
  assert.ok(Math.abs(f.counted - 7.1e11) / 7.1e11 < 0.01, `counted ${f.counted}`);
  assert.ok(Math.abs(f.needed - 4.8e11) / 4.8e11 < 0.01, `needed ${f.needed}`);
  assert.throws(() => flops.mlpTrainingFlops([784], 1), /at least input and output/);
  assert.equal(flops.trainingFlops(1000, 50), 150000);
  assert.throws(() => flops.trainingFlops(-1, 1), /≥ 0/);
});

test('matMulThroughput measures a positive GFLOP/s with every sample', async () => {
  await useBackend('wasm');
  const r = await flops.matMulThroughput(64, 32, 16, { transposeB: true, repeats: 3, warmup: 1 });
  assert.equal(r.timing.samples.length, 3);
  assert.ok(r.gflops > 0 && Number.isFinite(r.gflops));
  // The rates come from the samples: the median repeat for gflops, the fastest for gflopsBest.
  const f = flops.matMulFlops(64, 32, 16);
  const [fastest, middle] = [...r.timing.samples].sort((a, b) => a - b);
  assert.ok(Math.abs(r.gflops - f / middle / 1e9) <= 1e-9 * r.gflops, `gflops ${r.gflops} is not ${f} FLOP / median ${middle} s`);
  assert.ok(Math.abs(r.gflopsBest - f / fastest / 1e9) <= 1e-9 * r.gflopsBest, `gflopsBest ${r.gflopsBest} is not ${f} FLOP / fastest ${fastest} s`);
  assert.equal(r.transposeB, true);
  const peak = await flops.peakMatMul({ sizes: [64, 128], repeats: 2 });
  assert.ok([64, 128].includes(peak.m));
});
