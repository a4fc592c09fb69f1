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
import * as roofline from '../lib/roofline';
import * as timing from '../lib/timing';
import * as train from '../lib/train';
import { MiB } from '../lib/units';
import * as wasmFast from '../lib/backends/wasm-fast';
import * as kernelSets from '../lib/backends/kernel-sets';

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
  /** The backend the row ran on, when not the bench's own (its % of peak is then of that backend's ceiling). */
  backend?: string;
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

/** The measured ceiling of {@link peakSuite}: the best matmul rate found, its shape, and its rate per CPU-second. */
export interface Peak {
  backend: string;
  /** GFLOP/s of the fastest repeat of the best shape (the ceiling). */
  gflopsBest: number;
  /** `m×k·k×n` of that shape. */
  shape: string;
  /** GFLOP per CPU-second of the process on that shape (what a dedicated core would do on a shared machine). */
  gflopsPerCpuSecond: number | null;
}

/**
 * The backend's matmul ceiling, MAMF-style (`roofline.matmulCeiling`: a search over shapes, the
 * best fastest repeat), then that shape once more with CPU time.
 */
export async function peakSuite(label: string): Promise<{ out: SuiteOutput; peak: Peak }> {
  const ceiling = await roofline.matmulCeiling();
  const { m, k, n } = ceiling.shape;
  const cpu = await flops.matMulThroughput(m, k, n, { cpuTime: true, repeats: env.pick(6, 3) });
  const r = result(
    { experiment: 'matmul-peak', variant: `${ceiling.shapeLabel} (${label})`, params: { m, k, n, backend: ceiling.backend }, extra: { gflopsMedian: ceiling.gflopsMedian, gflopsBest: ceiling.gflops, gflopsPerCpuSecond: cpu.gflopsPerCpuSecond, shapesTried: ceiling.tried.length } },
    ceiling.timing.samples,
    null,
  );
  return {
    peak: { backend: ceiling.backend, gflopsBest: ceiling.gflops, shape: ceiling.shapeLabel, gflopsPerCpuSecond: cpu.gflopsPerCpuSecond },
    out: {
      results: [r],
      rows: [{ experiment: 'matmul ceiling', variant: `${ceiling.shapeLabel} fp32, ${label}`, median: ceiling.timing.median, unit: 's/matmul', gflops: ceiling.gflops, backend: ceiling.backend, note: `best of ${ceiling.tried.length} shapes, fastest repeat (median ${ceiling.gflopsMedian.toFixed(1)}; ${cpu.gflopsPerCpuSecond?.toFixed(1)} per CPU-second)` }],
    },
  };
}

/** One matmul of a training step: its name, shape and transposes. */
export interface MatMulShape { op: string; m: number; k: number; n: number; tA: boolean; tB: boolean }

/**
 * The same matmuls timed with a backend's stock kernels and then with gpulab's overrides (the
 * backend's `kernelSets.KernelSet`), on the current backend; the set's earlier state comes back
 * at the end whatever happens. `labels` name the two sides in the table.
 */
export async function matMulKernelSuite(experiment: string, shapes: MatMulShape[], set: kernelSets.KernelSet, labels: { stock: string; fast: string }, repeats: number): Promise<SuiteOutput> {
  const out: SuiteOutput = { results: [], rows: [] };
  for (const fast of [false, true]) {
    await kernelSets.withKernels(fast ? set : null, [set], async () => {
      const label = fast ? labels.fast : labels.stock;
      const backend = tf.getBackend();
      for (const s of shapes) {
        const r = await flops.matMulThroughput(s.m, s.k, s.n, { transposeA: s.tA, transposeB: s.tB, repeats });
        out.results.push(result({ experiment, variant: `${label}: ${s.op}`, params: { m: s.m, k: s.k, n: s.n, transposeA: s.tA, transposeB: s.tB, kernels: label, backend }, extra: { gflops: r.gflops } }, r.timing.samples, null));
        out.rows.push({ experiment: experiment.replace('-', ' '), variant: `${label}: ${s.op}`, median: r.timing.median, unit: 's/matmul', gflops: r.gflops, backend, note: `${s.m}×${s.k}·${s.k}×${s.n}` });
      }
    });
  }
  return out;
}

/** wasm only: the seed MLP's three first-layer matmuls with the stock kernels and with gpulab's overrides. */
export async function wasmKernelSuite(_ctx: BenchContext): Promise<SuiteOutput> {
  return matMulKernelSuite('wasm-matmul', [
    { op: 'forward x·W', m: 100, k: 784, n: 500, tA: false, tB: false },
    { op: 'weight grad xT·dy', m: 784, k: 100, n: 500, tA: true, tB: false },
    { op: 'input grad dy·WT', m: 100, k: 500, n: 784, tA: false, tB: true },
  ], kernelSets.wasm, { stock: 'stock', fast: 'gpulab' }, env.pick(10, 3));
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

/**
 * On `backend` (wasm or tensorflow): the seed training with tfjs's stock kernels and with gpulab's
 * overrides, custom loop and model.fit, then the custom loop with the fused step
 * (`experiments.compareTraining` over `experiments.kernelSetVariants`: one epoch of each variant
 * in turn on a subset, projected to 5 epochs over the whole set).
 */
export async function kernelComparisonSuite(ctx: BenchContext, backend: 'wasm' | 'tensorflow'): Promise<SuiteOutput & { projected: Record<string, number> }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const set = kernelSets.forBackend(backend)!;
  const maxSamples = backend === 'wasm' ? env.pick(3000, 300) : env.pick(12000, 500);
  const r = await device.withBackend(backend, () => experiments.compareTraining(ctx.ds.train, { epochs: 3, maxSamples, variants: experiments.kernelSetVariants(set) }));
  const batches = (r.epochs * r.samplesPerEpoch) / 100;
  for (const row of r.rows) {
    out.results.push(result({
      experiment: 'seed-mlp-kernels', variant: `${backend}: ${row.label}`,
      params: { backend, epochs: r.epochs, samplesPerEpoch: r.samplesPerEpoch, batchSize: 100, kernels: row.kernels, path: row.path, step: row.step, interleaved: true },
      extra: { fiveEpochSeconds: row.projectedSeconds, partial: r.partial, gflopsCounted: row.gflopsCounted, finalLoss: row.finalLoss },
    }, row.epochSeconds, ctx.ds));
    out.rows.push({ experiment: `${backend} kernels × step`, variant: row.label, median: row.projectedSeconds, unit: 's/5 epochs', gflops: row.gflopsCounted, backend, note: `${row.step} step; projected from ${batches} batches, variants in turn` });
  }
  return { ...out, projected: Object.fromEntries(r.rows.map((x) => [x.label, x.projectedSeconds])) };
}

/** The kernels of one seed training step, tfjs's stock step against the fused one, on each backend given. */
export async function stepKernelsSuite(ctx: BenchContext, backends: readonly string[]): Promise<SuiteOutput & { counts: Record<string, experiments.SeedStepKernels> }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const counts: Record<string, experiments.SeedStepKernels> = {};
  for (const b of backends) {
    const k = await device.withBackend(b as device.BackendName, () => experiments.seedStepKernels(ctx.ds.train));
    counts[b] = k;
    for (const [kind, c] of [['stock', k.stock], ['fused', k.fused]] as const) {
      const tfOps = c.tensorflow ? `; ${c.tensorflow.total} TensorFlow ops, ${c.tensorflow.uploads} uploads` : '';
      out.results.push(result({ experiment: 'seed-step-kernels', variant: `${b}, ${kind} step`, metric: 'kernels', params: { backend: b, batchSize: 100, step: kind }, extra: { kernels: c.total, ...(c.tensorflow ? { tensorflowOps: c.tensorflow.total } : {}) } }, [c.total], ctx.ds));
      out.rows.push({ experiment: 'kernels per seed step', variant: `${b}, ${kind} step`, median: c.total, unit: 'kernels', gflops: null, backend: b, note: `kernel timeline (monitor.recordTrace)${tfOps}` });
    }
  }
  return { ...out, counts };
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
