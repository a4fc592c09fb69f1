/**
 * One honest benchmark helper that every figure in the collection goes through:
 * warm-up runs, a device sync after every run, then N timed repeats.
 */
import * as tf from '@tensorflow/tfjs';
import { describeDevice, type DeviceInfo } from './backends/registry';

/** What a timed function may return: tensors are synced (awaited `data()`) and disposed. */
export type Syncable = tf.Tensor | tf.Tensor[] | number | void | undefined | { [k: string]: tf.Tensor };

/** Options for {@link benchmark}. */
export interface BenchmarkOptions {
  /** Untimed runs first (JIT, shader compilation, allocator warm-up). Default 2. */
  warmup?: number;
  /** Timed runs. Default 5. */
  repeats?: number;
  /** The device to record in the result. Default: the one running now (`device.describeDevice()`). */
  device?: DeviceInfo;
}

/** The outcome of {@link benchmark}: every sample (seconds), their summary, and the device. */
export interface Timing {
  /** Wall seconds of each timed repeat, in run order. */
  samples: number[];
  median: number;
  min: number;
  max: number;
  mean: number;
  /** The device that ran it. */
  device: DeviceInfo;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Summarise samples into {@link Timing} fields (no device). */
export function summarize(samples: readonly number[]): Omit<Timing, 'device'> {
  if (samples.length === 0) throw new Error('summarize: no samples');
  return {
    samples: [...samples],
    median: median(samples),
    min: Math.min(...samples),
    max: Math.max(...samples),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/**
 * Wait until the device has finished the work behind `value`: read back every tensor
 * (`await data()`), then dispose them. Numbers and void pass through.
 */
export async function sync(value: Syncable): Promise<void> {
  const tensors: tf.Tensor[] =
    value instanceof tf.Tensor
      ? [value]
      : Array.isArray(value)
        ? value
        : value && typeof value === 'object'
          ? Object.values(value)
          : [];
  for (const t of tensors) await t.data();
  for (const t of tensors) t.dispose();
}

/**
 * True when the current backend has finished a kernel's work by the time the call returns: the
 * `cpu` and `wasm` backends, and native TensorFlow on the CPU. WebGPU, WebGL and TensorFlow on a
 * CUDA GPU queue work and return at once.
 */
export function isSynchronousBackend(info: DeviceInfo = describeDevice()): boolean {
  const b = String(info.backend);
  return b === 'cpu' || b === 'wasm' || (b === 'tensorflow' && !info.accelerator);
}

/**
 * Wait until the device has finished the work behind `t` without reading all of it back: on a
 * synchronous backend ({@link isSynchronousBackend}) there is nothing to wait for; elsewhere one
 * element is read back (a GPU queue runs in order, so everything queued before it has finished).
 * `t` is not disposed. Use it where reading the whole result back would be timed as well (a large
 * bandwidth test, a chain of tiny ops).
 */
export async function settle(t: tf.Tensor): Promise<void> {
  if (isSynchronousBackend()) return;
  if (t.size <= 1) {
    await t.data();
    return;
  }
  const one = tf.tidy(() => t.reshape([-1]).slice(0, 1));
  try {
    await one.data();
  } finally {
    one.dispose();
  }
}

/**
 * Run `length` dependent adds on 1-element tensors (each on the previous result), then wait for
 * the device ({@link settle}). The arithmetic is nil, so the time is the fixed cost of `length`
 * kernel calls: time it to measure per-op overhead. Leaves no tensors behind.
 */
export async function tinyOpChain(length: number): Promise<void> {
  if (!Number.isInteger(length) || length < 1) throw new Error(`tinyOpChain: length must be a positive integer, got ${length}`);
  const one = tf.ones([1]);
  try {
    let x = tf.add(one, one);
    for (let i = 1; i < length; i++) {
      const next = tf.add(x, one);
      x.dispose();
      x = next;
    }
    await settle(x);
    x.dispose();
  } finally {
    one.dispose();
  }
}

/**
 * Time `fn`: `warmup` untimed runs, then `repeats` timed runs. Each run is synced before the
 * clock stops, so asynchronous GPU work is counted. Returns every sample in seconds.
 *
 * ```ts
 * const t = await timing.benchmark(() => tf.matMul(a, b), { warmup: 2, repeats: 10 });
 * t.median  // seconds
 * ```
 */
export async function benchmark(
  fn: () => Syncable | Promise<Syncable>,
  options: BenchmarkOptions = {},
): Promise<Timing> {
  const warmup = options.warmup ?? 2;
  const repeats = options.repeats ?? 5;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`benchmark: repeats must be ≥ 1, got ${repeats}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`benchmark: warmup must be ≥ 0, got ${warmup}`);
  for (let i = 0; i < warmup; i++) await sync(await fn());
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    await sync(await fn());
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { ...summarize(samples), device: options.device ?? describeDevice() };
}

/** Options of {@link benchmarkWithin}. */
export interface BudgetedBenchmarkOptions extends BenchmarkOptions {
  /** A run slower than this (seconds) gets only `slowRepeats` repeats in all. */
  budgetSeconds: number;
  /** Repeats for a slow run (default 2). */
  slowRepeats?: number;
}

/**
 * {@link benchmark} on a time budget: after the warm-up, one timed run; if it took longer than
 * `budgetSeconds`, `slowRepeats` repeats in all, else `repeats`. Every sample is kept. Use it
 * where one measurement runs on fast and slow backends alike (native, and the pure-JS cpu
 * backend 100× slower), so the fast ones get enough repeats for a fair fastest-of and the slow
 * ones do not take minutes.
 */
export async function benchmarkWithin(fn: () => Syncable | Promise<Syncable>, options: BudgetedBenchmarkOptions): Promise<Timing> {
  const first = await benchmark(fn, { warmup: options.warmup, repeats: 1 });
  const repeats = first.min > options.budgetSeconds ? (options.slowRepeats ?? 2) : (options.repeats ?? 5);
  if (repeats <= 1) return first;
  const rest = await benchmark(fn, { warmup: 0, repeats: repeats - 1, device: first.device });
  return { ...summarize([...first.samples, ...rest.samples]), device: first.device };
}

