#!/usr/bin/env node
// Run scripts/run_notebooks.py with the Python that Jupyter itself uses (it has nbclient),
// not whatever `python3` comes first on PATH (pyenv, conda …).
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function jupyterPython() {
  try {
    const jupyter = execFileSync('sh', ['-c', 'command -v jupyter'], { encoding: 'utf8' }).trim();
    const first = fs.readFileSync(jupyter, 'utf8').split('\n')[0];
    const py = first.startsWith('#!') ? first.slice(2).trim().split(/\s+/)[0] : '';
    if (py && fs.existsSync(py)) return py;
  } catch {
    /* fall through */
  }
  return 'python3';
}

const root = path.resolve(__dirname, '..');
const r = spawnSync(jupyterPython(), [path.join(__dirname, 'run_notebooks.py'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
