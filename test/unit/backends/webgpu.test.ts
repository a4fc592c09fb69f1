/**
 * The WebGPU (Dawn) backend: adapter description and ranking, clean teardown, and correctness
 * against the cpu backend on the ops a training run needs. On a machine without a GPU this runs
 * on Mesa lavapipe (`npm run setup:test-deps` installs it). Under CI=true a missing adapter FAILS
 * the suite; elsewhere the GPU tests are skipped with the reason and that command.
 *
 * Sizes are small on purpose: lavapipe emulates the GPU on the CPU, and every new shader costs a
 * compile (seconds, cold).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../../lib/backends';
import * as registry from '../../../lib/backends/registry';
import * as webgpu from '../../../lib/backends/webgpu';
import { ROOT } from '../../support/helpers';
import * as train from '../../../lib/train';
import { skipUnlessInstalled } from '../../support/system-deps';
import { fusedStepErrors, gradientComputation, relativeError, seeded, seededBatch, trainingComputation, valuesOn, type Computation } from '../../support/parity';

/** The relative error bound of the issue: ‖webgpu − cpu‖∞ / ‖cpu‖∞ ≤ 1e-5. */
const TOLERANCE = 1e-5;

let probe: device.BackendProbe;
const errors: Record<string, number> = {};

before(async () => {
  probe = await webgpu.probeWebgpu();
});

after(async () => {
  if (Object.keys(errors).length) {
    console.log(`# webgpu vs cpu, max relative error per check: ${JSON.stringify(errors)}`);
  }
  await webgpu.shutdown();
});

/** True when an adapter exists. Fails under CI (the software adapter must be there), else skips. */
function haveAdapter(t: { skip: (msg: string) => void }): boolean {
  if (probe.available) return true;
  const skip = skipUnlessInstalled('a WebGPU adapter (on a machine without a GPU: lavapipe, software Vulkan)', probe.reason ?? 'no adapter');
  if (!skip) assert.fail(`CI=true but no WebGPU adapter could be created (npm run setup:test-deps installs lavapipe): ${probe.reason}`);
  t.skip(skip);
  return false;
}

/** Run `fn` on the cpu backend and on webgpu (small ops really on the GPU); return each output's values, per backend. */
async function onBoth(fn: Computation): Promise<{ cpu: Float32Array[]; gpu: Float32Array[] }> {
  const cpu = await valuesOn('cpu', fn);
  const gpu = await valuesOn('webgpu', fn, () => {
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    assert.equal(tf.env().getBool('WEBGPU_CPU_FORWARD'), false);
  });
  return { cpu, gpu };
}

async function expectClose(name: string, fn: Computation): Promise<void> {
  const { cpu, gpu } = await onBoth(fn);
  let worst = 0;
  cpu.forEach((c, i) => {
    const e = relativeError(gpu[i], c);
    worst = Math.max(worst, e);
    assert.ok(e <= TOLERANCE, `${name} output ${i}: relative error ${e.toExponential(2)} > ${TOLERANCE}`);
  });
  errors[name] = Number(worst.toExponential(2));
}

// --- no GPU needed ---

test('isSoftwareAdapter recognises lavapipe, llvmpipe, SwiftShader and fallback adapters', () => {
  const lavapipe = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1' };
  assert.equal(webgpu.isSoftwareAdapter(lavapipe), true);
  assert.equal(webgpu.isSoftwareAdapter({ vendor: 'google', architecture: '', device: 'swiftshader-device', description: 'SwiftShader Device (Subzero)' }), true);
  assert.equal(webgpu.isSoftwareAdapter({ vendor: 'x', architecture: '', device: '', description: '', isFallbackAdapter: true }), true);
  const h100 = { vendor: 'nvidia', architecture: 'hopper', device: 'nvidia-h100-80gb-hbm3', description: 'NVIDIA: 550.90.07 550.90.7.0' };
  assert.equal(webgpu.isSoftwareAdapter(h100), false);
  assert.equal(webgpu.adapterDisplayName({ ...lavapipe }, true), 'lavapipe (Mesa 25.0.7)');
  assert.equal(webgpu.adapterDisplayName({ vendor: 'amd', architecture: 'rdna-3', device: 'radeon-rx-7900-xtx', description: 'AMD' }, false), 'AMD RADEON RX 7900 XTX');
  assert.equal(webgpu.driverFromDescription(lavapipe.description), 'Mesa 25.0.7-2~bpo12+1');
  assert.equal(webgpu.driverFromDescription(h100.description), '550.90.07');
});

test('a software webgpu adapter ranks below wasm, a hardware one above it', async () => {
  const fake = (software: boolean): device.BackendProvider => ({
    name: 'webgpu',
    probe: async () => ({
      name: 'webgpu', available: true, accelerator: !software, software, deviceName: software ? 'lavapipe' : 'GPU',
      adapter: { vendor: 'v', architecture: '', device: 'd', description: '' },
      rank: software ? webgpu.SOFTWARE_RANK : webgpu.HARDWARE_RANK,
    }),
  });
  try {
    for (const software of [true, false]) {
      registry.registerBackendProvider(fake(software));
      const names = (await device.listBackends()).filter((p) => p.available).map((p) => p.name);
      assert.equal(names.indexOf('webgpu') < names.indexOf('wasm'), !software, `software=${software}: ${names.join(' > ')}`);
    }
  } finally {
    registry.registerBackendProvider(webgpu.webgpuProvider);
  }
});

/** Run a CommonJS snippet in a fresh Node with tsx (so it can require the .ts sources). */
function child(code: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...env, GPULAB_BACKEND: '' },
  });
}
const LIB = JSON.stringify(path.join(ROOT, 'lib', 'index.ts'));

test('importing gpulab does not load Dawn, and a Dawn that fails to load only marks webgpu unavailable', () => {
  const r = child(`
    const Module = require('node:module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (req, ...rest) {
      if (req === 'webgpu') throw Object.assign(new Error("dawn.node: libstdc++.so.6: version GLIBCXX_3.4.30 not found"), { code: 'ERR_DLOPEN_FAILED' });
      return resolve.call(this, req, ...rest);
    };
    const g = require(${LIB});
    const loaded = Object.keys(require.cache).filter((f) => /dawn\\.node|tfjs-backend-webgpu[\\\\/]dist|[\\\\/]webgpu[\\\\/]index/.test(f));
    (async () => {
      const probes = await g.device.listBackends();
      const w = probes.find((p) => p.name === 'webgpu');
      const info = await g.device.useBackend();
      console.log(JSON.stringify({ loaded, gpu: typeof globalThis.navigator?.gpu, w, chosen: info.backend }));
    })();`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.deepEqual(out.loaded, [], 'Dawn or the webgpu backend was loaded at import time');
  assert.equal(out.gpu, 'undefined');
  assert.equal(out.w.available, false);
  assert.match(out.w.reason, /'webgpu' package \(dawn\.node\) failed to load: .*GLIBCXX_3\.4\.30/);
  assert.notEqual(out.chosen, 'webgpu');
});

// --- GPU (or lavapipe) needed ---

test('probe describes the adapter, and setBackend really takes', async (t) => {
  if (!haveAdapter(t)) return;
  assert.equal(probe.name, 'webgpu');
  assert.ok(probe.adapter, 'adapter info');
  for (const k of ['vendor', 'architecture', 'device', 'description'] as const) {
    assert.equal(typeof probe.adapter[k], 'string', k);
  }
  assert.ok(probe.deviceName.length > 0);
  assert.equal(probe.accelerator, !probe.software);
  assert.equal(probe.rank, probe.software ? webgpu.SOFTWARE_RANK : webgpu.HARDWARE_RANK);
  const info = await device.useBackend('webgpu');
  assert.equal(info.backend, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.deepEqual(info.adapter, probe.adapter);
  assert.equal(info.software, probe.software);
  if (probe.software) assert.match(device.deviceLabel(info), /\[software GPU\]/);
  t.diagnostic(`adapter: ${device.deviceLabel(info)} ${JSON.stringify(info.adapter)}`);
});

test('matMul (plain and transposed) matches the cpu backend', async (t) => {
  if (!haveAdapter(t)) return;
  const a = seeded(67 * 129, 1);
  const b = seeded(129 * 33, 2);
  await expectClose('matMul', () => {
    const A = tf.tensor2d(a, [67, 129]);
    const B = tf.tensor2d(b, [129, 33]);
    const out = [tf.matMul(A, B), tf.matMul(B, B, true, false), tf.matMul(A, A, false, true)];
    tf.dispose([A, B]);
    return out;
  });
});

test('conv2d (same and strided valid) matches the cpu backend', async (t) => {
  if (!haveAdapter(t)) return;
  const x = seeded(2 * 12 * 12 * 3, 3);
  const w = seeded(3 * 3 * 3 * 8, 4);
  await expectClose('conv2d', () => {
    const X = tf.tensor4d(x, [2, 12, 12, 3]);
    const W = tf.tensor4d(w, [3, 3, 3, 8]);
    const out = [tf.conv2d(X, W, 1, 'same'), tf.conv2d(X, W, 2, 'valid')];
    tf.dispose([X, W]);
    return out;
  });
});

test('max and average pooling match the cpu backend', async (t) => {
  if (!haveAdapter(t)) return;
  const x = seeded(2 * 12 * 12 * 4, 5);
  await expectClose('pooling', () => {
    const X = tf.tensor4d(x, [2, 12, 12, 4]);
    const out = [tf.maxPool(X, 2, 2, 'valid'), tf.avgPool(X, 2, 2, 'valid'), tf.maxPool(X, 3, 1, 'same'), tf.avgPool(X, 3, 1, 'same')];
    X.dispose();
    return out;
  });
});

test('softmax matches the cpu backend, including large logits', async (t) => {
  if (!haveAdapter(t)) return;
  const x = seeded(16 * 10, 6, -30, 30);
  await expectClose('softmax', () => {
    const X = tf.tensor2d(x, [16, 10]);
    const out = [tf.softmax(X), tf.logSoftmax(X)];
    X.dispose();
    return out;
  });
});

test('gradients through conv, pooling, dense and softmax cross-entropy match the cpu backend', async (t) => {
  if (!haveAdapter(t)) return;
  await expectClose('gradients', gradientComputation(7));
});

test('a short 784-500-10 training run (SGD momentum) matches the cpu backend', async (t) => {
  if (!haveAdapter(t)) return;
  await expectClose('training', trainingComputation(10));
});

test('the fused training step: its gradients match autodiff on webgpu within 1e-5, and it trains like the stock step', async (t) => {
  if (!haveAdapter(t)) return;
  await device.activateBackend('webgpu');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const model = train.mlp({ inputs: 64, hidden: [48], outputs: 10, seed: 3 });
  const { xs, ys } = seededBatch(24, [64], 10, 5);
  const e = await fusedStepErrors(model, xs, ys);
  const worst = Math.max(e.loss, ...e.grads);
  errors['fused step vs autodiff'] = Number(worst.toExponential(2));
  assert.ok(worst <= TOLERANCE, `fused vs autodiff on webgpu: ${JSON.stringify(e)}`);
  // A few updates: the same losses as the stock step, and no tensors left per step.
  const losses: Record<string, number[]> = {};
  for (const kind of ['stock', 'fused'] as const) {
    const m = train.mlp({ inputs: 64, hidden: [48], outputs: 10, seed: 3 });
    const step = train.seedTrainStep(m, { learningRate: 0.05, momentum: 0.9, step: kind });
    tf.dispose(step.run(xs, ys));
    const n = tf.memory().numTensors;
    losses[kind] = [];
    for (let i = 0; i < 3; i++) {
      const loss = step.run(xs, ys);
      losses[kind].push((await loss.data())[0]);
      loss.dispose();
    }
    assert.equal(tf.memory().numTensors, n, `${kind}: tensors grew per step`);
    step.dispose();
    m.dispose();
  }
  assert.ok(relativeError(losses.fused, losses.stock) <= TOLERANCE, `losses ${losses.fused} vs ${losses.stock}`);
  tf.dispose([xs, ys]);
  model.dispose();
});

test('shutdown releases the GPU and webgpu can start again; a process using webgpu exits by itself', async (t) => {
  if (!haveAdapter(t)) return;
  const r = child(`
    const g = require(${LIB});
    (async () => {
      await g.device.useBackend('webgpu');
      const a = g.tf.ones([64, 64]);
      const s1 = (await g.tf.matMul(a, a).data())[0];
      await g.webgpu.shutdown();
      const gone = typeof globalThis.navigator?.gpu === 'undefined' && g.tf.findBackend('webgpu') === null;
      await g.device.useBackend('webgpu');   // starts again: new navigator.gpu, new device
      const b = g.tf.ones([64, 64]);
      const s2 = (await g.tf.matMul(b, b).data())[0];
      console.log(JSON.stringify({ s1, s2, gone, backend: g.tf.getBackend() }));
      // no shutdown() here: the process must still exit on its own
    })();`);
  assert.equal(r.error, undefined, `child did not exit: ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.deepEqual(out, { s1: 64, s2: 64, gone: true, backend: 'webgpu' });
});

test('webgpu still works when tfjs-backend-webgpu was imported before the navigator.gpu shim', async (t) => {
  if (!haveAdapter(t)) return;
  const r = child(`
    require('@tensorflow/tfjs-backend-webgpu');   // too early: it registers nothing
    const tf = require('@tensorflow/tfjs');
    const early = tf.findBackendFactory('webgpu') !== null;
    const g = require(${LIB});
    (async () => {
      const info = await g.device.useBackend('webgpu');
      const x = g.tf.tensor2d([1, 2, 3, 4], [2, 2]);
      const y = Array.from(await g.tf.matMul(x, x).data());
      console.log(JSON.stringify({ early, backend: info.backend, y }));
      await g.webgpu.shutdown();
    })();`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.deepEqual(out, { early: false, backend: 'webgpu', y: [7, 10, 15, 22] });
});
