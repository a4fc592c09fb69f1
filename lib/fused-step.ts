/**
 * The fused training step: one SGD or momentum step of a dense network (ReLU or linear hidden
 * layers, logits or softmax output, softmax cross-entropy) in far fewer kernels than tfjs's
 * `optimizer.minimize`, with the same gradients.
 *
 * `optimizer.minimize` records the forward pass on a tape and replays it backwards through
 * generic gradient functions: for the article's 784-500-10 MLP that is 82 kernels per step, most
 * of them tiny (`Identity` for every variable read, `Reshape` around every matmul, `Cast`,
 * a dozen for the loss and as many for its gradient, four per variable for the momentum update).
 * Each costs a dispatch, and the elementwise ones over the 392,000-weight first layer each
 * allocate and stream a fresh 1.5 MiB. Here the backward pass is written out by hand:
 *
 * - the loss gradient is `softmax(z) − labels` (no tape, no log-softmax chain);
 * - weight gradients are matmuls with transposed operands (`BatchMatMul` on 2-D operands, so no
 *   `Reshape` kernels), bias gradients one reduction each, the ReLU gradient one mask;
 * - the 1/batch of the mean is folded into that first gradient (and, off native, the learning
 *   rate too, so every gradient comes out already scaled: momentum keeps `u = lr·v` and the
 *   update is `u ← m·u + lr·g; w ← w − u`, three kernels per variable instead of four, no casts).
 *
 * On the native `tensorflow` backend every kernel is one TensorFlow op (lib/backends/native-ops):
 * `SoftmaxCrossEntropyWithLogits` gives the per-example loss and its gradient in one kernel,
 * `ReluGrad` the mask, `BiasAddGrad` the bias gradients, `MatMul` its transposes by attribute,
 * and the update runs **in place**: `ResourceApplyMomentum` on TensorFlow resource variables,
 * one pass over each weight and no new allocation (then `ReadVariableOp` rebinds the tf.Variable).
 * On wasm, webgpu and cpu it uses tfjs kernels (`BatchMatMul`, `Softmax`, `Sum`, `Step`, …) and
 * the elementwise update; on wasm the transposed products take the fast path of
 * lib/backends/wasm-fast.
 *
 * Use it through `train.seedTrainStep` (which falls back to the stock step and says why) or the
 * `step` option of `train.trainLoop`; {@link planFusedStep} tells whether a model fits.
 */
import * as tf from '@tensorflow/tfjs';
import { countTensorflowOps, handleId, registerTensorflowOps, tfOp, updateInPlace } from './backends/native-ops';
import { recordTrace } from './monitor/trace';

/** Which step ran: tfjs's `optimizer.minimize` ('stock') or this module's ('fused'). */
export type StepKind = 'stock' | 'fused';

/**
 * The losses the fused step implements: softmax cross-entropy on logits (a linear output layer),
 * or categorical cross-entropy on a softmax output layer (Keras's pairing).
 */
export type FusedLoss = 'softmaxCrossEntropy' | 'categoricalCrossentropy';

/** The backends the fused step runs on (TensorFlow ops on `tensorflow`, tfjs kernels elsewhere). */
export const FUSED_BACKENDS: readonly string[] = ['tensorflow', 'wasm', 'webgpu', 'cpu'];

/** True when the fused step runs on `backend` (default: the current one). */
export function fusedStepAvailable(backend: string = tf.getBackend()): boolean {
  return FUSED_BACKENDS.includes(backend);
}

/**
 * The backends where the fused step is the DEFAULT step (of `train.seedTrainStep`, `trainLoop`,
 * `experiments.seedRun`), because it measured faster than the stock step there: native TensorFlow
 * (82 → 22 kernels, 15.5 → 8.6 s for the seed experiment in the bench) and wasm (82 → 32 kernels,
 * slightly faster). On `webgpu` (lavapipe, a software GPU) and the pure-JS `cpu` backend it
 * measured ≈1.4× slower per step in notebook 09, so there it runs only when asked for
 * (`step: 'fused'`). No hardware GPU has measured it yet.
 */
export const FUSED_DEFAULT_BACKENDS: readonly string[] = ['tensorflow', 'wasm'];

/** True when the fused step is the default step on `backend` (default: the current one); see {@link FUSED_DEFAULT_BACKENDS}. */
export function fusedStepIsDefault(backend: string = tf.getBackend()): boolean {
  return FUSED_DEFAULT_BACKENDS.includes(backend);
}

/** One dense layer of a plan: its variables, their positions in `model.trainableWeights`, its activation. */
interface DensePlan {
  name: string;
  kernel: tf.Variable;
  bias: tf.Variable | null;
  kernelIndex: number;
  biasIndex: number;
  relu: boolean;
}

/** What the fused step computes for one model (from {@link planFusedStep}). */
export interface FusedPlan {
  /** The dense layers, input to output. */
  layers: readonly DensePlan[];
  /** Features per example when the model starts with a Flatten layer (inputs are reshaped), else null. */
  flattenTo: number | null;
  loss: FusedLoss;
  /** `model.trainableWeights` as tf.Variables, in that order (the order of gradients and optimizer state). */
  variables: readonly tf.Variable[];
}

/** A plan, or the reason the model does not fit the fused step. */
export type PlanResult = { ok: true; plan: FusedPlan } | { ok: false; reason: string };

type LayerConfig = Record<string, unknown>;
const REGULARIZERS = ['kernelRegularizer', 'biasRegularizer', 'activityRegularizer', 'kernelConstraint', 'biasConstraint'];

/**
 * Whether `model` fits the fused step with loss `loss`: one input, one output; optionally a
 * Flatten layer first, then only Dense layers in a chain, hidden ones ReLU or linear; the output
 * linear with `softmaxCrossEntropy`, or softmax with `categoricalCrossentropy`; no regularizers or
 * constraints; every trainable weight a Dense kernel or bias. The reason names the first misfit.
 */
export function planFusedStep(model: tf.LayersModel, loss: string | null): PlanResult {
  const no = (reason: string): PlanResult => ({ ok: false, reason });
  if (loss !== 'softmaxCrossEntropy' && loss !== 'categoricalCrossentropy') {
    return no(loss === null ? 'the loss is a custom function' : `the loss is ${loss} (the fused step does softmax cross-entropy)`);
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return no('the model has several inputs or outputs');
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (!layers.length) return no('the model has no layers');
  const inputShape = model.inputs[0].shape;
  let flattenTo: number | null = null;
  let start = 0;
  if (layers[0].getClassName() === 'Flatten') {
    const dims = inputShape.slice(1);
    if (dims.some((d) => typeof d !== 'number')) return no('the Flatten input has no fixed size');
    flattenTo = (dims as number[]).reduce((a, b) => a * b, 1);
    start = 1;
  } else if (inputShape.length !== 2) {
    return no(`the input has rank ${inputShape.length} and no Flatten layer first`);
  }
  const weightIndex = new Map(model.trainableWeights.map((w, i) => [w, i]));
  const plans: DensePlan[] = [];
  for (let i = start; i < layers.length; i++) {
    const layer = layers[i];
    const cls = layer.getClassName();
    if (cls !== 'Dense') return no(`layer '${layer.name}' is a ${cls} (the fused step does Dense layers)`);
    if (layer.inboundNodes.length !== 1) return no(`layer '${layer.name}' is shared`);
    if (i > 0 && layer.input !== layers[i - 1].output) return no(`layer '${layer.name}' does not take the previous layer's output`);
    if (!layer.trainable) return no(`layer '${layer.name}' is frozen`);
    const config = layer.getConfig() as LayerConfig;
    const bad = REGULARIZERS.find((k) => config[k] != null);
    if (bad) return no(`layer '${layer.name}' has a ${bad}`);
    const activation = String(config.activation);
    const last = i === layers.length - 1;
    const allowed = last ? (loss === 'softmaxCrossEntropy' ? ['linear'] : ['softmax']) : ['relu', 'linear'];
    if (!allowed.includes(activation)) {
      return no(last
        ? `the output activation is ${activation}; with ${loss} the fused step needs ${allowed[0]}`
        : `layer '${layer.name}' has activation ${activation} (the fused step does relu or linear)`);
    }
    const [kernel, bias] = [2, 1].map((rank) => layer.trainableWeights.find((w) => w.shape.length === rank) ?? null);
    if (!kernel || layer.trainableWeights.length !== (bias ? 2 : 1)) return no(`layer '${layer.name}' has unexpected weights`);
    plans.push({
      name: layer.name,
      kernel: kernel.read() as tf.Variable,
      bias: bias ? (bias.read() as tf.Variable) : null,
      kernelIndex: weightIndex.get(kernel) ?? -1,
      biasIndex: bias ? (weightIndex.get(bias) ?? -1) : -1,
      relu: activation === 'relu',
    });
  }
  const covered = plans.reduce((n, p) => n + (p.bias ? 2 : 1), 0);
  if (covered !== model.trainableWeights.length || plans.some((p) => p.kernelIndex < 0 || (p.bias && p.biasIndex < 0))) {
    return no('the model has trainable weights outside its Dense layers');
  }
  return { ok: true, plan: { layers: plans, flattenTo, loss, variables: model.trainableWeights.map((w) => w.read() as tf.Variable) } };
}

/** Learning rate and momentum read from an optimizer, or why the fused step cannot follow it. */
export type SgdSettings = { ok: true; learningRate: number; momentum: number } | { ok: false; reason: string };

/** The SGD settings of `optimizer`: `tf.train.sgd` (momentum 0) or `tf.train.momentum` without Nesterov. */
export function sgdSettings(optimizer: tf.Optimizer): SgdSettings {
  const config = optimizer.getConfig() as { learningRate?: number; momentum?: number; useNesterov?: boolean };
  // By class name: tfjs's Optimizer overrides instanceof with a duck-typed check that any optimizer passes.
  const kind = optimizer.getClassName();
  if (kind === 'Momentum') {
    if (config.useNesterov) return { ok: false, reason: 'the optimizer uses Nesterov momentum' };
    return { ok: true, learningRate: Number(config.learningRate), momentum: Number(config.momentum) };
  }
  if (kind === 'SGD') return { ok: true, learningRate: Number(config.learningRate), momentum: 0 };
  return { ok: false, reason: `the optimizer is ${kind} (the fused step does SGD and momentum)` };
}

/** Options of {@link createFusedStep}. */
export interface FusedStepOptions {
  learningRate: number;
  /** 0 for plain SGD. */
  momentum: number;
  /**
   * A `tf.train.momentum` optimizer whose state the step shares: its momentum accumulators are
   * read when the step is made and written back (with its iteration count) by `dispose()`, so
   * stock and fused steps, and successive loops, can take turns on one optimizer.
   */
  optimizer?: tf.Optimizer;
}

/** A fused training step for one model; see the module doc. */
export interface FusedStep {
  /** Train on one batch (`ys` one-hot, like the model's output); returns the batch's mean loss. */
  run(xs: tf.Tensor, ys: tf.Tensor): tf.Scalar;
  /**
   * The mean loss and its gradients with respect to `model.trainableWeights` (in that order),
   * computed by the same code as {@link run}, without updating anything.
   */
  gradients(xs: tf.Tensor, ys: tf.Tensor): { loss: tf.Scalar; grads: tf.Tensor[] };
  /** Write the momentum state back to the optimizer (if one was given) and free the step's tensors. */
  dispose(): void;
}

/** Float32's smallest normal number: the fused loss clips probabilities here before the log. */
const TINY = 1.1754943508222875e-38;
/** Keras's epsilon: `categoricalCrossentropy` clips probabilities to [ε, 1 − ε]. */
const KERAS_EPSILON = 1e-7;

/** The kernels one step is written in: TensorFlow ops on native, tfjs kernels elsewhere. */
interface Ops {
  matMul(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor;
  biasAdd(x: tf.Tensor, bias: tf.Tensor): tf.Tensor;
  relu(x: tf.Tensor): tf.Tensor;
  /** `dy` where the ReLU output `h` is positive, else 0. */
  reluGrad(dy: tf.Tensor, h: tf.Tensor): tf.Tensor;
  /** `d` summed over the batch axis. */
  biasGrad(d: tf.Tensor): tf.Tensor;
  /** Mean loss and `(softmax(z) − ys)·scale`. */
  lossAndGrad(z: tf.Tensor, ys: tf.Tensor, scale: tf.Scalar): [tf.Scalar, tf.Tensor];
  /** `x` as `[batch, features]`. */
  flatten(x: tf.Tensor, features: number): tf.Tensor;
}

/** Scalars and int32 constants a step keeps for its lifetime (disposed with it). */
class Constants {
  private readonly kept = new Map<string, tf.Tensor>();
  get(key: string, make: () => tf.Tensor): tf.Tensor {
    let t = this.kept.get(key);
    if (!t) {
      t = tf.keep(make());
      this.kept.set(key, t);
    }
    return t;
  }
  scalar(value: number): tf.Scalar {
    return this.get(`s${value}`, () => tf.scalar(value, 'float32')) as tf.Scalar;
  }
  dispose(): void {
    tf.dispose([...this.kept.values()]);
    this.kept.clear();
  }
}

function tfjsOps(plan: FusedPlan, c: Constants): Ops {
  const clipLow = plan.loss === 'categoricalCrossentropy' ? KERAS_EPSILON : TINY;
  const clipHigh = plan.loss === 'categoricalCrossentropy' ? 1 - KERAS_EPSILON : 1;
  return {
    // BatchMatMul takes 2-D operands on every backend; tf.matMul would add three Reshape kernels.
    matMul: (a, b, transposeA, transposeB) => tf.engine().runKernel('BatchMatMul', { a, b }, { transposeA, transposeB }) as tf.Tensor,
    biasAdd: (x, bias) => tf.add(x, bias),
    relu: (x) => tf.relu(x),
    reluGrad: (dy, h) => tf.mul(dy, tf.step(h)),
    biasGrad: (d) => tf.sum(d, 0),
    lossAndGrad: (z, ys, scale) => {
      const p = tf.softmax(z);
      const grad = tf.mul(tf.sub(p, ys), scale);
      const batch = z.shape[0];
      // −mean(Σ y·log p): the log of the clipped softmax (the gradient above needs no log at all).
      const loss = tf.mul(tf.sum(tf.mul(ys, tf.log(tf.clipByValue(p, clipLow, clipHigh)))), c.scalar(-1 / batch)) as tf.Scalar;
      return [loss, grad];
    },
    flatten: (x, features) => tf.reshape(x, [x.shape[0], features]),
  };
}

function tensorflowOps(c: Constants): Ops {
  registerTensorflowOps();
  const op = (name: Parameters<typeof tfOp>[0], inputs: Record<string, tf.Tensor>, attrs?: Record<string, boolean>) => tfOp(name, inputs, attrs) as tf.Tensor;
  return {
    matMul: (a, b, transposeA, transposeB) => op('MatMul', { a, b }, { transposeA, transposeB }),
    biasAdd: (value, bias) => op('BiasAdd', { value, bias }),
    relu: (features) => op('Relu', { features }),
    reluGrad: (gradients, features) => op('ReluGrad', { gradients, features }),
    biasGrad: (outBackprop) => op('BiasAddGrad', { outBackprop }),
    lossAndGrad: (z, labels, scale) => {
      const [perExample, backprop] = tfOp('SoftmaxCrossEntropyWithLogits', { features: z, labels }) as tf.Tensor[];
      const axis = c.get('axis0', () => tf.tensor1d([0], 'int32'));
      return [op('Mean', { input: perExample, axis }) as tf.Scalar, op('Mul', { x: backprop, y: scale })];
    },
    flatten: (tensor, features) => op('Reshape', { tensor, shape: c.get(`flat${features}`, () => tf.tensor1d([-1, features], 'int32')) }),
  };
}

type Accumulations = { originalName: string; variable: tf.Variable }[];

/** The momentum accumulators of a tfjs MomentumOptimizer (by position in the variable list). */
function accumulationsOf(optimizer: tf.Optimizer | undefined): Accumulations | null {
  if (!optimizer || optimizer.getClassName() !== 'Momentum') return null;
  const acc = (optimizer as unknown as { accumulations?: Accumulations }).accumulations;
  return Array.isArray(acc) ? acc : null;
}

/** How a step applies its gradients. */
interface Updater {
  /** The factor the loss gradient is scaled by for a batch (1/batch for the mean, times lr when the update needs no lr). */
  scale(batch: number): number;
  /** Update every variable from its gradient (already scaled by {@link scale}). */
  apply(grads: tf.Tensor[]): void;
  /** Write the momentum state into `accumulations` in tfjs's convention (v, with w ← w − lr·v). */
  exportTo(accumulations: Accumulations): void;
  dispose(): void;
}

/**
 * The update in elementwise tfjs kernels (every backend but native). Momentum is kept scaled, u = lr·v, and the
 * gradients come already multiplied by lr, so `u ← m·u + lr·g; w ← w − u` is three kernels per
 * variable (tfjs: four, plus casts); plain SGD is one.
 */
function kernelUpdater(vars: readonly tf.Variable[], c: Constants, lr: number, momentum: number, accumulations: Accumulations | null): Updater {
  const velocity = momentum > 0
    ? tf.tidy(() => vars.map((w, i) => {
        const v = accumulations?.[i]?.variable;
        return (v ? tf.mul(v, lr) : tf.zerosLike(w)).variable(false);
      }))
    : null;
  return {
    scale: (batch) => lr / batch,
    apply: (grads) => vars.forEach((w, i) => {
      if (velocity) {
        const u = tf.add(tf.mul(velocity[i], c.scalar(momentum)), grads[i]);
        velocity[i].assign(u);
        w.assign(tf.sub(w, u));
      } else {
        w.assign(tf.sub(w, grads[i]));
      }
    }),
    exportTo: (acc) => velocity?.forEach((u, i) => tf.tidy(() => setAccumulation(acc, i, vars[i], tf.div(u, lr)))),
    dispose: () => {
      if (velocity) tf.dispose(velocity);
    },
  };
}

/**
 * The update on the native backend, in place: each weight (and its momentum) also lives in a
 * TensorFlow resource variable; `ResourceApplyMomentum` (or `ResourceApplyGradientDescent`) updates
 * it in one pass with no new allocation, and `ReadVariableOp` rebinds the tf.Variable to the
 * updated buffer ({@link updateInPlace}). A weight changed from outside (a stock step,
 * `setWeights`) is noticed by its data handle and copied in before the next update.
 */
function inPlaceUpdater(vars: readonly tf.Variable[], c: Constants, lr: number, momentum: number, accumulations: Accumulations | null): Updater {
  const run = (op: Parameters<typeof tfOp>[0], inputs: Record<string, tf.Tensor>, attrs?: Record<string, number[]>) => tfOp(op, inputs, attrs);
  const handle = (w: tf.Tensor) => tf.keep(run('VarHandleOp', {}, { shape: w.shape }) as tf.Tensor);
  const weights = vars.map(handle);
  const velocity = momentum > 0 ? vars.map(handle) : null;
  const bound: { dataId: object; handle: number | null }[] = [];
  const bind = (i: number) => {
    run('AssignVariableOp', { resource: weights[i], value: vars[i] });
    bound[i] = { dataId: vars[i].dataId, handle: handleId(vars[i]) };
  };
  tf.tidy(() => vars.forEach((w, i) => {
    bind(i);
    if (velocity) run('AssignVariableOp', { resource: velocity[i], value: accumulations?.[i]?.variable ?? tf.zerosLike(w) });
  }));
  return {
    scale: (batch) => 1 / batch,
    apply: (grads) => vars.forEach((w, i) => {
      if (w.dataId !== bound[i].dataId || handleId(w) !== bound[i].handle) bind(i);
      updateInPlace(
        w,
        () => velocity
          ? run('ResourceApplyMomentum', { var: weights[i], accum: velocity[i], lr: c.scalar(lr), grad: grads[i], momentum: c.scalar(momentum) })
          : run('ResourceApplyGradientDescent', { var: weights[i], alpha: c.scalar(lr), delta: grads[i] }),
        () => run('ReadVariableOp', { resource: weights[i] }) as tf.Tensor,
      );
      bound[i] = { dataId: w.dataId, handle: handleId(w) };
    }),
    exportTo: (acc) => velocity?.forEach((h, i) => tf.tidy(() => setAccumulation(acc, i, vars[i], run('ReadVariableOp', { resource: h }) as tf.Tensor))),
    dispose: () => tf.dispose([...weights, ...(velocity ?? [])]),
  };
}

/** Set tfjs momentum accumulator `i` (for variable `w`) to `value`, creating it as tfjs would. */
function setAccumulation(acc: Accumulations, i: number, w: tf.Variable, value: tf.Tensor): void {
  if (acc[i]) acc[i].variable.assign(value);
  else acc[i] = { originalName: `${w.name}/momentum`, variable: value.variable(false) };
}

/**
 * Build the fused step for a plan from {@link planFusedStep}, on the current backend (which must
 * be one of {@link FUSED_BACKENDS}). On native the weights are updated in place through
 * TensorFlow resource variables, elsewhere by elementwise kernels.
 */
export function createFusedStep(plan: FusedPlan, options: FusedStepOptions): FusedStep {
  const backend = tf.getBackend();
  if (!fusedStepAvailable(backend)) throw new Error(`createFusedStep: no fused step on the ${backend} backend (it runs on ${FUSED_BACKENDS.join(', ')})`);
  const { learningRate, momentum } = options;
  if (!(learningRate > 0) || !(momentum >= 0 && momentum < 1)) {
    throw new Error(`createFusedStep: need learningRate > 0 and 0 ≤ momentum < 1, got ${learningRate} and ${momentum}`);
  }
  const constants = new Constants();
  const native = backend === 'tensorflow';
  const ops = native ? tensorflowOps(constants) : tfjsOps(plan, constants);
  const vars = plan.variables;
  const accumulations = accumulationsOf(options.optimizer);
  vars.forEach((w, i) => {
    const v = accumulations?.[i]?.variable;
    if (v && !tf.util.arraysEqual(v.shape, w.shape)) {
      throw new Error(`createFusedStep: the optimizer's accumulator ${i} has shape [${v.shape}], its variable [${w.shape}] (was it used with another model?)`);
    }
  });
  const updater = native
    ? inPlaceUpdater(vars, constants, learningRate, momentum, accumulations)
    : kernelUpdater(vars, constants, learningRate, momentum, accumulations);
  let steps = 0;
  let disposed = false;

  /** Mean loss and every gradient times `scale(batch)`. */
  const lossAndGradients = (xs: tf.Tensor, ys: tf.Tensor, scale: (batch: number) => number): { loss: tf.Scalar; grads: tf.Tensor[] } => {
    if (disposed) throw new Error('fused step: used after dispose()');
    const batch = xs.shape[0];
    let h = plan.flattenTo !== null ? ops.flatten(xs, plan.flattenTo) : xs;
    if (h.rank !== 2 || h.shape[1] !== plan.layers[0].kernel.shape[0]) {
      throw new Error(`fused step: xs has shape [${xs.shape}], the model takes [batch, ${plan.flattenTo ?? plan.layers[0].kernel.shape[0]}]`);
    }
    const classes = plan.layers[plan.layers.length - 1].kernel.shape[1];
    if (ys.rank !== 2 || ys.shape[0] !== batch || ys.shape[1] !== classes) {
      throw new Error(`fused step: ys must be one-hot [${batch}, ${classes}] like the model's output, got [${ys.shape}]`);
    }
    const labels = ys.dtype === 'float32' ? ys : tf.cast(ys, 'float32');
    // Forward: keep each layer's input (its activations) for the backward pass.
    const inputs: tf.Tensor[] = [];
    let z = h;
    plan.layers.forEach((layer, i) => {
      inputs.push(h);
      z = ops.matMul(h, layer.kernel, false, false);
      if (layer.bias) z = ops.biasAdd(z, layer.bias);
      if (i < plan.layers.length - 1) h = layer.relu ? ops.relu(z) : z;
    });
    const [loss, dz] = ops.lossAndGrad(z, labels, constants.scalar(scale(batch)));
    // Backward, output to input.
    const grads: tf.Tensor[] = new Array(vars.length);
    let d = dz;
    for (let i = plan.layers.length - 1; i >= 0; i--) {
      const layer = plan.layers[i];
      grads[layer.kernelIndex] = ops.matMul(inputs[i], d, true, false);
      if (layer.bias) grads[layer.biasIndex] = ops.biasGrad(d);
      if (i > 0) {
        const dh = ops.matMul(d, layer.kernel, false, true);
        d = plan.layers[i - 1].relu ? ops.reluGrad(dh, inputs[i]) : dh;
      }
    }
    return { loss, grads };
  };

  return {
    run(xs, ys) {
      const loss = tf.tidy(() => {
        const { loss: l, grads } = lossAndGradients(xs, ys, updater.scale);
        updater.apply(grads);
        return l;
      });
      steps++;
      return loss;
    },
    gradients(xs, ys) {
      return tf.tidy(() => lossAndGradients(xs, ys, (batch) => 1 / batch));
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      if (options.optimizer && steps > 0) {
        if (accumulations) updater.exportTo(accumulations);
        const o = options.optimizer as unknown as { iterations_?: number };
        o.iterations_ = options.optimizer.iterations + steps;
      }
      updater.dispose();
      constants.dispose();
    },
  };
}

/** Kernels one training step dispatched (see {@link countStepKernels}). */
export interface StepKernelCount {
  backend: string;
  /**
   * tfjs kernels by name that the op layer called during the step: the same count as the kernel
   * timeline's `kernelsPerStep` (`monitor.traceSteps`, notebook 09), one home for "kernels per step".
   */
  kernels: Record<string, number>;
  /** Their total. */
  total: number;
  /** Kernels that those kernels called in turn (e.g. wasm's explicit Transposes inside BatchMatMul); not in `total`. */
  nested: number;
  /**
   * On the native backend only: the TensorFlow ops really executed (a tfjs kernel may run none,
   * like `Identity`, or several), and the host arrays uploaded into new tensors; else null.
   */
  tensorflow: { ops: Record<string, number>; total: number; uploads: number } | null;
}

/**
 * Count the kernels of one call of `step` (e.g. `() => trainStep.run(xs, ys)`), recorded with the
 * kernel-timeline recorder (`monitor.recordTrace`); its result is synced and disposed. Run it once
 * before counting so one-off work (optimizer state, constants) is left out. On the native backend
 * the same step runs a second time, counted at TensorFlow's binding.
 */
export async function countStepKernels(step: () => tf.Tensor | tf.Tensor[]): Promise<StepKernelCount> {
  const trace = await recordTrace((rec) => rec.step('count', step));
  const kernels: Record<string, number> = {};
  let total = 0;
  let nested = 0;
  for (const k of trace.kernels) {
    if (k.depth > 0) {
      nested++;
      continue;
    }
    kernels[k.name] = (kernels[k.name] ?? 0) + 1;
    total++;
  }
  const backend = tf.getBackend();
  let tensorflow: StepKernelCount['tensorflow'] = null;
  if (backend === 'tensorflow') {
    const c = countTensorflowOps(() => tf.dispose(step()));
    tensorflow = { ops: c.ops, total: c.total, uploads: c.uploads };
  }
  return { backend, kernels, total, nested, tensorflow };
}

/**
 * Kernel counts side by side, one column per count (e.g. `{ 'wasm stock': …, 'wasm fused': … }`):
 * one row per kernel name (absent = 0), sorted by the largest count, then a `total` row and, when
 * a column has them, a `TensorFlow ops` row (the native backend's ops at the binding).
 */
export function kernelCountTable(columns: Record<string, StepKernelCount>): Record<string, string | number>[] {
  const names = [...new Set(Object.values(columns).flatMap((c) => Object.keys(c.kernels)))];
  const most = (k: string) => Math.max(...Object.values(columns).map((c) => c.kernels[k] ?? 0));
  names.sort((a, b) => most(b) - most(a) || a.localeCompare(b));
  const row = (kernel: string, value: (c: StepKernelCount) => number | string) =>
    ({ kernel, ...Object.fromEntries(Object.entries(columns).map(([label, c]) => [label, value(c)])) });
  const rows = names.map((k) => row(k, (c) => c.kernels[k] ?? 0));
  rows.push(row('total', (c) => c.total));
  if (Object.values(columns).some((c) => c.tensorflow)) rows.push(row('TensorFlow ops', (c) => c.tensorflow?.total ?? ''));
  return rows;
}
