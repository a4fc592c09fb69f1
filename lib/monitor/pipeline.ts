/**
 * Input pipeline vs compute: per-batch time split between fetching the batch and the training
 * step. {@link timeBatches} is the one place the split is measured: {@link timePipeline} and
 * `train.trainLoop` both drive their batches through it.
 */
import * as tf from '@tensorflow/tfjs';
import { type Row } from '../charts';
import { median, sync, type Syncable } from '../timing';
import { type Sampler } from './sampler';

// ---------------------------------------------------------------------------------------------
// Input pipeline vs compute
// ---------------------------------------------------------------------------------------------

/** One batch's two halves, as {@link timeBatches} measures them. */
export interface BatchSplit {
  /** The batch's position in the run (0-based). */
  index: number;
  /** Time to produce the batch (the iterator's `next()`): the input pipeline. */
  dataMs: number;
  /** Time of `step` on it: the compute. */
  computeMs: number;
}

/** An iterator over `batches`, whether they come from a sync or an async iterable. */
export function batchIterator<B>(batches: Iterable<B> | AsyncIterable<B>): Iterator<B> | AsyncIterator<B> {
  return Symbol.asyncIterator in batches ? (batches as AsyncIterable<B>)[Symbol.asyncIterator]() : (batches as Iterable<B>)[Symbol.iterator]();
}

/** Resolves on the event loop's next turn, so timers (a sampler's) run in between. */
export function yieldToTimers(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * The data-vs-compute split: pull each batch from `batches` and run `step` on it, timing the wait
 * for the batch (the input pipeline) apart from the step (the compute: `step` resolves once its
 * work is done, after a device sync where the backend is asynchronous). After each batch,
 * untimed, `options.after` runs (dispose, callbacks, sampling); it may return `'stop'`. Stops
 * after `maxBatches` too, and closes the iterator however the loop ends.
 */
export async function timeBatches<B>(
  batches: Iterable<B> | AsyncIterable<B>,
  step: (batch: B, index: number) => unknown,
  options: { maxBatches?: number; after?: (batch: B, split: BatchSplit) => void | 'stop' | Promise<void | 'stop'> } = {},
): Promise<BatchSplit[]> {
  const max = options.maxBatches ?? Infinity;
  const it = batchIterator(batches);
  const out: BatchSplit[] = [];
  try {
    for (let index = 0; index < max; index++) {
      const t0 = performance.now();
      const r = await it.next();
      const t1 = performance.now();
      if (r.done) break;
      await step(r.value, index);
      const split: BatchSplit = { index, dataMs: t1 - t0, computeMs: performance.now() - t1 };
      out.push(split);
      if ((await options.after?.(r.value, split)) === 'stop') break;
    }
  } finally {
    await it.return?.();
  }
  return out;
}

/** One batch of {@link timePipeline}. */
export interface BatchTiming {
  batch: number;
  /** Time to produce the batch (the iterator's `next()`): the input pipeline. */
  dataMs: number;
  /** Time of the training step including the read-back of its result: the compute. */
  computeMs: number;
  /** True for warm-up batches, which the totals leave out. */
  warmup: boolean;
}

/** Where the time of a run of batches went. */
export interface PipelineSplit {
  variant: string;
  batches: BatchTiming[];
  /** Counted batches (warm-up excluded). */
  counted: number;
  dataMs: number;
  computeMs: number;
  totalMs: number;
  /** dataMs / totalMs. */
  dataShare: number;
  medianDataMs: number;
  medianComputeMs: number;
}

/**
 * Run a training step over batches and time each batch's two halves: getting the batch from the
 * iterator (input pipeline) and the step with its result read back (compute). Batch tensors are
 * disposed after each step. With a `sampler`, each batch is recorded as a `batch-end` event with
 * `dataMs`/`computeMs` logs. On backends that upload asynchronously (webgpu), part of the
 * upload cost moves from data into compute.
 */
export async function timePipeline(
  variant: string,
  batches: Iterable<{ xs: tf.Tensor; ys: tf.Tensor }> | AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>,
  step: (batch: { xs: tf.Tensor; ys: tf.Tensor }) => Syncable | Promise<Syncable>,
  options: { warmup?: number; maxBatches?: number; sampler?: Sampler; epoch?: number } = {},
): Promise<PipelineSplit> {
  const warmup = options.warmup ?? 1;
  const splits = await timeBatches(batches, async (batch) => {
    try {
      await sync(await step(batch));
    } finally {
      tf.dispose([batch.xs, batch.ys]);
    }
  }, {
    maxBatches: options.maxBatches,
    after: async (_batch, s) => {
      options.sampler?.event('batch-end', { epoch: options.epoch ?? null, batch: s.index, logs: { dataMs: s.dataMs, computeMs: s.computeMs } });
      // Let timers (the sampler's) run between batches, outside the timed parts.
      await yieldToTimers();
    },
  });
  const out: BatchTiming[] = splits.map((s) => ({ batch: s.index, dataMs: s.dataMs, computeMs: s.computeMs, warmup: s.index < warmup }));
  const counted = out.filter((b) => !b.warmup);
  if (!counted.length) throw new Error(`timePipeline(${variant}): no batches left after ${warmup} warm-up batch(es); give more batches`);
  const dataMs = counted.reduce((a, b) => a + b.dataMs, 0);
  const computeMs = counted.reduce((a, b) => a + b.computeMs, 0);
  return {
    variant,
    batches: out,
    counted: counted.length,
    dataMs,
    computeMs,
    totalMs: dataMs + computeMs,
    dataShare: dataMs / (dataMs + computeMs),
    medianDataMs: median(counted.map((b) => b.dataMs)),
    medianComputeMs: median(counted.map((b) => b.computeMs)),
  };
}

/** Pipeline splits as long rows for a stacked bar chart: `variant, part ('input pipeline'|'compute'), msPerBatch, share`. */
export function splitRows(splits: readonly PipelineSplit[]): Row[] {
  return splits.flatMap((s) => [
    { variant: s.variant, part: 'input pipeline', msPerBatch: s.dataMs / s.counted, share: s.dataShare },
    { variant: s.variant, part: 'compute', msPerBatch: s.computeMs / s.counted, share: 1 - s.dataShare },
  ]);
}
