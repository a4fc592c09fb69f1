import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as device from '../../../lib/backends';
import * as native from '../../../lib/backends/native';
import * as registry from '../../../lib/backends/registry';

test('listBackends finds wasm and cpu here and ranks wasm above cpu', async () => {
  const probes = await device.listBackends({ refresh: true });
  const names = probes.filter((p) => p.available).map((p) => p.name);
  assert.ok(names.includes('wasm'), `available: ${names.join(',')}`);
  assert.ok(names.includes('cpu'));
  assert.ok(names.indexOf('wasm') < names.indexOf('cpu'), 'wasm ranks above cpu');
  for (const p of probes.filter((x) => !x.available)) {
    assert.ok(p.reason && p.reason.length > 0, `${p.name} unavailable without a reason`);
  }
});

test('useBackend activates the requested backend and describeDevice reports it', async () => {
  const info = await device.useBackend('cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(info.backend, 'cpu');
  const d = device.describeDevice();
  assert.equal(d.backend, 'cpu');
  assert.equal(d.cores, os.cpus().length);
  assert.equal(d.versions.tfjs, tf.version.tfjs);
  assert.equal(d.versions.node, process.versions.node);
  assert.match(d.versions.tslab ?? '', /^\d+\.\d+/);
  assert.ok(d.name.length > 0);
  await device.useBackend('wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test('GPULAB_BACKEND forces a backend when no request is given', async () => {
  process.env.GPULAB_BACKEND = 'cpu';
  try {
    const info = await device.useBackend();
    assert.equal(info.backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
  } finally {
    delete process.env.GPULAB_BACKEND;
  }
  const auto = await device.useBackend();
  const best = (await device.listBackends()).find((p) => p.available);
  assert.equal(auto.backend, best?.name);
});

test('an unavailable backend falls back and says what was missing and what ran instead', async () => {
  const warn = console.warn;
  console.warn = () => {};
  registry.registerBackendProvider({
    name: 'tensorflow',
    probe: async () => ({
      name: 'tensorflow', available: false, accelerator: false, software: false, deviceName: '',
      adapter: null, rank: -1, reason: '@tensorflow/tfjs-node-gpu is installed but cannot load libcudnn.so.8',
    }),
  });
  try {
    const info = await device.useBackend('tensorflow');
    assert.notEqual(info.backend, 'tensorflow');
    assert.match(info.fallbackNote ?? '', /'tensorflow' is unavailable: .*libcudnn\.so\.8/);
    assert.match(info.fallbackNote ?? '', new RegExp(`Running on '${info.backend}' instead`));
    const unknown = await device.useBackend('quantum');
    assert.match(unknown.fallbackNote ?? '', /unknown/);
  } finally {
    console.warn = warn;
    registry.registerBackendProvider({ name: 'tensorflow', probe: () => native.probeTensorflow() });
  }
});

test('probeTensorflow names a missing package, and a missing CUDA library', async () => {
  const notInstalled = await native.probeTensorflow((id) => {
    throw new Error(`Cannot find module '${id}'`);
  });
  assert.equal(notInstalled.available, false);
  assert.match(notInstalled.reason ?? '', /@tensorflow\/tfjs-node-gpu is not installed/);
  const noCuda = await native.probeTensorflow((id) => {
    if (id.endsWith('-gpu')) throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');
    throw new Error(`Cannot find module '${id}'`);
  });
  assert.equal(noCuda.available, false);
  assert.match(noCuda.reason ?? '', /cannot load libcudart\.so\.11\.0/);
  assert.equal(native.missingLibraryFrom('libcudnn.so.8: cannot open shared object file'), 'libcudnn.so.8');
});

test('activateBackend refuses a backend tfjs does not have', async () => {
  await assert.rejects(device.activateBackend('no-such-backend'), /no-such-backend/);
  await device.useBackend('wasm');
});

test('native packages absent: a forced tensorflow backend falls back, naming the missing package', async () => {
  const warn = console.warn;
  const warned: string[] = [];
  console.warn = (msg: string) => warned.push(msg);
  process.env.GPULAB_BACKEND = 'tensorflow';
  const absent = (id: string) => {
    throw new Error(`Cannot find module '${id}'`);
  };
  try {
    registry.registerBackendProvider({ name: 'tensorflow', probe: () => native.probeTensorflow(absent, () => true, () => false) });
    const info = await device.useBackend();
    assert.notEqual(info.backend, 'tensorflow');
    assert.equal(tf.getBackend(), info.backend);
    assert.match(info.fallbackNote ?? '', /'tensorflow' is unavailable: @tensorflow\/tfjs-node is not installed; @tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(info.fallbackNote ?? '', new RegExp(`Running on '${info.backend}' instead`));
    assert.ok(warned.some((w) => w.includes('tfjs-node is not installed')), 'the fallback is printed');
  } finally {
    delete process.env.GPULAB_BACKEND;
    console.warn = warn;
    registry.registerBackendProvider({ name: 'tensorflow', probe: () => native.probeTensorflow() });
  }
  await device.useBackend('wasm');
});

test("tfjs-node-gpu that loads but cannot open CUDA runs on the CPU: a native CPU backend (rank 60) naming the missing library", async () => {
  // The real tfjs-node may already be registered by an earlier probe: set it aside (its
  // dispose is a no-op) and put it back afterwards.
  const real = tf.findBackendFactory('tensorflow') as ReturnType<typeof tf.findBackendFactory> | null;
  if (real) tf.removeBackend('tensorflow');
  const fakeTensorflow = (usingGpu: boolean, version: string) => (id: string) => {
    if (!id.endsWith('-gpu')) throw new Error(`Cannot find module '${id}'`);
    // What tfjs-node-gpu does on import: register 'tensorflow' (libtensorflow reports its device).
    tf.registerBackend('tensorflow', () => ({ isUsingGpuDevice: usingGpu, binding: { TF_Version: version }, dispose() {} }) as unknown as tf.KernelBackend, 0);
    return {};
  };
  try {
    const missing = await native.probeTensorflow(fakeTensorflow(false, '2.9.1'), (lib) => lib !== 'libcudnn.so.8', () => true);
    assert.equal(missing.available, true);
    assert.equal(missing.accelerator, false);
    assert.equal(missing.rank, 60);
    assert.equal(missing.native?.device, 'CPU');
    assert.match(missing.reason ?? '', /TensorFlow 2\.9\.1 on CPU.*tfjs-node-gpu is installed but cannot load libcudnn\.so\.8 \(it needs CUDA 11\.2 \+ cuDNN 8\.1/);
    tf.removeBackend('tensorflow');
    const noGpu = await native.probeTensorflow(fakeTensorflow(false, '2.21.0'), () => true, () => true);
    assert.match(noGpu.reason ?? '', /sees no CUDA GPU \(it needs an NVIDIA driver and CUDA 12/);
    tf.removeBackend('tensorflow');
    const ok = await native.probeTensorflow(fakeTensorflow(true, '2.21.0'), () => false, () => true);
    assert.equal(ok.available, true);
    assert.equal(ok.accelerator, true);
    assert.equal(ok.rank, 100);
    assert.equal(ok.native?.device, 'GPU');
    assert.equal(ok.name, 'tensorflow');
  } finally {
    if (tf.findBackendFactory('tensorflow')) tf.removeBackend('tensorflow');
    if (real) tf.registerBackend('tensorflow', real, 3);
  }
  assert.deepEqual(
    native.TFJS_NODE_GPU_CUDA_LIBRARIES.filter((l) => /libcudart\.so\.11|libcudnn\.so\.8/.test(l)),
    ['libcudart.so.11.0', 'libcudnn.so.8'],
  );
  assert.equal(native.canLoadSharedLibrary('libgpulab-does-not-exist.so.1'), false);
  assert.equal(native.canLoadSharedLibrary('libc.so.6'), true);
});

test('ranking: native GPU › hardware WebGPU › native CPU › wasm › software WebGPU › cpu', async () => {
  const webgpuModule = await import('../../../lib/backends/webgpu');
  // Ranks as the providers set them: native GPU 100 (checked above), WebGPU hardware/software,
  // native CPU 60, wasm 50, cpu 10.
  const order = [
    ['tensorflow (GPU)', 100],
    ['webgpu (hardware)', webgpuModule.HARDWARE_RANK],
    ['tensorflow (CPU)', 60],
    ['wasm', (await device.listBackends()).find((p) => p.name === 'wasm')?.rank ?? -1],
    ['webgpu (software)', webgpuModule.SOFTWARE_RANK],
    ['cpu', (await device.listBackends()).find((p) => p.name === 'cpu')?.rank ?? -1],
  ] as const;
  for (let i = 1; i < order.length; i++) assert.ok(order[i - 1][1] > order[i][1], `${order[i - 1][0]} (${order[i - 1][1]}) ranks above ${order[i][0]} (${order[i][1]})`);
});

