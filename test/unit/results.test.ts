import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeDevice } from '../../lib/backends';
import * as results from '../../lib/results';
import { tempDir } from '../support/helpers';

const timingOf = (samples: number[]) => ({ samples, median: samples[1], min: Math.min(...samples), max: Math.max(...samples), mean: 0, device: describeDevice() });

test('results round-trip through JSON lines and flatten into a DataFrame', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'r.jsonl');
    const a = results.resultFromTiming({ experiment: 'seed-mlp', variant: 'preloaded', params: { batchSize: 100 }, dataset: 'generated-stand-in' }, timingOf([1, 2, 3]));
    const b = results.resultFromTiming({ experiment: 'seed-mlp', variant: 'naive', params: { batchSize: 100 }, extra: { gflops: 5 } }, timingOf([4, 5, 6]));
    results.appendResults(file, [a]);
    results.appendResults(file, [b]);
    const back = results.readResults(file);
    assert.equal(back.length, 2);
    assert.deepEqual(back[1].samples, [4, 5, 6]);
    const df = results.resultsToDataFrame(back);
    assert.equal(df.height, 2);
    for (const col of ['experiment', 'variant', 'median', 'backend', 'batchSize', 'gflops', 'dataset']) {
      assert.ok(df.columns.includes(col), `missing column ${col}`);
    }
    assert.deepEqual(df.getColumn('median').toArray(), [2, 5]);
    assert.deepEqual(fs.readdirSync(dir), ['r.jsonl'], 'no temp files left behind');
  } finally {
    cleanup();
  }
});

test('a bad results file gets an error naming the file, the line and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(file, '{"experiment":"x"}\n');
    assert.throws(() => results.readResults(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: missing field 'variant'`));
    fs.writeFileSync(file, '\n{not json\n');
    assert.throws(() => results.readResults(file), /bad\.jsonl:2: invalid JSON/);
    assert.throws(() => results.readResults(path.join(dir, 'absent.jsonl')), /absent\.jsonl: cannot read results \(ENOENT\)/);
  } finally {
    cleanup();
  }
});
