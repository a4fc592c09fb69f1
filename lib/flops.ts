/**
 * FLOP counting and measured matmul peaks: the yardstick for "achieved vs peak GFLOP/s".
 *
 * ```ts
 * const peak = await flops.peakMatMul();                 // this backend's fp32 matmul GFLOP/s
 * flops.mlpTrainingFlops([784, 500, 10], 60000 * 5);     // {counted, needed}
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { benchmark, sync, type Timing } from './timing';
import { pick } from './env';

/** FLOP of one `m×k · k×n` matrix product (multiply + add). */
export function matMulFlops(m: number, k: number, n: number): number {
  return 2 * m * k * n;
}

/** FLOP of training an MLP with the given layer widths on `samples` examples. */
export interface TrainingFlops {
  /** Forward matmul FLOP per sample. */
  forwardPerSample: number;
  /** The usual convention: forward + backward = 3 × forward matmuls. */
  counted: number;
  /**
   * What is really needed: forward, weight gradients, and input gradients for every layer but
   * the first (nobody needs the gradient of the input images), i.e. (3L − 1)/L × forward.
   */
  needed: number;
}

/**
 * Matmul FLOP of training a dense MLP (`widths` = [input, hidden…, output]) on `samples`
 * examples. Elementwise work (bias, activations, loss, optimizer) is ignored: it is tiny next to
 * the matmuls. For the article's 784→500→10 MLP over 5 × 60,000 images: counted ≈7.1e11,
 * needed ≈4.8e11.
 */
export function mlpTrainingFlops(widths: readonly number[], samples: number): TrainingFlops {
  if (widths.length < 2) throw new Error(`mlpTrainingFlops: need at least input and output widths, got [${widths}]`);
  const layerFlops = widths.slice(1).map((w, i) => 2 * widths[i] * w);
  const forwardPerSample = layerFlops.reduce((a, b) => a + b, 0);
  const first = layerFlops[0];
  return {
    forwardPerSample,
    counted: 3 * forwardPerSample * samples,
    // forward (1×) + weight grads (1×) for every layer; input grads (1×) for all but the first.
    needed: (3 * forwardPerSample - first) * samples,
  };
}

/** A measured matmul throughput. */
export interface MatMulThroughput {
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Median GFLOP/s over the repeats. */
  gflops: number;
  /** GFLOP/s of the fastest repeat (what the hardware reached at best; robust on a busy machine). */
  gflopsBest: number;
  /**
   * GFLOP per CPU second of this process over `repeats` extra runs, when `cpuTime` was asked for
   * (else null). On a shared machine this estimates the rate on a dedicated core.
   */
  gflopsPerCpuSecond: number | null;
  timing: Timing;
}

/**
 * Time `a·b` (optionally transposed operands) on the current backend through
 * {@link benchmark} and return GFLOP/s.
 */
export async function matMulThroughput(
  m: number,
  k: number,
  n: number,
  options: { transposeA?: boolean; transposeB?: boolean; warmup?: number; repeats?: number; cpuTime?: boolean } = {},
): Promise<MatMulThroughput> {
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const a = tf.randomUniform(transposeA ? [k, m] : [m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform(transposeB ? [n, k] : [k, n], -1, 1, 'float32', 2);
  try {
    const timing = await benchmark(() => tf.matMul(a, b, transposeA, transposeB), {
      warmup: options.warmup ?? 2,
      repeats: options.repeats ?? pick(10, 3),
    });
    const f = matMulFlops(m, k, n);
    let gflopsPerCpuSecond: number | null = null;
    if (options.cpuTime) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < timing.samples.length; i++) await sync(tf.matMul(a, b, transposeA, transposeB));
      const c = process.cpuUsage(c0);
      gflopsPerCpuSecond = (f * timing.samples.length) / ((c.user + c.system) / 1e6) / 1e9;
    }
    return { m, k, n, transposeA, transposeB, gflops: f / timing.median / 1e9, gflopsBest: f / timing.min / 1e9, gflopsPerCpuSecond, timing };
  } finally {
    tf.dispose([a, b]);
  }
}

/**
 * The current backend's peak fp32 matmul throughput: square products (1024 and 512; 256 on the
 * pure-JS cpu backend, where larger sizes take seconds); the size with the best fastest-repeat
 * GFLOP/s wins. Use `gflopsBest` as "the peak": on a shared machine the fastest repeat is the
 * least disturbed one, so achieved-vs-peak ratios against it are conservative.
 */
export async function peakMatMul(options: { sizes?: number[]; repeats?: number; cpuTime?: boolean } = {}): Promise<MatMulThroughput> {
  const sizes = options.sizes ?? (tf.getBackend() === 'cpu' ? [256] : pick([1024, 512], [512]));
  let best: MatMulThroughput | null = null;
  for (const s of sizes) {
    const r = await matMulThroughput(s, s, s, { repeats: options.repeats, cpuTime: options.cpuTime });
    if (!best || r.gflopsBest > best.gflopsBest) best = r;
  }
  return best!;
}
