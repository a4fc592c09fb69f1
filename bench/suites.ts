/**
 * The measurements of `npm run bench`, each returning Result records (lib/results) plus the rows
 * of the printed GFLOP/s table. Everything runs on the current backend through lib/timing's
 * discipline (warm-up, device sync, every sample kept).
 */
import * as tf from '@tensorflow/tfjs';
import * as data from '../lib/data';
import * as device from '../lib/backends';
import * as env from '../lib/env';
import * as experiments from '../lib/experiments';
import * as flops from '../lib/flops';
import * as results from '../lib/results';
import * as timing from '../lib/timing';
import * as train from '../lib/train';
import { MiB } from '../lib/units';
import * as wasmFast from '../lib/backends/wasm-fast';

type Result = results.Result;
type ParamValue = results.ParamValue;

/** One line of the printed table. */
export interface TableRow {
  experiment: string;
  variant: string;
  /** Median seconds of the timed unit (see `unit`). */
  median: number;
  unit: string;
  /** Achieved GFLOP/s (3× forward convention for training), or null. */
  gflops: number | null;
  note: string;
}

/** What a suite returns. */
export interface SuiteOutput {
  results: Result[];
  rows: TableRow[];
}

/** Context shared by the suites. */
export interface BenchContext {
  ds: data.FashionMnist;
  quick: boolean;
}

/** A Result record from timing samples on the current backend (with the samples' spread). */
export function result(
  what: { experiment: string; variant: string; params?: Record<string, ParamValue>; extra?: Record<string, ParamValue>; metric?: string },
  samples: number[],
  ds: data.FashionMnist | null,
): Result {
  const t: timing.Timing = { ...timing.summarize(samples), device: device.describeDevice() };
  const r = results.resultFromTiming({ ...what, dataset: ds?.source ?? 'none', extra: { ...what.extra, spread: (t.max - t.min) / t.median } }, t);
  if (what.metric) r.metric = what.metric;
  return r;
}

/** The pure-JS cpu backend or a software GPU adapter: runs are projected from a few batches there. */
export function slowBackend(): boolean {
  const info = device.describeDevice();
  return tf.getBackend() === 'cpu' || info.software;
}

/** The backend's peak fp32 matmul (square products). */
export async function peakSuite(label: string): Promise<{ out: SuiteOutput; peak: flops.MatMulThroughput }> {
  const peak = await flops.peakMatMul({ cpuTime: true, repeats: env.pick(10, 6), sizes: tf.getBackend() === 'cpu' ? [256] : [1024, 512] });
  const r = result(
    { experiment: 'matmul-peak', variant: `${peak.m}x${peak.k}x${peak.n} (${label})`, params: { m: peak.m, k: peak.k, n: peak.n }, extra: { gflopsMedian: peak.gflops, gflopsBest: peak.gflopsBest, gflopsPerCpuSecond: peak.gflopsPerCpuSecond } },
    peak.timing.samples,
    null,
  );
  return {
    peak,
    out: {
      results: [r],
      rows: [{ experiment: 'matmul peak', variant: `${peak.m}³ fp32, ${label}`, median: peak.timing.median, unit: 's/matmul', gflops: peak.gflopsBest, note: `fastest of ${peak.timing.samples.length} repeats (median ${peak.gflops.toFixed(1)}; ${peak.gflopsPerCpuSecond?.toFixed(1)} per CPU-second)` }],
    },
  };
}

/** One matmul of a training step: its name, shape and transposes. */
export interface MatMulShape { op: string; m: number; k: number; n: number; tA: boolean; tB: boolean }

/**
 * The same matmuls timed with a backend's stock kernels and then with gpulab's overrides
 * (`kernels.install`/`uninstall`), on the current backend; the overrides are installed again
 * at the end whatever happens.
 */
export async function matMulKernelSuite(experiment: string, shapes: MatMulShape[], kernels: { stock: string; fast: string; install: () => void; uninstall: () => void }, repeats: number): Promise<SuiteOutput> {
  const out: SuiteOutput = { results: [], rows: [] };
  try {
    for (const fast of [false, true]) {
      if (fast) kernels.install();
      else kernels.uninstall();
      const label = fast ? kernels.fast : kernels.stock;
      for (const s of shapes) {
        const r = await flops.matMulThroughput(s.m, s.k, s.n, { transposeA: s.tA, transposeB: s.tB, repeats });
        out.results.push(result({ experiment, variant: `${label}: ${s.op}`, params: { m: s.m, k: s.k, n: s.n, transposeA: s.tA, transposeB: s.tB, kernels: label }, extra: { gflops: r.gflops } }, r.timing.samples, null));
        out.rows.push({ experiment: experiment.replace('-', ' '), variant: `${label}: ${s.op}`, median: r.timing.median, unit: 's/matmul', gflops: r.gflops, note: `${s.m}×${s.k}·${s.k}×${s.n}` });
      }
    }
  } finally {
    kernels.install();
  }
  return out;
}

/** wasm only: the seed MLP's three first-layer matmuls with the stock kernels and with gpulab's overrides. */
export async function wasmKernelSuite(_ctx: BenchContext): Promise<SuiteOutput> {
  return matMulKernelSuite('wasm-matmul', [
    { op: 'forward x·W', m: 100, k: 784, n: 500, tA: false, tB: false },
    { op: 'weight grad xT·dy', m: 784, k: 100, n: 500, tA: true, tB: false },
    { op: 'input grad dy·WT', m: 100, k: 500, n: 784, tA: false, tB: true },
  ], { stock: 'stock', fast: 'gpulab', install: wasmFast.installFastKernels, uninstall: wasmFast.uninstallFastKernels }, env.pick(10, 3));
}

/** Per-epoch wall seconds of a seed run (every epoch ran the same number of batches). */
function epochSamples(run: train.TrainResult): number[] {
  return run.epochs.map((e) => e.seconds);
}

/**
 * The seed experiment (SimpleNN, SGD momentum, batch 100, 5 epochs) through the custom loop
 * (preloaded batches) and through model.fit, one epoch of each in turn so both see the same
 * machine load. Full mode trains on all 60,000 images, except on the pure-JS cpu backend and on
 * software GPUs, where a few batches per epoch are projected to the full set.
 */
export async function seedSuite(ctx: BenchContext): Promise<SuiteOutput & { fitOverLoop: number; loopProjected: number; fitProjected: number; loopGflops: number; loopGflopsPerCpuSecond: number }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const slow = slowBackend();
  const maxSamples = slow ? env.pick(300, 100) : env.pick<number | undefined>(undefined, 2000);
  const r = await experiments.loopVsFit(ctx.ds.train, { epochs: 5, maxSamples });
  const scale = ctx.ds.train.count / r.samplesPerEpoch;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const loopSeconds = sum(r.loopEpochSeconds);
  const fitSeconds = sum(r.fitEpochSeconds);
  const counted = 5 * r.flopsPerEpoch.counted;
  const needed = 5 * r.flopsPerEpoch.needed;
  const loopGflops = counted / loopSeconds / 1e9;
  const fitGflops = counted / fitSeconds / 1e9;
  const loopCpuRate = counted / r.loopCpuSeconds / 1e9;
  const how = r.partial ? `projected from ${r.samplesPerEpoch / 100} batches/epoch` : 'all 5 epochs measured';
  const common = { epochs: 5, batchSize: 100, samplesPerEpoch: r.samplesPerEpoch, interleaved: true };
  out.results.push(result({
    experiment: 'seed-mlp', variant: 'custom-loop', params: { ...common, pipeline: 'preloaded' },
    extra: { fiveEpochSeconds: loopSeconds * scale, partial: r.partial, gflopsCounted: loopGflops, gflopsNeeded: needed / loopSeconds / 1e9, cpuSeconds: r.loopCpuSeconds, gflopsPerCpuSecond: loopCpuRate, finalLoss: r.loopFinalLoss },
  }, r.loopEpochSeconds, ctx.ds));
  out.rows.push({ experiment: 'seed 5 epochs', variant: 'custom loop', median: loopSeconds * scale, unit: 's/5 epochs', gflops: loopGflops, note: `${how}; needed-FLOP rate ${(needed / loopSeconds / 1e9).toFixed(1)}; ${loopCpuRate.toFixed(1)} GFLOP per CPU-second` });
  out.results.push(result({
    experiment: 'seed-mlp', variant: 'model.fit', params: common,
    extra: { fiveEpochSeconds: fitSeconds * scale, partial: r.partial, gflopsCounted: fitGflops, cpuSeconds: r.fitCpuSeconds, gflopsPerCpuSecond: counted / r.fitCpuSeconds / 1e9, fitOverLoopMedian: r.medianRatio, finalLoss: r.fitFinalLoss },
  }, r.fitEpochSeconds, ctx.ds));
  out.rows.push({ experiment: 'seed 5 epochs', variant: 'model.fit', median: fitSeconds * scale, unit: 's/5 epochs', gflops: fitGflops, note: `${how}; ${r.medianRatio.toFixed(2)}× the loop (median of per-epoch ratios ${r.ratios.map((x) => x.toFixed(2)).join(', ')})` });
  return { ...out, fitOverLoop: r.medianRatio, loopProjected: loopSeconds * scale, fitProjected: fitSeconds * scale, loopGflops, loopGflopsPerCpuSecond: loopCpuRate };
}

/** wasm only: the seed experiment with tfjs's stock kernels ("before"), projected from a subset. */
export async function wasmBeforeSuite(ctx: BenchContext): Promise<SuiteOutput & { loopProjected: number; loopGflops: number; fitProjected: number }> {
  const out: SuiteOutput = { results: [], rows: [] };
  wasmFast.uninstallFastKernels();
  try {
    const loop = await experiments.seedRun(ctx.ds.train, { pipeline: 'preloaded', epochs: 5, maxBatchesPerEpoch: env.pick(20, 3), warmupBatches: 2 });
    out.results.push(result({
      experiment: 'seed-mlp', variant: 'custom-loop, stock wasm kernels',
      params: { epochs: 5, batchSize: 100, batchesPerEpoch: loop.epochs[0].batches, kernels: 'stock' },
      extra: { fiveEpochSeconds: loop.projectedSeconds, partial: true, gflopsCounted: loop.gflopsCounted },
    }, epochSamples(loop), ctx.ds));
    out.rows.push({ experiment: 'seed 5 epochs', variant: 'custom loop, stock kernels', median: loop.projectedSeconds, unit: 's/5 epochs', gflops: loop.gflopsCounted, note: `before the fix; projected from ${loop.batches} batches` });
    const samples = env.pick(3000, 300);
    const fit = await experiments.fitRun(ctx.ds.train, { epochs: 1, maxSamples: samples });
    out.results.push(result({
      experiment: 'seed-mlp', variant: 'model.fit, stock wasm kernels',
      params: { epochs: 1, batchSize: 100, samplesPerEpoch: samples, kernels: 'stock' },
      extra: { fiveEpochSeconds: fit.projectedSeconds * 5, partial: true, gflopsCounted: fit.gflopsCounted },
    }, fit.epochSeconds, ctx.ds));
    out.rows.push({ experiment: 'seed 5 epochs', variant: 'model.fit, stock kernels', median: fit.projectedSeconds * 5, unit: 's/5 epochs', gflops: fit.gflopsCounted, note: `before the fix; projected from ${samples / 100} batches` });
    return { ...out, loopProjected: loop.projectedSeconds, loopGflops: loop.gflopsCounted, fitProjected: fit.projectedSeconds * 5 };
  } finally {
    wasmFast.installFastKernels();
  }
}

/** wasm only: the seed experiment with 2 worker threads against 1, both projected from the same number of batches. */
export async function wasmThreadsSuite(ctx: BenchContext): Promise<SuiteOutput & { oneThread: number; twoThreads: number; threads: number | null }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const secs: Record<number, number> = {};
  let got: number | null = null;
  const original = wasmFast.wasmThreadsCount() ?? 1;
  try {
    for (const threads of [1, 2]) {
      await wasmFast.enableWasmThreads(threads);
      await device.useBackend('wasm');
      const actual = wasmFast.wasmThreadsCount();
      if (threads === 2) got = actual;
      const mm = await flops.matMulThroughput(1024, 1024, 1024, { repeats: env.pick(6, 3) });
      out.results.push(result({ experiment: 'wasm-threads-matmul', variant: `${actual} wasm thread(s)`, params: { m: 1024, k: 1024, n: 1024, threads: actual }, extra: { gflops: mm.gflops, gflopsBest: mm.gflopsBest } }, mm.timing.samples, null));
      out.rows.push({ experiment: 'wasm matmul', variant: `1024³, ${actual} wasm thread(s)`, median: mm.timing.median, unit: 's/matmul', gflops: mm.gflopsBest, note: `fastest repeat (median ${mm.gflops.toFixed(1)}); % is of the default 1-thread peak` });
      const run = await experiments.seedRun(ctx.ds.train, { pipeline: 'preloaded', epochs: 5, maxBatchesPerEpoch: env.pick(60, 4), warmupBatches: 2 });
      secs[threads] = run.projectedSeconds;
      out.results.push(result({
        experiment: 'seed-mlp', variant: `custom-loop, ${actual} wasm thread(s)`,
        params: { epochs: 5, batchSize: 100, batchesPerEpoch: run.epochs[0].batches, threads: actual },
        extra: { fiveEpochSeconds: run.projectedSeconds, partial: true, gflopsCounted: run.gflopsCounted },
      }, epochSamples(run), ctx.ds));
      out.rows.push({ experiment: 'seed 5 epochs', variant: `custom loop, ${actual} wasm thread(s)`, median: run.projectedSeconds, unit: 's/5 epochs', gflops: run.gflopsCounted, note: `projected from ${run.batches} batches` });
    }
  } finally {
    await wasmFast.enableWasmThreads(original);
    await device.useBackend('wasm');
  }
  return { ...out, oneThread: secs[1], twoThreads: secs[2], threads: got };
}

/** Training throughput of SimpleNN over batch sizes ≈1..4096 (compute only, preloaded batches). */
export async function batchSweepSuite(ctx: BenchContext): Promise<SuiteOutput> {
  const out: SuiteOutput = { results: [], rows: [] };
  const cpu = slowBackend();
  const sizes = cpu ? env.pick([1, 16, 256, 1024], [1, 64]) : env.pick([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096], [1, 16, 256, 4096]);
  for (const b of sizes) {
    const p = await experiments.trainingThroughput(ctx.ds.train, { batchSize: b, samplesPerRepeat: Math.max(b, cpu ? 64 : env.pick(2048, 256)), repeats: env.pick(3, 2) });
    out.results.push(result({
      experiment: 'batch-sweep', variant: `batch ${b}`,
      params: { batchSize: b, steps: p.steps, hidden: 500 },
      extra: { samplesPerSecond: p.samplesPerSecond, secondsPerEpochDerived: p.secondsPerEpoch, gflops: p.gflops, stepBytes: p.stepBytes },
    }, p.timing.samples, ctx.ds));
    out.rows.push({ experiment: 'batch sweep', variant: `batch ${b}`, median: p.timing.median / p.steps, unit: 's/step', gflops: p.gflops, note: `${p.samplesPerSecond.toFixed(0)} samples/s, step memory ${(p.stepBytes / MiB).toFixed(1)} MiB` });
  }
  return out;
}
