/**
 * The fused training step (lib/fused-step.ts, used through train.seedTrainStep): which models it
 * takes, gradient parity with autodiff on wasm, cpu and the native backend (webgpu: in
 * backends/webgpu.test.ts), the same training as the stock step, the optimizer state it shares,
 * no leaks, and fewer than half the kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../lib/backends';
import * as fused from '../../lib/fused-step';
import * as train from '../../lib/train';
import { fusedStepErrors, relativeError, seededBatch } from '../support/parity';
import { inCi } from '../../scripts/setup/test-deps';

/** The bound: fused gradients within 1e-5 of autodiff's (relative to the largest). */
const TOLERANCE = 1e-5;
const IN_CI = inCi();
const errors: Record<string, number> = {};

/** The models the parity checks use: the seed MLP, image-shaped input, two hidden layers (one linear), a softmax output. */
const MODELS: { name: string; build: () => tf.LayersModel; input: number[]; loss: train.LossName; batch: number }[] = [
  { name: 'seed 784-500-10', build: () => train.simpleNN(), input: [784], loss: 'softmaxCrossEntropy', batch: 100 },
  { name: 'flatten 28x28x1', build: () => train.simpleNN({ inputShape: [28, 28, 1] }), input: [28, 28, 1], loss: 'softmaxCrossEntropy', batch: 16 },
  { name: 'relu+linear hidden, no bias', build: () => twoHidden(), input: [20], loss: 'softmaxCrossEntropy', batch: 12 },
  { name: 'softmax output', build: () => train.mlp({ inputs: 30, hidden: [16], outputs: 5, outputActivation: 'softmax' }), input: [30], loss: 'categoricalCrossentropy', batch: 10 },
];

function twoHidden(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [20], units: 24, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 2 }) }),
      tf.layers.dense({ units: 16, activation: 'linear', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      tf.layers.dense({ units: 7, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 5 }) }),
    ],
  });
}

/** Gradient parity of every model on `backend`; records the worst error. */
async function parityOn(backend: string): Promise<void> {
  await device.activateBackend(backend);
  let worst = 0;
  for (const m of MODELS) {
    const model = m.build();
    const classes = model.outputs[0].shape[1] as number;
    const { xs, ys } = seededBatch(m.batch, m.input, classes, 3);
    const e = await fusedStepErrors(model, xs, ys, m.loss);
    for (const [what, err] of [['loss', e.loss], ...e.grads.map((g, i) => [`gradient ${i}`, g] as const)] as const) {
      worst = Math.max(worst, err);
      assert.ok(err <= TOLERANCE, `${backend}, ${m.name}: ${what} relative error ${err.toExponential(2)} > ${TOLERANCE}`);
    }
    tf.dispose([xs, ys]);
    model.dispose();
  }
  errors[backend] = Number(worst.toExponential(2));
}

async function nativeAvailable(t: { skip: (msg: string) => void }): Promise<boolean> {
  const probe = (await device.listBackends()).find((p) => p.name === 'tensorflow')!;
  if (probe.available) return true;
  if (IN_CI) assert.fail(`CI=true but the native tensorflow backend cannot load: ${probe.reason}`);
  t.skip(`no native tensorflow backend: ${probe.reason}`);
  return false;
}

test('planFusedStep takes dense ReLU/linear MLPs with softmax cross-entropy, and names the first misfit otherwise', async () => {
  await device.useBackend('wasm');
  const ok = (m: tf.LayersModel, loss: string | null = 'softmaxCrossEntropy') => fused.planFusedStep(m, loss);
  const seed = ok(train.simpleNN());
  assert.ok(seed.ok);
  assert.deepEqual(seed.plan.layers.map((l) => [l.relu, l.kernel.shape, l.bias?.shape]), [[true, [784, 500], [500]], [false, [500, 10], [10]]]);
  assert.equal(seed.plan.flattenTo, null);
  const image = ok(train.simpleNN({ inputShape: [28, 28, 1] }));
  assert.ok(image.ok && image.plan.flattenTo === 784);
  assert.ok(ok(twoHidden()).ok);
  assert.ok(ok(train.mlp({ inputs: 4, hidden: [3], outputs: 2, outputActivation: 'softmax' }), 'categoricalCrossentropy').ok);
  const reason = (m: tf.LayersModel, loss: string | null = 'softmaxCrossEntropy') => {
    const r = fused.planFusedStep(m, loss);
    assert.equal(r.ok, false);
    return (r as { reason: string }).reason;
  };
  assert.match(reason(train.simpleNN(), null), /custom function/);
  assert.match(reason(train.simpleNN(), 'meanSquaredError'), /meanSquaredError/);
  assert.match(reason(train.mlp({ inputs: 4, hidden: [3], outputs: 2, activation: 'tanh' })), /activation tanh/);
  assert.match(reason(train.mlp({ inputs: 4, hidden: [3], outputs: 2, outputActivation: 'softmax' })), /output activation is softmax.*needs linear/);
  assert.match(reason(train.simpleNN(), 'categoricalCrossentropy'), /output activation is linear.*needs softmax/);
  const dropout = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'relu' }), tf.layers.dropout({ rate: 0.5 }), tf.layers.dense({ units: 2 })] });
  assert.match(reason(dropout), /Dropout/);
  const regularized = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2, kernelRegularizer: tf.regularizers.l2() })] });
  assert.match(reason(regularized), /kernelRegularizer/);
  const frozen = train.mlp({ inputs: 4, hidden: [3], outputs: 2 });
  frozen.layers[0].trainable = false;
  assert.match(reason(frozen), /frozen/);
  const conv = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
  assert.match(reason(conv), /rank 4 and no Flatten|Conv2D/);
});

test('sgdSettings reads SGD and momentum, and refuses Nesterov and other optimizers', () => {
  assert.deepEqual(fused.sgdSettings(tf.train.momentum(0.01, 0.9)), { ok: true, learningRate: 0.01, momentum: 0.9 });
  assert.deepEqual(fused.sgdSettings(tf.train.sgd(0.1)), { ok: true, learningRate: 0.1, momentum: 0 });
  assert.match((fused.sgdSettings(tf.train.momentum(0.01, 0.9, true)) as { reason: string }).reason, /Nesterov/);
  assert.match((fused.sgdSettings(tf.train.adam()) as { reason: string }).reason, /Adam/);
});

test('fused gradients match autodiff within 1e-5 on wasm', async () => {
  await parityOn('wasm');
});

test('fused gradients match autodiff within 1e-5 on cpu', async () => {
  await parityOn('cpu');
});

test('fused gradients match autodiff within 1e-5 on the native backend (TensorFlow ops)', async (t) => {
  if (!(await nativeAvailable(t))) return;
  await parityOn('tensorflow');
});

/**
 * Train the same model from the same weights for `steps` batches with the stock and the fused
 * step; return the relative error of what training changed in each weight (compared as deltas,
 * so a wrong update cannot hide behind the unchanged part of the weights), and the losses.
 */
function trainBoth(backend: string, momentum: number, steps: number): { deltas: number[]; losses: [number[], number[]] } {
  const init = train.mlp({ inputs: 40, hidden: [32], outputs: 6, seed: 9 }).getWeights().map((w) => w.dataSync().slice());
  const result = (['stock', 'fused'] as const).map((kind) => {
    const model = train.mlp({ inputs: 40, hidden: [32], outputs: 6, seed: 9 });
    const step = train.seedTrainStep(model, { learningRate: 0.05, momentum, step: kind });
    assert.equal(step.kind, kind, `${backend}: ${step.reason}`);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const { xs, ys } = seededBatch(16, [40], 6, 100 + i);
      const loss = step.run(xs, ys);
      losses.push(loss.dataSync()[0]);
      tf.dispose([xs, ys, loss]);
    }
    step.dispose();
    const deltas = model.getWeights().map((w, i) => w.dataSync().map((v, j) => v - init[i][j]));
    model.dispose();
    return { deltas, losses };
  });
  return { deltas: result[1].deltas.map((d, i) => relativeError(d, result[0].deltas[i])), losses: [result[0].losses, result[1].losses] };
}

test('the fused step trains like the stock step: same losses and weight updates over 8 steps (momentum and plain SGD)', async () => {
  for (const backend of ['wasm', 'cpu']) {
    await device.activateBackend(backend);
    for (const momentum of [0.9, 0]) {
      const r = trainBoth(backend, momentum, 8);
      r.deltas.forEach((e, i) => assert.ok(e <= TOLERANCE, `${backend}, momentum ${momentum}: update of weight ${i} differs by ${e.toExponential(2)}`));
      assert.ok(relativeError(r.losses[1], r.losses[0]) <= 1e-5, `${backend}: losses ${r.losses[1]} vs ${r.losses[0]}`);
      assert.ok(r.losses[1][7] < r.losses[1][0], 'the loss fell');
    }
  }
});

test('on native the fused step trains like the stock step too', async (t) => {
  if (!(await nativeAvailable(t))) return;
  await device.activateBackend('tensorflow');
  const r = trainBoth('tensorflow', 0.9, 8);
  r.deltas.forEach((e, i) => assert.ok(e <= TOLERANCE, `tensorflow: update of weight ${i} differs by ${e.toExponential(2)}`));
});

/** The backends every test below runs on: wasm and cpu, and the native one where it loads. */
async function stepBackends(): Promise<string[]> {
  return (await nativeAvailable({ skip: () => undefined })) ? ['wasm', 'cpu', 'tensorflow'] : ['wasm', 'cpu'];
}

test('a fused step shares its optimizer\'s momentum state: stock and fused steps can take turns', async () => {
  for (const backend of await stepBackends()) {
    await device.activateBackend(backend);
    for (const momentum of [0.9, 0]) {
      const run = (kinds: train.StepKind[]) => {
        const model = train.mlp({ inputs: 12, hidden: [8], outputs: 3, seed: 4 });
        const optimizer = momentum ? tf.train.momentum(0.05, momentum) : tf.train.sgd(0.05);
        for (const [i, kind] of kinds.entries()) {
          const step = train.seedTrainStep(model, { optimizer, step: kind });
          const { xs, ys } = seededBatch(8, [12], 3, 40 + i);
          tf.dispose([step.run(xs, ys), xs, ys]);
          step.dispose();
        }
        const weights = model.getWeights().map((w) => w.dataSync().slice());
        const iterations = optimizer.iterations;
        train.disposeOptimizer(optimizer);
        model.dispose();
        return { weights, iterations };
      };
      const stock = run(['stock', 'stock', 'stock', 'stock']);
      const mixed = run(['fused', 'stock', 'fused', 'fused']);
      assert.equal(mixed.iterations, 4);
      mixed.weights.forEach((w, i) => assert.ok(relativeError(w, stock.weights[i]) <= TOLERANCE, `${backend}, momentum ${momentum}, weight ${i}: ${relativeError(w, stock.weights[i])}`));
    }
  }
});

test('the fused step leaks nothing: tensors flat per step, all freed by dispose', async () => {
  for (const backend of await stepBackends()) {
    await device.activateBackend(backend);
    const model = train.mlp({ inputs: 20, hidden: [10], outputs: 4, inputShape: [4, 5] });
    const before = tf.memory().numTensors;
    const step = train.seedTrainStep(model, { step: 'fused' });
    const { xs, ys } = seededBatch(6, [4, 5], 4, 1);
    tf.dispose(step.run(xs, ys));
    const after1 = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(step.run(xs, ys));
    assert.equal(tf.memory().numTensors, after1, `${backend}: tensors grew per step`);
    const g = step.gradients(xs, ys);
    tf.dispose([g.loss, ...g.grads]);
    step.dispose();
    step.dispose(); // idempotent
    assert.equal(tf.memory().numTensors, before + 2, `${backend}: only the batch is left`);
    assert.throws(() => step.run(xs, ys), /used after dispose/);
    tf.dispose([xs, ys]);
    model.dispose();
  }
});

test('native in-place updates keep tfjs semantics: clones keep old values, outside changes are picked up, two steps can take turns', async (t) => {
  if (!(await nativeAvailable(t))) return;
  await device.activateBackend('tensorflow');
  const batches = [0, 1, 2, 3].map((i) => seededBatch(8, [12], 3, 60 + i));
  const train4 = (steps: (model: tf.LayersModel) => train.SeedTrainStep[], between?: (model: tf.LayersModel, i: number) => void) => {
    const model = train.mlp({ inputs: 12, hidden: [8], outputs: 3, seed: 8 });
    const made = steps(model);
    batches.forEach(({ xs, ys }, i) => {
      between?.(model, i);
      tf.dispose(made[i % made.length].run(xs, ys));
    });
    made.forEach((s) => s.dispose());
    const w = model.getWeights().map((x) => x.dataSync().slice() as Float32Array);
    model.dispose();
    return w;
  };
  const sgd = (m: tf.LayersModel) => train.seedTrainStep(m, { learningRate: 0.05, momentum: 0 });
  const reference = train4((m) => [train.seedTrainStep(m, { learningRate: 0.05, momentum: 0, step: 'stock' })]);
  const close = (w: Float32Array[], what: string) => w.forEach((x, i) => assert.ok(relativeError(x, reference[i]) <= TOLERANCE, `${what}: weight ${i} off by ${relativeError(x, reference[i])}`));
  close(train4((m) => [sgd(m)]), 'one fused step');
  close(train4((m) => [sgd(m), sgd(m)]), 'two fused steps taking turns');
  // A clone taken between steps keeps the values it had (the update copies instead of going in place).
  const clones: { clone: tf.Tensor; values: Float32Array }[] = [];
  close(train4((m) => [sgd(m)], (m, i) => {
    const w = m.trainableWeights[0].read();
    const clone = tf.clone(w);
    clones.push({ clone, values: clone.dataSync().slice() as Float32Array });
    if (i === 2) m.setWeights(m.getWeights()); // written from outside: same values, new data
  }), 'with clones and setWeights between steps');
  for (const { clone, values } of clones) {
    assert.deepEqual(clone.dataSync(), values, 'a clone changed when the weight was updated');
    clone.dispose();
  }
  // Weights set from outside between steps are what the next step starts from.
  const model = train.mlp({ inputs: 12, hidden: [8], outputs: 3, seed: 8 });
  const step = sgd(model);
  tf.dispose(step.run(batches[0].xs, batches[0].ys));
  model.setWeights(model.getWeights().map((w) => tf.zerosLike(w)));
  tf.dispose(step.run(batches[1].xs, batches[1].ys));
  assert.ok(model.getWeights()[0].dataSync().every((v) => Math.abs(v) < 1e-3), 'the step started from the zeros set outside');
  step.dispose();
  model.dispose();
  for (const b of batches) tf.dispose([b.xs, b.ys]);
});

test('bad batches get clear errors', async () => {
  await device.activateBackend('wasm');
  const model = train.mlp({ inputs: 6, hidden: [4], outputs: 3 });
  const step = train.seedTrainStep(model, {});
  const x = tf.zeros([2, 6]);
  assert.throws(() => step.run(tf.zeros([2, 5]), tf.zeros([2, 3])), /xs has shape \[2,5\], the model takes \[batch, 6\]/);
  assert.throws(() => step.run(x, tf.zeros([2])), /ys must be one-hot \[2, 3\]/);
  step.dispose();
  model.dispose();
  tf.dispose(x);
});

test('the fused step dispatches fewer than half the kernels of optimizer.minimize', async (t) => {
  const backends = ['wasm', 'cpu'];
  if (await nativeAvailable({ skip: () => undefined })) backends.push('tensorflow');
  else t.diagnostic('native backend not available: counted on wasm and cpu only');
  for (const backend of backends) {
    await device.activateBackend(backend);
    const model = train.simpleNN();
    const { xs, ys } = seededBatch(100, [784], 10, 2);
    const counts: Record<string, train.StepKernelCount> = {};
    for (const kind of ['stock', 'fused'] as const) {
      const step = train.seedTrainStep(model, { step: kind });
      tf.dispose(step.run(xs, ys)); // optimizer state first
      counts[kind] = await train.countStepKernels(() => step.run(xs, ys));
      step.dispose();
    }
    const { stock, fused: f } = counts;
    assert.ok(2 * f.total <= stock.total, `${backend}: ${f.total} fused kernels vs ${stock.total} stock`);
    for (const noop of ['Identity', 'Reshape', 'Cast']) assert.equal(f.kernels[noop] ?? 0, 0, `${backend}: the fused step runs ${noop}`);
    if (backend === 'tensorflow') {
      assert.equal(f.total, f.tensorflow!.total, 'on native every fused kernel is one TensorFlow op');
      assert.equal(f.tensorflow!.ops.SoftmaxCrossEntropyWithLogits, 1);
      assert.equal(f.tensorflow!.uploads, 0, 'no per-step uploads');
      assert.ok(2 * f.tensorflow!.total <= stock.tensorflow!.total, `TensorFlow ops: ${f.tensorflow!.total} vs ${stock.tensorflow!.total}`);
    }
    tf.dispose([xs, ys]);
    model.dispose();
  }
});

test('report: fused-vs-autodiff gradient errors per backend', () => {
  console.log(`# fused step vs autodiff, max relative error of loss and gradients: ${JSON.stringify(errors)}`);
});
