import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import { onActivate } from '../../../lib/backends/registry';
import { wasmThreads } from '../../../lib/env';
import * as wf from '../../../lib/backends/wasm-fast';
import { ROOT } from '../../support/helpers';

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Run `fn` with the stock wasm kernels, then with the overrides; return both results. */
async function withAndWithout(fn: () => tf.Tensor): Promise<{ stock: Float32Array; fast: Float32Array; shapeStock: number[]; shapeFast: number[] }> {
  wf.uninstallFastKernels();
  const s = fn();
  const stock = (await s.data()) as Float32Array;
  wf.installFastKernels();
  const f = fn();
  const fast = (await f.data()) as Float32Array;
  const out = { stock, fast, shapeStock: s.shape, shapeFast: f.shape };
  tf.dispose([s, f]);
  return out;
}

test('useBackend("wasm") installs the overrides automatically', async () => {
  await useBackend('wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(wf.fastKernelsInstalled(), true);
  for (const k of wf.OVERRIDDEN_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), `${k} registered`);
});

test('device.onActivate runs hooks for that backend only, until removed', async () => {
  const calls: string[] = [];
  const off = onActivate('cpu', () => calls.push('cpu'));
  await useBackend('wasm');
  await useBackend('cpu');
  off();
  await useBackend('wasm');
  await useBackend('cpu');
  assert.deepEqual(calls, ['cpu']);
  const offBad = onActivate('cpu', () => {
    throw new Error('hook failed');
  });
  const fell = await useBackend('cpu');
  assert.notEqual(fell.backend, 'cpu', 'a failing hook makes the activation fail (and fall back)');
  assert.match(fell.fallbackNote ?? '', /hook failed/);
  offBad();
  await useBackend('wasm');
});

test('matMul: all four transpose combinations, 2-D and batched, equal the stock kernel', async () => {
  await useBackend('wasm');
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean }[] = [];
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      const [m, k, n] = [37, 53, 29];
      cases.push({ a: tA ? [k, m] : [m, k], b: tB ? [n, k] : [k, n], tA, tB });              // 2-D
      cases.push({ a: tA ? [3, k, m] : [3, m, k], b: tB ? [3, n, k] : [3, k, n], tA, tB });    // both batched
      cases.push({ a: tA ? [2, 3, k, m] : [2, 3, m, k], b: tB ? [n, k] : [k, n], tA, tB });   // batched × shared (folded)
      cases.push({ a: tA ? [1, k, m] : [1, m, k], b: tB ? [4, n, k] : [4, k, n], tA, tB });   // broadcast a
    }
  }
  let seed = 1;
  for (const c of cases) {
    const a = seeded(c.a, seed++);
    const b = seeded(c.b, seed++);
    wf.resetKernelStats();
    const r = await withAndWithout(() => tf.matMul(a, b, c.tA, c.tB));
    const label = `a=${c.a} b=${c.b} tA=${c.tA} tB=${c.tB}`;
    assert.deepEqual(r.shapeFast, r.shapeStock, label);
    assert.ok(maxAbsDiff(r.fast, r.stock) < 1e-4, `${label}: max diff ${maxAbsDiff(r.fast, r.stock)}`);
    const st = wf.kernelStats();
    assert.equal(st.transposedA, c.tA ? 1 : 0, `${label}: explicit transpose of a`);
    assert.equal(st.transposedB, c.tB ? 1 : 0, `${label}: explicit transpose of b`);
    tf.dispose([a, b]);
  }
});

test('a batched left operand times a shared right operand is folded into one 2-D product', async () => {
  await useBackend('wasm');
  const a = seeded([4, 5, 6], 7);
  const b = seeded([6, 3], 8);
  wf.resetKernelStats();
  const r = await withAndWithout(() => tf.matMul(a, b));
  assert.deepEqual(r.shapeFast, [4, 5, 3]);
  assert.ok(maxAbsDiff(r.fast, r.stock) < 1e-5);
  assert.equal(wf.kernelStats().folded, 1);
  tf.dispose([a, b]);
});

test('fused matMul with bias and activation, transposed, equals the unfused ops', async () => {
  // Compared with unfused ops, not with the stock fused kernel: in tfjs-backend-wasm 4.22 the stock
  // _FusedMatMul adds the bias wrongly when transposeB is set (max error ≈1 here).
  await useBackend('wasm');
  wf.installFastKernels();
  const a = seeded([20, 30], 11);
  const b = seeded([40, 30], 12);
  const bias = seeded([40], 13);
  const act = { linear: (t: tf.Tensor) => t, relu: (t: tf.Tensor) => tf.relu(t), elu: (t: tf.Tensor) => tf.elu(t) };
  for (const activation of ['linear', 'relu', 'elu'] as const) {
    const ref = await tf.tidy(() => act[activation](tf.add(tf.matMul(a, tf.transpose(b)), bias))).data();
    wf.resetKernelStats();
    const fast = await tf.fused.matMul({ a, b, transposeB: true, bias, activation }).data();
    assert.equal(wf.kernelStats().transposedB, 1);
    assert.ok(maxAbsDiff(fast, ref) < 1e-4, `${activation}: ${maxAbsDiff(fast, ref)}`);
  }
  const at = seeded([30, 20], 14);
  const ref = await tf.tidy(() => tf.relu(tf.add(tf.matMul(tf.transpose(at), tf.transpose(b)), bias))).data();
  const fast = await tf.fused.matMul({ a: at, b: tf.transpose(b), transposeA: true, bias, activation: 'relu' }).data();
  assert.ok(maxAbsDiff(fast, ref) < 1e-4);
  tf.dispose([a, b, bias, at]);
});

test('slice: contiguous, strided, every rank and dtype, equals the stock kernel', async () => {
  await useBackend('wasm');
  const x4 = seeded([3, 4, 5, 6], 21);
  const cases: [tf.Tensor, number[], number[]][] = [
    [x4, [1, 0, 0, 0], [2, 4, 5, 6]],     // contiguous rows
    [x4, [0, 1, 2, 3], [3, 2, 3, 2]],     // strided in every axis
    [x4, [2, 3, 4, 5], [1, 1, 1, 1]],
    [x4.reshape([12, 30]), [3, 7], [5, 11]],
    [x4.reshape([360]), [100], [50]],
    [x4.reshape([6, 60]), [0, 0], [6, 1]],
  ];
  for (const [x, begin, size] of cases) {
    const r = await withAndWithout(() => tf.slice(x, begin, size));
    assert.deepEqual(r.shapeFast, size);
    assert.equal(maxAbsDiff(r.fast, r.stock), 0, `slice ${x.shape} ${begin} ${size}`);
  }
  const xi = tf.range(0, 120, 1, 'int32').reshape([4, 5, 6]);
  wf.installFastKernels();
  wf.resetKernelStats();
  const s = tf.slice(xi, [1, 1, 2], [2, 3, 2]);
  assert.equal(s.dtype, 'int32');
  assert.deepEqual(Array.from(await s.data()), [38, 39, 44, 45, 50, 51, 68, 69, 74, 75, 80, 81]);
  assert.equal(wf.kernelStats().slices, 1);
  tf.dispose([x4, xi, s]);
});

test('gather: every axis and dtype equal the stock kernel, batchDims and 2-D indices a reference; bad indices throw', async () => {
  await useBackend('wasm');
  const x = seeded([5, 6, 7], 41);
  const xi = tf.range(0, 210, 1, 'int32').reshape([5, 6, 7]);
  const idx = tf.tensor1d([4, 0, 0, 2], 'int32');
  for (const axis of [0, 1, 2]) {
    for (const t of [x, xi]) {
      const r = await withAndWithout(() => tf.gather(t, idx, axis));
      assert.deepEqual(r.shapeFast, r.shapeStock, `axis ${axis}`);
      assert.equal(maxAbsDiff(r.fast, r.stock), 0, `axis ${axis} ${t.dtype}`);
    }
  }
  // batchDims: compared with a reference computed here (the stock wasm kernel can read out of
  // bounds for batchDims > 0 in tfjs 4.22: "memory access out of bounds").
  const bidx = tf.tensor2d([[1, 0], [2, 2], [0, 1], [1, 1], [2, 0]], [5, 2], 'int32');
  wf.installFastKernels();
  const gb = tf.gather(x, bidx, 2, 1);
  assert.deepEqual(gb.shape, [5, 6, 2]);
  const xa = x.arraySync() as number[][][];
  const ba = bidx.arraySync() as number[][];
  assert.deepEqual(gb.arraySync(), xa.map((rows, b) => rows.map((row) => ba[b].map((k) => row[k]))), 'batchDims 1');
  gb.dispose();
  const i2 = tf.tensor2d([[3, 1], [0, 4]], [2, 2], 'int32');
  const r2 = await withAndWithout(() => tf.gather(x, i2, 0));
  assert.deepEqual(r2.shapeFast, [2, 2, 6, 7]);
  assert.equal(maxAbsDiff(r2.fast, r2.stock), 0, '2-D indices');
  wf.installFastKernels();
  wf.resetKernelStats();
  tf.gather(x, idx).dispose();
  assert.equal(wf.kernelStats().gathers, 1);
  assert.throws(() => tf.gather(x, tf.tensor1d([5], 'int32')), /index value 5 is not in \[0, 4\]/);
  tf.dispose([x, xi, idx, bidx, i2]);
});

test('Dense-layer gradients on wasm (with the overrides) equal the cpu backend', async () => {
  const grads = async (backend: string) => {
    await useBackend(backend);
    return tf.tidy(() => {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [12], units: 9, activation: 'relu', kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 3 }) }),
          tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 4 }) }),
        ],
      });
      const x = tf.randomUniform([16, 12], -1, 1, 'float32', 5);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
      const { grads: g } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar);
      return Object.values(g).map((t) => Array.from(t.dataSync()));
    });
  };
  const onCpu = await grads('cpu');
  wf.resetKernelStats();
  const onWasm = await grads('wasm');
  assert.equal(wf.fastKernelsInstalled(), true);
  assert.ok(wf.kernelStats().transposedA + wf.kernelStats().transposedB > 0, 'the backward pass went through the overrides');
  assert.equal(onWasm.length, onCpu.length);
  onCpu.forEach((g, i) => assert.ok(maxAbsDiff(onWasm[i], g) < 1e-5, `gradient ${i}: ${maxAbsDiff(onWasm[i], g)}`));
});

test('no tensors leak through the overrides', async () => {
  await useBackend('wasm');
  wf.installFastKernels();
  const a = seeded([8, 16], 31);
  const b = seeded([8, 16], 32);
  const before = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  for (let i = 0; i < 5; i++) tf.dispose(tf.tidy(() => tf.matMul(a, b, false, true).add(tf.slice(a, [1, 0], [4, 16]).sum())));
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.memory().numBytes, bytesBefore);
  tf.dispose([a, b]);
});

test('GPULAB_WASM_THREADS is parsed strictly; enableWasmThreads validates its argument', async () => {
  const old = process.env.GPULAB_WASM_THREADS;
  try {
    delete process.env.GPULAB_WASM_THREADS;
    assert.equal(wasmThreads(), null);
    process.env.GPULAB_WASM_THREADS = '2';
    assert.equal(wasmThreads(), 2);
    process.env.GPULAB_WASM_THREADS = 'two';
    assert.throws(() => wasmThreads(), /GPULAB_WASM_THREADS must be an integer/);
    process.env.GPULAB_WASM_THREADS = '0';
    assert.throws(() => wasmThreads(), /from 1 to 8/);
  } finally {
    if (old === undefined) delete process.env.GPULAB_WASM_THREADS;
    else process.env.GPULAB_WASM_THREADS = old;
  }
  await assert.rejects(wf.enableWasmThreads(0), /threads must be an integer from 1 to 8/);
  await assert.rejects(wf.enableWasmThreads(1.5), /threads must be an integer/);
});

test('GPULAB_WASM_THREADS=2 really runs the threaded build with 2 threads, and computes correctly', () => {
  const script = [
    "const tf = require('@tensorflow/tfjs');",
    "const { device, wasmFast } = require('./lib/index.ts');",
    '(async () => {',
    "  await device.useBackend('wasm');",
    '  const a = tf.randomUniform([64, 48], -1, 1, "float32", 1), b = tf.randomUniform([48, 32], -1, 1, "float32", 2);',
    '  const fast = await tf.matMul(a, b, false, false).data();',
    '  const ref = await tf.matMul(a.transpose().transpose(), b.transpose(), false, true).data();',
    '  let d = 0; for (let i = 0; i < fast.length; i++) d = Math.max(d, Math.abs(fast[i] - ref[i]));',
    '  console.log(JSON.stringify({ backend: tf.getBackend(), threads: wasmFast.wasmThreadsCount(), diff: d }));',
    '  process.exit(0);',
    '})();',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, GPULAB_WASM_THREADS: '2', GPULAB_BACKEND: '' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const last = out.trim().split('\n').pop()!;
  const r = JSON.parse(last) as { backend: string; threads: number; diff: number };
  assert.equal(r.backend, 'wasm');
  assert.equal(r.threads, 2);
  assert.ok(r.diff < 1e-4, `diff ${r.diff}`);
  assert.ok(path.isAbsolute(ROOT));
});

test('a matMul whose inner dimensions differ throws the stock kernel error on every route (fold path included)', async () => {
  await useBackend('wasm');
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean }[] = [
    { a: [2, 3, 2], b: [4, 2], tA: false, tB: false }, // batched × shared: the fold path
    { a: [2, 3, 5], b: [4, 2], tA: false, tB: false }, // the fold path would read past b
    { a: [2, 2, 3], b: [4, 2], tA: true, tB: false },
    { a: [2, 3, 2], b: [2, 4], tA: false, tB: true },
    { a: [3, 2], b: [4, 3], tA: true, tB: false }, // 2-D, explicit transpose
    { a: [2, 3, 2], b: [2, 4, 2], tA: false, tB: false }, // both batched (the stock kernel)
  ];
  for (const c of cases) {
    const a = tf.ones(c.a);
    const b = tf.ones(c.b);
    const label = `a=${c.a} b=${c.b} tA=${c.tA} tB=${c.tB}`;
    const messageOf = (): string => {
      try {
        tf.matMul(a, b, c.tA, c.tB).dispose();
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    wf.uninstallFastKernels();
    const stock = messageOf();
    wf.installFastKernels();
    const fast = messageOf();
    assert.match(stock, /^Error in matMul: inner shapes \(\d+\) and \(\d+\) .* must match\.$/, `${label}: the stock kernel throws`);
    assert.equal(fast, stock, label);
    tf.dispose([a, b]);
  }
  // The fused kernel called directly (tf.fused.matMul checks shapes before it reaches the kernel):
  // the routes the override takes (fold, explicit transpose) throw the fused op's error too.
  const a = tf.ones([2, 3, 2]);
  const aT = tf.ones([1, 2, 3]);
  const b = tf.ones([1, 4, 2]);
  const fused = (x: tf.Tensor, transposeA: boolean) => () => tf.engine().runKernel('_FusedMatMul', { a: x, b }, { transposeA, transposeB: false, activation: 'linear' });
  assert.throws(fused(a, false), /^Error: Error in fused matMul: inner shapes \(2\) and \(4\) of Tensors with shapes 2,3,2 and 1,4,2 and transposeA=false and transposeB=false must match\.$/);
  assert.throws(fused(aT, true), /^Error: Error in fused matMul: inner shapes \(2\) and \(4\) of Tensors with shapes 1,2,3 and 1,4,2 and transposeA=true and transposeB=false must match\.$/);
  tf.dispose([a, aT, b]);
});
