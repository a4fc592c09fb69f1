/**
 * Gradient accumulation: several small batches, one update.
 *
 * The memory of a step grows with its batch; the update only needs the batch's mean gradient.
 * {@link AccumulatingOptimizer} wraps any tfjs optimizer: each `applyGradients` call (one per
 * micro-batch, which is what `minimize` and `model.fit` make) adds the gradients into a running
 * sum, and every `steps`-th call applies their weighted mean with the wrapped optimizer. With a
 * mean loss and equal micro-batches, 4 micro-batches of 25 give the same update as one batch of
 * 100 (up to float32 rounding), while the step holds the activations of 25 examples plus one
 * gradient-sized sum.
 *
 * How-to, with `model.fit` (which has no accumulation option of its own):
 *
 * ```ts
 * model.compile({ optimizer: train.accumulating(tf.train.adam(1e-3), 4), loss: 'categoricalCrossentropy' });
 * await model.fit(xs, ys, { batchSize: 25, epochs: 5 });  // effective batch 100: one update per 4 batches
 * ```
 *
 * With gpulab's loop: `train.trainLoop(model, batches, { accumulate: 4 })`, which also weights
 * each micro-batch by its size and applies a partial group at the end of every epoch.
 */
import * as tf from '@tensorflow/tfjs';

/** A gradient with the name of its variable (tfjs's `NamedTensor`). */
interface NamedGradient {
  name: string;
  tensor: tf.Tensor;
}

/**
 * An optimizer that accumulates `steps` calls' gradients, then applies their (weighted) mean
 * with `inner`. Weights only change on every `steps`-th `applyGradients` (or on {@link flush}).
 * It owns its running sum (one tensor per variable, disposed after each update and by
 * {@link dispose}), not `inner`: dispose that yourself (`train.disposeOptimizer`).
 */
export class AccumulatingOptimizer extends tf.Optimizer {
  /** Class name for tfjs's serialization registry. */
  static get className(): string {
    return 'AccumulatingOptimizer';
  }

  /** The optimizer that applies each accumulated update. */
  readonly inner: tf.Optimizer;
  /** Micro-batches per update. */
  readonly steps: number;
  /**
   * The weight of the next `applyGradients` call's gradients (default 1: a plain mean). Set it
   * to the micro-batch's size before each call when sizes differ, so the update is the mean over
   * examples, as one big batch would give.
   */
  nextWeight = 1;
  private sums = new Map<string, tf.Tensor>();
  private weightSum = 0;
  private pendingCalls = 0;
  private applied = 0;

  constructor(inner: tf.Optimizer, steps: number) {
    super();
    if (!(inner instanceof tf.Optimizer)) throw new Error('accumulating: inner must be a tfjs optimizer (e.g. tf.train.adam())');
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`accumulating: steps must be a positive integer, got ${steps}`);
    this.inner = inner;
    this.steps = steps;
  }

  /** Micro-batches added since the last update. */
  get pending(): number {
    return this.pendingCalls;
  }

  /** Updates applied so far (each one is `steps` micro-batches, or fewer for a flush). */
  get updates(): number {
    return this.applied;
  }

  /** Adds this micro-batch's gradients (× {@link nextWeight}); applies the mean every `steps` calls. */
  applyGradients(variableGradients: tf.NamedTensorMap | NamedGradient[]): void {
    const list: NamedGradient[] = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    const w = this.nextWeight;
    if (!(w > 0)) throw new Error(`accumulating: nextWeight must be > 0, got ${w}`);
    for (const { name, tensor } of list) {
      if (tensor == null) continue;
      const prev = this.sums.get(name);
      // Kept: model.fit runs each batch inside a tidy, which would otherwise free the sum.
      const next = tf.keep(tf.tidy(() => {
        const scaled = w === 1 ? tensor.clone() : tf.mul(tensor, w);
        return prev ? tf.add(prev, scaled) : scaled;
      }));
      prev?.dispose();
      this.sums.set(name, next);
    }
    this.weightSum += w;
    this.pendingCalls++;
    this.nextWeight = 1;
    if (this.pendingCalls >= this.steps) this.flush();
  }

  /** Applies what has been accumulated (if anything) now, even if fewer than `steps` micro-batches. */
  flush(): void {
    if (this.pendingCalls === 0) return;
    const total = this.weightSum;
    // The sums become the means one variable at a time, so at most one extra gradient-sized tensor is alive.
    for (const [name, sum] of this.sums) {
      this.sums.set(name, tf.keep(tf.div(sum, total)));
      sum.dispose();
    }
    try {
      this.inner.applyGradients([...this.sums].map(([name, tensor]) => ({ name, tensor })));
    } finally {
      this.dropSums();
    }
    this.applied++;
    this.incrementIterations();
  }

  /** The wrapped optimizer's state (for saving with a model). */
  override async getWeights(): Promise<NamedGradient[]> {
    return this.inner.getWeights();
  }

  /** Restores the wrapped optimizer's state. */
  override async setWeights(weightValues: NamedGradient[]): Promise<void> {
    await this.inner.setWeights(weightValues);
  }

  /** The wrapped optimizer's config plus the number of steps. */
  getConfig(): tf.serialization.ConfigDict {
    return { ...this.inner.getConfig(), accumulateSteps: this.steps, inner: this.inner.getClassName() };
  }

  /** Drops the running sum (a partial group is lost: call {@link flush} first to keep it). */
  override dispose(): void {
    this.dropSums();
  }

  private dropSums(): void {
    tf.dispose([...this.sums.values()]);
    this.sums.clear();
    this.weightSum = 0;
    this.pendingCalls = 0;
  }
}

/**
 * Wrap `optimizer` so that it applies one update per `steps` micro-batches: the mean of their
 * gradients (see {@link AccumulatingOptimizer}). Use it with `model.compile` to accumulate in
 * `model.fit`, or give `accumulate` to `train.trainLoop`.
 */
export function accumulating(optimizer: tf.Optimizer, steps: number): AccumulatingOptimizer {
  return new AccumulatingOptimizer(optimizer, steps);
}
