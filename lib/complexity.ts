/**
 * Model complexity, measured: build MLPs and small convnets of a given width and depth, and
 * measure what each costs and buys: parameter count, forward FLOPs, training time per epoch,
 * inference latency at batch 1 and 256, and test accuracy. Plus the "knee" of an
 * accuracy-vs-time frontier, found from the data.
 *
 * ```ts
 * const m = await complexity.measureArchitecture({ kind: 'mlp', width: 128, depth: 2 }, train, test, { epochs: 3 });
 * m.params; m.epochSeconds; m.latency1Ms; m.latency256Ms; m.testAccuracy;
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import { BatchSource } from './data/batches';
import type { ImageSet } from './data/image-set';
import { benchmark, median } from './timing';
import { accuracy } from './train';
// Convnets must train on wasm: register the filter-gradient kernel tfjs-backend-wasm 4.22 lacks.
import './backends/wasm-conv-grad';

/** What to build: an MLP (`width` units per hidden layer) or a convnet (`width` filters in the first block, doubling per block). */
export interface ArchSpec {
  kind: 'mlp' | 'convnet';
  /** Hidden units (MLP) or first-block filters (convnet). */
  width: number;
  /** Hidden layers (MLP) or conv blocks (convnet, 1–3). */
  depth: number;
}

/** A short name: `mlp 2×128`, `cnn 2×16`. */
export function archName(spec: ArchSpec): string {
  return `${spec.kind === 'mlp' ? 'mlp' : 'cnn'} ${spec.depth}×${spec.width}`;
}

/**
 * Build the model for `spec` on 28×28×1 inputs with a `numClasses` softmax.
 * - MLP: Flatten → depth × Dense(width, relu) → Dense(numClasses).
 * - Convnet: depth × [Conv2D(width·2^i, 3×3, relu, same) → MaxPool 2×2] → Flatten → Dense(numClasses).
 */
export function buildArchitecture(spec: ArchSpec, numClasses = 10, seed?: number): tf.LayersModel {
  if (!Number.isInteger(spec.width) || spec.width < 1) throw new Error(`buildArchitecture: width must be a positive integer, got ${spec.width}`);
  if (!Number.isInteger(spec.depth) || spec.depth < 1) throw new Error(`buildArchitecture: depth must be a positive integer, got ${spec.depth}`);
  if (spec.kind === 'convnet' && spec.depth > 3) throw new Error(`buildArchitecture: a convnet on 28×28 inputs supports depth 1–3 (2×2 pooling per block), got ${spec.depth}`);
  const init = (i: number) => tf.initializers.heNormal({ seed: seed === undefined ? undefined : seed + i });
  const layers: tf.layers.Layer[] = [];
  if (spec.kind === 'mlp') {
    layers.push(tf.layers.flatten({ inputShape: [28, 28, 1] }));
    for (let i = 0; i < spec.depth; i++) layers.push(tf.layers.dense({ units: spec.width, activation: 'relu', kernelInitializer: init(i) }));
  } else {
    for (let i = 0; i < spec.depth; i++) {
      layers.push(
        tf.layers.conv2d({ ...(i === 0 ? { inputShape: [28, 28, 1] } : {}), filters: spec.width * 2 ** i, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(i) }),
      );
      layers.push(tf.layers.maxPooling2d({ poolSize: 2 }));
    }
    layers.push(tf.layers.flatten());
  }
  layers.push(tf.layers.dense({ units: numClasses, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
  return tf.sequential({ layers, name: archName(spec).replace(/[ ×]/g, '_') });
}

/**
 * Multiply-adds of one forward pass per example, ×2 = FLOPs (Dense and Conv2D layers; pooling
 * and activations are ignored, they are tiny in comparison).
 */
export function forwardFlops(model: tf.LayersModel): number {
  let macs = 0;
  for (const l of model.layers) {
    const cls = l.getClassName();
    if (cls === 'Dense') {
      const k = l.getWeights()[0].shape as number[];
      macs += k[0] * k[1];
    } else if (cls === 'Conv2D') {
      const k = l.getWeights()[0].shape as number[];
      const out = (l.output as tf.SymbolicTensor).shape;
      macs += (out[1] as number) * (out[2] as number) * k[0] * k[1] * k[2] * k[3];
    }
  }
  return 2 * macs;
}


/** Every measurement of one architecture. */
export interface ArchMeasurement {
  [key: string]: string | number;
  name: string;
  kind: 'mlp' | 'convnet';
  width: number;
  depth: number;
  params: number;
  /** Forward FLOPs per example. */
  mflops: number;
  /** Median seconds per training epoch, the first (warm-up) epoch excluded when there are ≥ 2. */
  epochSeconds: number;
  /** Epochs timed for `epochSeconds`. */
  timedEpochs: number;
  /** Median ms of `predict` on one example. */
  latency1Ms: number;
  /** Median ms of `predict` on 256 examples. */
  latency256Ms: number;
  testAccuracy: number;
}

/** Options of {@link measureArchitecture}. */
export interface MeasureOptions {
  /** Training epochs (default 3); epoch 1 is the warm-up for the time figure. */
  epochs?: number;
  batchSize?: number;
  /** Timed repeats of each latency (default 10). */
  latencyRepeats?: number;
  learningRate?: number;
  seed?: number;
}

/**
 * Build `spec`, train it on `train` with adam + categorical cross-entropy (`model.fitDataset`
 * over a shuffled {@link BatchSource}), and measure everything in {@link ArchMeasurement}.
 * The model is disposed afterwards.
 */
export async function measureArchitecture(spec: ArchSpec, train: ImageSet, test: ImageSet, options: MeasureOptions = {}): Promise<ArchMeasurement> {
  const epochs = options.epochs ?? 3;
  const model = buildArchitecture(spec, 10, options.seed);
  const optimizer = tf.train.adam(options.learningRate ?? 1e-3);
  try {
    model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const src = new BatchSource(train, { batchSize: options.batchSize ?? 64, shuffle: true, seed: options.seed ?? 0, shape: 'image' });
    const times: number[] = [];
    let t0 = 0;
    await model.fitDataset(src.toDataset(), {
      epochs,
      verbose: 0,
      callbacks: {
        onEpochBegin: async () => {
          t0 = performance.now();
        },
        onEpochEnd: async () => {
          times.push((performance.now() - t0) / 1000);
        },
      },
    });
    const timed = times.length >= 2 ? times.slice(1) : times;
    const repeats = options.latencyRepeats ?? 10;
    const one = tf.zeros([1, 28, 28, 1]);
    const batch = tf.zeros([256, 28, 28, 1]);
    const l1 = await benchmark(() => model.predict(one) as tf.Tensor, { warmup: 2, repeats });
    const l256 = await benchmark(() => model.predict(batch) as tf.Tensor, { warmup: 2, repeats: Math.max(5, Math.round(repeats / 2)) });
    tf.dispose([one, batch]);
    return {
      name: archName(spec),
      kind: spec.kind,
      width: spec.width,
      depth: spec.depth,
      params: model.countParams(),
      mflops: forwardFlops(model) / 1e6,
      epochSeconds: median(timed),
      timedEpochs: timed.length,
      latency1Ms: l1.median * 1e3,
      latency256Ms: l256.median * 1e3,
      testAccuracy: await accuracy(model, test),
    };
  } finally {
    model.dispose();
    optimizer.dispose();
  }
}

/**
 * The knee of a frontier: the point farthest from the straight line joining the frontier's
 * first and last points, with x on a log scale and both axes normalised to [0, 1] (the
 * "Kneedle" idea). Past the knee, each extra second buys little accuracy. Rows must be the
 * frontier sorted by x (as `charts.paretoFrontier` returns); fewer than 3 rows → the last one.
 */
export function kneePoint<T extends Record<string, unknown>>(frontier: readonly T[], x: string, y: string, options: { logX?: boolean } = {}): T {
  if (frontier.length === 0) throw new Error('kneePoint: empty frontier');
  if (frontier.length < 3) return frontier[frontier.length - 1];
  const logX = options.logX ?? true;
  const xs = frontier.map((r) => (logX ? Math.log(Number(r[x])) : Number(r[x])));
  const ys = frontier.map((r) => Number(r[y]));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const nx = xs.map((v) => (x1 > x0 ? (v - x0) / (x1 - x0) : 0));
  const ny = ys.map((v) => (y1 > y0 ? (v - y0) / (y1 - y0) : 0));
  const last = frontier.length - 1;
  // Distance above the chord from the first to the last frontier point.
  const dx = nx[last] - nx[0];
  const dy = ny[last] - ny[0];
  const len = Math.hypot(dx, dy) || 1;
  let best = 0;
  let bestD = -Infinity;
  for (let i = 0; i < frontier.length; i++) {
    const d = (dx * (ny[i] - ny[0]) - dy * (nx[i] - nx[0])) / len;
    if (d > bestD) {
      bestD = d;
      best = i;
    }
  }
  return frontier[best];
}
