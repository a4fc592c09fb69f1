/**
 * FLOP counting and measured matmul peaks: the yardstick for "achieved vs peak GFLOP/s".
 *
 * ```ts
 * const peak = await flops.peakMatMul();                 // this backend's fp32 matmul GFLOP/s
 * flops.mlpTrainingFlops([784, 500, 10], 60000 * 5);     // {counted, needed}
 * flops.kernelCost({ name: 'BatchMatMul', inputShapes: [[100, 784], [784, 500]], outputShapes: [[100, 500]] });
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
 * FLOP of training on `samples` examples by the usual convention: forward + backward = 3 × the
 * forward FLOPs (`forwardPerSample`, e.g. from `complexity.forwardFlops`).
 */
export function trainingFlops(forwardPerSample: number, samples: number): number {
  if (!(forwardPerSample >= 0) || !(samples >= 0)) throw new Error(`trainingFlops: FLOPs and samples must be ≥ 0, got ${forwardPerSample} and ${samples}`);
  return 3 * forwardPerSample * samples;
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
    counted: trainingFlops(forwardPerSample, samples),
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

/** Warm-up runs of {@link matMulThroughput} (and so of {@link searchMatMul}) unless given. */
const MATMUL_WARMUP = 2;

/** Timed repeats of {@link matMulThroughput} unless given: 10, or 3 under `GPULAB_QUICK`. */
function matMulRepeats(): number {
  return pick(10, 3);
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
      warmup: options.warmup ?? MATMUL_WARMUP,
      repeats: options.repeats ?? matMulRepeats(),
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

/** One matmul shape `m×k · k×n` to time. */
export interface MatMulShape {
  m: number;
  k: number;
  n: number;
}

/** What {@link searchMatMul} found: the best shape, every shape it timed, and the ones it skipped. */
export interface MatMulSearch {
  /** The shape with the best fastest-repeat GFLOP/s. */
  best: MatMulThroughput;
  /** Every shape timed, in the order timed (by FLOPs, smallest first). */
  tried: MatMulThroughput[];
  /** Shapes left out because timing them would have taken longer than the budget. */
  skipped: { shape: MatMulShape; reason: string }[];
}

/**
 * Time a set of matmul shapes on the current backend, smallest (in FLOPs) first, and keep the
 * best: the "maximum achievable matmul FLOPS" search of Stas Bekman's MAMF finder, on a budget.
 * Before each shape, the time it would take (warm-up + repeats at the best rate seen so far) is
 * estimated; shapes over `budgetSeconds` (default 3 s) are skipped and listed, never guessed.
 */
export async function searchMatMul(
  shapes: readonly MatMulShape[],
  options: { repeats?: number; warmup?: number; cpuTime?: boolean; budgetSeconds?: number } = {},
): Promise<MatMulSearch> {
  if (shapes.length === 0) throw new Error('searchMatMul: no shapes to time');
  for (const s of shapes) {
    if (![s.m, s.k, s.n].every((d) => Number.isInteger(d) && d > 0)) throw new Error(`searchMatMul: dimensions must be positive integers, got ${s.m}×${s.k}·${s.k}×${s.n}`);
  }
  const budget = options.budgetSeconds ?? 3;
  const warmup = options.warmup ?? MATMUL_WARMUP;
  const repeats = options.repeats ?? matMulRepeats();
  const runs = warmup + repeats;
  const ordered = shapes.map((s) => ({ s, f: matMulFlops(s.m, s.k, s.n) })).sort((a, b) => a.f - b.f);
  const tried: MatMulThroughput[] = [];
  const skipped: MatMulSearch['skipped'] = [];
  let best: MatMulThroughput | null = null;
  for (const { s, f } of ordered) {
    if (best) {
      const estimate = (f / (best.gflops * 1e9)) * runs;
      if (estimate > budget) {
        skipped.push({ shape: s, reason: `≈${estimate.toFixed(1)} s at ${best.gflops.toFixed(1)} GFLOP/s, over the ${budget} s budget` });
        continue;
      }
    }
    const r = await matMulThroughput(s.m, s.k, s.n, { repeats, warmup, cpuTime: options.cpuTime });
    tried.push(r);
    if (!best || r.gflopsBest > best.gflopsBest) best = r;
  }
  return { best: best as MatMulThroughput, tried, skipped };
}

/**
 * The current backend's peak fp32 matmul throughput, the best over a few square products:
 * `sizes` (default 1024 and 512; 256 on the pure-JS cpu backend, where larger sizes take
 * seconds). Use `gflopsBest` as "the peak": on a shared machine the fastest repeat is the least
 * disturbed one, so achieved-vs-peak ratios against it are conservative. `roofline.matmulCeiling`
 * runs {@link searchMatMul} over a wider shape set and labels the result with backend and shape.
 */
export async function peakMatMul(options: { sizes?: number[]; repeats?: number; warmup?: number; cpuTime?: boolean } = {}): Promise<MatMulThroughput> {
  const sizes = options.sizes ?? (tf.getBackend() === 'cpu' ? [256] : pick([1024, 512], [512]));
  return (await searchMatMul(sizes.map((s) => ({ m: s, k: s, n: s })), { ...options, budgetSeconds: Infinity })).best;
}

// ---------------------------------------------------------------------------------------------
// The arithmetic of one kernel call: FLOPs and bytes from its shapes
// ---------------------------------------------------------------------------------------------

/** What a kernel call is, as far as its cost goes. */
export type KernelKind = 'matmul' | 'elementwise' | 'reduction' | 'softmax' | 'movement' | 'no-op' | 'unknown';

/** A kernel call as a tracer or profiler sees it: name, shapes and, where known, dtypes and attributes. */
export interface KernelCallShapes {
  name: string;
  /** Input shapes in kernel order; null (or an empty list) for an optional input that was not given. */
  inputShapes: readonly (readonly number[] | null)[];
  outputShapes: readonly (readonly number[])[];
  /** Input dtypes, parallel to `inputShapes` (default: 4-byte elements). */
  inputDtypes?: readonly (string | null)[];
  /** Output dtypes, parallel to `outputShapes` (default: 4-byte elements). */
  outputDtypes?: readonly string[];
  /** Kernel attributes (e.g. `activation` of `_FusedMatMul`), where the caller saw them. */
  attrs?: Readonly<Record<string, unknown>>;
}

/** The arithmetic and memory traffic of one kernel call. */
export interface KernelCost {
  kernel: string;
  kind: KernelKind;
  /** Floating-point operations; null when the kernel is not in the model ({@link KernelKind} `unknown`). */
  flops: number | null;
  /** Bytes read plus bytes written (each input read once, each output written once); null when unknown. */
  bytes: number | null;
  /** FLOPs per byte; null when unknown or when no bytes move. */
  intensity: number | null;
  /** How the figures were counted. */
  note: string;
}

/** Kernels doing one operation per output element (transcendentals count as one). */
const ELEMENTWISE = new Set([
  'Abs', 'Acos', 'Acosh', 'Add', 'Asin', 'Asinh', 'Atan', 'Atan2', 'Atanh', 'BiasAdd', 'Ceil', 'ClipByValue', 'Cos', 'Cosh', 'Elu', 'EluGrad',
  'Equal', 'Erf', 'Exp', 'Expm1', 'Floor', 'FloorDiv', 'Greater', 'GreaterEqual', 'IsFinite', 'IsInf', 'IsNan', 'LeakyRelu', 'Less',
  'LessEqual', 'Log', 'Log1p', 'LogicalAnd', 'LogicalNot', 'LogicalOr', 'LogicalXor', 'Maximum', 'Minimum', 'Mod', 'Multiply', 'Neg', 'NotEqual',
  // TensorFlow's names for the same ops (gpulab's `TF:<Op>` kernels on the native backend)
  'AddV2', 'Div', 'Mul',
  'Pow', 'Prelu', 'RealDiv', 'Reciprocal', 'Relu', 'Relu6', 'ReluGrad', 'Round', 'Rsqrt', 'Select', 'Selu', 'Sigmoid', 'Sign', 'Sin', 'Sinh',
  'Softplus', 'Sqrt', 'Square', 'Step', 'Sub', 'Tan', 'Tanh',
]);
/** Elementwise kernels with more than one operation per output element. */
const ELEMENTWISE_OPS_PER_ELEMENT: Readonly<Record<string, number>> = { SquaredDifference: 2 };
/** Elementwise kernels that convert or fill without arithmetic. */
const CONVERSIONS = new Set(['Cast', 'Fill', 'OnesLike', 'ZerosLike']);
/**
 * Kernels that change only metadata (shape, reference count): no arithmetic, no copy.
 * (TensorFlow's ReadVariableOp hands out the variable's buffer, shared, not copied.)
 */
const NO_OPS = new Set(['Identity', 'Reshape', 'ReadVariableOp']);
/** One operation per input element (BiasAddGrad sums the gradient over the batch). */
const REDUCTIONS = new Set(['All', 'Any', 'ArgMax', 'ArgMin', 'BiasAddGrad', 'Max', 'Mean', 'Min', 'Prod', 'Sum']);
/**
 * TensorFlow's in-place optimizer updates, per element of the weight: FLOPs, and elements read +
 * written (the weight, its accumulator and the gradient; the weight and accumulator written back).
 */
const APPLY_UPDATES: Readonly<Record<string, { flops: number; moved: number; note: string }>> = {
  ResourceApplyMomentum: { flops: 4, moved: 5, note: 'accum = m·accum + grad; var −= lr·accum: 4 per element, 5 elements moved' },
  ResourceApplyGradientDescent: { flops: 2, moved: 3, note: 'var −= lr·grad: 2 per element, 3 elements moved' },
};
/** FLOPs per logit of a fused softmax cross-entropy with its gradient: softmax (5), log, multiply-add, subtract. */
const SOFTMAX_XENT_OPS_PER_ELEMENT = 8;
/** Kernels that copy or rearrange elements without arithmetic. */
const MOVEMENT = new Set([
  'BroadcastTo', 'Concat', 'Gather', 'GatherNd', 'GatherV2', 'MirrorPad', 'OneHot', 'Pack', 'PadV2', 'Reverse', 'Slice', 'SplitV', 'StridedSlice',
  'Tile', 'Transpose', 'Unpack',
]);
/** Matmul kernels: tfjs's `BatchMatMul` and `_FusedMatMul`, TensorFlow's `MatMul`. */
export const MATMUL_KERNELS: ReadonlySet<string> = new Set(['BatchMatMul', 'MatMul', '_FusedMatMul']);

/**
 * A kernel's op name without gpulab's `TF:` prefix (the native backend registers TensorFlow's own
 * ops as tfjs kernels named `TF:<Op>`, e.g. `TF:MatMul`).
 */
export function baseKernelName(name: string): string {
  return name.startsWith('TF:') ? name.slice(3) : name;
}
/** FLOPs per element of a softmax: max, subtract, exp, sum, divide. */
const SOFTMAX_OPS_PER_ELEMENT = 5;

/**
 * Bytes of one element of a tfjs dtype (4 when unknown: float32 and int32 are what training
 * moves). `string` counts 0: the native backend passes TensorFlow resource handles (a weight, an
 * accumulator) as string tensors, and no element data moves through the handle itself.
 */
function bytesPerElement(dtype: string | null | undefined): number {
  switch (dtype) {
    case 'bool':
      return 1;
    case 'complex64':
      return 8;
    case 'string':
      return 0;
    default:
      return 4;
  }
}

function elements(shape: readonly number[] | null | undefined): number {
  return shape ? shape.reduce((a, b) => a * b, 1) : 0;
}

function present(shape: readonly number[] | null | undefined): shape is readonly number[] {
  // tfjs records a missing optional input as null; a scalar is [] and is present.
  return shape !== null && shape !== undefined;
}

/**
 * FLOPs and bytes of one kernel call, worked out from its input and output shapes:
 *
 * - **matmul** (`MatMul`, `BatchMatMul`, `_FusedMatMul`): output `[…batch, m, n]`, and `k` from
 *   the first input's last two dimensions (`m·k` elements whatever the transpose): 2·batch·m·k·n,
 *   plus one operation per output element for a fused bias and one for a fused activation (when
 *   the call's `activation` attribute is known and not linear);
 * - **elementwise** (Add, Multiply, Relu, Exp …): one operation per output element;
 * - **reduction** (Sum, Max, Mean, ArgMax …): one operation per input element;
 * - **softmax**: five per element (max, subtract, exp, sum, divide);
 * - **conversion** (Cast, Fill, ZerosLike): no FLOPs, the bytes read and written;
 * - **movement** (Transpose, Slice, Concat, Gather …): no FLOPs; each output element read once
 *   and written once (never more read than the inputs hold);
 * - **no-op** (Identity, Reshape, ReadVariableOp): no FLOPs and no bytes (only metadata
 *   changes): pure overhead;
 * - TensorFlow's fused ops run as `TF:<Op>` kernels on the native backend: their op names are
 *   read like tfjs's (`TF:MatMul` is a matmul, `TF:Mul` elementwise, `TF:BiasAddGrad` a
 *   reduction), `SoftmaxCrossEntropyWithLogits` counts 8 per logit, and
 *   `ResourceApplyMomentum` / `ResourceApplyGradientDescent` count per element of the weight.
 *
 * Bytes are every input read once plus every output written once, at the dtypes' sizes (4 bytes
 * when unknown). Any other kernel is `unknown` with null FLOPs and bytes: listed, never guessed.
 */
export function kernelCost(call: KernelCallShapes): KernelCost {
  const name = baseKernelName(call.name);
  const inDtype = (i: number) => call.inputDtypes?.[i] ?? null;
  const outDtype = (i: number) => call.outputDtypes?.[i] ?? null;
  const inBytes = call.inputShapes.reduce<number>((a, s, i) => a + elements(s) * bytesPerElement(inDtype(i)), 0);
  const outBytes = call.outputShapes.reduce<number>((a, s, i) => a + elements(s) * bytesPerElement(outDtype(i)), 0);
  const outElements = call.outputShapes.reduce<number>((a, s) => a + elements(s), 0);
  const cost = (kind: KernelKind, flops: number | null, bytes: number | null, note: string): KernelCost => ({
    kernel: call.name,
    kind,
    flops,
    bytes,
    intensity: flops !== null && bytes ? flops / bytes : null,
    note,
  });
  if (MATMUL_KERNELS.has(name)) {
    const a = call.inputShapes[0];
    const out = call.outputShapes[0];
    if (!present(a) || !out || a.length < 2 || out.length < 2) return cost('unknown', null, null, `${name}: shapes too short to read m, k, n`);
    const m = out[out.length - 2];
    const n = out[out.length - 1];
    const k = (a[a.length - 2] * a[a.length - 1]) / m;
    const batch = elements(out) / (m * n);
    let flops = matMulFlops(m, k, n) * batch;
    const notes = [`2·${batch > 1 ? `${batch}·` : ''}${m}·${k}·${n}`];
    if (name === '_FusedMatMul') {
      const bias = call.inputShapes[2];
      if (present(bias) && elements(bias) > 0) {
        flops += elements(out);
        notes.push('+ bias');
      }
      const act = call.attrs?.activation;
      if (typeof act === 'string' && act !== 'linear') {
        flops += elements(out);
        notes.push(`+ ${act}`);
      } else if (act === undefined) notes.push('(activation not known: not counted)');
    }
    return cost('matmul', flops, inBytes + outBytes, notes.join(' '));
  }
  if (ELEMENTWISE.has(name) || name in ELEMENTWISE_OPS_PER_ELEMENT) {
    const per = ELEMENTWISE_OPS_PER_ELEMENT[name] ?? 1;
    return cost('elementwise', per * outElements, inBytes + outBytes, `${per} per output element`);
  }
  if (name === 'AddN') {
    const inputs = call.inputShapes.filter(present).length;
    return cost('elementwise', Math.max(0, inputs - 1) * outElements, inBytes + outBytes, `${inputs - 1} adds per output element`);
  }
  if (CONVERSIONS.has(name)) {
    return cost('elementwise', 0, (name === 'Cast' ? inBytes : 0) + outBytes, name === 'Cast' ? 'conversion: reads and writes, no arithmetic' : 'fill: writes only');
  }
  if (NO_OPS.has(name)) return cost('no-op', 0, 0, 'metadata only: no arithmetic, no copy');
  if (REDUCTIONS.has(name)) {
    const inElements = call.inputShapes.slice(0, 1).reduce<number>((a, s) => a + elements(s), 0);
    return cost('reduction', inElements, inBytes + outBytes, '1 per input element');
  }
  if (name === 'SoftmaxCrossEntropyWithLogits') {
    const logits = elements(call.inputShapes[0]);
    return cost('softmax', SOFTMAX_XENT_OPS_PER_ELEMENT * logits, inBytes + outBytes, `${SOFTMAX_XENT_OPS_PER_ELEMENT} per logit (softmax, log, multiply-add, subtract): loss and gradient in one kernel`);
  }
  if (name in APPLY_UPDATES) {
    const u = APPLY_UPDATES[name];
    // The weight and accumulator come in as resource handles (shape []): the gradient has the weight's size.
    const n = Math.max(0, ...call.inputShapes.map((sh) => elements(sh)));
    return cost('elementwise', u.flops * n, u.moved * n * 4, u.note);
  }
  if (name === 'Softmax') return cost('softmax', SOFTMAX_OPS_PER_ELEMENT * outElements, inBytes + outBytes, `${SOFTMAX_OPS_PER_ELEMENT} per element (max, subtract, exp, sum, divide)`);
  if (MOVEMENT.has(name)) return cost('movement', 0, Math.min(inBytes, outBytes) + outBytes, 'copy: each output element read once and written once');
  return cost('unknown', null, null, `${name}: not in the cost model (listed, not guessed)`);
}
