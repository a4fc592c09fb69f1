/**
 * Every committed notebook is clean, and executes headless in quick mode with no error output
 * and with every chart it promises (each `charts.show(` call) present as a full bundle whose SVG
 * draws its data (test/support/chart-check.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VEGALITE_MIME } from '../../lib/display';
import { listNotebooks, readNotebook as read, text as join, type Notebook } from '../../scripts/notebooks/format';
import { ROOT, runScript, tempDir } from '../support/helpers';
import { assertMarksVisible, svgMarks } from '../support/chart-check';

const NB_DIR = path.join(ROOT, 'notebooks');
const OUT = path.join(ROOT, 'build', 'test-notebooks');
const notebooks = listNotebooks(NB_DIR);

function runNotebooks(files: string[], out: string, env: Record<string, string> = {}, extra: string[] = []) {
  return runScript('scripts/notebooks/run.ts', ['--out', out, ...extra, ...files], { env: { ...process.env, GPULAB_QUICK: '1', ...env } });
}

/** True when setup:tensorflow built the native backend here: the notebooks must then run on it (or on a GPU). */
function nativeBuilt(): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, '.tensorflow', 'status-cpu.json'), 'utf8')) as { ok?: boolean }).ok === true;
  } catch {
    return false;
  }
}

/** The device banner `setup()` prints in the first code cell's output. */
function banner(nb: Notebook): string {
  const first = nb.cells.find((c) => c.cell_type === 'code');
  return (first?.outputs ?? []).map((o) => join(o.text)).join('');
}

test('there are notebooks, numbered in reading order', () => {
  assert.ok(notebooks.length >= 1);
  for (const f of notebooks) assert.match(f, /^\d\d-[a-z0-9-]+\.ipynb$/);
});

for (const file of notebooks) {
  test(`${file} is committed clean and uses the tslab kernel`, () => {
    const nb = read(path.join(NB_DIR, file));
    assert.equal(nb.metadata.kernelspec?.name, 'tslab');
    nb.cells.forEach((c, i) => {
      if (c.cell_type !== 'code') return;
      assert.deepEqual(c.outputs, [], `cell ${i} has outputs`);
      assert.equal(c.execution_count, null, `cell ${i} has an execution count`);
    });
    const firstCode = nb.cells.find((c) => c.cell_type === 'code');
    assert.match(join(firstCode?.source), /^import \{[^}]+\} from 'gpulab';$/m, 'first code cell imports gpulab in one line');
  });

  test(`${file} executes headless in quick mode with no error output and all its charts`, () => {
    const r = runNotebooks([path.join('notebooks', file)], OUT);
    assert.equal(r.status, 0, `notebook run failed:\n${r.stdout}\n${r.stderr}`);
    const nb = read(path.join(OUT, file));
    const promised = nb.cells.filter((c) => c.cell_type === 'code' && /charts\.show\(/.test(join(c.source))).length;
    let bundles = 0;
    nb.cells.forEach((c, i) => {
      for (const o of c.outputs ?? []) {
        assert.notEqual(o.output_type, 'error', `cell ${i} has an error output`);
        if (o.output_type === 'stream' && o.name === 'stderr') {
          assert.doesNotMatch(join(o.text), /(Error|Exception|Traceback|Unhandled)\b/, `cell ${i} wrote an error to stderr`);
        }
        const vl = o.data?.[VEGALITE_MIME];
        if (vl) {
          bundles++;
          assert.equal(typeof vl, 'object', `cell ${i}: the Vega-Lite part must be a spec object`);
          const svg = join(o.data?.['image/svg+xml']);
          assert.match(svg, /^<svg/, `cell ${i}: the SVG part is missing`);
          assertMarksVisible(svgMarks(svg), `${file} cell ${i} (${join(o.data?.['text/plain'])})`);
          assert.match(join(o.data?.['text/plain']), /^\[chart\]/, `cell ${i}: the text part is missing`);
        }
      }
    });
    assert.ok(bundles >= promised, `${file}: ${promised} cells call charts.show but only ${bundles} chart bundles came out`);
    if (nativeBuilt() && !process.env.GPULAB_BACKEND) {
      assert.doesNotMatch(banner(nb), /^Backend: (wasm|cpu) /m, `${file}: the native backend is built here, so the notebook must not run on wasm/cpu:\n${banner(nb)}`);
    }
  });
}

test('02-cpu-vs-gpu.ipynb still executes on wasm (GPULAB_BACKEND=wasm)', () => {
  const out = path.join(ROOT, 'build', 'test-notebooks-wasm');
  const r = runNotebooks([path.join('notebooks', '02-cpu-vs-gpu.ipynb')], out, { GPULAB_BACKEND: 'wasm' });
  assert.equal(r.status, 0, `notebook run failed:\n${r.stdout}\n${r.stderr}`);
  const nb = read(path.join(out, '02-cpu-vs-gpu.ipynb'));
  assert.match(banner(nb), /^Backend: wasm /m);
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) assert.notEqual(o.output_type, 'error', `cell ${i} has an error output`);
  });
});

test('the runner fails on a throwing cell, naming the notebook, the cell and the error; shows cell progress and repeated kernel warnings once', () => {
  const { dir, cleanup } = tempDir();
  try {
    // A "driver warning" written straight to the kernel process's stderr (as Dawn does), by both notebooks.
    const warn = "require('fs').writeSync(2, 'Warning: limit artificially reduced from 1000000 to 16\\n');";
    const notebook = (cells: string[]): Notebook => ({
      cells: cells.map((src, i) => ({ cell_type: 'code', id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source: [src] })),
      metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
      nbformat: 4,
      nbformat_minor: 5,
    });
    const ok = path.join(dir, 'fine.ipynb');
    fs.writeFileSync(ok, JSON.stringify(notebook([warn, '1 + 1'])));
    const src = path.join(dir, 'broken.ipynb');
    fs.writeFileSync(src, JSON.stringify(notebook([`${warn}\nconst x = 1 + 1;\nx`, "throw new Error('planted failure');", '3'])));
    const out = path.join(dir, 'out');
    const times = path.join(dir, 'times.json');
    const r = runNotebooks([ok, src], out, {}, ['--times', times]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /broken\.ipynb .*FAILED in code cell 2/);
    assert.match(r.stdout, /throw new Error\('planted failure'\)/);
    assert.match(r.stdout, /error: [\s\S]*Error: planted failure/);
    assert.ok(!fs.existsSync(path.join(out, 'broken.ipynb')), 'no executed copy for a failed run');
    assert.ok(fs.existsSync(path.join(out, 'broken.failed.ipynb')), 'the partial run is kept for debugging');
    // Progress: the notebook, the cell and the elapsed time.
    assert.match(r.stdout, /^fine · cell 1\/2 · \d+:\d\d$/m);
    assert.match(r.stdout, /^broken · cell 1\/3 · \d+:\d\d$/m);
    // The warning both kernels print is shown once.
    assert.equal(r.stdout.split('limit artificially reduced').length - 1, 1, r.stdout);
    assert.match(r.stdout, /\(1 repeated kernel stderr line\(s\) not shown again\)/);
    // The clean notebook's cell times are kept for the next run's estimate.
    const kept = JSON.parse(fs.readFileSync(times, 'utf8')) as { quick: Record<string, { total: number; cells: Record<string, number> }> };
    assert.deepEqual(Object.keys(kept.quick.fine.cells).sort(), ['c0', 'c1']);
    assert.ok(kept.quick.fine.total > 0);
    const again = runNotebooks([ok], out, {}, ['--times', times]);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /the last run took \d+:\d\d/);
    assert.match(again.stdout, /^fine · cell 1\/2 · \d+:\d\d · about \d+:\d\d left \(last run \d+:\d\d\)$/m);
  } finally {
    cleanup();
  }
});
