/**
 * TensorFlow's own ops as tfjs kernels on the native `tensorflow` backend, for gpulab's fused
 * training step (lib/fused-step.ts).
 *
 * tfjs builds a training step out of its own small kernels: the loss alone is a dozen (max, sub,
 * exp, sum, log, …), and its gradient as many again. TensorFlow has ops that do the same work in
 * one kernel each: `SoftmaxCrossEntropyWithLogits` (per-example loss *and* its gradient),
 * `ReluGrad`, `BiasAddGrad`, `MatMul` with `transpose_a`/`transpose_b`. tfjs-node never calls
 * them. {@link registerTensorflowOps} registers each op in {@link TF_OPS} as a tfjs kernel named
 * `TF:<Op>` for the `tensorflow` backend, and {@link tfOp} runs one.
 *
 * These are **new kernel names, not overrides**: no tfjs kernel changes, so tfjs's ops and
 * tfjs-core's conformance suite are unaffected. They run through the engine (`runKernel`), not
 * around it, so `tf.profile`, kernel-wrapping tracers and `tf.memory()` see each TensorFlow op as
 * one kernel with ordinary tensor outputs. Each kernel runs exactly one TensorFlow op, keeps
 * nothing between calls, and creates no tensors of its own.
 *
 * {@link countTensorflowOps} counts the TensorFlow ops (and tensor uploads) a function really
 * executes, at the binding: the honest "kernels per step" on this backend, whichever tfjs
 * kernels issued them.
 *
 * ```ts
 * registerTensorflowOps();
 * const [loss, backprop] = tfOp('SoftmaxCrossEntropyWithLogits', { features: logits, labels }) as tf.Tensor[];
 * const { ops } = countTensorflowOps(() => step.run(xs, ys).dispose());   // { MatMul: 4, … }
 * ```
 */
import * as tf from '@tensorflow/tfjs';

const TENSORFLOW = 'tensorflow';

interface Binding {
  TF_FLOAT: number;
  TF_INT32: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
  executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): unknown;
  createTensor(...args: unknown[]): unknown;
}
interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}
type NodeBackend = tf.KernelBackend & {
  binding: Binding;
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.TensorInfo;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.TensorInfo[];
};

/** How one TensorFlow op is called: its inputs in TensorFlow's order, its outputs, its attributes. */
interface OpSpec {
  /** The tfjs input names, in the op's input order. */
  inputs: readonly string[];
  outputs: number;
  /** The TensorFlow attributes, from the kernel's tfjs attributes. */
  attrs(b: Binding, attrs: Record<string, unknown>): OpAttr[];
}

const floatT = (b: Binding): OpAttr => ({ name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT });
const int32 = (b: Binding, name: string): OpAttr => ({ name, type: b.TF_ATTR_TYPE, value: b.TF_INT32 });
const bool = (b: Binding, name: string, value: unknown): OpAttr => ({ name, type: b.TF_ATTR_BOOL, value: value === true });
const onlyT = (b: Binding) => [floatT(b)];

const SPECS = {
  /** `a·b`, either operand transposed by attribute (no copy): attrs `transposeA`, `transposeB`. */
  MatMul: { inputs: ['a', 'b'], outputs: 1, attrs: (b, a) => [floatT(b), bool(b, 'transpose_a', a.transposeA), bool(b, 'transpose_b', a.transposeB)] },
  /** `value + bias`, the bias broadcast along the last axis. */
  BiasAdd: { inputs: ['value', 'bias'], outputs: 1, attrs: onlyT },
  /** The bias gradient: `outBackprop` summed over every axis but the last. */
  BiasAddGrad: { inputs: ['outBackprop'], outputs: 1, attrs: onlyT },
  Relu: { inputs: ['features'], outputs: 1, attrs: onlyT },
  /** `gradients` where `features > 0`, else 0 (features may be ReLU's input or its output). */
  ReluGrad: { inputs: ['gradients', 'features'], outputs: 1, attrs: onlyT },
  /** Per-example softmax cross-entropy of logits `features` against `labels`, and its gradient `softmax − labels`. */
  SoftmaxCrossEntropyWithLogits: { inputs: ['features', 'labels'], outputs: 2, attrs: onlyT },
  /** Mean over the axes in the int32 tensor `axis`. */
  Mean: { inputs: ['input', 'axis'], outputs: 1, attrs: (b) => [floatT(b), int32(b, 'Tidx'), bool(b, 'keep_dims', false)] },
  Mul: { inputs: ['x', 'y'], outputs: 1, attrs: onlyT },
  AddV2: { inputs: ['x', 'y'], outputs: 1, attrs: onlyT },
  Sub: { inputs: ['x', 'y'], outputs: 1, attrs: onlyT },
  /** `tensor` with the shape in the int32 tensor `shape` (no copy). */
  Reshape: { inputs: ['tensor', 'shape'], outputs: 1, attrs: (b) => [floatT(b), int32(b, 'Tshape')] },
} satisfies Record<string, OpSpec>;

/** A TensorFlow op that {@link tfOp} can run. */
export type TfOpName = keyof typeof SPECS;

/** The TensorFlow ops registered as tfjs kernels, each under the name `TF:<Op>`. */
export const TF_OPS: readonly TfOpName[] = Object.keys(SPECS) as TfOpName[];

/** The tfjs kernel name of a TensorFlow op: `TF:<Op>`. */
export function kernelName(op: TfOpName): string {
  return `TF:${op}`;
}

/** The int32 inputs (axes, shapes); every other input must be float32. */
const INT_INPUTS = new Set(['axis', 'shape']);

function kernelFor(op: TfOpName): tf.KernelFunc {
  const spec: OpSpec = SPECS[op];
  return (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: NodeBackend; attrs?: Record<string, unknown> }) => {
    const ordered = spec.inputs.map((name) => {
      const t = inputs[name];
      if (!t) throw new Error(`${kernelName(op)}: input '${name}' is missing`);
      const want = INT_INPUTS.has(name) ? 'int32' : 'float32';
      if (t.dtype !== want) throw new Error(`${kernelName(op)}: input '${name}' must be ${want}, got ${t.dtype}`);
      return t;
    });
    const tfAttrs = spec.attrs(backend.binding, attrs ?? {});
    return spec.outputs === 1
      ? backend.executeSingleOutput(op, tfAttrs, ordered)
      : backend.executeMultipleOutputs(op, tfAttrs, ordered, spec.outputs);
  }) as unknown as tf.KernelFunc;
}

/**
 * Register every op of {@link TF_OPS} as a tfjs kernel `TF:<Op>` for the `tensorflow` backend.
 * Idempotent. Works before the backend exists (kernels are looked up when they run).
 */
export function registerTensorflowOps(): void {
  for (const op of TF_OPS) {
    if (!tf.getKernel(kernelName(op), TENSORFLOW)) {
      tf.registerKernel({ kernelName: kernelName(op), backendName: TENSORFLOW, kernelFunc: kernelFor(op) });
    }
  }
}

/**
 * Run TensorFlow op `op` through the engine on the current (`tensorflow`) backend. Inputs are
 * named as in {@link TF_OPS}' specs; returns one tensor, or an array for ops with several outputs.
 */
export function tfOp(op: TfOpName, inputs: Record<string, tf.Tensor>, attrs: Record<string, boolean> = {}): tf.Tensor | tf.Tensor[] {
  if (tf.getBackend() !== TENSORFLOW) throw new Error(`tfOp(${op}): the current backend is ${tf.getBackend()}, not ${TENSORFLOW}`);
  registerTensorflowOps();
  return tf.engine().runKernel(kernelName(op), inputs as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];
}

/** What {@link countTensorflowOps} saw. */
export interface TensorflowOpCount<T> {
  value: T;
  /** TensorFlow ops executed, by op name. */
  ops: Record<string, number>;
  /** Their total. */
  total: number;
  /** Host arrays copied into new TensorFlow tensors (uploads, e.g. tfjs-node's per-call axis tensors). */
  uploads: number;
}

/**
 * Run `fn` on the `tensorflow` backend and count the TensorFlow ops it executes (at the binding,
 * so ops issued inside a tfjs kernel count, and tfjs kernels that run none, like `Identity`, do
 * not). The binding is restored afterwards, also when `fn` throws.
 */
export function countTensorflowOps<T>(fn: () => T): TensorflowOpCount<T> {
  if (tf.getBackend() !== TENSORFLOW) throw new Error(`countTensorflowOps: the current backend is ${tf.getBackend()}, not ${TENSORFLOW}`);
  const backend = tf.backend() as unknown as NodeBackend;
  const original = backend.binding;
  const ops: Record<string, number> = {};
  let uploads = 0;
  // A child of the binding object with two counting methods; the binding's own properties are
  // read-only (N-API), so they are shadowed, not replaced.
  const counting = Object.create(original) as Binding;
  Object.defineProperty(counting, 'executeOp', {
    value: (name: string, attrs: OpAttr[], ids: number[], n: number) => {
      ops[name] = (ops[name] ?? 0) + 1;
      return original.executeOp(name, attrs, ids, n);
    },
  });
  Object.defineProperty(counting, 'createTensor', {
    value: (...args: unknown[]) => {
      uploads++;
      return original.createTensor(...args);
    },
  });
  backend.binding = counting;
  try {
    const value = fn();
    return { value, ops, total: Object.values(ops).reduce((a, b) => a + b, 0), uploads };
  } finally {
    backend.binding = original;
  }
}
