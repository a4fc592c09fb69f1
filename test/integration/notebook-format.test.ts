/**
 * scripts/notebooks/format.ts (the one typed notebook format) and the tools on it: nbtool's percent
 * form round-trips every committed notebook, reading names the file and the problem, cleaning
 * strips what a run adds, and the runner names a bad notebook before any kernel starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanNotebook, fromPercent, listNotebooks, readNotebook, serializeNotebook, toPercent, writeNotebook, type Notebook } from '../../scripts/notebooks/format';
import { ROOT, runScript, tempDir } from '../support/helpers';

const NB_DIR = path.join(ROOT, 'notebooks');
/** A notebook's cells without their ids (ids are derived from text and position, so edits renumber them). */
const withoutIds = (nb: Notebook) => ({ ...nb, cells: nb.cells.map(({ id: _id, ...c }) => c) });

test('every committed notebook survives to-percent → from-percent: same cells, same metadata, written as committed', () => {
  const names = listNotebooks(NB_DIR);
  assert.ok(names.length >= 1);
  for (const name of names) {
    const file = path.join(NB_DIR, name);
    const nb = readNotebook(file);
    const again = fromPercent(toPercent(nb));
    assert.deepEqual(withoutIds(again), withoutIds(nb), `${name}: the percent form loses something`);
    assert.equal(serializeNotebook(nb), fs.readFileSync(file, 'utf8'), `${name} is not in the layout nbtool writes`);
  }
});

test('the percent form: markdown as comments, code as is, text before the first marker is code, empty cells dropped', () => {
  const nb = fromPercent("const a = 1;\n// %% [markdown]\n// # Title\n//\n// Some *text*.\n// %%\n\n// %%\nconsole.log(a);\n");
  assert.deepEqual(nb.cells.map((c) => [c.cell_type, c.source]), [
    ['code', ['const a = 1;']],
    ['markdown', ['# Title\n', '\n', 'Some *text*.']],
    ['code', ['console.log(a);']],
  ]);
  assert.equal(nb.metadata.kernelspec?.name, 'tslab');
  assert.equal(nb.cells[0].execution_count, null);
  assert.deepEqual(nb.cells[0].outputs, []);
  assert.equal(new Set(nb.cells.map((c) => c.id)).size, 3, 'each cell has its own id');
});

test('readNotebook names the file and the problem', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = (name: string, body: string) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, body);
      return f;
    };
    assert.throws(() => readNotebook(path.join(dir, 'absent.ipynb')), /absent\.ipynb: cannot read the notebook \(ENOENT\)/);
    assert.throws(() => readNotebook(file('half.ipynb', '{"cells": [')), /half\.ipynb: not valid JSON, so not a notebook/);
    assert.throws(() => readNotebook(file('list.ipynb', '[]')), /list\.ipynb: not a notebook \(no "cells" list\)/);
    assert.throws(() => readNotebook(file('v3.ipynb', '{"cells": [], "nbformat": 3}')), /v3\.ipynb: nbformat 3 is not supported \(need 4\)/);
    assert.throws(() => readNotebook(file('cell.ipynb', '{"cells": [{"source": ""}], "nbformat": 4}')), /cell\.ipynb: cell 0 has no cell_type/);
    assert.deepEqual(readNotebook(file('bare.ipynb', '{"cells": [], "nbformat": 4}')).metadata, {});
  } finally {
    cleanup();
  }
});

test('cleanNotebook strips outputs, counts, the runner\'s metadata and the signature; gives missing ids', () => {
  const nb: Notebook = {
    cells: [
      { cell_type: 'markdown', source: '# x', metadata: {} },
      { cell_type: 'code', id: 'keep', source: '1', metadata: {}, execution_count: 3, outputs: [{ output_type: 'stream', name: 'stdout', text: '1\n' }] },
    ],
    metadata: { kernelspec: { name: 'tslab' }, gpulab: { quick: true, executed_seconds: 2 }, signature: 'sha256:…' },
    nbformat: 4,
  };
  cleanNotebook(nb);
  assert.deepEqual(nb.cells[1], { cell_type: 'code', id: 'keep', source: '1', metadata: {}, execution_count: null, outputs: [] });
  assert.match(nb.cells[0].id ?? '', /^[0-9a-f]{8}$/);
  assert.equal('outputs' in nb.cells[0], false, 'markdown cells get no outputs');
  assert.deepEqual(nb.metadata, { kernelspec: { name: 'tslab' } });
});

test('listNotebooks: *.ipynb in reading order, without the runner\'s partial runs', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const f of ['10-b.ipynb', '02-a.ipynb', '02-a.failed.ipynb', 'notes.md']) fs.writeFileSync(path.join(dir, f), '');
    assert.deepEqual(listNotebooks(dir), ['02-a.ipynb', '10-b.ipynb']);
  } finally {
    cleanup();
  }
});

test('nbtool: from-percent writes a clean notebook that to-percent gives back; bad input is named; wrong usage exits 2', () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = path.join(dir, 'x.ts');
    const out = path.join(dir, 'x.ipynb');
    fs.writeFileSync(src, '// %% [markdown]\n// # X\n\n// %%\nconst x = 1;\n');
    assert.equal(runScript('scripts/notebooks/nbtool.ts', ['from-percent', src, out]).status, 0);
    writeNotebook(path.join(dir, 'y.ipynb'), readNotebook(out));
    assert.equal(fs.readFileSync(path.join(dir, 'y.ipynb'), 'utf8'), fs.readFileSync(out, 'utf8'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['x.ipynb', 'x.ts', 'y.ipynb'], 'no temp files left');
    const back = runScript('scripts/notebooks/nbtool.ts', ['to-percent', out]);
    assert.equal(back.stdout, '// %% [markdown]\n// # X\n\n// %%\nconst x = 1;\n');
    fs.writeFileSync(path.join(dir, 'bad.ipynb'), 'not json');
    const bad = runScript('scripts/notebooks/nbtool.ts', ['clean', path.join(dir, 'bad.ipynb')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.ipynb: not valid JSON/);
    assert.equal(fs.readFileSync(path.join(dir, 'bad.ipynb'), 'utf8'), 'not json', 'a bad file is left as it was');
    const usage = runScript('scripts/notebooks/nbtool.ts', ['to-percent']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^usage: nbtool\.ts from-percent/);
  } finally {
    cleanup();
  }
});

test('the runner names a file that is not a notebook before starting any kernel', () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = path.join(dir, 'broken.ipynb');
    fs.writeFileSync(bad, '{"cells": "none"}');
    const t0 = Date.now();
    const r = runScript('scripts/notebooks/run.ts', ['--out', path.join(dir, 'out'), bad]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /broken\.ipynb: not a notebook \(no "cells" list\)/);
    assert.ok(!fs.existsSync(path.join(dir, 'out')), 'nothing ran');
    assert.ok(Date.now() - t0 < 20_000, 'no kernel was started');
  } finally {
    cleanup();
  }
});
