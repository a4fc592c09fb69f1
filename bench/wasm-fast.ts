/**
 * Microbenchmark of the wasm matmul fix (lib/wasm-fast): the three matmuls of the seed MLP's
 * first layer (forward, weight gradient, input gradient) and `model.fit` on random data, each
 * with the stock tfjs-backend-wasm kernels and with the overrides.
 *
 *   node --import tsx bench/wasm-fast.ts            (GPULAB_QUICK=1 for a short run)
 */
import * as tf from '@tensorflow/tfjs';
import { device, env, flops, nb, timing, wasmFast } from '../lib/index';

async function fitSecondsPerBatch(batches: number): Promise<timing.Timing> {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [784], units: 500, activation: 'relu' }), tf.layers.dense({ units: 10 })],
  });
  model.compile({ optimizer: tf.train.momentum(0.001, 0.9), loss: 'categoricalCrossentropy' });
  const xs = tf.randomUniform([100 * batches, 784], -1, 1, 'float32', 1);
  const ys = tf.oneHot(tf.randomUniform([100 * batches], 0, 10, 'int32', 2), 10);
  const t = await timing.benchmark(async () => {
    await model.fit(xs, ys, { batchSize: 100, epochs: 1, verbose: 0 });
  }, { warmup: 1, repeats: env.pick(3, 1) });
  tf.dispose([xs, ys]);
  model.dispose();
  return { ...t, samples: t.samples.map((s) => s / batches), median: t.median / batches, min: t.min / batches, max: t.max / batches, mean: t.mean / batches };
}

async function main(): Promise<void> {
  const info = await device.useBackend('wasm');
  console.log(`backend: ${device.deviceLabel(info)}, threads ${wasmFast.wasmThreadsCount()}, ${env.modeLabel()}`);
  const shapes = [
    { what: 'forward x·W', m: 100, k: 784, n: 500, tA: false, tB: false },
    { what: 'weight grad xᵀ·dy', m: 784, k: 100, n: 500, tA: true, tB: false },
    { what: 'input grad dy·Wᵀ', m: 100, k: 500, n: 784, tA: false, tB: true },
  ];
  const rows: Record<string, string | number>[] = [];
  for (const fast of [false, true]) {
    if (fast) wasmFast.installFastKernels();
    else wasmFast.uninstallFastKernels();
    for (const s of shapes) {
      const r = await flops.matMulThroughput(s.m, s.k, s.n, { transposeA: s.tA, transposeB: s.tB });
      rows.push({ kernel: fast ? 'gpulab override' : 'stock', op: s.what, ms: r.timing.median * 1e3, gflops: r.gflops });
    }
    const batches = env.pick(20, 5);
    const f = await fitSecondsPerBatch(batches);
    rows.push({ kernel: fast ? 'gpulab override' : 'stock', op: `model.fit, s/batch (×3000 = 5 epochs: ${(f.median * 3000).toFixed(0)} s)`, ms: f.median * 1e3, gflops: flops.mlpTrainingFlops([784, 500, 10], 100).counted / f.median / 1e9 });
  }
  console.log(nb.textTable(rows, { digits: 3 }));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
