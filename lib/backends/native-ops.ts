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
 * nothing between calls, and creates no tensors of its own. (`handleId` and `updateInPlace` read
 * tfjs-node 4.22's per-tensor records, `backend.tensorMap`: internals, checked by the tests.)
 *
 * TensorFlow also updates weights **in place**: `ResourceApplyMomentum` reads the weight, its
 * momentum and its gradient and writes weight and momentum back in one pass, where tfjs's
 * momentum allocates and streams four new weight-sized tensors. That needs resource variables
 * (`VarHandleOp`, `AssignVariableOp`, `ReadVariableOp`), and {@link updateInPlace} keeps a tfjs
 * tf.Variable bound to the updated buffer without a copy.
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

/** tfjs-node's binding to libtensorflow: the constants and calls gpulab uses (the types are not exported by tfjs-node). */
export interface TfBinding {
  TF_Version: string;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  TF_COMPLEX64: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_STRING: number;
  TF_ATTR_SHAPE: number;
  executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): unknown;
  createTensor(...args: unknown[]): unknown;
  deleteTensor(id: number): void;
}
/** One attribute of a TensorFlow op call, as the binding takes it. */
export interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}
/** tfjs-node's record of one tensor's data: the TensorFlow handle id (-1: none), values not yet uploaded, references. */
interface TensorData {
  id: number;
  values: unknown;
  refCount: number;
}
/** tfjs-node's kernel backend (`NodeJSKernelBackend`): the parts gpulab calls. */
export type NodeBackend = tf.KernelBackend & {
  binding: TfBinding;
  isUsingGpuDevice: boolean;
  tensorMap: { has(dataId: object): boolean; get(dataId: object): TensorData };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.TensorInfo;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.TensorInfo[];
  /** Store values in the backend only (no engine tensor); TensorFlow gets them when an op first reads them. */
  write(values: Int32Array | Float32Array, shape: number[], dtype: tf.DataType): object;
  disposeData(dataId: object): boolean | void;
};

/** How one TensorFlow op is called: its inputs in TensorFlow's order, its outputs, its attributes. */
interface OpSpec {
  /** The tfjs input names, in the op's input order. */
  inputs: readonly string[];
  outputs: number;
  /** The TensorFlow attributes, from the kernel's tfjs attributes. */
  attrs(b: TfBinding, attrs: Record<string, unknown>): OpAttr[];
}

/** The `T` attribute of an op on float32 values, which most TensorFlow ops take. */
export const floatT = (b: TfBinding): OpAttr => ({ name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT });
const int32 = (b: TfBinding, name: string): OpAttr => ({ name, type: b.TF_ATTR_TYPE, value: b.TF_INT32 });
const bool = (b: TfBinding, name: string, value: unknown): OpAttr => ({ name, type: b.TF_ATTR_BOOL, value: value === true });
const onlyT = (b: TfBinding) => [floatT(b)];
const dtypeAttr = (b: TfBinding): OpAttr => ({ name: 'dtype', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT });
/** ResourceHandle::ANONYMOUS_NAME: a variable owned by its handle, freed with the last handle (no name to clash). */
const ANONYMOUS = 'cd2c89b7-88b7-44c8-ad83-06c2a9158347';

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
  /** A new float32 resource variable of attr `shape` (its handle, tfjs dtype 'string'), freed with its last handle. */
  VarHandleOp: {
    inputs: [], outputs: 1,
    attrs: (b, a) => [{ name: 'container', type: b.TF_ATTR_STRING, value: '' }, { name: 'shared_name', type: b.TF_ATTR_STRING, value: ANONYMOUS }, dtypeAttr(b), { name: 'shape', type: b.TF_ATTR_SHAPE, value: a.shape }],
  },
  /** Set the variable behind `resource` to `value` (no outputs). */
  AssignVariableOp: { inputs: ['resource', 'value'], outputs: 0, attrs: (b) => [dtypeAttr(b)] },
  /** The variable's value (sharing its buffer until the variable is next updated). */
  ReadVariableOp: { inputs: ['resource'], outputs: 1, attrs: (b) => [dtypeAttr(b)] },
  /** In place: `accum ← accum·momentum + grad; var ← var − lr·accum` (tfjs's momentum; no outputs). */
  ResourceApplyMomentum: { inputs: ['var', 'accum', 'lr', 'grad', 'momentum'], outputs: 0, attrs: (b) => [floatT(b), bool(b, 'use_locking', false), bool(b, 'use_nesterov', false)] },
  /** In place: `var ← var − alpha·delta` (no outputs). */
  ResourceApplyGradientDescent: { inputs: ['var', 'alpha', 'delta'], outputs: 0, attrs: (b) => [floatT(b), bool(b, 'use_locking', false)] },
} satisfies Record<string, OpSpec>;

/** A TensorFlow op that {@link tfOp} can run. */
export type TfOpName = keyof typeof SPECS;

/** The TensorFlow ops registered as tfjs kernels, each under the name `TF:<Op>`. */
export const TF_OPS: readonly TfOpName[] = Object.keys(SPECS) as TfOpName[];

/** The tfjs kernel name of a TensorFlow op: `TF:<Op>`. */
export function kernelName(op: TfOpName): string {
  return `TF:${op}`;
}

const KERNEL_NAMES = Object.fromEntries(TF_OPS.map((op) => [op, kernelName(op)])) as Record<TfOpName, string>;

/** The int32 inputs (axes, shapes) and resource handles (tfjs dtype 'string'); every other input must be float32. */
const INPUT_DTYPES: Record<string, tf.DataType> = { axis: 'int32', shape: 'int32', resource: 'string', var: 'string', accum: 'string' };

function kernelFor(op: TfOpName): tf.KernelFunc {
  const spec: OpSpec = SPECS[op];
  const wants = spec.inputs.map((name) => INPUT_DTYPES[name] ?? 'float32');
  return (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: NodeBackend; attrs?: Record<string, unknown> }) => {
    const ordered: tf.TensorInfo[] = new Array(spec.inputs.length);
    for (let i = 0; i < spec.inputs.length; i++) {
      const t = inputs[spec.inputs[i]];
      if (!t) throw new Error(`${kernelName(op)}: input '${spec.inputs[i]}' is missing`);
      if (t.dtype !== wants[i]) throw new Error(`${kernelName(op)}: input '${spec.inputs[i]}' must be ${wants[i]}, got ${t.dtype}`);
      ordered[i] = t;
    }
    const tfAttrs = spec.attrs(backend.binding, attrs ?? {});
    return spec.outputs === 1
      ? backend.executeSingleOutput(op, tfAttrs, ordered)
      : backend.executeMultipleOutputs(op, tfAttrs, ordered, spec.outputs); // [] for ops without outputs
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
export function tfOp(op: TfOpName, inputs: Record<string, tf.Tensor>, attrs: Record<string, boolean | number[]> = {}): tf.Tensor | tf.Tensor[] {
  if (tf.getBackend() !== TENSORFLOW) throw new Error(`tfOp(${op}): the current backend is ${tf.getBackend()}, not ${TENSORFLOW}`);
  const name = KERNEL_NAMES[op];
  // One registry lookup per call (a fused step runs ≈22 ops, so every microsecond here counts).
  if (!tf.getKernel(name, TENSORFLOW)) registerTensorflowOps();
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];
}

/**
 * The id of the TensorFlow tensor handle behind `t` (it changes whenever new data is bound to
 * `t`, also by {@link updateInPlace}), or null when `t` has none yet (values not uploaded).
 */
export function handleId(t: tf.Tensor): number | null {
  const be = tf.backend() as unknown as NodeBackend;
  if (!be.tensorMap.has(t.dataId)) return null;
  const data = be.tensorMap.get(t.dataId);
  return data.values == null && data.id >= 0 ? data.id : null;
}

/**
 * Let TensorFlow update the buffer behind tfjs tensor `target` in place, keeping `target` (a
 * tf.Variable, say) the same object with the same data id.
 *
 * `update()` runs an in-place op on a resource variable (e.g. `ResourceApplyMomentum`), `read()`
 * returns the variable's new value (`ReadVariableOp`). TensorFlow updates a buffer in place only
 * when no other handle shares it; so when nothing else in tfjs shares `target`'s data (refCount 1),
 * `target`'s own handle is released first and the read's handle is bound to `target` afterwards.
 * When something does share it (a clone, say), that sharer must keep the old values: TensorFlow
 * then copies before updating, and `target` is assigned the read like any tfjs update (new data id).
 * Returns true when the update was in place.
 */
export function updateInPlace(target: tf.Variable, update: () => void, read: () => tf.Tensor): boolean {
  const be = tf.backend() as unknown as NodeBackend;
  const data = be.tensorMap.has(target.dataId) ? be.tensorMap.get(target.dataId) : null;
  const exclusive = data !== null && data.refCount === 1 && data.values == null && data.id >= 0;
  if (exclusive) {
    be.binding.deleteTensor(data.id);
    data.id = -1;
  }
  try {
    update();
  } finally {
    const value = read();
    if (exclusive) {
      const fresh = be.tensorMap.get(value.dataId);
      data.id = fresh.id; // target now owns the read's handle…
      fresh.id = -1; // …and disposing the read's own record deletes no handle
      value.dispose();
    } else {
      target.assign(value);
      value.dispose();
    }
  }
  return exclusive;
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
  const counting = Object.create(original) as TfBinding;
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
