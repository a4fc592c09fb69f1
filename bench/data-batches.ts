/**
 * Batches per second of four ways to feed Fashion-MNIST batches to a model:
 *
 * - `BatchSource` (shuffled and in order): rows gathered on the host from the set normalised
 *   once into a Float32Array, one tensor per batch;
 * - the same gather, normalising each batch from the uint8 pixels through a lookup table
 *   instead (no float copy of the set: 4× less memory);
 * - `naivePerSampleBatches`: the article's DataLoader, one small tensor per image, then stack;
 * - `slice of one big tensor`: the whole set as one tensor, `tf.slice` per batch (on wasm every
 *   slice reads the whole 60000×784 tensor).
 *
 * Run alone: `node --import tsx bench/data-batches.ts [backend]` (prints a table, appends the
 * Results to `results/local/data-batches.jsonl`). `benchDataBatches()` is exported for `bench/run.ts`.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { data, env, results, timing } from '../lib';
import { useBackend, type BackendName } from '../lib/backends';
import { textTable } from '../lib/notebook';

/** One measured way of producing batches. */
interface Variant {
  name: string;
  /** Batches produced per timed run. */
  batches: number;
  /** Produce `batches` batches, dispose all but the last, return the last (benchmark syncs it). */
  run: () => tf.Tensor[];
}

function take(it: Iterable<data.Batch>, n: number): tf.Tensor[] {
  let last: tf.Tensor[] = [];
  let k = 0;
  for (const b of it) {
    tf.dispose(last);
    last = [b.xs, b.ys];
    if (++k >= n) break;
  }
  return last;
}

/**
 * Measure every variant on the current backend with `batchSize` (default 100, the article's) over
 * the full 60,000-image training set. Returns one Result per variant (metric `seconds` per run
 * of `params.batches` batches; `extra.batchesPerSecond` is batches / median).
 */
export async function benchDataBatches(opts: { batchSize?: number; repeats?: number } = {}): Promise<results.Result[]> {
  const batchSize = opts.batchSize ?? 100;
  const repeats = opts.repeats ?? env.pick(5, 3);
  const ds = await data.loadFashionMnist({ download: false });
  const set = ds.train;
  const fastN = env.pick(200, 60);
  const slowN = env.pick(20, 5);
  const shuffled = new data.BatchSource(set, { batchSize, shuffle: true, seed: 1 });
  const ordered = new data.BatchSource(set, { batchSize });
  const whole = data.toTensors(set);
  // for comparison: no float copy of the set, each batch normalised from the uint8 pixels
  // through a lookup table (4× less memory than BatchSource's preloaded float32 copy)
  const lutBatches = function* (e: number): Generator<data.Batch> {
    const order = data.epochOrder(set.count, { shuffle: true, seed: 1, epochIndex: e });
    const table = data.NORMALIZE_TABLE;
    for (let b = 0; b * batchSize < set.count; b++) {
      const idx = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, set.count));
      const x = new Float32Array(idx.length * 784);
      const y = new Float32Array(idx.length * 10);
      for (let k = 0; k < idx.length; k++) {
        const src = idx[k] * 784;
        for (let j = 0; j < 784; j++) x[k * 784 + j] = table[set.images[src + j]];
        y[k * 10 + set.labels[idx[k]]] = 1;
      }
      yield { xs: tf.tensor2d(x, [idx.length, 784]), ys: tf.tensor2d(y, [idx.length, 10]) };
    }
  };
  let epoch = 0;
  const variants: Variant[] = [
    { name: 'BatchSource (shuffled)', batches: fastN, run: () => take(shuffled.epoch(epoch++), fastN) },
    { name: 'BatchSource (in order)', batches: fastN, run: () => take(ordered.epoch(0), fastN) },
    { name: 'per-batch normalise from uint8 (shuffled)', batches: fastN, run: () => take(lutBatches(epoch++), fastN) },
    { name: 'naive per-sample (article DataLoader)', batches: slowN, run: () => take(data.naivePerSampleBatches(set, { batchSize }), slowN) },
    { name: 'slice of one big tensor', batches: slowN, run: () => take(data.sliceTensorBatches(whole.xs, whole.ys, { batchSize }), slowN) },
  ];
  const out: results.Result[] = [];
  try {
    for (const v of variants) {
      const t = await timing.benchmark(() => v.run(), { warmup: 1, repeats });
      const perSecond = v.batches / t.median;
      out.push(
        results.resultFromTiming(
          {
            experiment: 'data-batches',
            variant: v.name,
            params: { batchSize, batches: v.batches, setSize: set.count },
            dataset: ds.source,
            extra: { batchesPerSecond: perSecond, msPerBatch: (1000 * t.median) / v.batches },
          },
          t,
        ),
      );
    }
  } finally {
    tf.dispose([whole.xs, whole.ys]);
  }
  return out;
}

async function main(): Promise<void> {
  const backend = (process.argv[2] as BackendName | undefined) ?? 'wasm';
  const dev = await useBackend(backend);
  console.log(`data-batches on ${dev.backend} (${dev.name}, ${dev.cores} cores), ${env.modeLabel()}`);
  const rs = await benchDataBatches();
  console.log(
    textTable(
      rs.map((r) => ({
        variant: r.variant,
        'batches/s': r.extra?.batchesPerSecond as number,
        'ms/batch': r.extra?.msPerBatch as number,
        'min..max s/run': `${r.min.toFixed(3)}..${r.max.toFixed(3)}`,
        batches: r.params.batches as number,
      })),
      { digits: 4 },
    ),
  );
  const file = path.join(env.resultsDir(), 'data-batches.jsonl');
  results.appendResults(file, rs);
  console.log(`appended ${rs.length} results to ${file}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
