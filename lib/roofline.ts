/**
 * Where the time goes: compute, memory bandwidth or overhead. The machine's ceilings, measured
 * on the current backend; each kernel placed against them; and MFU, achieved FLOP/s as a share
 * of the measured matmul ceiling.
 *
 * ```ts
 * const c = await roofline.measureCeilings();     // matmul GFLOP/s (shape search), GB/s, per-op µs, ridge
 * roofline.mfu({ flops: 7.1e11, seconds: 13.8 }, c).text
 * // '51.4 GFLOP/s = 30 % of the 174 GFLOP/s matmul ceiling (tensorflow, 1024×1024·1024×1024)'
 * const points = roofline.kernelPoints(trace, c); // every kernel of a traced step, with its regime
 * roofline.kernelTable(points);                   // kernel, calls per step, ms, share, regime
 * ```
 *
 * The three limits (after Horace He, "Making Deep Learning Go Brrrr From First Principles"):
 * - **compute**: the arithmetic itself, at the best matmul rate this backend reaches (searched
 *   over shapes, as Stas Bekman's MAMF finder does, not a datasheet peak);
 * - **memory bandwidth**: moving bytes, at the rate of a large elementwise op;
 * - **overhead**: the fixed cost of one kernel call (dispatch from JavaScript, bookkeeping),
 *   measured as the time per tiny op in a long chain of them.
 * The ridge point (FLOP/s ÷ bytes/s) separates kernels that can be compute-bound from those that
 * cannot.
 */
import * as tf from '@tensorflow/tfjs';
import { deviceLabel } from './backends/device';
import { benchmark, benchmarkWithin, isSynchronousBackend, settle, tinyOpChain, type Syncable, type Timing } from './timing';
import { kernelCost, searchMatMul, type KernelCost, type KernelKind, type MatMulShape } from './flops';
import { kernelVariant, shapeText } from './monitor/profile';
import { batchIterator } from './monitor/pipeline';
import { kernelsByPhase, recordTrace, spanSeconds, topLevelKernels, traceSteps, type KernelSpan, type Trace, type TraceBatch, type TraceOptions } from './monitor/trace';
import { isQuick } from './env';
import { type Row } from './charts';

// ---------------------------------------------------------------------------------------------
// The ceilings
// ---------------------------------------------------------------------------------------------

/** `m×k·k×n` as text. */
export function shapeLabel(s: MatMulShape): string {
  return `${s.m}×${s.k}·${s.k}×${s.n}`;
}

/** The best matmul rate found on a backend, and the shape that gave it. */
export interface MatmulCeiling {
  backend: string;
  /** `device.deviceLabel()` of the backend that ran it. */
  device: string;
  /** GFLOP/s of the fastest repeat of the best shape: the ceiling. */
  gflops: number;
  /** GFLOP/s of the median repeat of the same shape. */
  gflopsMedian: number;
  shape: MatMulShape;
  /** `m×k·k×n`. */
  shapeLabel: string;
  /** Every shape timed: its label, best-repeat and median GFLOP/s. */
  tried: { shape: string; gflops: number; gflopsMedian: number }[];
  /** Shapes left out, with why (over the time budget). */
  skipped: { shape: string; reason: string }[];
  timing: Timing;
}

/** The memory bandwidth a large elementwise op reaches. */
export interface BandwidthCeiling {
  backend: string;
  device: string;
  /** GB/s (10⁹ bytes, read + written) of the fastest repeat: the ceiling. */
  gbPerSecond: number;
  /** GB/s of the median repeat. */
  gbPerSecondMedian: number;
  /** What was timed, e.g. `add of two 16,777,216-element float32 tensors`. */
  op: string;
  elements: number;
  /** Bytes read + written by one op. */
  bytesPerOp: number;
  /** Ops per timed run (the device is synced once per run). */
  opsPerRun: number;
  timing: Timing;
}

/** The fixed cost of one kernel call. */
export interface OverheadCeiling {
  backend: string;
  device: string;
  /**
   * Seconds per tiny op inside a chain of them (fastest run ÷ chain length): the per-op overhead.
   * The fastest run, as for the other ceilings: on a shared machine it is the least disturbed.
   */
  perOpSeconds: number;
  /** The same from the median run. */
  perOpSecondsMedian: number;
  /** Seconds of one tiny op followed by reading its result back (fastest repeat): the latency a single synced call sees. */
  syncedSeconds: number;
  op: string;
  /** Ops in the chain. */
  chain: number;
  /** Anything about how it was measured on this backend, or ''. */
  note: string;
  timing: Timing;
  syncedTiming: Timing;
}

/** The three measured ceilings of a backend and its ridge point. */
export interface Ceilings {
  backend: string;
  device: string;
  matmul: MatmulCeiling;
  bandwidth: BandwidthCeiling;
  overhead: OverheadCeiling;
  /** matmul FLOP/s ÷ bandwidth bytes/s: kernels with fewer FLOPs per byte cannot reach the matmul ceiling. */
  ridgeFlopsPerByte: number;
  quick: boolean;
  /** ISO time of the measurement. */
  at: string;
}

/**
 * The matmul shapes {@link matmulCeiling} searches by default: squares from 256 to 4096 and a few
 * rectangles (quick mode: squares to 1024); on the pure-JS cpu backend, squares from 64 to 512.
 * The time budget stops the search before shapes that would take too long on a slow backend.
 */
export function defaultMatmulShapes(backend: string = tf.getBackend(), quick = isQuick()): MatMulShape[] {
  const sq = (s: number) => ({ m: s, k: s, n: s });
  if (backend === 'cpu') return (quick ? [64, 128, 256] : [64, 128, 256, 512]).map(sq);
  if (quick) return [256, 512, 1024].map(sq);
  return [...[256, 512, 1024, 2048, 4096].map(sq), { m: 4096, k: 1024, n: 1024 }, { m: 1024, k: 4096, n: 1024 }, { m: 2048, k: 512, n: 2048 }];
}

/** Options of {@link matmulCeiling}. */
export interface MatmulCeilingOptions {
  /** Shapes to search (default {@link defaultMatmulShapes}). */
  shapes?: readonly MatMulShape[];
  repeats?: number;
  warmup?: number;
  /** Skip shapes estimated to take longer than this, in seconds (default 3; quick 1). */
  budgetSeconds?: number;
}

/**
 * The achievable fp32 matmul rate on the current backend, MAMF-style: search a set of shapes
 * ({@link defaultMatmulShapes}) through `flops.searchMatMul` (warm-up, sync, repeats) and report
 * the best fastest-repeat rate and its shape.
 */
export async function matmulCeiling(options: MatmulCeilingOptions = {}): Promise<MatmulCeiling> {
  const quick = isQuick();
  const s = await searchMatMul(options.shapes ?? defaultMatmulShapes(), {
    repeats: options.repeats ?? (quick ? 3 : 5),
    warmup: options.warmup ?? 1,
    budgetSeconds: options.budgetSeconds ?? (quick ? 1 : 3),
  });
  const b = s.best;
  return {
    backend: tf.getBackend(),
    device: deviceLabel(),
    gflops: b.gflopsBest,
    gflopsMedian: b.gflops,
    shape: { m: b.m, k: b.k, n: b.n },
    shapeLabel: shapeLabel(b),
    tried: s.tried.map((t) => ({ shape: shapeLabel(t), gflops: t.gflopsBest, gflopsMedian: t.gflops })),
    skipped: s.skipped.map((x) => ({ shape: shapeLabel(x.shape), reason: x.reason })),
    timing: b.timing,
  };
}

/** Options of {@link bandwidthCeiling}. */
export interface BandwidthOptions {
  /** Elements of each operand (default 2²⁴ = 64 MiB of float32; quick 2²²; cpu backend 2²²). */
  elements?: number;
  /** Ops per timed run (default 4). */
  opsPerRun?: number;
  repeats?: number;
  warmup?: number;
}

/**
 * Memory bandwidth on the current backend: `a + b` on two large float32 tensors, which reads two
 * and writes one (12 bytes per element) and does one FLOP per 12 bytes, far below any ridge
 * point: its time is the time to move the bytes. Each timed run does `opsPerRun` adds, then
 * waits for the device without reading the result back (`timing.settle`).
 */
export async function bandwidthCeiling(options: BandwidthOptions = {}): Promise<BandwidthCeiling> {
  const quick = isQuick();
  const elements = options.elements ?? (quick || tf.getBackend() === 'cpu' ? 2 ** 22 : 2 ** 24);
  const opsPerRun = options.opsPerRun ?? 4;
  if (!Number.isInteger(elements) || elements < 1) throw new Error(`bandwidthCeiling: elements must be a positive integer, got ${elements}`);
  const a = tf.randomUniform([elements], -1, 1, 'float32', 3);
  const b = tf.randomUniform([elements], -1, 1, 'float32', 4);
  try {
    const timing = await benchmark(async () => {
      let out: tf.Tensor | null = null;
      for (let i = 0; i < opsPerRun; i++) {
        const next = tf.add(a, b);
        out?.dispose();
        out = next;
      }
      await settle(out as tf.Tensor);
      (out as tf.Tensor).dispose();
    }, { warmup: options.warmup ?? 1, repeats: options.repeats ?? (quick ? 3 : 5) });
    const bytesPerOp = 3 * 4 * elements;
    const rate = (s: number) => (bytesPerOp * opsPerRun) / s / 1e9;
    return {
      backend: tf.getBackend(),
      device: deviceLabel(),
      gbPerSecond: rate(timing.min),
      gbPerSecondMedian: rate(timing.median),
      op: `add of two ${elements.toLocaleString('en-US')}-element float32 tensors`,
      elements,
      bytesPerOp,
      opsPerRun,
      timing,
    };
  } finally {
    tf.dispose([a, b]);
  }
}

/** Options of {@link overheadCeiling}. */
export interface OverheadOptions {
  /** Tiny ops per chain (default 200; quick 100). */
  chain?: number;
  repeats?: number;
  warmup?: number;
}

/**
 * The per-op overhead on the current backend: a chain of `chain` adds of 1-element tensors,
 * each on the previous result, then one device sync; seconds per op = run time ÷ chain. The
 * arithmetic is nil, so what is left is the fixed cost of a kernel call. Also times a single
 * tiny op with its result read back (`syncedSeconds`). On WebGPU, tfjs runs ops on tiny
 * CPU-resident inputs on the CPU (`WEBGPU_CPU_FORWARD`); that flag is off during the
 * measurement so the op really is dispatched to the GPU, as it is inside a training step.
 */
export async function overheadCeiling(options: OverheadOptions = {}): Promise<OverheadCeiling> {
  const chain = options.chain ?? (isQuick() ? 100 : 200);
  const webgpu = tf.getBackend() === 'webgpu';
  const forward = webgpu ? tf.env().getBool('WEBGPU_CPU_FORWARD') : null;
  if (webgpu) tf.env().set('WEBGPU_CPU_FORWARD', false);
  const one = tf.ones([1]);
  try {
    const timing = await benchmark(() => tinyOpChain(chain), { warmup: options.warmup ?? 2, repeats: options.repeats ?? (isQuick() ? 5 : 7) });
    const syncedTiming = await benchmark(() => tf.add(one, one), { warmup: options.warmup ?? 2, repeats: options.repeats ?? (isQuick() ? 5 : 7) });
    return {
      backend: tf.getBackend(),
      device: deviceLabel(),
      perOpSeconds: timing.min / chain,
      perOpSecondsMedian: timing.median / chain,
      syncedSeconds: syncedTiming.min,
      op: `add of two 1-element tensors, ${chain} in a chain`,
      chain,
      note: webgpu ? 'WEBGPU_CPU_FORWARD was off during the measurement, so the tiny ops ran on the GPU' : '',
      timing,
      syncedTiming,
    };
  } finally {
    one.dispose();
    if (webgpu && forward !== null) tf.env().set('WEBGPU_CPU_FORWARD', forward);
  }
}

/** Options of {@link measureCeilings}. */
export interface CeilingOptions {
  matmul?: MatmulCeilingOptions;
  bandwidth?: BandwidthOptions;
  overhead?: OverheadOptions;
}

/**
 * Measure the current backend's three ceilings (matmul FLOP/s by shape search, memory
 * bandwidth, per-op overhead) and its ridge point, each through `timing.benchmark`.
 */
export async function measureCeilings(options: CeilingOptions = {}): Promise<Ceilings> {
  const overhead = await overheadCeiling(options.overhead);
  const bandwidth = await bandwidthCeiling(options.bandwidth);
  const matmul = await matmulCeiling(options.matmul);
  return {
    backend: matmul.backend,
    device: matmul.device,
    matmul,
    bandwidth,
    overhead,
    ridgeFlopsPerByte: (matmul.gflops * 1e9) / (bandwidth.gbPerSecond * 1e9),
    quick: isQuick(),
    at: new Date().toISOString(),
  };
}

/** One row per backend's ceilings, for a table. */
export function ceilingRows(all: readonly Ceilings[]): Row[] {
  return all.map((c) => ({
    backend: c.backend,
    device: c.device,
    'matmul GFLOP/s': c.matmul.gflops,
    'at shape': c.matmul.shapeLabel,
    'bandwidth GB/s': c.bandwidth.gbPerSecond,
    'per-op overhead µs': c.overhead.perOpSeconds * 1e6,
    'tiny op + read-back µs': c.overhead.syncedSeconds * 1e6,
    'ridge FLOP/byte': c.ridgeFlopsPerByte,
  }));
}

// ---------------------------------------------------------------------------------------------
// Regimes
// ---------------------------------------------------------------------------------------------

/** The three limits a kernel can hit, or `unknown` when its cost is not modelled and its time is not tiny. */
export type Regime = 'compute-bound' | 'memory-bound' | 'overhead-bound' | 'unknown';

/** The ceilings a classification needs, in plain units (build one from {@link Ceilings} with {@link roofOf}). */
export interface Roof {
  /** FLOP/s. */
  peakFlopsPerSecond: number;
  /** Bytes/s. */
  bytesPerSecond: number;
  /** Seconds of one kernel call's fixed cost. */
  overheadSeconds: number;
}

/** The {@link Roof} of measured {@link Ceilings}. */
export function roofOf(c: Ceilings): Roof {
  return { peakFlopsPerSecond: c.matmul.gflops * 1e9, bytesPerSecond: c.bandwidth.gbPerSecond * 1e9, overheadSeconds: c.overhead.perOpSeconds };
}

/** Options of {@link classify}. */
export interface ClassifyOptions {
  /** A kernel whose time is at most this many per-op overheads is overhead-bound (default 2: at least half its time is fixed cost). */
  overheadFactor?: number;
}

/** A kernel's regime, with the numbers behind it. */
export interface Classification {
  regime: Regime;
  /** The measured seconds over the per-op overhead. */
  overheads: number;
  /** FLOPs per byte, or null. */
  intensity: number | null;
  /** What the roofline allows at this intensity (min(peak, bandwidth × intensity)), FLOP/s, or null. */
  attainableFlopsPerSecond: number | null;
  /** Why, in words. */
  reason: string;
}

/**
 * Which limit a kernel call is hitting: **overhead-bound** when its measured time is within
 * `overheadFactor` × the per-op overhead (or it does no arithmetic and moves no bytes, like
 * Reshape); otherwise **memory-bound** when its arithmetic intensity is below the ridge point
 * (bandwidth caps it), **compute-bound** at or above it; **unknown** when its cost is not
 * modelled and its time is not near the overhead.
 */
export function classify(cost: Pick<KernelCost, 'flops' | 'bytes'>, seconds: number, roof: Roof, options: ClassifyOptions = {}): Classification {
  const factor = options.overheadFactor ?? 2;
  if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new Error(`classify: seconds must be a finite number ≥ 0, got ${seconds}`);
  if (!(roof.peakFlopsPerSecond > 0 && roof.bytesPerSecond > 0 && roof.overheadSeconds > 0)) throw new Error('classify: the roof needs positive peak, bandwidth and overhead');
  const overheads = seconds / roof.overheadSeconds;
  const ridge = roof.peakFlopsPerSecond / roof.bytesPerSecond;
  const intensity = cost.flops !== null && cost.bytes ? cost.flops / cost.bytes : cost.flops === 0 && cost.bytes !== null ? 0 : null;
  const attainable = intensity === null ? null : Math.min(roof.peakFlopsPerSecond, roof.bytesPerSecond * intensity);
  const base = { overheads, intensity, attainableFlopsPerSecond: attainable };
  if (cost.flops === 0 && cost.bytes === 0) return { ...base, regime: 'overhead-bound', reason: 'no arithmetic and no data moved: only the call\'s fixed cost' };
  if (overheads <= factor) return { ...base, regime: 'overhead-bound', reason: `${overheads.toFixed(1)}× the per-op overhead (≤ ${factor}×)` };
  if (intensity === null) return { ...base, regime: 'unknown', reason: 'not in the cost model, and slower than the per-op overhead' };
  if (intensity < ridge) return { ...base, regime: 'memory-bound', reason: `${intensity.toPrecision(3)} FLOP/byte, below the ridge at ${ridge.toPrecision(3)}` };
  return { ...base, regime: 'compute-bound', reason: `${intensity.toPrecision(3)} FLOP/byte, at or above the ridge at ${ridge.toPrecision(3)}` };
}

// ---------------------------------------------------------------------------------------------
// MFU: achieved FLOP/s as a share of the measured matmul ceiling
// ---------------------------------------------------------------------------------------------

/** Achieved throughput against the measured matmul ceiling. */
export interface Mfu {
  /** Achieved GFLOP/s. */
  gflops: number;
  /** The ceiling, GFLOP/s, with its backend and shape. */
  ceilingGflops: number;
  backend: string;
  shape: string;
  /** gflops / ceilingGflops × 100. */
  pct: number;
  /** One line: `12.3 GFLOP/s = 7.1 % of the 174 GFLOP/s matmul ceiling (tensorflow, 1024×1024·1024×1024)`. */
  text: string;
}

/**
 * MFU-style utilisation: achieved GFLOP/s (from `{ flops, seconds }` or `{ gflops }`) as a share
 * of the measured matmul ceiling, labelled with the ceiling's backend and shape. Throws when
 * `backend` is given and differs from the ceiling's (a share of another backend's ceiling means
 * nothing).
 */
export function mfu(achieved: { flops: number; seconds: number } | { gflops: number }, ceiling: MatmulCeiling | Ceilings, backend?: string): Mfu {
  const c = 'matmul' in ceiling ? ceiling.matmul : ceiling;
  if (backend !== undefined && backend !== c.backend) throw new Error(`mfu: the throughput was measured on '${backend}' but the ceiling on '${c.backend}'; measure the ceiling on the same backend`);
  const gflops = 'gflops' in achieved ? achieved.gflops : achieved.flops / achieved.seconds / 1e9;
  if (!Number.isFinite(gflops) || gflops < 0) throw new Error(`mfu: achieved GFLOP/s must be a finite number ≥ 0, got ${gflops}`);
  const pct = (100 * gflops) / c.gflops;
  const digits = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return {
    gflops,
    ceilingGflops: c.gflops,
    backend: c.backend,
    shape: c.shapeLabel,
    pct,
    text: `${digits(gflops)} GFLOP/s = ${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)} % of the ${digits(c.gflops)} GFLOP/s matmul ceiling (${c.backend}, ${c.shapeLabel})`,
  };
}

// ---------------------------------------------------------------------------------------------
// Kernels of a traced step on the roofline
// ---------------------------------------------------------------------------------------------

/** One kernel call of a step, placed on the roofline. */
export interface KernelPoint {
  /** Position in the step (0-based). */
  call: number;
  /** Kernel name, with the matmul layout when there is one (`BatchMatMul · transposeA`). */
  kernel: string;
  kind: KernelKind;
  /** Input shapes, e.g. `[100,784]×[784,500]`. */
  shapes: string;
  flops: number | null;
  bytes: number | null;
  intensity: number | null;
  /**
   * Seconds of this call: the fastest of the same call over the traced steps (on a shared machine
   * the least disturbed one, as for the ceilings, which are fastest repeats too).
   */
  seconds: number;
  /** Achieved GFLOP/s (null when FLOPs are unknown or zero). */
  gflops: number | null;
  regime: Regime;
  reason: string;
}

function kernelLabel(k: KernelSpan): string {
  const layout = kernelVariant(k.name, k.inputShapes, k.outputShapes);
  return layout ? `${k.name} · ${layout}` : k.name;
}

/**
 * Every kernel call of one training step, from a trace of several (`monitor.traceSteps`), with
 * its FLOPs and bytes (`flops.kernelCost`), its time (the fastest of the same call over the
 * traced steps: GPU busy time where recorded, else host self time) and its regime against
 * `ceilings`.
 * The steps must run the same kernels in the same order; if they do not, the first step's times
 * are used alone.
 */
export function kernelPoints(trace: Trace, ceilings: Ceilings | Roof, options: ClassifyOptions = {}): KernelPoint[] {
  const roof = 'matmul' in ceilings ? roofOf(ceilings) : ceilings;
  const steps = kernelsByPhase(trace, 'step');
  if (!steps.length) throw new Error('kernelPoints: the trace has no step phases (record with monitor.traceSteps or TraceRecorder.step)');
  const first = steps[0].kernels;
  const same = steps.every((s) => s.kernels.length === first.length && s.kernels.every((k, i) => k.name === first[i].name));
  const used = same ? steps : [steps[0]];
  return first.map((k, i) => {
    const cost = kernelCost(k);
    const seconds = Math.min(...used.map((s) => spanSeconds(s.kernels[i])));
    const c = classify(cost, seconds, roof, options);
    return {
      call: i,
      kernel: kernelLabel(k),
      kind: cost.kind,
      shapes: shapeText(k.inputShapes),
      flops: cost.flops,
      bytes: cost.bytes,
      intensity: cost.intensity,
      seconds,
      gflops: cost.flops && seconds > 0 ? cost.flops / seconds / 1e9 : null,
      regime: c.regime,
      reason: c.reason,
    };
  });
}

/** One row of the kernel table: a kernel (name and matmul layout) over one step. */
export interface KernelTableRow {
  kernel: string;
  /** Calls in one step. */
  calls: number;
  /** Milliseconds per step, summed over its calls. */
  ms: number;
  /** Share of the step's summed kernel time, %. */
  sharePct: number;
  /** Achieved GFLOP/s over its calls (null when it does no arithmetic or its FLOPs are unknown). */
  gflops: number | null;
  /** The regime of its calls: one name, or `mixed (2 memory-bound, 1 overhead-bound)`. */
  regime: string;
  /** The regime of most of its time. */
  mainRegime: Regime;
}

/** Group {@link KernelPoint}s by kernel: calls per step, time, share and regime, by time (descending). */
export function kernelTable(points: readonly KernelPoint[]): KernelTableRow[] {
  const total = points.reduce((a, p) => a + p.seconds, 0);
  const groups = new Map<string, KernelPoint[]>();
  for (const p of points) {
    const group = groups.get(p.kernel);
    if (group) group.push(p);
    else groups.set(p.kernel, [p]);
  }
  const rows = [...groups.entries()].map(([kernel, ps]) => {
    const seconds = ps.reduce((a, p) => a + p.seconds, 0);
    const flops = ps.every((p) => p.flops !== null) ? ps.reduce((a, p) => a + (p.flops as number), 0) : null;
    const byRegime = new Map<Regime, { n: number; s: number }>();
    for (const p of ps) {
      const r = byRegime.get(p.regime) ?? { n: 0, s: 0 };
      byRegime.set(p.regime, { n: r.n + 1, s: r.s + p.seconds });
    }
    const ordered = [...byRegime.entries()].sort((a, b) => b[1].s - a[1].s);
    return {
      kernel,
      calls: ps.length,
      ms: seconds * 1e3,
      sharePct: total > 0 ? (100 * seconds) / total : 0,
      gflops: flops && seconds > 0 ? flops / seconds / 1e9 : null,
      regime: ordered.length === 1 ? ordered[0][0] : `mixed (${ordered.map(([r, v]) => `${v.n} ${r}`).join(', ')})`,
      mainRegime: ordered[0][0],
    };
  });
  return rows.sort((a, b) => b.ms - a.ms);
}

/** Seconds of one step by regime (from {@link KernelPoint}s): where the kernel time goes. */
export function regimeSummary(points: readonly KernelPoint[]): { regime: Regime; calls: number; ms: number; sharePct: number }[] {
  const total = points.reduce((a, p) => a + p.seconds, 0);
  const order: Regime[] = ['compute-bound', 'memory-bound', 'overhead-bound', 'unknown'];
  return order
    .map((regime) => {
      const ps = points.filter((p) => p.regime === regime);
      const s = ps.reduce((a, p) => a + p.seconds, 0);
      return { regime, calls: ps.length, ms: s * 1e3, sharePct: total > 0 ? (100 * s) / total : 0 };
    })
    .filter((r) => r.calls > 0);
}

/** The share (%) of a step's kernel time in `regime`, from its {@link regimeSummary} (0 when no kernel is). */
export function regimeShare(summary: ReturnType<typeof regimeSummary>, regime: Regime): number {
  return summary.find((r) => r.regime === regime)?.sharePct ?? 0;
}

// ---------------------------------------------------------------------------------------------
// A training step, diagnosed: trace, kernel points, table and time per step
// ---------------------------------------------------------------------------------------------

/** A training step on one batch: `run(xs, ys)` returns what to sync (the loss). `train.seedTrainStep` returns one. */
export interface StepLike {
  run(xs: tf.Tensor, ys: tf.Tensor): Syncable;
}

/** Everything {@link analyzeStep} found about one training step. */
export interface StepAnalysis {
  /** The name given (e.g. `stock`, `fused`). */
  variant: string;
  backend: string;
  device: string;
  /** The kernel timeline of the traced steps (with their input pipeline). */
  trace: Trace;
  /** Every kernel call of one step, on the roofline. */
  points: KernelPoint[];
  table: KernelTableRow[];
  regimes: ReturnType<typeof regimeSummary>;
  /** Kernel calls per step (called by the op layer, i.e. not counting kernels called by kernels). */
  kernelsPerStep: number;
  /** Kernels not in the cost model, by name (listed, not guessed). */
  unknownKernels: string[];
  /** The step timed unrecorded (warm-up, sync, repeats) on one batch, before the trace. */
  timing: Timing;
  /** Fastest ms per step, unrecorded (the least disturbed repeat on a shared machine; the median is in `timing`). */
  msPerStep: number;
}

/** Options of {@link analyzeStep}. */
export interface AnalyzeStepOptions extends ClassifyOptions {
  /** Traced steps (default 3). */
  steps?: number;
  /** Warm-up steps before the unrecorded timing (default 2; WebGPU compiles shaders in them). One more runs before the trace. */
  warmup?: number;
  /** Timed repeats of the unrecorded step (default 10; quick 5). */
  repeats?: number;
  /** Trace options (GPU timestamps on WebGPU). */
  trace?: TraceOptions;
}

/**
 * Diagnose a training step on the current backend: time it unrecorded on the first batch
 * through `timing.benchmark` (warm-up, sync, repeats), then trace `steps` more steps with their
 * input pipeline (`monitor.traceSteps`), place every kernel of a step on the roofline of
 * `ceilings` ({@link kernelPoints}) and group them ({@link kernelTable}, {@link regimeSummary}).
 * `batches` must yield at least `steps + 2` batches; they are disposed after use.
 */
export async function analyzeStep(
  variant: string,
  step: StepLike,
  batches: Iterable<TraceBatch> | AsyncIterable<TraceBatch>,
  ceilings: Ceilings,
  options: AnalyzeStepOptions = {},
): Promise<StepAnalysis> {
  if (ceilings.backend !== tf.getBackend()) throw new Error(`analyzeStep(${variant}): the ceilings were measured on '${ceilings.backend}' but '${tf.getBackend()}' is running`);
  const it = batchIterator(batches);
  let trace: Trace;
  let timing: Timing;
  try {
    // Time first, unrecorded, on the first batch (its warm-up warms the step for the trace too),
    // so nothing the recorder did (wrapping and restoring kernels) can touch the timing.
    const first = await it.next();
    if (first.done) throw new Error(`analyzeStep(${variant}): no batches`);
    const batch = first.value;
    try {
      timing = await benchmark(() => step.run(batch.xs, batch.ys), { warmup: options.warmup ?? 2, repeats: options.repeats ?? (isQuick() ? 5 : 10) });
    } finally {
      tf.dispose([batch.xs, batch.ys]);
    }
    // The rest of the same iterator feeds the trace (traceSteps must not close it early).
    const rest: AsyncIterable<TraceBatch> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve(it.next()) }) };
    trace = await traceSteps((b) => step.run(b.xs, b.ys), rest, { steps: options.steps, warmup: 1, ...options.trace });
  } finally {
    await it.return?.();
  }
  const points = kernelPoints(trace, ceilings, options);
  const stepKernels = kernelsByPhase(trace, 'step')[0].kernels;
  return {
    variant,
    backend: trace.backend,
    device: trace.device,
    trace,
    points,
    table: kernelTable(points),
    regimes: regimeSummary(points),
    kernelsPerStep: topLevelKernels(stepKernels).length,
    unknownKernels: [...new Set(points.filter((p) => p.kind === 'unknown').map((p) => p.kernel))],
    timing,
    msPerStep: timing.min * 1e3,
  };
}

// ---------------------------------------------------------------------------------------------
// The overhead test: time per step against batch size
// ---------------------------------------------------------------------------------------------

/** One batch size of {@link stepTimeByBatch}. */
export interface BatchStepTime {
  backend: string;
  batch: number;
  /** Median ms per step. */
  msPerStep: number;
  /** Fastest repeat, ms: the least disturbed on a shared machine; the verdict reads these. */
  minMs: number;
  maxMs: number;
  /** µs per sample, from the fastest repeat (minMs × 1000 / batch). */
  usPerSample: number;
  /** minMs ÷ minMs at the smallest batch. */
  relative: number;
}

/** What {@link stepTimeByBatch} measured. */
export interface BatchSweep {
  backend: string;
  rows: BatchStepTime[];
  /** Batch sizes not timed because one step at the previous size already took longer than the budget, or null. */
  skipped: { batches: number[]; reason: string } | null;
}

/**
 * Horace He's overhead test: time one training step (synced; warm-up, repeats through
 * `timing.benchmark`: 9, quick 5, only 2 for a step slower than the budget) at each batch size
 * in `batches` (ascending), on random inputs of
 * `features` values with one-hot targets of `classes`. Stops growing the batch once a step takes
 * longer than `budgetSeconds` (default 0.5 s; quick 0.15 s), except for batches up to
 * `alwaysUpTo`, and lists what it skipped. Where the time per step barely grows with the batch,
 * the step is overhead-bound.
 */
export async function stepTimeByBatch(
  step: StepLike,
  batches: readonly number[],
  options: { features?: number; classes?: number; repeats?: number; warmup?: number; budgetSeconds?: number; alwaysUpTo?: number } = {},
): Promise<BatchSweep> {
  const features = options.features ?? 784;
  const classes = options.classes ?? 10;
  const budget = options.budgetSeconds ?? (isQuick() ? 0.15 : 0.5);
  const sizes = [...batches].sort((a, b) => a - b);
  if (!sizes.length || !sizes.every((b) => Number.isInteger(b) && b > 0)) throw new Error(`stepTimeByBatch: batch sizes must be positive integers, got [${batches}]`);
  const rows: BatchStepTime[] = [];
  let skipped: BatchSweep['skipped'] = null;
  for (let i = 0; i < sizes.length; i++) {
    const b = sizes[i];
    const { xs, ys } = tf.tidy(() => ({
      xs: tf.randomUniform([b, features], 0, 1, 'float32', b),
      ys: tf.oneHot(tf.randomUniform([b], 0, classes, 'int32', b + 1), classes).toFloat(),
    }));
    let t: Timing;
    try {
      // WebGPU compiles shaders for every new shape over the first steps: two warm-up steps there.
      // A slow step (over the budget) gets 2 repeats in all; a fast one the full count, so the
      // fastest repeat is a fair reading on a busy machine without the slow backends taking minutes.
      t = await benchmarkWithin(() => step.run(xs, ys), {
        warmup: options.warmup ?? (isQuick() && isSynchronousBackend() ? 1 : 2),
        repeats: options.repeats ?? (isQuick() ? 5 : 9),
        slowRepeats: options.repeats ?? 2,
        budgetSeconds: budget,
      });
    } finally {
      tf.dispose([xs, ys]);
    }
    const ms = t.median * 1e3;
    const min = t.min * 1e3;
    rows.push({ backend: tf.getBackend(), batch: b, msPerStep: ms, minMs: min, maxMs: t.max * 1e3, usPerSample: (min * 1e3) / b, relative: min / (rows[0]?.minMs ?? min) });
    if (t.median > budget && i < sizes.length - 1 && sizes[i + 1] > (options.alwaysUpTo ?? 0)) {
      skipped = { batches: sizes.slice(i + 1), reason: `one step at batch ${b} took ${ms.toFixed(0)} ms, over the ${(budget * 1e3).toFixed(0)} ms budget` };
      break;
    }
  }
  return { backend: tf.getBackend(), rows, skipped };
}

/** The overhead test's reading at one batch size. */
export interface OverheadVerdict {
  backend: string;
  /** The batch asked about (the article's 100), and its fastest step in ms. */
  batch: number;
  msPerStep: number;
  /** The smallest batch timed (1) and its fastest step in ms. */
  smallestBatch: number;
  smallestMs: number;
  /** smallestMs ÷ msPerStep: the share of a step at `batch` that a step of the smallest batch already costs (fixed, per-step cost). */
  fixedShare: number;
  /** The largest batch whose step took at most `flatFactor` × the smallest batch's: the end of the flat part. */
  flatUpTo: number;
  /**
   * `overhead-bound` when the step at `batch` is still on the flat part, or when a step of the
   * smallest batch already costs at least half of it (fixedShare ≥ 0.5); else `compute/memory-bound`.
   */
  regime: 'overhead-bound' | 'compute/memory-bound';
  /** One sentence from the numbers. */
  sentence: string;
}

/**
 * Read a {@link BatchSweep} from its fastest repeats: where the flat part ends (time within
 * `flatFactor`, default 1.5, of the smallest batch's) and which regime a step at `batch` (default
 * 100) is in: overhead-bound on the flat part, or when at least half of its time is the fixed
 * cost a step of the smallest batch already pays. Throws when `batch` was not timed.
 */
export function overheadVerdict(sweep: BatchSweep, options: { batch?: number; flatFactor?: number } = {}): OverheadVerdict {
  const at = options.batch ?? 100;
  const factor = options.flatFactor ?? 1.5;
  const rows = sweep.rows;
  const row = rows.find((r) => r.batch === at);
  if (!row) throw new Error(`overheadVerdict: batch ${at} was not timed on ${sweep.backend} (timed: ${rows.map((r) => r.batch).join(', ')})`);
  const small = rows[0];
  let flatUpTo = small.batch;
  for (const r of rows) {
    if (r.minMs <= factor * small.minMs) flatUpTo = r.batch;
    else break;
  }
  const fixedShare = small.minMs / row.minMs;
  const flat = at <= flatUpTo;
  const regime = flat || fixedShare >= 0.5 ? 'overhead-bound' : 'compute/memory-bound';
  const pct = `${(100 * Math.min(1, fixedShare)).toFixed(0)} %`;
  const times = `a step of ${at} samples took ${row.minMs.toFixed(2)} ms and a step of ${small.batch} took ${small.minMs.toFixed(2)} ms (fastest repeats)`;
  const sentence = flat
    ? `On ${sweep.backend}, ${times}: the time is still flat at batch ${at} (the flat part runs to batch ${flatUpTo}), so the article's experiment is overhead-bound here: ${pct} of its step is a cost that does not grow with the batch.`
    : regime === 'overhead-bound'
      ? `On ${sweep.backend}, ${times}: past the flat part (it ends at batch ${flatUpTo}), yet a step of ${small.batch} already costs ${pct} of it, so more than half of the article's step is a fixed per-step cost: it is overhead-bound here.`
      : `On ${sweep.backend}, ${times}: the flat part ends at batch ${flatUpTo} and a step of ${small.batch} costs only ${pct} of one of ${at}, so at batch ${at} the arithmetic and memory traffic dominate: the article's experiment is compute/memory-bound here.`;
  return { backend: sweep.backend, batch: at, msPerStep: row.minMs, smallestBatch: small.batch, smallestMs: small.minMs, fixedShare, flatUpTo, regime, sentence };
}

// ---------------------------------------------------------------------------------------------
// Fusion, the fix for overhead: one kernel instead of three
// ---------------------------------------------------------------------------------------------

/** One side of {@link fusedMatMulComparison}. */
export interface FusionRow {
  backend: string;
  variant: 'three ops' | 'tf.fused.matMul';
  /** Kernel calls of one evaluation (from a trace), and their names in order. */
  kernels: number;
  kernelNames: string;
  /** Of those, the kernels that do arithmetic or move data (not Reshape/Identity, which only relabel a tensor). */
  workKernels: number;
  /** Median ms of one evaluation, synced. */
  ms: number;
  timing: Timing;
  /** Largest absolute difference from the three-op result (0 for the three ops themselves). */
  maxAbsDiff: number;
}

/**
 * `relu(x·W + b)` as three ops (`matMul`, `add`, `relu`) against `tf.fused.matMul` with bias and
 * ReLU (one `_FusedMatMul` kernel), on the current backend: kernels per evaluation (traced),
 * time (warm-up, sync, repeats: 30, quick 10, only 3 where one evaluation takes over 50 ms) and
 * the largest difference between the two results.
 */
export async function fusedMatMulComparison(shape: MatMulShape = { m: 100, k: 784, n: 500 }, options: { repeats?: number; warmup?: number } = {}): Promise<FusionRow[]> {
  const x = tf.randomUniform([shape.m, shape.k], -1, 1, 'float32', 5);
  const w = tf.randomUniform([shape.k, shape.n], -0.1, 0.1, 'float32', 6);
  const b = tf.randomUniform([shape.n], -0.1, 0.1, 'float32', 7);
  const variants: [FusionRow['variant'], () => tf.Tensor][] = [
    ['three ops', () => tf.relu(tf.add(tf.matMul(x, w), b))],
    ['tf.fused.matMul', () => tf.fused.matMul({ a: x, b: w, bias: b, activation: 'relu' })],
  ];
  const reference = tf.tidy(variants[0][1]);
  try {
    const rows: FusionRow[] = [];
    for (const [variant, fn] of variants) {
      const out = tf.tidy(fn);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(out, reference))));
      const maxAbsDiff = (await diff.data())[0];
      tf.dispose([out, diff]);
      const trace = await recordTrace(() => {
        tf.tidy(fn);
      });
      const top = topLevelKernels(trace.kernels);
      const t = await benchmarkWithin(fn, { warmup: options.warmup ?? 2, repeats: options.repeats ?? (isQuick() ? 10 : 30), slowRepeats: options.repeats ?? 3, budgetSeconds: 0.05 });
      const work = top.filter((k) => kernelCost(k).kind !== 'no-op').length;
      rows.push({ backend: tf.getBackend(), variant, kernels: top.length, kernelNames: top.map((k) => k.name).join(', '), workKernels: work, ms: t.median * 1e3, timing: t, maxAbsDiff });
    }
    return rows;
  } finally {
    tf.dispose([x, w, b, reference]);
  }
}
