/**
 * The native TensorFlow backend (tfjs-node built against pip's TensorFlow by
 * scripts/setup/tensorflow.ts): what the probe reports, the setup script's contract, and
 * correctness against the cpu backend, with gpulab's fast kernels and with tfjs-node's own.
 * Under CI=true a native backend that cannot load FAILS the suite; elsewhere those tests skip
 * with the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../../lib/backends';
import * as native from '../../../lib/backends/native';
import { inCi } from '../../../scripts/setup/test-deps';
import { runScript } from '../../support/helpers';
import { gradientComputation, relativeError, seeded, trainingComputation, valuesOn, type Computation } from '../../support/parity';

/** ‖native − cpu‖∞ / ‖cpu‖∞ bound (TensorFlow's oneDNN sums in another order than tfjs' cpu backend). */
const TOLERANCE = 1e-5;
const IN_CI = inCi();
const SCRIPT = 'scripts/setup/tensorflow.ts';

let probe: device.BackendProbe | undefined;
const errors: Record<string, number> = {};

/**
 * True when the native backend loaded (probed on first use, so that the tests above it run
 * without tfjs-node in the process). Fails under CI (setup:tensorflow must have built it), else skips.
 */
async function haveNative(t: { skip: (msg: string) => void }): Promise<boolean> {
  probe ??= (await device.listBackends({ refresh: true })).find((p) => p.name === 'tensorflow')!;
  if (probe.available) return true;
  if (IN_CI) assert.fail(`CI=true but the native tensorflow backend cannot load (npm run setup:tensorflow builds it): ${probe?.reason}`);
  t.skip(`no native tensorflow backend: ${probe?.reason}`);
  return false;
}


/**
 * Compare `fn` on tensorflow (gpulab's fast kernels, then tfjs-node's own) with the cpu backend.
 * Returns the fast-kernel counters of the fast run.
 */
async function expectClose(name: string, fn: Computation, tolerance = TOLERANCE): Promise<ReturnType<typeof native.nativeKernelStats>> {
  const cpu = await valuesOn('cpu', fn);
  await device.activateBackend('tensorflow'); // installs the fast kernels
  assert.equal(native.nativeFastKernelsInstalled(), true);
  native.resetNativeKernelStats();
  const fast = await valuesOn('tensorflow', fn);
  const used = native.nativeKernelStats();
  native.uninstallNativeFastKernels();
  let stock: Float32Array[];
  try {
    stock = await valuesOn('tensorflow', fn);
  } finally {
    native.installNativeFastKernels();
  }
  let worst = 0;
  for (const [label, got] of [['fast kernels', fast], ['tfjs-node kernels', stock]] as const) {
    cpu.forEach((c, i) => {
      const e = relativeError(got[i], c);
      worst = Math.max(worst, e);
      assert.ok(e <= tolerance, `${name} (${label}) output ${i}: relative error ${e.toExponential(2)} > ${tolerance}`);
    });
  }
  errors[name] = Number(worst.toExponential(2));
  return used;
}

// --- no native backend needed ---

test('loadedTensorflowLibrary finds the mapped TensorFlow library in /proc/self/maps text', () => {
  const maps = [
    '7f0000000000-7f0000001000 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6',
    '7f1000000000-7f1000001000 r-xp 00000000 08:01 456 /repo/.tensorflow/tensorflow-cpu-2.21.0/tensorflow/libtensorflow_cc.so.2',
    '7f2000000000-7f2000001000 r-xp 00000000 08:01 789 /repo/.tensorflow/tensorflow-cpu-2.21.0/tensorflow/libtensorflow_framework.so.2',
  ].join('\n');
  assert.equal(native.loadedTensorflowLibrary(maps), '/repo/.tensorflow/tensorflow-cpu-2.21.0/tensorflow/libtensorflow_cc.so.2');
  assert.equal(native.loadedTensorflowLibrary('7f-7f r-xp 0 0 0 /x/deps/lib/libtensorflow.so.2'), '/x/deps/lib/libtensorflow.so.2');
  assert.equal(native.loadedTensorflowLibrary(maps.split('\n')[0]), null);
});

test('the GPU package is tried first only when an NVIDIA GPU is visible', () => {
  assert.deepEqual(native.packageOrder(false), ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']);
  assert.deepEqual(native.packageOrder(true), ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
});

test("a failed setup's record becomes the probe's reason", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-tfcache-'));
  const saved = process.env.GPULAB_TF_CACHE;
  process.env.GPULAB_TF_CACHE = dir;
  try {
    assert.match(native.setupHint(), /run npm run setup:tensorflow/);
    fs.writeFileSync(path.join(dir, 'status-cpu.json'), JSON.stringify({ ok: false, variant: 'cpu', step: 'wheel', reason: 'pip could not download tensorflow-cpu==2.21.0', fix: 'check pip' }));
    assert.equal(native.setupStatus('cpu')?.step, 'wheel');
    const p = await native.probeTensorflow((id) => {
      throw new Error(`Cannot find module '${id}'`);
    }, () => true, () => false);
    assert.equal(p.available, false);
    assert.match(p.reason ?? '', /@tensorflow\/tfjs-node is not installed/);
    assert.match(p.reason ?? '', /npm run setup:tensorflow failed at step "wheel": pip could not download tensorflow-cpu==2\.21\.0 \(fix: check pip\)/);
    fs.writeFileSync(path.join(dir, 'status-cpu.json'), JSON.stringify({ ok: true, variant: 'cpu' }));
    assert.match(native.setupHint(), /built it, but it does not load now: run it again/);
  } finally {
    if (saved === undefined) delete process.env.GPULAB_TF_CACHE;
    else process.env.GPULAB_TF_CACHE = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('setup:tensorflow: GPULAB_NATIVE=0 skips; a failing step prints step, reason and fix; --optional exits 0', () => {
  const env = { ...process.env };
  delete env.CI;
  const skipped = runScript(SCRIPT, [], { env: { ...env, GPULAB_NATIVE: '0' } });
  assert.equal(skipped.status, 0);
  assert.match(skipped.stdout, /GPULAB_NATIVE=0: skipped/);

  // A python3 that fails, and an empty cache: the wheel step must fail (--force skips the
  // "already built" shortcut; nothing in node_modules is touched before the failing step).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-tfsetup-'));
  try {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'python3'), '#!/bin/sh\necho "ERROR: No matching distribution found for tensorflow-cpu==2.21.0" >&2\nexit 1\n', { mode: 0o755 });
    const failEnv = { ...env, PATH: `${path.join(dir, 'bin')}:${env.PATH}`, GPULAB_TF_CACHE: path.join(dir, 'cache') };
    const failed = runScript(SCRIPT, ['--force'], { env: failEnv });
    assert.equal(failed.status, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, /FAILED at step "wheel": pip could not download tensorflow-cpu==2\.21\.0: .*No matching distribution/);
    assert.match(failed.stderr, /fix: check that `python3 -m pip download/);
    assert.match(failed.stderr, /notebooks run on wasm/);
    const status = JSON.parse(fs.readFileSync(path.join(dir, 'cache', 'status-cpu.json'), 'utf8')) as native.SetupStatus;
    assert.equal(status.ok, false);
    assert.equal(status.step, 'wheel');
    const optional = runScript(SCRIPT, ['--force', '--optional'], { env: failEnv });
    assert.equal(optional.status, 0);
    assert.match(optional.stderr, /FAILED at step "wheel"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tfjs-node-gpu that loads without a GPU counts as a native CPU backend, naming the missing CUDA library', async () => {
  const fake = (id: string) => {
    if (!id.endsWith('-gpu')) throw new Error(`Cannot find module '${id}'`);
    tf.registerBackend('tensorflow', () => ({ isUsingGpuDevice: false, binding: { TF_Version: '2.21.0' }, dispose() {} }) as unknown as tf.KernelBackend, 0);
    return {};
  };
  assert.equal(tf.findBackendFactory('tensorflow'), null, 'this test runs before the real backend loads');
  try {
    const p = await native.probeTensorflow(fake, (lib) => lib !== 'libcudnn.so.9', () => true);
    assert.equal(p.available, true);
    assert.equal(p.accelerator, false);
    assert.equal(p.rank, 60);
    assert.equal(p.native?.device, 'CPU');
    assert.match(p.reason ?? '', /TensorFlow 2\.21\.0 on CPU.*cannot load libcudnn\.so\.9/);
  } finally {
    tf.removeBackend('tensorflow');
  }
});

// --- the native backend itself ---

test('the probe names TensorFlow 2.21 on the CPU, the library it loaded, and ranks it above wasm', async (t) => {
  if (!(await haveNative(t))) return;
  assert.equal(probe!.native?.device, 'CPU');
  assert.match(probe!.native?.tfVersion ?? '', /^2\.21\./);
  assert.match(probe!.native?.library ?? '', /libtensorflow(_cc)?\.so/);
  assert.ok(fs.existsSync(probe!.native!.library!), `${probe!.native?.library} exists`);
  assert.equal(probe!.rank, 60);
  const all = await device.listBackends();
  const names = all.filter((p) => p.available).map((p) => p.name);
  assert.ok(names.indexOf('tensorflow') < names.indexOf('wasm'), `ranking ${names.join(' › ')}`);
  const info = await device.useBackend('tensorflow');
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.equal(info.native?.tfVersion, probe!.native?.tfVersion);
  assert.equal(device.describeDevice().native?.library, probe!.native?.library);
  assert.equal(info.versions.backendPackage, '@tensorflow/tfjs-node@4.22.0');
  await device.useBackend('wasm');
});

test('matMul (plain, transposed, batched) matches the cpu backend and takes the 2-D MatMul path', async (t) => {
  if (!(await haveNative(t))) return;
  const a = seeded(67 * 129, 1);
  const b = seeded(129 * 33, 2);
  const c = seeded(3 * 5 * 7, 3);
  const used = await expectClose('matMul', () => {
    const A = tf.tensor2d(a, [67, 129]);
    const B = tf.tensor2d(b, [129, 33]);
    const C = tf.tensor3d(c, [3, 5, 7]);
    const out = [tf.matMul(A, B), tf.matMul(B, B, true, false), tf.matMul(A, A, false, true), tf.matMul(B, A, true, true), tf.matMul(C, C, false, true)];
    tf.dispose([A, B, C]);
    return out;
  });
  assert.equal(used.matMul2d, 4, 'the four 2-D products take MatMul');
  assert.equal(used.passthrough, 1, 'the batched product keeps BatchMatMulV2');
});

test('fused matMul (bias, relu, transposes) and step (ReLU gradient, NaN, alpha) match the cpu backend', async (t) => {
  if (!(await haveNative(t))) return;
  const a = seeded(20 * 30, 4);
  const w = seeded(30 * 12, 5);
  const bias = seeded(12, 6);
  const x = seeded(50, 7);
  x[3] = NaN;
  x[4] = 0;
  const used = await expectClose('fused+step', () => {
    const A = tf.tensor2d(a, [20, 30]);
    const W = tf.tensor2d(w, [30, 12]);
    const Bi = tf.tensor1d(bias);
    const X = tf.tensor1d(x);
    const out = [
      tf.fused.matMul({ a: A, b: W, bias: Bi, activation: 'relu' }),
      tf.fused.matMul({ a: A, b: tf.transpose(W), transposeB: true, bias: Bi }),
      tf.fused.matMul({ a: A, b: W, activation: 'elu' }),
      tf.step(X),
      tf.step(X, 0.25),
    ];
    tf.dispose([A, W, Bi, X]);
    return out;
  });
  assert.equal(used.fused2d, 2);
  assert.ok(used.passthrough >= 1, 'elu keeps the tfjs-node kernel');
  assert.equal(used.steps, 2);
});

test('conv2d, pooling and softmax match the cpu backend', async (t) => {
  if (!(await haveNative(t))) return;
  const x = seeded(2 * 12 * 12 * 3, 8);
  const w = seeded(3 * 3 * 3 * 8, 9);
  const l = seeded(16 * 10, 10, -30, 30);
  await expectClose('conv/pool/softmax', () => {
    const X = tf.tensor4d(x, [2, 12, 12, 3]);
    const W = tf.tensor4d(w, [3, 3, 3, 8]);
    const L = tf.tensor2d(l, [16, 10]);
    const out = [
      tf.conv2d(X, W, 1, 'same'), tf.conv2d(X, W, 2, 'valid'),
      tf.maxPool(X, 2, 2, 'valid'), tf.avgPool(X, 2, 2, 'valid'), tf.maxPool(X, 3, 1, 'same'), tf.avgPool(X, 3, 1, 'same'),
      tf.softmax(L), tf.logSoftmax(L),
    ];
    tf.dispose([X, W, L]);
    return out;
  });
});

test('gradients through conv, pooling, dense and softmax cross-entropy match the cpu backend', async (t) => {
  if (!(await haveNative(t))) return;
  await expectClose('gradients', gradientComputation(11));
});

test('a short 784-500-10 training run (SGD momentum) matches the cpu backend', async (t) => {
  if (!(await haveNative(t))) return;
  const used = await expectClose('training', trainingComputation(20));
  assert.ok(used.matMul2d + used.fused2d > 0, 'training used the fast matmul path');
  console.log(`# native vs cpu, max relative error per check: ${JSON.stringify(errors)}`);
});

test('no tensors leak through the fast kernels', async (t) => {
  if (!(await haveNative(t))) return;
  await device.useBackend('tensorflow');
  const A = tf.tensor2d(seeded(40 * 30, 30), [40, 30]);
  const W = tf.tensor2d(seeded(30 * 20, 31), [30, 20]);
  const Bi = tf.tensor1d(seeded(20, 32));
  const warm = () => tf.tidy(() => tf.grads((a, w) => tf.sum(tf.relu(tf.fused.matMul({ a: a as tf.Tensor2D, b: w as tf.Tensor2D, bias: Bi, activation: 'relu' }))))([A, W]));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) tf.dispose(warm());
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([A, W, Bi]);
  await device.useBackend('wasm');
});

// --- regression tests: the fast kernels keep tfjs's contract (issue 21) ---

test('the fast kernels still work after the tensorflow backend is re-created (tf.engine().reset())', async (t) => {
  if (!(await haveNative(t))) return;
  await device.useBackend('tensorflow');
  // Run every fast path once on this backend instance, with the shapes and constants used below.
  tf.tidy(() => {
    tf.ones([6]).reshape([2, 3]);
    tf.step(tf.tensor1d([-1, 2]), 0.5);
    tf.matMul(tf.ones([1, 2, 3]), tf.ones([1, 3, 2]));
  });
  tf.engine().reset(); // disposes the backend instance; the next use creates a new one
  await device.useBackend('tensorflow');
  assert.equal(native.nativeFastKernelsInstalled(), true);
  native.resetNativeKernelStats();
  const r = tf.ones([6]).reshape([2, 3]);
  assert.deepEqual(r.shape, [2, 3]);
  assert.deepEqual(Array.from(r.dataSync()), [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(tf.step(tf.tensor1d([-1, 0, 2, NaN]), 0.5).dataSync()), [0.5, 0.5, 1, NaN]);
  const m = tf.matMul(tf.ones([1, 2, 3]), tf.ones([1, 3, 2]));
  assert.deepEqual(m.shape, [1, 2, 2]);
  assert.deepEqual(Array.from(m.dataSync()), [3, 3, 3, 3]);
  const used = native.nativeKernelStats();
  assert.ok(used.reshapes > 0 && used.steps === 1 && used.matMul2d === 1, `the fast paths ran: ${JSON.stringify(used)}`);
  tf.engine().reset();
  await device.useBackend('wasm');
});

test('the fast kernels make no engine-tracked tensors and leave no backend data behind, from the first call', async (t) => {
  if (!(await haveNative(t))) return;
  await device.useBackend('tensorflow');
  const be = tf.backend() as unknown as { numDataIds(): number };
  const x = tf.tensor1d([-2, 0, 3, NaN]);
  const a = tf.ones([1, 3, 7]);
  const b = tf.ones([1, 7, 5]);
  const bias = tf.ones([5]);
  const run = () => tf.tidy(() => {
    tf.ones([21]).reshape([3, 7]); // a shape no test used before
    tf.step(x, 0.375); // an alpha no test used before
    tf.matMul(a, b); // 2-D MatMul on reshaped views, reshaped back to rank 3
    tf.fused.matMul({ a: a.reshape([3, 7]), b: b.reshape([7, 5]), bias, activation: 'relu' });
  });
  const tensors = tf.memory().numTensors;
  const dataIds = be.numDataIds();
  run();
  assert.equal(tf.memory().numTensors, tensors, 'engine-tracked tensors after a tidy');
  assert.equal(be.numDataIds(), dataIds, 'data ids the backend holds after a tidy');
  // tfjs's test mode checks every kernel for data it leaves in the backend (what its op suite runs under).
  tf.env().set('IS_TEST', true);
  try {
    assert.doesNotThrow(() => tf.tidy(() => tf.ones([22]).reshape([2, 11])), "no 'internal memory leak' from Reshape");
    assert.doesNotThrow(() => tf.tidy(() => tf.step(x, 0.625)), "no 'internal memory leak' from Step");
  } finally {
    tf.env().set('IS_TEST', false);
  }
  tf.dispose([x, a, b, bias]);
  await device.useBackend('wasm');
});
