/**
 * The native TensorFlow backend against wasm, in the same run (issue 15): the seed experiment
 * with gpulab's fast kernels, with tfjs-node's own kernels, and on wasm, one epoch of each in turn
 * so that all three see the same machine load; a small convnet's training step on both; and the
 * matmul shapes of a training step with tfjs-node's kernels against gpulab's.
 */
import * as tf from '@tensorflow/tfjs';
import * as complexity from '../lib/complexity';
import * as device from '../lib/backends';
import * as env from '../lib/env';
import * as experiments from '../lib/experiments';
import * as native from '../lib/backends/native';
import * as timing from '../lib/timing';
import { matMulKernelSuite, result, type BenchContext, type MatMulShape, type SuiteOutput } from './suites';

/** Targets of issue 15, reported by `npm run bench`, never enforced by its exit code. */
export const NATIVE_TARGETS = { seedSeconds: 12, convnetOverWasm: 5, fitOverLoop: 1.2 } as const;

/** True when both the native backend and wasm can run here. */
export async function nativeAndWasmAvailable(): Promise<boolean> {
  const probes = await device.listBackends();
  return ['tensorflow', 'wasm'].every((n) => probes.find((p) => p.name === n)?.available);
}

async function withNative<T>(fast: boolean, fn: () => Promise<T>): Promise<T> {
  return device.withBackend('tensorflow', async () => {
    if (!fast) native.uninstallNativeFastKernels();
    try {
      return await fn();
    } finally {
      native.installNativeFastKernels();
    }
  });
}

/** The seed experiment's 5 epochs: native (gpulab kernels), native (tfjs-node kernels), wasm. */
export async function nativeVsWasmSeedSuite(ctx: BenchContext): Promise<SuiteOutput & { native: number; nativeStock: number; wasm: number }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const variants = [
    { key: 'native', label: 'tensorflow (native CPU), gpulab kernels', run: <T>(f: () => Promise<T>) => withNative(true, f) },
    { key: 'nativeStock', label: 'tensorflow (native CPU), tfjs-node kernels', run: <T>(f: () => Promise<T>) => withNative(false, f) },
    { key: 'wasm', label: 'wasm (gpulab kernels, 1 thread)', run: <T>(f: () => Promise<T>) => device.withBackend('wasm', f) },
  ] as const;
  const samples: Record<string, number[]> = { native: [], nativeStock: [], wasm: [] };
  const maxBatchesPerEpoch = env.pick<number | undefined>(undefined, 20);
  for (let epoch = 0; epoch < 5; epoch++) {
    for (const v of variants) {
      const r = await v.run(() => experiments.seedRun(ctx.ds.train, { pipeline: 'preloaded', epochs: 1, seed: epoch, maxBatchesPerEpoch, warmupBatches: 5 }));
      samples[v.key].push(r.projectedSeconds);
    }
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const how = maxBatchesPerEpoch ? `projected from ${maxBatchesPerEpoch} batches/epoch` : 'all 5 epochs measured';
  for (const v of variants) {
    const total = sum(samples[v.key]);
    const extra = { fiveEpochSeconds: total, partial: maxBatchesPerEpoch !== undefined };
    out.results.push(result({ experiment: 'seed-mlp-native-vs-wasm', variant: v.label, params: { epochs: 5, batchSize: 100, pipeline: 'preloaded', interleaved: true }, extra }, samples[v.key], ctx.ds));
    out.rows.push({ experiment: 'seed 5 epochs, same run', variant: v.label, median: total, unit: 's/5 epochs', gflops: null, note: `${how}; epochs interleaved with the other two` });
  }
  return { ...out, native: sum(samples.native), nativeStock: sum(samples.nativeStock), wasm: sum(samples.wasm) };
}

/** Median seconds of one training step of a small convnet (conv 32 → pool → conv 64 → pool → dense), batch 100. */
async function convnetStep(steps: number): Promise<number[]> {
  const model = complexity.buildArchitecture({ kind: 'convnet', width: 32, depth: 2 }, 10, 1);
  const optimizer = tf.train.momentum(0.001, 0.9);
  const x = tf.randomUniform([100, 28, 28, 1], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([100], 0, 10, 'int32', 2) as tf.Tensor1D, 10);
  const step = () => tf.tidy(() => optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true) as tf.Scalar);
  try {
    for (let i = 0; i < 2; i++) (step() as tf.Scalar).dataSync();
    const out: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const loss = step() as tf.Scalar;
      loss.dataSync();
      loss.dispose();
      out.push((performance.now() - t0) / 1000);
    }
    return out;
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}

/** The convnet training step on native and wasm, alternating rounds. */
export async function convnetSuite(): Promise<SuiteOutput & { native: number; wasm: number }> {
  const out: SuiteOutput = { results: [], rows: [] };
  const samples: Record<'tensorflow' | 'wasm', number[]> = { tensorflow: [], wasm: [] };
  for (let round = 0; round < env.pick(3, 1); round++) {
    for (const b of ['tensorflow', 'wasm'] as const) {
      samples[b].push(...(await device.withBackend(b, () => convnetStep(env.pick(5, 2)))));
    }
  }
  const med: Record<string, number> = {};
  for (const b of ['tensorflow', 'wasm'] as const) {
    const t = timing.summarize(samples[b]);
    med[b] = t.median;
    out.results.push(result({ experiment: 'convnet-step', variant: b, params: { batchSize: 100, arch: 'conv32-pool-conv64-pool-dense' } }, samples[b], null));
    out.rows.push({ experiment: 'convnet train step', variant: b, median: t.median, unit: 's/step', gflops: null, note: `conv 32 → pool → conv 64 → pool → dense, batch 100; ${samples[b].length} steps over alternating rounds` });
  }
  return { ...out, native: med.tensorflow, wasm: med.wasm };
}

/** The matmuls of a seed training step on the native backend, tfjs-node's kernels against gpulab's. */
export async function nativeKernelSuite(): Promise<SuiteOutput> {
  const shapes: MatMulShape[] = [
    { op: 'forward x·W1', m: 100, k: 784, n: 500, tA: false, tB: false },
    { op: 'weight grad xT·dy', m: 784, k: 100, n: 500, tA: true, tB: false },
    { op: 'forward h·W2', m: 100, k: 500, n: 10, tA: false, tB: false },
    { op: 'input grad dy·W2T', m: 100, k: 10, n: 500, tA: false, tB: true },
  ];
  return device.withBackend('tensorflow', () => matMulKernelSuite('native-matmul', shapes, {
    stock: 'tfjs-node BatchMatMulV2', fast: 'gpulab MatMul', install: native.installNativeFastKernels, uninstall: native.uninstallNativeFastKernels,
  }, env.pick(30, 5)));
}
