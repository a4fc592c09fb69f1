/**
 * Execute notebooks headless with the tslab kernel, into a build folder (`npm run notebooks`).
 *
 *   node --import tsx scripts/notebooks/run.ts [--out DIR] [--timeout SECONDS] [--times FILE] [NOTEBOOK ...]
 *
 * Without notebooks it runs the collection (notebooks/*.ipynb) in reading order. Each notebook is
 * read first (scripts/notebooks/format.ts), so a file that is not a notebook is named before any
 * kernel starts. The execution itself is Jupyter's own Python API, nbclient, driven by
 * scripts/notebooks/nbclient_runner.py with the project-local Jupyter's Python (.venv, made by
 * scripts/setup/jupyter.ts), so nbclient and the tslab kernel spec come from this checkout and
 * never from a system or per-user Jupyter. Exit status: 0 when every notebook ran clean.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listNotebooks, readNotebook } from './format';

const ROOT = path.resolve(__dirname, '..', '..');
/** The runner's options that take a value (everything else that starts with `--` is passed on as a flag). */
const VALUE_OPTIONS = new Set(['--out', '--timeout', '--times']);

/**
 * Run the nbclient runner with these arguments (the runner's own: `--out`, `--timeout`,
 * `--times`, notebook files). Returns its exit status; throws naming the file when a notebook
 * cannot be read, or when the project-local Jupyter is missing.
 */
export function runNotebooks(argv: readonly string[], options: { root?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const root = options.root ?? ROOT;
  const python = path.join(root, '.venv', 'bin', 'python');
  if (!fs.existsSync(python)) {
    throw new Error(`${python} is missing: set up the project-local Jupyter first with\n  npm run setup:jupyter`);
  }
  const args = [...argv];
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (VALUE_OPTIONS.has(args[i])) i++;
    else if (!args[i].startsWith('-')) files.push(args[i]);
  }
  if (files.length === 0) {
    const dir = path.join(root, 'notebooks');
    for (const f of listNotebooks(dir)) args.push(path.join(dir, f));
  }
  for (const f of files) readNotebook(path.resolve(root, f));
  const r = spawnSync(python, [path.join(__dirname, 'nbclient_runner.py'), ...args], {
    cwd: root,
    stdio: 'inherit',
    // Kernel specs from the venv first (not ~/.local/share/jupyter).
    env: { ...(options.env ?? process.env), JUPYTER_PREFER_ENV_PATH: '1' },
  });
  if (r.error) throw new Error(`could not start ${python}: ${r.error.message}`);
  return r.status ?? 1;
}

if (require.main === module) {
  try {
    process.exitCode = runNotebooks(process.argv.slice(2));
  } catch (err) {
    console.error(`run-notebooks: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
