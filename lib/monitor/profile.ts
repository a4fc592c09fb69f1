/** The kernel profile of one training step: `tf.profile` + `tf.time`, explained per backend. */
import * as tf from '@tensorflow/tfjs';
import { type Row } from '../charts';
import { median, sync, type Syncable } from '../timing';
import { baseKernelName, MATMUL_KERNELS } from '../flops';
import { MiB } from '../units';

// ---------------------------------------------------------------------------------------------
// Kernel profile: tf.profile + tf.time
// ---------------------------------------------------------------------------------------------

/** One kernel call seen by `tf.profile`. */
export interface KernelCall {
  name: string;
  /** For matmuls, the layout inferred from the shapes (`transposeA` …), else ''. */
  variant: string;
  /**
   * True for an op-level entry (`softmaxCrossEntropy__op`, `fusedMatMul__op`): tfjs records ops
   * with a custom gradient as a "kernel" whose time includes the real kernels inside it, which are
   * recorded too. Composite entries are left out of the table and the sums so nothing counts twice.
   */
  composite: boolean;
  /** Kernel time as the backend's timer measured it; null when the backend could not time it. */
  ms: number | null;
  /** Bytes of new tensors the kernel allocated, as tfjs counted them. */
  bytesAdded: number;
  tensorsAdded: number;
  inputShapes: number[][];
  outputShapes: number[][];
}

/** Kernels grouped by name (and matmul layout): calls, time and bytes. */
export interface KernelRow {
  /** Kernel name, with the matmul layout when there is one (`BatchMatMul · transposeA`). */
  kernel: string;
  calls: number;
  /** Sum of the calls' times; null when the backend timer gave none. */
  totalMs: number | null;
  meanMs: number | null;
  /** Share of the summed kernel time, in %. */
  sharePct: number | null;
  /** Bytes allocated by the calls' outputs, in MiB (2^20 bytes). */
  allocatedMiB: number;
  /** The distinct input shapes seen, e.g. `[1,100,784]×[1,784,500]`. */
  shapes: string;
}

/** What {@link profileStep} measured for one training step. */
export interface StepProfile {
  backend: string;
  /** Rounds measured; the step-level figures are medians over them. */
  repeats: number;
  /** Kernels by total time (descending), per step: calls, time and bytes averaged over the profiled rounds. */
  kernels: KernelRow[];
  /** Every call of the first profiled round, in order. */
  calls: KernelCall[];
  /** Sum of per-kernel times from tf.profile (composite op entries excluded), median; null when untimed. */
  kernelSumMs: number | null;
  /** Wall time of the profiled step (with read-back), median: the profiler's own overhead is in here. */
  profiledWallMs: number;
  /** `tf.time(step).kernelMs`, median: what this backend calls kernel time (see {@link timerNote}); null when it gave none. */
  kernelMs: number | null;
  /** `tf.time(step).wallMs`, median. */
  wallMs: number;
  /** Our own wall time of an unprofiled step including the read-back of its result (the honest figure), median. */
  syncedWallMs: number;
  /** Every round's value of each step-level figure, in ms. */
  samples: { kernelSumMs: number[]; profiledWallMs: number[]; kernelMs: number[]; wallMs: number[]; syncedWallMs: number[] };
  /** From tf.profile: bytes and tensors the step left behind, and its peak bytes. */
  newBytes: number;
  newTensors: number;
  peakBytes: number;
  /** What kernelMs and wallMs mean on this backend. */
  timerNote: string;
  /** Why kernelMs or the per-kernel times are missing, or null. */
  missingReason: string | null;
}

/**
 * Infer the layout of a matmul kernel from its shapes: `''` (plain), `transposeA`,
 * `transposeB`, `transposeA+B`, or `ambiguous` when square shapes allow several.
 * Autodiff of `x·W` emits `dx = dy·Wᵀ` (transposeB) and `dW = xᵀ·dy` (transposeA).
 */
export function matMulLayout(inputShapes: readonly (readonly number[] | null | undefined)[], outputShapes: readonly (readonly number[])[]): string {
  if (inputShapes.length < 2 || !outputShapes.length || !inputShapes[0] || !inputShapes[1] || !outputShapes[0]) return '';
  const a = inputShapes[0].slice(-2);
  const b = inputShapes[1].slice(-2);
  const o = outputShapes[0].slice(-2);
  if (a.length < 2 || b.length < 2 || o.length < 2) return '';
  const [p, q] = a;
  const [r, s] = b;
  const [m, n] = o;
  const fits: string[] = [];
  if (q === r && p === m && s === n) fits.push('');
  if (p === r && q === m && s === n) fits.push('transposeA');
  if (q === s && p === m && r === n) fits.push('transposeB');
  if (p === s && q === m && r === n) fits.push('transposeA+B');
  return fits.length === 1 ? fits[0] : fits.length > 1 ? (fits.includes('') ? '' : 'ambiguous') : '';
}

/** What `tf.time`'s kernelMs and wallMs, and `tf.profile`'s per-kernel times, mean on a backend. */
export function explainTimers(backend: string): string {
  switch (backend) {
    case 'cpu':
      return 'cpu (plain JavaScript): kernels run synchronously on the calling thread, so kernelMs is host wall time around the JavaScript call (≈ wallMs) and each kernel\'s time in tf.profile is host time of that kernel. The gap between the summed kernel time and the step\'s wall time is JavaScript outside kernels: autodiff tape, tensor bookkeeping, the optimizer.';
    case 'wasm':
      return 'wasm: kernels run synchronously in WebAssembly on the calling thread, so kernelMs is host wall time around the call (≈ wallMs), and tf.profile\'s per-kernel times are host times of each kernel. The summed kernel time vs the step\'s wall time shows the JavaScript overhead outside kernels (autodiff tape, allocation, optimizer bookkeeping).';
    case 'webgpu':
      return 'webgpu: kernels are queued to the GPU asynchronously. With the timestamp-query feature, kernelMs is GPU execution time from GPU timestamps; without it tfjs reports 0, which we record as missing. wallMs is host time until the timings resolved, including queueing and upload/download waits; the synced wall time also includes reading the result back.';
    case 'webgl':
      return 'webgl: kernelMs comes from GPU disjoint timer queries when the driver offers them (else tfjs returns an error); wallMs includes shader compilation, queueing and texture uploads.';
    case 'tensorflow':
      return 'tensorflow (tfjs-node / tfjs-node-gpu): tf.time measures host wall time around the call into libtensorflow. On a CUDA GPU the kernels are launched asynchronously, so kernelMs is launch time, not GPU kernel time: use Nsight Systems (nsys) or Nsight Compute (ncu) for the GPU side. tf.memory() is marked unreliable there.';
    default:
      return `${backend}: the meaning of kernelMs depends on the backend's timer; compare it with the synced wall time.`;
  }
}

/**
 * The layout of one kernel call for tables ({@link matMulLayout} for matmul kernels, `''` for any
 * other kernel).
 */
export function kernelVariant(name: string, inputShapes: readonly (readonly number[] | null | undefined)[], outputShapes: readonly (readonly number[])[]): string {
  return MATMUL_KERNELS.has(baseKernelName(name)) ? matMulLayout(inputShapes, outputShapes) : '';
}

/** Shapes as text for tables and traces: `[100,784]×[784,500]`, with `–` for an input not given. */
export function shapeText(shapes: readonly (readonly number[] | null | undefined)[]): string {
  return shapes.map((s) => (s ? `[${s.join(',')}]` : '–')).join('×');
}

/** Group kernel calls into {@link KernelRow}s, sorted by total time (then bytes). */
export function summarizeKernels(calls: readonly KernelCall[]): KernelRow[] {
  const groups = new Map<string, { calls: KernelCall[]; shapes: Set<string> }>();
  for (const c of calls) {
    if (c.composite) continue;
    const key = c.variant ? `${c.name} · ${c.variant}` : c.name;
    const g = groups.get(key) ?? { calls: [], shapes: new Set<string>() };
    g.calls.push(c);
    g.shapes.add(shapeText(c.inputShapes));
    groups.set(key, g);
  }
  const real = calls.filter((c) => !c.composite);
  const timed = real.every((c) => c.ms !== null);
  const sum = timed ? real.reduce((a, c) => a + (c.ms as number), 0) : null;
  const rows: KernelRow[] = [...groups.entries()].map(([kernel, g]) => {
    const total = timed ? g.calls.reduce((a, c) => a + (c.ms as number), 0) : null;
    return {
      kernel,
      calls: g.calls.length,
      totalMs: total,
      meanMs: total === null ? null : total / g.calls.length,
      sharePct: total === null || !sum ? null : (100 * total) / sum,
      allocatedMiB: g.calls.reduce((a, c) => a + c.bytesAdded, 0) / MiB,
      shapes: [...g.shapes].slice(0, 3).join('; ') + (g.shapes.size > 3 ? ` (+${g.shapes.size - 3} more)` : ''),
    };
  });
  return rows.sort((a, b) => (b.totalMs ?? 0) - (a.totalMs ?? 0) || b.allocatedMiB - a.allocatedMiB);
}

/**
 * Profile one training step. After `warmup` unprofiled steps, each of `repeats` rounds runs the
 * step three times: under `tf.profile` (per-kernel time and bytes), under `tf.time` (kernelMs vs
 * wallMs), and timed by us with the result read back (syncedWallMs). Step-level figures are the
 * medians of the rounds (every sample is kept in `samples`); the kernel table is the per-step
 * average over the profiled runs. Every run is a real step (weights change). `step` must be
 * synchronous (e.g. `() => optimizer.minimize(loss, true)`), because `tf.time` cannot await;
 * whatever it returns is read back and disposed.
 */
export async function profileStep(step: () => Syncable, options: { warmup?: number; repeats?: number } = {}): Promise<StepProfile> {
  const warmup = options.warmup ?? 1;
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`profileStep: repeats must be ≥ 1, got ${repeats}`);
  for (let i = 0; i < warmup; i++) await sync(step());
  const backend = tf.getBackend() ?? 'none';
  const be = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  const gpuUntimed = backend === 'webgpu' && be.supportTimestampQuery !== true;
  const untimedReason = gpuUntimed ? 'this WebGPU adapter lacks the timestamp-query feature, so tfjs cannot time kernels (it reports 0)' : null;

  const samples: StepProfile['samples'] = { kernelSumMs: [], profiledWallMs: [], kernelMs: [], wallMs: [], syncedWallMs: [] };
  const allCalls: KernelCall[] = [];
  let firstCalls: KernelCall[] = [];
  let info: Awaited<ReturnType<typeof tf.profile>> | null = null;
  const errors: string[] = [];
  for (let r = 0; r < repeats; r++) {
    let profiled: Syncable = undefined;
    const tp = performance.now();
    info = await tf.profile(() => {
      profiled = step();
      return [] as tf.Tensor[];
    });
    await sync(profiled);
    samples.profiledWallMs.push(performance.now() - tp);
    const calls: KernelCall[] = info.kernels.map((k) => {
      const t = k.kernelTimeMs as number | { error: string };
      if (typeof t === 'object' && t && 'error' in t) errors.push(`tf.profile: ${t.error}`);
      return {
        name: k.name,
        variant: kernelVariant(k.name, k.inputShapes, k.outputShapes),
        composite: k.name === '' || k.name.endsWith('__op'),
        ms: gpuUntimed ? null : typeof t === 'number' ? t : null,
        bytesAdded: k.bytesAdded,
        tensorsAdded: k.tensorsAdded,
        // tfjs records null for optional inputs that were not given (e.g. a fused matmul without bias).
        inputShapes: k.inputShapes.map((sh) => (sh ? [...sh] : [])),
        outputShapes: k.outputShapes.map((sh) => (sh ? [...sh] : [])),
      };
    });
    if (r === 0) firstCalls = calls;
    allCalls.push(...calls);
    const real = calls.filter((c) => !c.composite);
    if (real.length && real.every((c) => c.ms !== null)) samples.kernelSumMs.push(real.reduce((a, c) => a + (c.ms as number), 0));

    let timedOut: Syncable = undefined;
    const timing = await tf.time(() => {
      timedOut = step();
    });
    await sync(timedOut);
    const km = timing.kernelMs as number | { error: string };
    if (typeof km === 'object' && km && 'error' in km) errors.push(`tf.time: ${km.error}`);
    if (!gpuUntimed && typeof km === 'number') samples.kernelMs.push(km);
    samples.wallMs.push(timing.wallMs);

    const t0 = performance.now();
    await sync(step());
    samples.syncedWallMs.push(performance.now() - t0);
  }
  const kernels = summarizeKernels(allCalls).map((k) => ({
    ...k,
    calls: k.calls / repeats,
    totalMs: k.totalMs === null ? null : k.totalMs / repeats,
    allocatedMiB: k.allocatedMiB / repeats,
  }));
  const med = (xs: number[]) => (xs.length ? median(xs) : null);
  const reasons = [untimedReason, ...new Set(errors)].filter(Boolean);
  const last = info as Awaited<ReturnType<typeof tf.profile>>;
  return {
    backend,
    repeats,
    kernels,
    calls: firstCalls,
    kernelSumMs: med(samples.kernelSumMs),
    profiledWallMs: med(samples.profiledWallMs) as number,
    kernelMs: med(samples.kernelMs),
    wallMs: med(samples.wallMs) as number,
    syncedWallMs: med(samples.syncedWallMs) as number,
    samples,
    newBytes: last.newBytes,
    newTensors: last.newTensors,
    peakBytes: last.peakBytes,
    timerNote: explainTimers(backend),
    missingReason: reasons.length ? reasons.join('; ') : null,
  };
}

/** The step-level timings of a {@link StepProfile} as table rows: median, min and max of the rounds, and what each means. */
export function stepTimingRows(p: StepProfile): Row[] {
  const row = (measure: string, median: number | null, xs: number[], meaning: string): Row => ({
    measure,
    medianMs: median,
    minMs: xs.length ? Math.min(...xs) : null,
    maxMs: xs.length ? Math.max(...xs) : null,
    meaning,
  });
  const sm = p.samples;
  return [
    row('sum of per-kernel times (tf.profile)', p.kernelSumMs, sm.kernelSumMs, 'time inside kernels, as this backend\'s timer measures them'),
    row('wall time of the profiled step', p.profiledWallMs, sm.profiledWallMs, 'the same step with the profiler attached (its bookkeeping included)'),
    row('kernelMs (tf.time)', p.kernelMs, sm.kernelMs, p.backend === 'wasm' || p.backend === 'cpu' ? 'host time around the synchronous call' : 'the backend\'s kernel timer'),
    row('wallMs (tf.time)', p.wallMs, sm.wallMs, 'host time until tf.time resolved'),
    row('synced wall time (step + read-back)', p.syncedWallMs, sm.syncedWallMs, 'what a user waits for: no profiler attached'),
  ];
}
