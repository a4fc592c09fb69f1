/**
 * Tabular data through nodejs-polars: a generated dataset (CSV and Parquet) for tests and
 * notebooks, and lazy batched loading of CSV/Parquet files into tensors.
 *
 * ```ts
 * const { csv, parquet } = data.writeTabularDataset(path.join(env.dataDir(), 'tabular'));
 * for await (const { xs, ys } of data.tabularBatches(parquet, { features: data.TABULAR_FEATURES, target: 'label', batchSize: 256 })) {
 *   ...; xs.dispose(); ys.dispose();
 * }
 * ```
 *
 * Benchmark results are held as polars DataFrames by `results.resultsToDataFrame`, which the charts read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pl from 'nodejs-polars';
import { mixSeed, mulberry32 } from '../random';

/** The feature columns of the generated tabular dataset. */
export const TABULAR_FEATURES: readonly string[] = Object.freeze(['x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7']);
/** Number of classes of the generated dataset's `label` column. */
export const TABULAR_CLASSES = 3;

/** The generated tabular dataset as plain columns (see {@link generateTabular}). */
export interface TabularColumns {
  /** Feature columns x0..x7 (float). */
  features: Record<string, Float64Array>;
  /** Class 0..2 from a noisy linear rule of the features. */
  label: Int32Array;
  /** A noisy linear regression target. */
  target: Float64Array;
}

/**
 * Generate the tabular dataset in memory, deterministic from `seed`: 8 standard-normal-ish
 * features, a `label` (0..2, a noisy linear rule of the features: learnable, not trivially) and
 * a float `target` (a noisy linear function of the features).
 */
export function generateTabular(rows: number, seed = 7): TabularColumns {
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`generateTabular: rows must be a positive integer, got ${rows}`);
  const rand = mulberry32(mixSeed(seed, 0x7ab));
  const normal = () => (rand() + rand() + rand() + rand() - 2) * 1.732;
  const features: Record<string, Float64Array> = {};
  for (const f of TABULAR_FEATURES) features[f] = new Float64Array(rows);
  const label = new Int32Array(rows);
  const target = new Float64Array(rows);
  const w = TABULAR_FEATURES.map(() => normal());
  for (let i = 0; i < rows; i++) {
    let s = 0;
    let t = 0;
    TABULAR_FEATURES.forEach((f, j) => {
      const v = Math.round(normal() * 1e4) / 1e4;
      features[f][i] = v;
      s += v * (j < 4 ? 1 : -0.5);
      t += v * w[j];
    });
    const score = s + normal() * 0.6;
    label[i] = score < -1 ? 0 : score < 1 ? 1 : 2;
    target[i] = Math.round((t + normal() * 0.1) * 1e4) / 1e4;
  }
  return { features, label, target };
}

/** The generated tabular dataset as a polars DataFrame (columns x0..x7, label, target). */
export function tabularDataFrame(rows: number, seed = 7): pl.DataFrame {
  const g = generateTabular(rows, seed);
  const cols = TABULAR_FEATURES.map((f) => pl.Series(f, Array.from(g.features[f]), pl.Float64));
  return pl.DataFrame([...cols, pl.Series('label', Array.from(g.label), pl.Int32), pl.Series('target', Array.from(g.target), pl.Float64)]);
}

/**
 * Write the generated tabular dataset (default 10,000 rows, seed 7) into `dir` as
 * `tabular-<rows>-seed<seed>.csv` and `.parquet` (each written to a temp file, then renamed).
 * Returns both paths.
 */
export function writeTabularDataset(dir: string, opts: { rows?: number; seed?: number } = {}): { csv: string; parquet: string } {
  const rows = opts.rows ?? 10_000;
  const seed = opts.seed ?? 7;
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `tabular-${rows}-seed${seed}`);
  const df = tabularDataFrame(rows, seed);
  const out = { csv: `${base}.csv`, parquet: `${base}.parquet` };
  const write = (dest: string, fn: (tmp: string) => void) => {
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      fn(tmp);
      fs.renameSync(tmp, dest);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  };
  write(out.csv, (tmp) => df.writeCSV(tmp));
  write(out.parquet, (tmp) => df.writeParquet(tmp));
  return out;
}

/** A lazy scan of a CSV or Parquet file, by extension. Errors name the file. */
export function scanTable(file: string): pl.LazyDataFrame {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return pl.scanCSV(file);
  if (ext === '.parquet' || ext === '.pq') return pl.scanParquet(file);
  throw new Error(`${file}: unsupported table format '${ext}' (expected .csv or .parquet)`);
}

/** Options for {@link tabularBatches}. */
export interface TabularBatchOptions {
  /** Feature columns, in the order of xs's second axis. */
  features: readonly string[];
  /** Target column: integer columns give int32 ys [b], float columns float32 ys [b]. */
  target: string;
  batchSize: number;
  /**
   * Rows read from the file per lazy query (default 65,536, rounded up to a whole number of
   * batches). At most this many rows are held on the host at a time.
   */
  chunkRows?: number;
}

const INTEGER_TYPES = new Set(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64']);

/**
 * Lazily scan a CSV/Parquet and yield batches of {xs, ys} tensors without loading the whole
 * file: each chunk is a lazy `select(features, target).slice(offset, chunkRows)` query (polars
 * pushes the projection and the slice into the scan), split into batches of `batchSize`.
 * xs is [b, features.length] float32. The caller disposes each batch. Missing columns and
 * null values throw, naming the file.
 */
export async function* tabularBatches(
  file: string,
  opts: TabularBatchOptions,
): AsyncGenerator<{ xs: tf.Tensor2D; ys: tf.Tensor }, void, undefined> {
  const { features, target, batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`tabularBatches: batchSize must be a positive integer, got ${batchSize}`);
  if (features.length === 0) throw new Error('tabularBatches: no feature columns given');
  const chunk = Math.ceil((opts.chunkRows ?? 65_536) / batchSize) * batchSize;
  const scan = scanTable(file);
  const cols = [...features, target];
  for (let offset = 0; ; offset += chunk) {
    let df: pl.DataFrame;
    try {
      df = await scan.select(...cols).slice(offset, chunk).collect();
    } catch (err) {
      throw new Error(`${file}: cannot read columns [${cols.join(', ')}]: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    const n = df.height;
    if (n === 0) return;
    const nf = features.length;
    const x = new Float32Array(n * nf);
    features.forEach((f, j) => {
      const s = df.getColumn(f);
      if (s.nullCount() > 0) throw new Error(`${file}: column '${f}' has ${s.nullCount()} null values in rows ${offset}..${offset + n - 1}`);
      const v = s.cast(pl.Float32).toTypedArray() as Float32Array;
      for (let i = 0; i < n; i++) x[i * nf + j] = v[i];
    });
    const ts = df.getColumn(target);
    if (ts.nullCount() > 0) throw new Error(`${file}: target column '${target}' has ${ts.nullCount()} null values in rows ${offset}..${offset + n - 1}`);
    const isInt = INTEGER_TYPES.has((ts.dtype as { variant?: string }).variant ?? String(ts.dtype));
    const y = isInt ? Int32Array.from(ts.cast(pl.Int32).toTypedArray() as Int32Array) : (ts.cast(pl.Float32).toTypedArray() as Float32Array);
    for (let b = 0; b < n; b += batchSize) {
      const e = Math.min(b + batchSize, n);
      yield {
        xs: tf.tensor2d(x.slice(b * nf, e * nf), [e - b, nf], 'float32'),
        ys: isInt ? tf.tensor1d(y.slice(b, e), 'int32') : tf.tensor1d(y.slice(b, e), 'float32'),
      };
    }
    if (n < chunk) return;
  }
}
