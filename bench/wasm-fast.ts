/**
 * Microbenchmark of the wasm matmul fix alone (lib/backends/wasm-fast.ts): the seed MLP's first-layer matmuls
 * and the seed experiment, each with tfjs's stock wasm kernels and with gpulab's overrides.
 * (`npm run bench` runs the same suites among the others.)
 *
 *   node --import tsx bench/wasm-fast.ts            (GPULAB_QUICK=1 for a short run)
 */
import * as data from '../lib/data';
import * as device from '../lib/backends';
import * as env from '../lib/env';
import * as nb from '../lib/notebook';
import * as suites from './suites';

async function main(): Promise<void> {
  const info = await device.useBackend('wasm');
  if (info.backend !== 'wasm') throw new Error(`bench/wasm-fast.ts needs the wasm backend: ${info.fallbackNote ?? ''}`);
  console.log(`${device.deviceLabel(info)} · ${env.modeLabel()}`);
  const ctx: suites.BenchContext = { ds: await data.loadFashionMnist(), quick: env.isQuick() };
  const kernels = await suites.wasmKernelSuite(ctx);
  const before = await suites.wasmBeforeSuite(ctx);
  const after = await suites.seedSuite(ctx);
  const rows = [...kernels.rows, ...before.rows, ...after.rows];
  console.log(nb.textTable(rows.map((r) => ({ experiment: r.experiment, variant: r.variant, median: r.median, unit: r.unit, 'GFLOP/s': r.gflops ?? '', note: r.note })), { digits: 3 }));
  console.log(`custom loop: ${before.loopProjected.toFixed(0)} s → ${after.loopProjected.toFixed(1)} s; model.fit: ${before.fitProjected.toFixed(0)} s → ${after.fitProjected.toFixed(1)} s (5 epochs)`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
