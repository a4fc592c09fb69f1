#!/usr/bin/env node
// Run scripts/notebooks/nbclient_runner.py with the project-local Jupyter's Python (.venv, made by
// scripts/setup/jupyter.sh), so nbclient and the tslab kernel spec come from this checkout and
// never from a system or per-user Jupyter.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const python = path.join(root, '.venv', 'bin', 'python');
if (!fs.existsSync(python)) {
  console.error(`run-notebooks: ${python} is missing: set up the project-local Jupyter first with\n  npm run setup:jupyter   (bash scripts/setup/jupyter.sh)`);
  process.exit(1);
}
const r = spawnSync(python, [path.join(__dirname, 'nbclient_runner.py'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  // Kernel specs from the venv first (not ~/.local/share/jupyter).
  env: { ...process.env, JUPYTER_PREFER_ENV_PATH: '1' },
});
if (r.error) console.error(`run-notebooks: could not start ${python}: ${r.error.message}`);
process.exit(r.status ?? 1);
