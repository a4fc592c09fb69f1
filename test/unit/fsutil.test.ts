/** lib/fsutil.ts: atomic writes, and reads whose errors name the file and the problem. */
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as path from 'node:path';
import { readFileOrThrow, readJsonLines, writeFileAtomic } from '../../lib/fsutil';
import { tempDir } from '../support/helpers';

test('writeFileAtomic writes the whole file, making folders, and leaves no temp file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'a', 'b', 'out.json');
    writeFileAtomic(file, '{"x": 1}\n');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"x": 1}\n');
    writeFileAtomic(file, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['out.json']);
  } finally {
    cleanup();
  }
});

test('writeFileAtomic that fails leaves the old file as it was and nothing half-written beside it', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'results.json');
    fs.writeFileSync(file, 'old');
    // The new bytes are written, then the step that would put them in place fails.
    const rename = mock.method(fs, 'renameSync', () => {
      throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
    });
    assert.throws(() => writeFileAtomic(file, 'new and longer'), /EIO/);
    assert.equal(rename.mock.callCount(), 1, 'the temp file was written and its rename attempted');
    rename.mock.restore();
    assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(dir), ['results.json'], 'the temp file is removed');
    // A real failure: the target is a folder. Nothing is left behind either.
    const folder = path.join(dir, 'taken');
    fs.mkdirSync(path.join(folder, 'inside'), { recursive: true });
    assert.throws(() => writeFileAtomic(folder, 'x'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['results.json', 'taken']);
  } finally {
    mock.restoreAll();
    cleanup();
  }
});

test('readFileOrThrow names the file, what it should hold, and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'x.csv');
    fs.writeFileSync(file, 'a,b\n');
    assert.equal(readFileOrThrow(file, 'a CSV', 'utf8'), 'a,b\n');
    assert.ok(Buffer.isBuffer(readFileOrThrow(file, 'a CSV')), 'bytes without an encoding');
    assert.throws(() => readFileOrThrow(path.join(dir, 'none.csv'), 'nvidia-smi CSV', 'utf8'), {
      message: `${path.join(dir, 'none.csv')}: cannot read nvidia-smi CSV (ENOENT)`,
    });
    assert.throws(() => readFileOrThrow(dir, 'results', 'utf8'), new RegExp(`^Error: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read results \\(EISDIR\\)$`));
  } finally {
    cleanup();
  }
});

test('readJsonLines: one value per non-blank line, checked with its file:line; errors name the file, the line and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'r.jsonl');
    fs.writeFileSync(file, '{"n": 1}\n\n{"n": 2}\n');
    const where: string[] = [];
    const values = readJsonLines(file, 'results', (v, at) => {
      where.push(at);
      return (v as { n: number }).n;
    });
    assert.deepEqual(values, [1, 2]);
    assert.deepEqual(where, [`${file}:1`, `${file}:3`]);
    fs.writeFileSync(file, '{"n": 1}\n{"n": \n');
    assert.throws(() => readJsonLines(file, 'results', (v) => v), new RegExp(`r\\.jsonl:2: invalid JSON`));
    fs.writeFileSync(file, '{"n": "one"}\n');
    assert.throws(
      () => readJsonLines(file, 'results', (v, at) => {
        if (typeof (v as { n: unknown }).n !== 'number') throw new Error(`${at}: n is not a number`);
        return v;
      }),
      /r\.jsonl:1: n is not a number/,
    );
    assert.throws(() => readJsonLines(path.join(dir, 'absent.jsonl'), 'pruning summaries', (v) => v), /absent\.jsonl: cannot read pruning summaries \(ENOENT\)/);
  } finally {
    cleanup();
  }
});
