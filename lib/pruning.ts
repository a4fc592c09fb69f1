/**
 * Pruning with an API a TensorFlow Model Optimization (tfmot) user recognises, plus structured
 * pruning that really shrinks a model.
 *
 * ```ts
 * // tfmot: model = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=...)
 * const pruned = pruning.pruneLowMagnitude(model, {
 *   schedule: new pruning.PolynomialDecay({ initialSparsity: 0, finalSparsity: 0.8, beginStep: 0, endStep: 1000 }),
 * });
 * pruned.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
 * await pruned.fit(xs, ys, { epochs: 5, callbacks: [new pruning.UpdatePruningStep(), new pruning.PruningSummaries('./logs')] });
 * const plain = pruning.stripPruning(pruned);   // an ordinary tf.LayersModel, zeros in place
 * ```
 *
 * How it maps onto tfmot:
 * - {@link pruneLowMagnitude} returns a new model (a clone with the same weights) whose Dense and
 *   Conv2D kernels carry a 0/1 mask. tfmot wraps each layer in a `PruneLowMagnitude` layer; tfjs
 *   cannot serialise such wrappers, so the mask lives beside the model instead.
 * - {@link ConstantSparsity} and {@link PolynomialDecay} follow tfmot's formulas and its
 *   "prune when `(step − beginStep) % frequency == 0` inside [beginStep, endStep]" rule.
 * - {@link UpdatePruningStep} advances the step before every batch, recomputes the masks on a
 *   pruning step, and re-applies them after every optimizer step (so pruned weights stay zero).
 * - {@link PruningSummaries} logs per-layer sparsity to JSON lines (TensorBoard is not available
 *   in Node) and {@link pruningSummaryChart} draws them.
 * - Sparsity is per layer, like tfmot: each kernel gets exactly `round(size × target)` zeros,
 *   the smallest magnitudes first (ties broken by position).
 *
 * Magnitude pruning leaves the kernels dense (same shapes, zeros inside), so it makes the model
 * smaller to *store* (compressed) but not faster to run on dense matmul kernels. For a speedup,
 * {@link pruneStructured} removes whole neurons / filters and builds a smaller model.
 */
import * as zlib from 'node:zlib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { lineChart, type ChartSpec } from './charts';
import { readJsonLines, writeFileAtomic } from './fsutil';

// ---------------------------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------------------------

/** What a schedule says about one training step. */
export interface ScheduleDecision {
  /** True when the masks are recomputed at this step. */
  shouldPrune: boolean;
  /** The target sparsity (fraction of zeros, 0–1) at this step. */
  sparsity: number;
}

/** A pruning schedule: tfmot's `PruningSchedule` (`__call__(step) → (should_prune, sparsity)`). */
export interface PruningSchedule {
  /** The decision at `step` (0-based optimizer step). */
  at(step: number): ScheduleDecision;
  /** A JSON description, like tfmot's `get_config()`. */
  getConfig(): { className: string; config: Record<string, number> };
}

function checkSparsity(name: string, v: number): void {
  if (!(typeof v === 'number' && v >= 0 && v < 1)) throw new Error(`${name} must be in [0, 1), got ${v}`);
}

function checkSteps(cls: string, beginStep: number, endStep: number, frequency: number, endRequired: boolean): void {
  if (!Number.isInteger(beginStep) || beginStep < 0) throw new Error(`${cls}: beginStep must be an integer ≥ 0, got ${beginStep}`);
  if (!Number.isInteger(frequency) || frequency < 1) throw new Error(`${cls}: frequency must be an integer ≥ 1, got ${frequency}`);
  if (!Number.isInteger(endStep)) throw new Error(`${cls}: endStep must be an integer, got ${endStep}`);
  if (endRequired ? endStep <= beginStep : endStep !== -1 && endStep < beginStep) {
    throw new Error(`${cls}: endStep (${endStep}) must be ${endRequired ? '>' : '-1 or ≥'} beginStep (${beginStep})`);
  }
}

/** tfmot's `_should_prune_in_step`: inside [begin, end] (end −1 = forever) and on a frequency tick. */
function shouldPruneInStep(step: number, beginStep: number, endStep: number, frequency: number): boolean {
  const inRange = step >= beginStep && (endStep < 0 || step <= endStep);
  return inRange && (step - beginStep) % frequency === 0;
}

/** Options of {@link ConstantSparsity} (tfmot: `ConstantSparsity(target_sparsity, begin_step, end_step=-1, frequency=100)`). */
export interface ConstantSparsityOptions {
  targetSparsity: number;
  beginStep?: number;
  /** Last step that may prune; −1 (default) prunes forever. */
  endStep?: number;
  /** Recompute masks every `frequency` steps (default 100). */
  frequency?: number;
}

/** The same sparsity at every pruning step (tfmot's `ConstantSparsity`). */
export class ConstantSparsity implements PruningSchedule {
  readonly targetSparsity: number;
  readonly beginStep: number;
  readonly endStep: number;
  readonly frequency: number;
  constructor(options: ConstantSparsityOptions) {
    checkSparsity('ConstantSparsity: targetSparsity', options.targetSparsity);
    this.targetSparsity = options.targetSparsity;
    this.beginStep = options.beginStep ?? 0;
    this.endStep = options.endStep ?? -1;
    this.frequency = options.frequency ?? 100;
    checkSteps('ConstantSparsity', this.beginStep, this.endStep, this.frequency, false);
  }
  /** `{ shouldPrune, sparsity }` at `step`. */
  at(step: number): ScheduleDecision {
    return { shouldPrune: shouldPruneInStep(step, this.beginStep, this.endStep, this.frequency), sparsity: this.targetSparsity };
  }
  /** The schedule as JSON. */
  getConfig() {
    return { className: 'ConstantSparsity', config: { targetSparsity: this.targetSparsity, beginStep: this.beginStep, endStep: this.endStep, frequency: this.frequency } };
  }
}

/** Options of {@link PolynomialDecay} (tfmot: `PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100)`). */
export interface PolynomialDecayOptions {
  initialSparsity: number;
  finalSparsity: number;
  beginStep: number;
  endStep: number;
  /** Default 3. */
  power?: number;
  /** Default 100. */
  frequency?: number;
}

/**
 * Sparsity rising from `initialSparsity` to `finalSparsity` between `beginStep` and `endStep`
 * (tfmot's `PolynomialDecay`): `s(step) = (s₀ − s₁)·(1 − p)^power + s₁`, with
 * `p = clamp((step − beginStep)/(endStep − beginStep), 0, 1)`.
 */
export class PolynomialDecay implements PruningSchedule {
  readonly initialSparsity: number;
  readonly finalSparsity: number;
  readonly beginStep: number;
  readonly endStep: number;
  readonly power: number;
  readonly frequency: number;
  constructor(options: PolynomialDecayOptions) {
    checkSparsity('PolynomialDecay: initialSparsity', options.initialSparsity);
    checkSparsity('PolynomialDecay: finalSparsity', options.finalSparsity);
    this.initialSparsity = options.initialSparsity;
    this.finalSparsity = options.finalSparsity;
    this.beginStep = options.beginStep;
    this.endStep = options.endStep;
    this.power = options.power ?? 3;
    this.frequency = options.frequency ?? 100;
    if (!(this.power > 0)) throw new Error(`PolynomialDecay: power must be > 0, got ${this.power}`);
    checkSteps('PolynomialDecay', this.beginStep, this.endStep, this.frequency, true);
  }
  /** `{ shouldPrune, sparsity }` at `step`. */
  at(step: number): ScheduleDecision {
    const p = Math.min(1, Math.max(0, (step - this.beginStep) / (this.endStep - this.beginStep)));
    const sparsity = (this.initialSparsity - this.finalSparsity) * Math.pow(1 - p, this.power) + this.finalSparsity;
    return { shouldPrune: shouldPruneInStep(step, this.beginStep, this.endStep, this.frequency), sparsity };
  }
  /** The schedule as JSON. */
  getConfig() {
    return {
      className: 'PolynomialDecay',
      config: { initialSparsity: this.initialSparsity, finalSparsity: this.finalSparsity, beginStep: this.beginStep, endStep: this.endStep, power: this.power, frequency: this.frequency },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Masks
// ---------------------------------------------------------------------------------------------

/** A mask over one weight: 1 keeps, 0 prunes. */
export interface MagnitudeMask {
  mask: Float32Array;
  /** How many entries the mask zeroes: exactly `round(size × sparsity)`. */
  pruned: number;
  /** The largest magnitude that was pruned (0 when nothing was). */
  threshold: number;
}

/**
 * The low-magnitude mask of `values` at `sparsity`: exactly `round(n × sparsity)` zeros, on the
 * smallest |values| (ties go to the earlier position), so the achieved sparsity is the target
 * up to that rounding.
 */
export function lowMagnitudeMask(values: ArrayLike<number>, sparsity: number): MagnitudeMask {
  checkSparsity('lowMagnitudeMask: sparsity', sparsity);
  const n = values.length;
  const k = Math.round(n * sparsity);
  const mask = new Float32Array(n).fill(1);
  if (k === 0) return { mask, pruned: 0, threshold: 0 };
  const abs = new Float32Array(n);
  for (let i = 0; i < n; i++) abs[i] = Math.abs(values[i]);
  const sorted = abs.slice().sort();
  const t = sorted[k - 1];
  let below = 0;
  for (let i = 0; i < n; i++) if (abs[i] < t) below++;
  let ties = k - below;
  for (let i = 0; i < n; i++) {
    if (abs[i] < t) mask[i] = 0;
    else if (abs[i] === t && ties > 0) {
      mask[i] = 0;
      ties--;
    }
  }
  return { mask, pruned: k, threshold: t };
}

/** Layer class names whose `kernel` is pruned by default (tfmot's prunable Dense/Conv layers). */
export const PRUNABLE_LAYER_CLASSES: readonly string[] = ['Dense', 'Conv1D', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose'];

/** One masked weight of a pruned model. */
export interface PrunedWeight {
  layerName: string;
  /** The weight's name inside the layer, e.g. `kernel`. */
  weightName: string;
  variable: tf.LayerVariable;
  /** Current 0/1 mask (same shape as the weight). */
  mask: tf.Tensor;
  size: number;
  /** Largest pruned magnitude at the last mask update. */
  threshold: number;
}

/** The pruning state attached to a model by {@link pruneLowMagnitude}. */
export interface PruningState {
  schedule: PruningSchedule;
  weights: PrunedWeight[];
  /** The step the next batch will run as (0-based; advanced by {@link UpdatePruningStep}). */
  step: number;
  /** Target sparsity of the last mask update (0 before the first). */
  sparsity: number;
  /** Mask updates so far. */
  updates: number;
}

const states = new WeakMap<tf.LayersModel, PruningState>();
/** Also found through the masked variables: a Sequential trains through an inner LayersModel, which is what callbacks see. */
const stateByVariable = new WeakMap<tf.LayerVariable, PruningState>();

/** The pruning state of a model made by {@link pruneLowMagnitude}, or undefined for a plain model. */
export function pruningState(model: tf.LayersModel): PruningState | undefined {
  const direct = states.get(model);
  if (direct) return direct;
  for (const w of model.weights) {
    const s = stateByVariable.get(w);
    if (s) return s;
  }
  return undefined;
}

/** True when `model` came from {@link pruneLowMagnitude} (and was not stripped). */
export function isPruned(model: tf.LayersModel): boolean {
  return pruningState(model) !== undefined;
}

/**
 * A new model with the same architecture and a copy of the weights (nothing shared with
 * `model`). Synchronous; works for Sequential and functional models of built-in layers.
 */
export function cloneModel(model: tf.LayersModel): tf.LayersModel {
  const config = model.getConfig();
  const clone =
    model instanceof tf.Sequential
      ? (tf.Sequential.fromConfig(tf.Sequential, config) as tf.LayersModel)
      : (tf.LayersModel.fromConfig(tf.LayersModel, config) as tf.LayersModel);
  const weights = model.getWeights();
  clone.setWeights(weights);
  return clone;
}

function weightShortName(v: tf.LayerVariable): string {
  const n = v.originalName;
  return n.slice(n.lastIndexOf('/') + 1);
}

/** Multiply every masked weight by its mask (what runs after each optimizer step). */
export function applyMasks(state: PruningState): void {
  tf.tidy(() => {
    for (const w of state.weights) w.variable.write(tf.mul(w.variable.read(), w.mask));
  });
}

/** Recompute every mask at `sparsity` from the current weights, then apply them. */
export function updateMasks(state: PruningState, sparsity: number): void {
  for (const w of state.weights) {
    const values = w.variable.read().dataSync();
    const m = lowMagnitudeMask(values, sparsity);
    w.mask.dispose();
    w.mask = tf.tensor(m.mask, w.variable.shape as number[]);
    w.threshold = m.threshold;
  }
  state.sparsity = sparsity;
  state.updates++;
  applyMasks(state);
}

/** Options of {@link pruneLowMagnitude}. */
export interface PruneLowMagnitudeOptions {
  /** The schedule (tfmot's `pruning_schedule`); default `ConstantSparsity({ targetSparsity: 0.5, beginStep: 0 })`, tfmot's default. */
  schedule?: PruningSchedule;
  /** Alias of `schedule`, spelled like tfmot. */
  pruningSchedule?: PruningSchedule;
  /** Which layers to prune: names, or a predicate. Default: every Dense/Conv layer (tfmot prunes them all). */
  layers?: readonly string[] | ((layer: tf.layers.Layer) => boolean);
}

/**
 * Make a model prunable (tfmot's `prune_low_magnitude`). Returns a NEW model with a copy of
 * the weights and a mask (initially all ones) on the kernel of each selected layer; the input
 * model is left untouched. Compile it, then fit with `callbacks: [new UpdatePruningStep()]`.
 * Disposing the returned model also disposes its masks.
 */
export function pruneLowMagnitude(model: tf.LayersModel, options: PruneLowMagnitudeOptions = {}): tf.LayersModel {
  const schedule = options.schedule ?? options.pruningSchedule ?? new ConstantSparsity({ targetSparsity: 0.5, beginStep: 0 });
  if (options.layers && typeof options.layers !== 'function') {
    const have = new Set(model.layers.map((l) => l.name));
    const missing = options.layers.filter((n) => !have.has(n));
    if (missing.length) throw new Error(`pruneLowMagnitude: no layer named ${missing.join(', ')} in the model (layers: ${[...have].join(', ')})`);
  }
  const select = (l: tf.layers.Layer): boolean => {
    if (typeof options.layers === 'function') return options.layers(l);
    if (options.layers) return options.layers.includes(l.name);
    return PRUNABLE_LAYER_CLASSES.includes(l.getClassName());
  };
  const clone = cloneModel(model);
  const weights: PrunedWeight[] = [];
  for (const layer of clone.layers) {
    if (!select(layer)) continue;
    const kernels = layer.weights.filter((v) => /kernel$/.test(weightShortName(v)));
    if (kernels.length === 0) {
      clone.dispose();
      throw new Error(`pruneLowMagnitude: layer '${layer.name}' (${layer.getClassName()}) has no kernel to prune`);
    }
    for (const v of kernels) {
      weights.push({
        layerName: layer.name,
        weightName: weightShortName(v),
        variable: v,
        mask: tf.ones(v.shape as number[]),
        size: v.shape.reduce((a: number, b) => a * (b ?? 1), 1),
        threshold: 0,
      });
    }
  }
  if (weights.length === 0) {
    clone.dispose();
    throw new Error('pruneLowMagnitude: the model has no prunable layer (Dense/Conv kernels)');
  }
  const state: PruningState = { schedule, weights, step: 0, sparsity: 0, updates: 0 };
  states.set(clone, state);
  for (const w of weights) stateByVariable.set(w.variable, state);
  const dispose = clone.dispose.bind(clone);
  clone.dispose = () => {
    for (const w of state.weights) {
      w.mask.dispose();
      stateByVariable.delete(w.variable);
    }
    states.delete(clone);
    return dispose();
  };
  return clone;
}

function requireState(model: tf.LayersModel | undefined, who: string): PruningState {
  const state = model ? pruningState(model) : undefined;
  if (!state) {
    throw new Error(`${who}: the model being trained was not made by pruning.pruneLowMagnitude(model), so there is nothing to prune; wrap it first`);
  }
  return state;
}

/**
 * tfmot's `UpdatePruningStep` callback: before each batch it sets the pruning step and, on a
 * step the schedule marks, recomputes the masks; after each batch (i.e. after the optimizer
 * step) it re-applies the masks, so pruned weights are zero whenever the model is observed.
 */
export class UpdatePruningStep extends tf.Callback {
  private state: PruningState | undefined;
  /** Steps this callback has run (across fits). */
  stepsRun = 0;

  /** Finds the pruning state of the model being trained (throws if it is not pruned). */
  override async onTrainBegin(): Promise<void> {
    this.state = requireState(this.model, 'UpdatePruningStep');
  }

  /** Set the step; prune if the schedule says so; mask. */
  override async onBatchBegin(): Promise<void> {
    const state = this.state ?? requireState(this.model, 'UpdatePruningStep');
    const d = state.schedule.at(state.step);
    if (d.shouldPrune) updateMasks(state, d.sparsity);
    else applyMasks(state);
  }

  /** Re-apply the masks after the optimizer step, then advance the step. */
  override async onBatchEnd(): Promise<void> {
    const state = this.state ?? requireState(this.model, 'UpdatePruningStep');
    applyMasks(state);
    state.step++;
    this.stepsRun++;
  }
}

/** One line of the pruning summaries log. */
export interface PruningSummaryRecord {
  /** The number of optimizer steps run so far. */
  step: number;
  /** Epoch index (0-based) the record was taken at. */
  epoch: number;
  layer: string;
  weight: string;
  /** Measured fraction of exact zeros in the weight. */
  sparsity: number;
  /** The schedule's target at the last mask update. */
  targetSparsity: number;
  /** Largest pruned magnitude at the last mask update. */
  threshold: number;
}

/** The file {@link PruningSummaries} writes inside its log folder. */
export const SUMMARY_FILE = 'pruning_summaries.jsonl';

/** Measured fraction of exact zeros in a tensor. */
export function zeroFraction(t: tf.Tensor): number {
  const v = t.dataSync();
  let z = 0;
  for (let i = 0; i < v.length; i++) if (v[i] === 0) z++;
  return v.length ? z / v.length : 0;
}

/**
 * tfmot's `PruningSummaries(log_dir, update_freq='epoch')`: after each epoch (or every
 * `updateFreq` steps) it records each pruned weight's measured sparsity, target and threshold,
 * and rewrites `<logDir>/pruning_summaries.jsonl` atomically. Draw it with {@link pruningSummaryChart}.
 */
export class PruningSummaries extends tf.Callback {
  /** Every record so far (also in the file). */
  readonly records: PruningSummaryRecord[] = [];
  /** The JSON-lines file. */
  readonly file: string;
  private epoch = 0;
  private readonly updateFreq: 'epoch' | number;

  constructor(readonly logDir: string, options: { updateFreq?: 'epoch' | number } = {}) {
    super();
    this.file = path.join(logDir, SUMMARY_FILE);
    this.updateFreq = options.updateFreq ?? 'epoch';
    if (this.updateFreq !== 'epoch' && !(Number.isInteger(this.updateFreq) && this.updateFreq > 0)) {
      throw new Error(`PruningSummaries: updateFreq must be 'epoch' or a positive integer, got ${this.updateFreq}`);
    }
  }

  private log(): void {
    const state = requireState(this.model, 'PruningSummaries');
    for (const w of state.weights) {
      this.records.push({
        step: state.step,
        epoch: this.epoch,
        layer: w.layerName,
        weight: w.weightName,
        sparsity: tf.tidy(() => zeroFraction(w.variable.read())),
        targetSparsity: state.sparsity,
        threshold: w.threshold,
      });
    }
    writeFileAtomic(this.file, this.records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }

  /** Checks the model is pruned. */
  override async onTrainBegin(): Promise<void> {
    requireState(this.model, 'PruningSummaries');
  }

  /** Remembers the epoch index. */
  override async onEpochBegin(epoch: number): Promise<void> {
    this.epoch = epoch;
  }

  /** Logs every `updateFreq` steps when it is a number. */
  override async onBatchEnd(): Promise<void> {
    if (typeof this.updateFreq === 'number') {
      const state = requireState(this.model, 'PruningSummaries');
      // UpdatePruningStep may run before or after this callback in the list; log on the tick either way.
      if (state.step > 0 && state.step % this.updateFreq === 0) this.log();
    }
  }

  /** Logs at the end of each epoch (default). Throws if no {@link UpdatePruningStep} ran. */
  override async onEpochEnd(): Promise<void> {
    const state = requireState(this.model, 'PruningSummaries');
    if (state.step === 0) {
      throw new Error('PruningSummaries: no pruning step was run; add `new pruning.UpdatePruningStep()` to the fit callbacks (tfmot requires it too)');
    }
    if (this.updateFreq === 'epoch') this.log();
  }
}

/** Read a pruning summaries file (or the folder holding it). Errors name the file and line. */
export function readPruningSummaries(fileOrDir: string): PruningSummaryRecord[] {
  const file = fs.existsSync(fileOrDir) && fs.statSync(fileOrDir).isDirectory() ? path.join(fileOrDir, SUMMARY_FILE) : fileOrDir;
  return readJsonLines(file, 'pruning summaries', (v, where) => {
    const r = v as PruningSummaryRecord;
    if (!r || typeof r.step !== 'number' || typeof r.layer !== 'string' || typeof r.sparsity !== 'number') {
      throw new Error(`${where}: not a pruning summary record (needs step, layer, sparsity)`);
    }
    return r;
  });
}

/** A line chart of per-layer measured sparsity over training steps, from the summaries. */
export function pruningSummaryChart(records: readonly PruningSummaryRecord[], options: { title?: string; subtitle?: string | string[] } = {}): ChartSpec {
  return lineChart({
    title: options.title ?? 'Per-layer sparsity during training (PruningSummaries)',
    subtitle: options.subtitle,
    data: records.map((r) => ({ step: r.step, sparsity: r.sparsity, target: r.targetSparsity, layer: `${r.layer}/${r.weight}` })),
    x: { field: 'step', title: 'optimizer step' },
    y: { field: 'sparsity', title: 'fraction of weights that are zero' },
    color: { field: 'layer', title: 'weight' },
  });
}

/**
 * tfmot's `strip_pruning`: an ordinary model (a copy, no masks, nothing to dispose beyond the
 * model) with the masked weights in place. Predictions equal the pruned model's.
 */
export function stripPruning(model: tf.LayersModel): tf.LayersModel {
  const state = requireState(model, 'stripPruning');
  applyMasks(state);
  return cloneModel(model);
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------


/** One row of {@link sparsityReport}. */
export interface SparsityRow {
  [key: string]: string | number;
  layer: string;
  weight: string;
  shape: string;
  params: number;
  zeros: number;
  sparsity: number;
}

/** Measured zeros per kernel of a model (pruned or not): Dense/Conv kernels only, like tfmot reports. */
export function sparsityReport(model: tf.LayersModel): SparsityRow[] {
  const rows: SparsityRow[] = [];
  for (const layer of model.layers) {
    for (const v of layer.weights) {
      if (!/kernel$/.test(weightShortName(v))) continue;
      const data = v.read().dataSync();
      let zeros = 0;
      for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
      rows.push({ layer: layer.name, weight: weightShortName(v), shape: `[${v.shape.join(',')}]`, params: data.length, zeros, sparsity: data.length ? zeros / data.length : 0 });
    }
  }
  return rows;
}

/** Raw and gzip'd size of a model's weights (float32 bytes as saved), like tfmot's guide measures. */
export function gzippedWeightBytes(model: tf.LayersModel, level = 9): { rawBytes: number; gzipBytes: number } {
  const parts = model.getWeights().map((t) => {
    const d = t.dataSync();
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  });
  const raw = Buffer.concat(parts);
  return { rawBytes: raw.length, gzipBytes: zlib.gzipSync(raw, { level }).length };
}

// ---------------------------------------------------------------------------------------------
// Structured pruning
// ---------------------------------------------------------------------------------------------

/** Options of {@link pruneStructured}. */
export interface StructuredPruningOptions {
  /** Fraction of neurons / filters to remove from each pruned layer (0–1). */
  fraction?: number;
  /** Or exactly how many units to keep, per layer name (overrides `fraction` for those layers). */
  keep?: Record<string, number>;
  /** Importance of a unit: the L1 (default) or L2 norm of its incoming weights. */
  criterion?: 'l1' | 'l2';
  /** Layers to shrink. Default: every Dense/Conv2D except the last one (the output layer). */
  layers?: readonly string[];
}

/** One row of the structured-pruning report. */
export interface StructuredRow {
  [key: string]: string | number;
  layer: string;
  className: string;
  unitsBefore: number;
  unitsAfter: number;
}

/** What {@link pruneStructured} returns. */
export interface StructuredResult {
  /** The smaller model (uncompiled; fine-tune it). */
  model: tf.LayersModel;
  /** Units before and after, per shrunk layer. */
  report: StructuredRow[];
  /** The kept unit indices per shrunk layer. */
  kept: Record<string, number[]>;
}

/** Layers that pass the channel (last) axis through unchanged. */
const PASS_THROUGH = new Set([
  'InputLayer', 'Dropout', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'MaxPooling2D', 'AveragePooling2D',
  'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'MaxPooling1D', 'AveragePooling1D', 'GlobalAveragePooling1D',
  'GlobalMaxPooling1D', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ZeroPadding2D', 'Cropping2D',
]);
const SHRINKABLE: Record<string, 'units' | 'filters'> = { Dense: 'units', Conv2D: 'filters', Conv1D: 'filters' };

function unitNorms(kernel: Float32Array | Int32Array | Uint8Array, units: number, criterion: 'l1' | 'l2'): Float64Array {
  // The unit (output) axis is the last one for Dense [in, out] and Conv [kh, kw, in, out].
  const norms = new Float64Array(units);
  for (let i = 0; i < kernel.length; i++) {
    const v = kernel[i];
    norms[i % units] += criterion === 'l1' ? Math.abs(v) : v * v;
  }
  return norms;
}

/**
 * Structured pruning: remove whole neurons (Dense) or filters (Conv) with the smallest weight
 * norms, and build a genuinely smaller model: the next layer's inputs (and any BatchNorm or
 * Flatten in between) are cut to match. The result runs faster on dense kernels because its
 * matrices are smaller. Works on a chain of layers (Sequential or a functional chain) made of
 * Dense, Conv1D/2D, BatchNormalization, Flatten, pooling, dropout and activation layers.
 */
export function pruneStructured(model: tf.LayersModel, options: StructuredPruningOptions = {}): StructuredResult {
  const criterion = options.criterion ?? 'l1';
  const fraction = options.fraction ?? 0.5;
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`pruneStructured: fraction must be in [0, 1), got ${fraction}`);
  const layers = model.layers;
  for (const l of layers) {
    const inbound = l.inboundNodes.flatMap((n) => n.inboundLayers);
    if (inbound.length > 1 || l.inboundNodes.length > 1) {
      throw new Error(`pruneStructured: layer '${l.name}' has several inputs or is shared; only a chain of layers is supported`);
    }
  }
  const shrinkable = layers.filter((l) => SHRINKABLE[l.getClassName()]);
  const targets = new Set(options.layers ?? shrinkable.slice(0, -1).map((l) => l.name));
  for (const name of targets) {
    const l = layers.find((x) => x.name === name);
    if (!l) throw new Error(`pruneStructured: no layer named '${name}'`);
    if (!SHRINKABLE[l.getClassName()]) throw new Error(`pruneStructured: layer '${name}' is a ${l.getClassName()}; only Dense/Conv1D/Conv2D can be shrunk`);
    if (l === shrinkable[shrinkable.length - 1]) throw new Error(`pruneStructured: '${name}' is the output layer; shrinking it would change the model's outputs`);
  }
  for (const name of Object.keys(options.keep ?? {})) {
    if (!targets.has(name)) throw new Error(`pruneStructured: keep names '${name}', which is not among the layers to shrink (${[...targets].join(', ')})`);
  }

  const config = model.getConfig() as unknown as { layers: { className: string; config: Record<string, unknown> }[] };
  const configOf = (name: string) => {
    const c = config.layers.find((x) => x.config.name === name);
    if (!c) throw new Error(`pruneStructured: layer '${name}' not found in the model config`);
    return c.config;
  };

  const newWeights = new Map<string, tf.Tensor[]>();
  const report: StructuredRow[] = [];
  const kept: Record<string, number[]> = {};
  let keepIdx: number[] | null = null; // kept indices along the current activation's last axis

  try {
    for (const layer of layers) {
      const cls = layer.getClassName();
      const ws = layer.getWeights();
      if (SHRINKABLE[cls]) {
        const [kernel, bias] = ws;
        const inAxis = kernel.rank - 2;
        let k = keepIdx ? tf.gather(kernel, keepIdx, inAxis) : tf.clone(kernel);
        let b = bias ? tf.clone(bias) : undefined;
        const units = kernel.shape[kernel.rank - 1];
        if (targets.has(layer.name)) {
          const n = options.keep?.[layer.name] ?? Math.max(1, Math.round(units * (1 - fraction)));
          if (!Number.isInteger(n) || n < 1 || n > units) throw new Error(`pruneStructured: cannot keep ${n} of ${units} units in '${layer.name}'`);
          const norms = unitNorms(k.dataSync(), units, criterion);
          const order = Array.from(norms.keys()).sort((a, c) => norms[c] - norms[a] || a - c);
          const idx = order.slice(0, n).sort((a, c) => a - c);
          const k2 = tf.gather(k, idx, kernel.rank - 1);
          k.dispose();
          k = k2;
          if (b) {
            const b2 = tf.gather(b, idx);
            b.dispose();
            b = b2;
          }
          configOf(layer.name)[SHRINKABLE[cls]] = n;
          report.push({ layer: layer.name, className: cls, unitsBefore: units, unitsAfter: n });
          kept[layer.name] = idx;
          keepIdx = idx;
        } else {
          keepIdx = null;
        }
        newWeights.set(layer.name, b ? [k, b] : [k]);
      } else if (cls === 'BatchNormalization') {
        newWeights.set(layer.name, ws.map((w) => (keepIdx ? tf.gather(w, keepIdx) : tf.clone(w))));
      } else if (cls === 'Flatten') {
        if (keepIdx) {
          const shape = (layer.input as tf.SymbolicTensor).shape;
          const channels = shape[shape.length - 1] as number;
          const positions = shape.slice(1, -1).reduce((a: number, d) => a * (d as number), 1);
          const flat: number[] = [];
          for (let p = 0; p < positions; p++) for (const c of keepIdx) flat.push(p * channels + c);
          keepIdx = flat;
        }
      } else if (PASS_THROUGH.has(cls)) {
        if (ws.length) newWeights.set(layer.name, ws.map((w) => tf.clone(w)));
      } else {
        throw new Error(`pruneStructured: layer '${layer.name}' (${cls}) is not supported; supported: Dense, Conv1D, Conv2D, BatchNormalization, Flatten, ${[...PASS_THROUGH].join(', ')}`);
      }
    }

    const small =
      model instanceof tf.Sequential
        ? (tf.Sequential.fromConfig(tf.Sequential, config as unknown as tf.serialization.ConfigDict) as tf.LayersModel)
        : (tf.LayersModel.fromConfig(tf.LayersModel, config as unknown as tf.serialization.ConfigDict) as tf.LayersModel);
    for (const layer of small.layers) {
      const w = newWeights.get(layer.name);
      // Fresh copies: on wasm, a gather result keeps a 4-D storage shape that makes the fused
      // matMul/conv kernels reject it as a bias ("only supports rank-1 bias but got rank 4").
      if (w) {
        const copies = w.map((t) => tf.tensor(t.dataSync(), t.shape, t.dtype));
        layer.setWeights(copies);
        tf.dispose(copies);
      }
    }
    return { model: small, report, kept };
  } finally {
    for (const ws of newWeights.values()) tf.dispose(ws);
  }
}
