/**
 * Half precision, done honestly on a stack that has none.
 *
 * TensorFlow.js has no float16 or bfloat16 dtype and no half-precision kernels (its dtypes are
 * float32, int32, bool, complex64 and string), so the Keras `mixed_float16` policy cannot exist
 * as-is. What this module gives instead:
 *
 * - **Numerics**: exact IEEE round-to-nearest-even conversion float32 → float16 / bfloat16 on the
 *   host ({@link float32ToFloat16Bits}, {@link encodeFloat16}, …) and *inside a tfjs graph*
 *   ({@link roundTensor}, {@link cast}), so a model can be trained with the values a half-precision
 *   GPU would see (emulation: the arithmetic still runs in float32, so it is slower, not faster).
 * - **Loss scaling**: the dynamic loss-scaling state machine of mixed-precision training
 *   ({@link nextLossScaleState}, {@link DynamicLossScaler}).
 * - **Storage**: the 8-bit affine quantization ({@link quantizeUint8}) and float16 encoding
 *   (both in `./float-formats`, re-exported here) that `modelIO` uses to save weights as float16
 *   or uint8 in the TensorFlow.js weights format (`modelIO.saveModel(model, dir, { storage: 'float16' })`).
 * - **Arithmetic**: bytes of weights, gradients, optimizer state and activations per format
 *   ({@link precisionMemoryBudget}).
 */
import * as tf from '@tensorflow/tfjs';
import { formatInfo, type FloatFormat } from './float-formats';

// The number formats (host conversions, FORMATS, 8-bit quantization) live in ./float-formats,
// which modelIO shares; they are part of `precision.*`.
export * from './float-formats';

// ---------------------------------------------------------------------------------------------
// Emulation inside a tfjs graph

/**
 * Round every element of a float32 tensor to the nearest `format` value (round-to-nearest-even),
 * using only float32 tfjs ops, so it runs inside a graph on any backend (cpu, wasm, webgpu).
 * float16: subnormals down to 2^-24, |x| ≥ 65520 → ±Infinity, NaN stays NaN. bfloat16: the same
 * with 8 mantissa bits and float32's exponent range (float32 subnormal inputs are rounded on a
 * 2^-133 grid, which assumes the backend keeps float32 subnormals; WebGPU may flush them to zero).
 * `float32` returns a clone. Not differentiable (use {@link cast} in a model). The result matches
 * {@link roundToFormat} element for element.
 */
export function roundTensor<T extends tf.Tensor>(x: T, format: FloatFormat): T {
  const info = formatInfo(format);
  if (x.dtype !== 'float32') throw new Error(`roundTensor: expected a float32 tensor, got ${x.dtype}`);
  if (format === 'float32') return x.clone();
  return tf.tidy(() => {
    const a = tf.abs(x);
    // e = floor(log2 a), corrected by one step where log rounded across a power of two
    let e = tf.floor(tf.div(tf.log(a), Math.LN2));
    const p = tf.pow(2, e);
    e = tf.add(e, tf.sub(tf.cast(tf.lessEqual(tf.mul(p, 2), a), 'float32'), tf.cast(tf.greater(p, a), 'float32')));
    // below the smallest normal the spacing is fixed (subnormals)
    const minExp = Math.log2(info.minNormal);
    e = tf.maximum(e, minExp);
    // q = round(a / ulp) · ulp with ulp = 2^(e − mantissaBits). For bfloat16, ulp goes down to
    // 2^−133, a float32 subnormal, which backends that flush denormals to zero (TensorFlow's CPU
    // kernels do) turn into 0, and a / 0 into NaN. So scale by powers of two that stay normal:
    // 2^−e split into two halves, each within ±64.
    const h1 = tf.floor(tf.div(tf.neg(e), 2));
    const h2 = tf.sub(tf.neg(e), h1);
    const scaled = tf.mul(tf.mul(tf.mul(a, tf.pow(2, h1)), tf.pow(2, h2)), 2 ** info.mantissaBits);
    // tf.round is round-half-to-even on every backend
    let q = tf.mul(tf.mul(tf.mul(tf.round(scaled), 2 ** -info.mantissaBits), tf.pow(2, tf.neg(h1))), tf.pow(2, tf.neg(h2)));
    if (format === 'float16') {
      const overflow = tf.logicalOr(tf.greater(q, info.max), tf.isInf(a));
      q = tf.where(overflow, tf.fill(q.shape, Infinity), q);
    } else {
      q = tf.where(tf.isInf(a), a, q);
    }
    // negative, including −0 (1/−0 = −Infinity) so the sign of zero is kept as the host conversion does
    const negative = tf.logicalOr(tf.less(x, 0), tf.less(tf.div(1, x), 0));
    const signed = tf.where(negative, tf.neg(q), q);
    return tf.where(tf.isNaN(x), x, signed) as T;
  });
}

/** Options for {@link cast}. */
export interface CastOptions {
  /**
   * What the backward pass does with the incoming gradient: `'round'` (default) rounds it to the
   * same format, which is what a half-precision backward pass stores; `'identity'` passes it
   * through unchanged (a straight-through estimator).
   */
  gradient?: 'round' | 'identity';
}

/**
 * Cast a float32 tensor to `format` inside a differentiable graph: the forward value is
 * {@link roundTensor}, the gradient passes straight through (rounded to `format` too by default,
 * so small gradients underflow exactly as they would in float16). `float32` is the identity.
 */
export function cast<T extends tf.Tensor>(x: T, format: FloatFormat, options: CastOptions = {}): T {
  formatInfo(format);
  if (format === 'float32') return x;
  const roundGrad = (options.gradient ?? 'round') === 'round';
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    return {
      value: roundTensor(input, format),
      gradFunc: (dy: tf.Tensor) => (roundGrad ? roundTensor(dy, format) : dy.clone()),
    };
  });
  return f(x) as T;
}

/** A Keras-style precision policy: the format of the computation; variables always stay float32. */
export interface PrecisionPolicy {
  /** `float32`, `mixed_float16` or `mixed_bfloat16`, as Keras names them. */
  name: 'float32' | 'mixed_float16' | 'mixed_bfloat16';
  /** Format activations and weights are rounded to for the computation. */
  compute: FloatFormat;
  /** Format of the master weights (always float32, as in Keras). */
  variable: 'float32';
  /** Cast a tensor to the compute format (differentiable; identity for float32). */
  cast<T extends tf.Tensor>(x: T): T;
  /** Whether this policy needs loss scaling (only float16's narrow exponent range does). */
  needsLossScaling: boolean;
}

/**
 * The emulated counterpart of `tf.keras.mixed_precision.Policy(name)`. Matmuls under the policy
 * should be written `policy.cast(tf.matMul(policy.cast(x), policy.cast(w)))`: inputs rounded,
 * float32 accumulation (as tensor cores do), output rounded.
 */
export function policy(name: PrecisionPolicy['name']): PrecisionPolicy {
  const compute: FloatFormat =
    name === 'float32' ? 'float32' : name === 'mixed_float16' ? 'float16' : name === 'mixed_bfloat16' ? 'bfloat16' : (() => {
      throw new Error(`policy: unknown policy '${String(name)}' (expected float32, mixed_float16 or mixed_bfloat16)`);
    })();
  return {
    name,
    compute,
    variable: 'float32',
    cast: <T extends tf.Tensor>(x: T) => cast(x, compute),
    needsLossScaling: compute === 'float16',
  };
}

/** Share of the elements of `x` that are non-zero in float32 but become zero in `format`. */
export function underflowFraction(x: tf.Tensor, format: FloatFormat): number {
  return tf.tidy(() => {
    const r = roundTensor(x, format);
    const lost = tf.logicalAnd(tf.notEqual(x, 0), tf.equal(r, 0));
    return tf.mean(tf.cast(lost, 'float32')).dataSync()[0];
  });
}

// ---------------------------------------------------------------------------------------------
// Dynamic loss scaling

/** Settings of the dynamic loss scaler (defaults are Keras's `LossScaleOptimizer`'s). */
export interface LossScaleConfig {
  /** Starting scale. Default 2^15. */
  initialScale?: number;
  /** Multiply the scale by this after `growthInterval` finite steps in a row. Default 2. */
  growthFactor?: number;
  /** Multiply the scale by this when a step has inf/NaN gradients. Default 0.5. */
  backoffFactor?: number;
  /** Finite steps in a row before the scale grows. Default 2000. */
  growthInterval?: number;
  /** The scale never goes below this. Default 1. */
  minScale?: number;
  /** The scale never goes above this. Default 2^24. */
  maxScale?: number;
  /** `false` keeps the scale fixed at `initialScale` (static loss scaling; 1 = none). Default true. */
  dynamic?: boolean;
}

/** The loss scaler's state between steps. */
export interface LossScaleState {
  scale: number;
  /** Finite steps since the last growth or back-off. */
  goodSteps: number;
  /** Steps applied in total. */
  appliedSteps: number;
  /** Steps skipped in total (inf/NaN gradients). */
  skippedSteps: number;
}

/** What one step did: applied, applied and grew the scale, or skipped and backed off. */
export type LossScaleEvent = 'applied' | 'grew' | 'skipped';

function resolveConfig(c: LossScaleConfig): Required<LossScaleConfig> {
  const r: Required<LossScaleConfig> = {
    initialScale: c.initialScale ?? 2 ** 15,
    growthFactor: c.growthFactor ?? 2,
    backoffFactor: c.backoffFactor ?? 0.5,
    growthInterval: c.growthInterval ?? 2000,
    minScale: c.minScale ?? 1,
    maxScale: c.maxScale ?? 2 ** 24,
    dynamic: c.dynamic ?? true,
  };
  if (!(r.initialScale > 0) || !Number.isFinite(r.initialScale)) throw new Error(`loss scaler: initialScale must be a positive finite number, got ${r.initialScale}`);
  if (!(r.growthFactor > 1)) throw new Error(`loss scaler: growthFactor must be > 1, got ${r.growthFactor}`);
  if (!(r.backoffFactor > 0 && r.backoffFactor < 1)) throw new Error(`loss scaler: backoffFactor must be in (0, 1), got ${r.backoffFactor}`);
  if (!(r.growthInterval >= 1)) throw new Error(`loss scaler: growthInterval must be ≥ 1, got ${r.growthInterval}`);
  if (!(r.minScale > 0 && r.minScale <= r.maxScale)) throw new Error(`loss scaler: need 0 < minScale ≤ maxScale, got ${r.minScale}, ${r.maxScale}`);
  return r;
}

/** The state a scaler starts in. */
export function initialLossScaleState(config: LossScaleConfig = {}): LossScaleState {
  const c = resolveConfig(config);
  return { scale: Math.min(Math.max(c.initialScale, c.minScale), c.maxScale), goodSteps: 0, appliedSteps: 0, skippedSteps: 0 };
}

/**
 * The loss-scaling state machine, as a pure function. A step whose gradients were all finite is
 * applied; after `growthInterval` such steps in a row the scale is multiplied by `growthFactor`
 * (capped at `maxScale`). A step with any inf/NaN gradient is skipped and the scale is multiplied
 * by `backoffFactor` (floored at `minScale`), and the good-step counter restarts. With
 * `dynamic: false` the scale never changes, but non-finite steps are still skipped.
 */
export function nextLossScaleState(state: LossScaleState, gradientsFinite: boolean, config: LossScaleConfig = {}): { state: LossScaleState; event: LossScaleEvent } {
  const c = resolveConfig(config);
  if (!gradientsFinite) {
    return {
      state: {
        scale: c.dynamic ? Math.max(state.scale * c.backoffFactor, c.minScale) : state.scale,
        goodSteps: 0,
        appliedSteps: state.appliedSteps,
        skippedSteps: state.skippedSteps + 1,
      },
      event: 'skipped',
    };
  }
  const good = state.goodSteps + 1;
  if (c.dynamic && good >= c.growthInterval) {
    return {
      state: { scale: Math.min(state.scale * c.growthFactor, c.maxScale), goodSteps: 0, appliedSteps: state.appliedSteps + 1, skippedSteps: state.skippedSteps },
      event: 'grew',
    };
  }
  return { state: { ...state, goodSteps: good, appliedSteps: state.appliedSteps + 1 }, event: 'applied' };
}

/** What {@link DynamicLossScaler.minimize} reports for one step. */
export interface LossScaleStepResult {
  /** The unscaled loss of the step (NaN/inf when it overflowed). */
  loss: number;
  /** Whether every gradient was finite (false: the step was skipped). */
  finite: boolean;
  /** The scale the step used. */
  scale: number;
  event: LossScaleEvent;
}

/**
 * Dynamic loss scaling for (emulated) float16 training: multiply the loss by `scale` before
 * backprop so small gradients survive float16, check the gradients for inf/NaN, skip the step and
 * back off if any, else unscale and apply them; grow the scale after a run of good steps.
 *
 * ```ts
 * const scaler = new precision.DynamicLossScaler({ growthInterval: 200 });
 * const r = await scaler.minimize(optimizer, () => lossOf(model, xs, ys));
 * ```
 */
export class DynamicLossScaler {
  /** Current state (scale, counters). */
  state: LossScaleState;
  /** One entry per step: the scale used and the event. */
  readonly history: { step: number; scale: number; event: LossScaleEvent }[] = [];
  private readonly config: LossScaleConfig;

  /** A scaler with Keras's defaults unless overridden. */
  constructor(config: LossScaleConfig = {}) {
    resolveConfig(config);
    this.config = { ...config };
    this.state = initialLossScaleState(config);
  }

  /** The current loss scale. */
  get scale(): number {
    return this.state.scale;
  }

  /** `loss × scale` (a new tensor). */
  scaleLoss(loss: tf.Scalar): tf.Scalar {
    return tf.mul(loss, this.state.scale);
  }

  /** True when every element of every gradient is finite (one device sync). */
  async allFinite(grads: tf.NamedTensorMap | tf.Tensor[]): Promise<boolean> {
    const list = Array.isArray(grads) ? grads : Object.values(grads);
    if (list.length === 0) return true;
    const ok = tf.tidy(() => tf.all(tf.stack(list.map((g) => tf.all(tf.isFinite(g))))));
    const v = (await ok.data())[0];
    ok.dispose();
    return v === 1;
  }

  /** Advance the state machine after a step; returns the event. */
  update(gradientsFinite: boolean): LossScaleEvent {
    const { state, event } = nextLossScaleState(this.state, gradientsFinite, this.config);
    this.history.push({ step: this.history.length, scale: this.state.scale, event });
    this.state = state;
    return event;
  }

  /**
   * One training step: gradients of `scale × lossFn()` with respect to `varList` (default: all
   * trainable variables), skip on inf/NaN, else unscale and `optimizer.applyGradients`.
   * Disposes every intermediate tensor.
   */
  async minimize(optimizer: tf.Optimizer, lossFn: () => tf.Scalar, varList?: tf.Variable[]): Promise<LossScaleStepResult> {
    const scale = this.state.scale;
    const { value, grads } = tf.variableGrads(() => tf.mul(lossFn(), scale) as tf.Scalar, varList);
    try {
      const finite = await this.allFinite(grads);
      if (finite) {
        const unscaled = tf.tidy(() => {
          const out: tf.NamedTensorMap = {};
          for (const [k, g] of Object.entries(grads)) out[k] = tf.div(g, scale);
          return out;
        });
        optimizer.applyGradients(unscaled);
        tf.dispose(unscaled);
      }
      const loss = (await value.data())[0] / scale;
      const event = this.update(finite);
      return { loss, finite, scale, event };
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Memory arithmetic

/** Inputs of {@link precisionMemoryBudget}. */
export interface MemoryBudgetInput {
  /** Trainable parameters of the model. */
  parameters: number;
  /** Activation values kept per example for the backward pass (sum over layers). */
  activationsPerExample: number;
  batchSize: number;
  /** Optimizer state values per parameter (SGD 0, momentum 1, Adam 2). */
  optimizerSlots: number;
}

/** One row of {@link precisionMemoryBudget}: bytes per part under one policy. */
export interface MemoryBudgetRow {
  policy: string;
  /** Weights held: the compute copy plus, for mixed precision, the float32 master copy. */
  weights: number;
  /** Weight gradients (float32 under mixed precision: Keras casts them back to the variable's dtype). */
  gradients: number;
  /** Optimizer state (momentum, Adam moments). */
  optimizer: number;
  /** Activations kept for the backward pass. */
  activations: number;
  total: number;
  /**
   * Bytes read plus written per training step, a lower bound that ignores caches: weights read in
   * the forward and the backward pass, activations written then read and their gradients written
   * then read, weight gradients written then read, master weights and optimizer state read and
   * written by the update, and (mixed) the new float16 copy written.
   */
  trafficPerStep: number;
}

/**
 * The memory of one training step under float32, mixed float16 (Keras: float32 master weights,
 * gradients and optimizer state plus a float16 copy of the weights; float16 activations) and
 * pure float16, computed from counts. Arithmetic, not a measurement: pair it with a measured
 * `tf.memory()` / `tf.profile()` figure for the float32 row.
 */
export function precisionMemoryBudget(m: MemoryBudgetInput): MemoryBudgetRow[] {
  const P = m.parameters;
  const A = m.activationsPerExample * m.batchSize;
  const row = (name: string, compute: number, master: number, grad: number, opt: number): MemoryBudgetRow => {
    const wc = compute * P;
    const wm = master * P;
    const g = grad * P;
    const o = opt * P * m.optimizerSlots;
    const a = compute * A;
    const traffic = 2 * wc + 4 * a + 2 * g + 2 * (wm || wc) + 2 * o + (wm ? wc : 0);
    return { policy: name, weights: wc + wm, gradients: g, optimizer: o, activations: a, total: wc + wm + g + o + a, trafficPerStep: traffic };
  };
  return [
    row('float32', 4, 0, 4, 4),
    row('mixed_float16', 2, 4, 4, 4),
    row('float16 (no master copy)', 2, 0, 2, 2),
  ];
}
