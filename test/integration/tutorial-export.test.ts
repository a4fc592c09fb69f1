/**
 * Converting an executed notebook to a tutorial page stays honest: `jupyter nbconvert --to html`
 * (the project-local nbconvert, JupyterLab's template, what users run) shows every chart, through
 * the SVG part of the chart bundle (nbconvert has no Vega renderer and drops a Vega-Lite-only
 * output), and each SVG draws its data (test/support/chart-check.ts).
 *
 * Uses the quick-mode executed copy in build/test-notebooks when test/integration/notebooks.test.ts has made
 * it (and it is newer than its source); otherwise executes the notebook itself with the runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VEGALITE_MIME } from '../../lib/display';
import { readNotebook } from '../../scripts/notebooks/format';
import { staleNotebooks } from '../../scripts/site/build';
import { ROOT, runScript, tempDir } from '../support/helpers';
import { assertMarksVisible, svgMarks } from '../support/chart-check';

const NOTEBOOK = '00-setup-and-devices.ipynb';
const SOURCES = path.join(ROOT, 'notebooks');
const EXECUTED = path.join(ROOT, 'build', 'test-notebooks');
const JUPYTER = path.join(ROOT, '.venv', 'bin', 'jupyter');

test(`jupyter nbconvert --to html of executed ${NOTEBOOK} shows every chart as a drawn SVG`, { skip: !fs.existsSync(path.join(SOURCES, NOTEBOOK)), timeout: 600_000 }, () => {
  assert.ok(fs.existsSync(JUPYTER), `${JUPYTER} is missing: run npm run setup:jupyter`);
  if (staleNotebooks(SOURCES, EXECUTED, [NOTEBOOK]).length) {
    const r = runScript('scripts/notebooks/run.ts', ['--out', EXECUTED, path.join(SOURCES, NOTEBOOK)], { env: { ...process.env, GPULAB_QUICK: '1' } });
    assert.equal(r.status, 0, `running ${NOTEBOOK} failed:\n${r.stdout}\n${r.stderr}`);
  }
  const executed = path.join(EXECUTED, NOTEBOOK);
  const nb = readNotebook(executed);
  const charts = nb.cells.flatMap((c) => c.outputs ?? []).filter((o) => o.data?.[VEGALITE_MIME]).length;
  assert.ok(charts >= 1, `${NOTEBOOK} has no chart output to check`);
  const { dir, cleanup } = tempDir();
  try {
    const r = spawnSync(JUPYTER, ['nbconvert', '--to', 'html', '--template', 'lab', '--output-dir', dir, executed], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, JUPYTER_PREFER_ENV_PATH: '1' },
    });
    assert.equal(r.status, 0, `nbconvert failed:\n${r.stderr}`);
    const html = fs.readFileSync(path.join(dir, NOTEBOOK.replace(/\.ipynb$/, '.html')), 'utf8');
    // Each chart output becomes an image/svg+xml output: the bundle's SVG, inline or (nbconvert 7)
    // as a base64 data: URI in an <img>.
    const inline = [...html.matchAll(/data-mime-type="image\/svg\+xml"[^>]*>\s*(<svg[\s\S]*?<\/svg>)/g)].map((m) => m[1]);
    const embedded = [...html.matchAll(/<img[^>]*src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
    const outputs = [...inline, ...embedded];
    assert.equal(outputs.length, charts, `${charts} chart outputs in the notebook, ${outputs.length} SVG charts in the HTML`);
    outputs.forEach((svg, i) => assertMarksVisible(svgMarks(svg), `nbconvert HTML of ${NOTEBOOK}, chart ${i + 1}`));
  } finally {
    cleanup();
  }
});
