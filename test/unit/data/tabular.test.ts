import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pl from 'nodejs-polars';
import * as tab from '../../../lib/data/tabular';
import { tempDir } from '../../support/helpers';

async function collect(file: string, opts: tab.TabularBatchOptions) {
  const xs: number[][] = [];
  const ys: number[] = [];
  const shapes: number[][] = [];
  let dtype = '';
  for await (const b of tab.tabularBatches(file, opts)) {
    shapes.push(b.xs.shape);
    const x = b.xs.arraySync();
    xs.push(...x);
    ys.push(...Array.from(b.ys.dataSync()));
    dtype = b.ys.dtype;
    tf.dispose([b.xs, b.ys]);
  }
  return { xs, ys, shapes, dtype };
}

test('writeTabularDataset writes CSV and Parquet, deterministic from the seed', () => {
  const a = tempDir();
  const b = tempDir();
  try {
    const p = tab.writeTabularDataset(a.dir, { rows: 300, seed: 1 });
    assert.equal(path.basename(p.csv), 'tabular-300-seed1.csv');
    assert.deepEqual(fs.readdirSync(a.dir).sort(), ['tabular-300-seed1.csv', 'tabular-300-seed1.parquet']);
    const q = tab.writeTabularDataset(b.dir, { rows: 300, seed: 1 });
    assert.equal(fs.readFileSync(p.csv, 'utf8'), fs.readFileSync(q.csv, 'utf8'));
    const df = pl.readCSV(p.csv);
    assert.deepEqual(df.columns, [...tab.TABULAR_FEATURES, 'label', 'target']);
    assert.equal(df.height, 300);
    const pq = pl.readParquet(p.parquet);
    assert.ok(pq.frameEqual(df.withColumns(pl.col('label').cast(pl.Int32))), 'parquet holds the same table');
    // all three classes occur; a different seed gives different data
    assert.deepEqual([...new Set(df.getColumn('label').toArray())].sort(), [0, 1, 2]);
    assert.notDeepEqual(tab.generateTabular(50, 1).target, tab.generateTabular(50, 2).target);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('tabularBatches: shapes, dtypes, order and values, for CSV and Parquet, across chunks', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = tab.writeTabularDataset(dir, { rows: 1000, seed: 3 });
    const df = pl.readCSV(p.csv);
    const want = df.select(...tab.TABULAR_FEATURES).rows() as number[][];
    for (const file of [p.csv, p.parquet]) {
      const got = await collect(file, { features: tab.TABULAR_FEATURES, target: 'label', batchSize: 128, chunkRows: 300 });
      assert.deepEqual(got.shapes, [...new Array(7).fill([128, 8]), [104, 8]]);
      assert.equal(got.dtype, 'int32');
      assert.deepEqual(got.ys, df.getColumn('label').toArray());
      got.xs.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) < 1e-5, `${file} row ${i} col ${j}`)));
    }
    const reg = await collect(p.parquet, { features: ['x2', 'x0'], target: 'target', batchSize: 1000 });
    assert.deepEqual(reg.shapes, [[1000, 2]]);
    assert.equal(reg.dtype, 'float32');
    assert.ok(Math.abs(reg.xs[5][1] - want[5][0]) < 1e-5, 'feature order follows `features`');
  } finally {
    cleanup();
  }
});

test('tabularBatches leaks no tensors and errors name the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = tab.writeTabularDataset(dir, { rows: 200 });
    const before = tf.memory().numTensors;
    await collect(p.csv, { features: tab.TABULAR_FEATURES, target: 'label', batchSize: 30 });
    assert.equal(tf.memory().numTensors, before);
    const drain = async (file: string, o: Partial<tab.TabularBatchOptions> = {}) => {
      for await (const b of tab.tabularBatches(file, { features: ['x0'], target: 'label', batchSize: 10, ...o })) tf.dispose([b.xs, b.ys]);
    };
    await assert.rejects(drain(p.csv, { features: ['nope'] }), (e: Error) => e.message.startsWith(p.csv) && /cannot read columns \[nope, label\]/.test(e.message));
    await assert.rejects(drain(path.join(dir, 'missing.csv')), /missing\.csv: no such file/);
    const json = path.join(dir, 'x.json');
    fs.writeFileSync(json, '{}');
    await assert.rejects(drain(json), /x\.json: unsupported table format '\.json'/);
    const withNulls = path.join(dir, 'nulls.csv');
    fs.writeFileSync(withNulls, 'x0,label\n1.5,1\n,0\n');
    await assert.rejects(drain(withNulls), /nulls\.csv: column 'x0' has 1 null values/);
    await assert.rejects(drain(p.csv, { batchSize: 0 }), /batchSize must be a positive integer/);
  } finally {
    cleanup();
  }
});
