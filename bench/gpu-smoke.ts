/**
 * GPU smoke benchmark, the small entry the carryable GPU kit is tested with (scripts/kit/build.ts).
 * It describes the device, times a matMul, and trains the article's 784-500-10 MLP (SGD lr 0.001,
 * momentum 0.9) for a few steps, or for whole epochs (`--epochs 5` is the seed experiment), then
 * prints one JSON document with the device and the Result records.
 *
 *   node --import tsx bench/gpu-smoke.ts [--backend webgpu] [--matmul N] [--steps N]
 *        [--epochs E] [--batch 100] [--samples 60000] [--repeats R] [--out results.json]
 *        [--allow-fallback]
 *
 * The training data is generated (random images and labels with Fashion-MNIST's shapes): the kit
 * runs on machines without internet, and the timing does not depend on the pixel values.
 * It is preloaded onto the device and batches are sliced there, so the loop measures the GPU,
 * not an input pipeline. Exit code 2 when the requested backend could not run.
 */
import * as tf from '@tensorflow/tfjs';
import * as device from '../lib/backends';
import * as timing from '../lib/timing';
import * as webgpu from '../lib/backends/webgpu';
import { resultFromTiming, writeResultsJson, type Result } from '../lib/results';

interface Options {
  backend: string;
  matmul: number;
  steps: number;
  epochs: number;
  batch: number;
  samples: number;
  repeats: number;
  out: string | null;
  allowFallback: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    backend: process.env.GPULAB_BACKEND || 'webgpu',
    matmul: 0,
    steps: 0,
    epochs: 0,
    batch: 100,
    samples: 60000,
    repeats: 0,
    out: null,
    allowFallback: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`gpu-smoke: ${a} needs a non-negative number, got '${argv[i]}'`);
      return v;
    };
    if (a === '--backend') o.backend = argv[++i] ?? '';
    else if (a === '--matmul') o.matmul = num();
    else if (a === '--steps') o.steps = num();
    else if (a === '--epochs') o.epochs = num();
    else if (a === '--batch') o.batch = num();
    else if (a === '--samples') o.samples = num();
    else if (a === '--repeats') o.repeats = num();
    else if (a === '--out') o.out = argv[++i] ?? null;
    else if (a === '--allow-fallback') o.allowFallback = true;
    else throw new Error(`gpu-smoke: unknown argument '${a}' (see the header of bench/gpu-smoke.ts)`);
  }
  if (o.batch < 1 || o.samples < o.batch) throw new Error(`gpu-smoke: need 1 ≤ --batch ≤ --samples (got ${o.batch}, ${o.samples})`);
  return o;
}

/** Random values in [0, 1) without a 188 MB temporary of doubles. */
function uniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 8) / 2 ** 24;
  }
  return out;
}

function oneHot(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * 10);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i * 10 + ((s >>> 16) % 10)] = 1;
  }
  return out;
}

/** The article's model: 784 → 500 (ReLU) → 10 logits. */
function buildMlp(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 500, activation: 'relu' }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

/**
 * Train `epochs` passes (or `steps` batches) over preloaded X/Y with SGD momentum; returns the
 * final loss. Only the last step is read back, so the GPU queue is never drained mid-run.
 */
async function train(X: tf.Tensor2D, Y: tf.Tensor2D, batch: number, steps: number): Promise<number> {
  const model = buildMlp();
  const optimizer = tf.train.momentum(0.001, 0.9);
  const perEpoch = Math.floor(X.shape[0] / batch);
  let last: tf.Scalar | null = null;
  for (let s = 0; s < steps; s++) {
    const b = s % perEpoch;
    const isLast = s === steps - 1;
    const cost = tf.tidy(() => {
      const xb = X.slice([b * batch, 0], [batch, 784]);
      const yb = Y.slice([b * batch, 0], [batch, 10]);
      const c = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(yb, model.apply(xb) as tf.Tensor) as tf.Scalar, isLast);
      return c ?? [];
    });
    if (isLast && cost instanceof tf.Tensor) last = cost as tf.Scalar;
  }
  const loss = last ? (await last.data())[0] : NaN;
  tf.dispose(last ?? []);
  optimizer.dispose();
  model.dispose();
  return loss;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const info = await device.useBackend(o.backend);
  const probes = (await device.listBackends()).map((p) => ({
    name: p.name, available: p.available, rank: p.rank, device: p.deviceName, software: p.software, reason: p.reason ?? null,
  }));
  const ran = info.backend === o.backend || o.backend === 'auto';
  const report: Record<string, unknown> = {
    entry: 'bench/gpu-smoke.ts',
    node: process.version,
    execPath: process.execPath,
    requested: o.backend,
    device: info,
    label: device.deviceLabel(info),
    backends: probes,
  };
  if (!ran && !o.allowFallback) {
    report.error = `backend '${o.backend}' could not run: ${info.fallbackNote ?? 'unknown reason'}`;
    console.log(JSON.stringify(report, null, 2));
    return 2;
  }
  if (info.backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  const slow = !info.accelerator; // software GPU or CPU: keep the defaults small
  const results: Result[] = [];

  // 1. matMul throughput.
  const n = o.matmul || (slow ? 256 : 2048);
  {
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    const t = await timing.benchmark(() => tf.matMul(a, b), { warmup: 2, repeats: o.repeats || (slow ? 3 : 10) });
    tf.dispose([a, b]);
    const gflops = (2 * n ** 3) / t.median / 1e9;
    results.push(resultFromTiming({ experiment: 'matmul', variant: `${n}x${n}`, params: { n }, extra: { gflops: Number(gflops.toFixed(2)) } }, t));
  }

  // 2. The MLP: a few steps (default), or whole epochs end to end (upload + build + train + sync).
  const batch = o.batch;
  const samples = o.epochs > 0 ? o.samples : Math.min(o.samples, batch * 8);
  const steps = o.epochs > 0 ? Math.floor(samples / batch) * o.epochs : o.steps || (slow ? 5 : 50);
  const xs = uniform(samples * 784, 1);
  const ys = oneHot(samples, 2);
  let finalLoss = NaN;
  const t = await timing.benchmark(
    async () => {
      const X = tf.tensor2d(xs, [samples, 784]);
      const Y = tf.tensor2d(ys, [samples, 10]);
      finalLoss = await train(X, Y, batch, steps);
      tf.dispose([X, Y]);
    },
    { warmup: 1, repeats: o.repeats || (o.epochs > 0 ? 3 : slow ? 2 : 5) },
  );
  results.push(
    resultFromTiming(
      {
        experiment: 'seed-mlp',
        variant: o.epochs > 0 ? 'preloaded-end-to-end' : 'preloaded-steps',
        params: { batchSize: batch, epochs: o.epochs > 0 ? o.epochs : null, steps, samples, lr: 0.001, momentum: 0.9 },
        dataset: 'generated-random',
        extra: { msPerStep: Number(((t.median / steps) * 1e3).toFixed(3)), finalLoss: Number(finalLoss.toFixed(4)) },
      },
      t,
    ),
  );

  report.results = results;
  report.totalSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (o.out) writeResultsJson(o.out, results);
  console.log(JSON.stringify(report, null, 2));
  await webgpu.shutdown();
  return Number.isFinite(finalLoss) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`gpu-smoke: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
