/**
 * scripts/setup/jupyter.ts: the project-local Jupyter (.venv/) is idempotent, keeps the tslab
 * kernel spec inside the venv (naming this checkout's tslab), stays out of git, and says exactly
 * what to install when Python's venv module is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setupJupyter } from '../../scripts/setup/jupyter';
import { ROOT, runScript, tempDir } from '../support/helpers';

const SCRIPT = 'scripts/setup/jupyter.ts';

test('a second run changes nothing and says so, quickly; the kernel spec lives in .venv and names this checkout\'s tslab', () => {
  const first = runScript(SCRIPT);
  assert.equal(first.status, 0, first.stdout + first.stderr);
  const t0 = Date.now();
  const again = runScript(SCRIPT);
  const ms = Date.now() - t0;
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /^\[setup-jupyter\] nothing to do: .*\.venv is up to date \(JupyterLab 4\.\d+\.\d+, nbclient [\d.]+, nbconvert [\d.]+, kernel tslab → /m);
  assert.equal(again.stdout.trim().split('\n').length, 1, `a second run does nothing else:\n${again.stdout}`);
  assert.ok(ms < 10_000, `the up-to-date check took ${ms} ms`);
  const spec = JSON.parse(fs.readFileSync(path.join(ROOT, '.venv', 'share', 'jupyter', 'kernels', 'tslab', 'kernel.json'), 'utf8')) as { argv: string[]; language: string };
  assert.equal(spec.argv[0], path.join(ROOT, 'node_modules', '.bin', 'tslab'));
  assert.equal(spec.language, 'typescript');
  // Pinned, exact versions only.
  for (const line of fs.readFileSync(path.join(ROOT, 'requirements-jupyter.txt'), 'utf8').split('\n')) {
    if (line.trim() && !line.startsWith('#')) assert.match(line, /^[A-Za-z0-9_.-]+==[\d.]+$/, `not pinned exactly: ${line}`);
  }
});

test('.venv/ and JupyterLab\'s .ipynb_checkpoints/ stay out of git', () => {
  for (const p of ['.venv/', 'notebooks/.ipynb_checkpoints/']) {
    const r = spawnSync('git', ['check-ignore', '-q', p], { cwd: ROOT });
    assert.equal(r.status, 0, `${p} is not ignored by git`);
  }
});

test('without Python\'s venv module it names the package to install, and creates nothing', () => {
  const { dir, cleanup } = tempDir();
  try {
    // A checkout-shaped folder: the requirements, a tslab, and a python3 without venv.
    fs.copyFileSync(path.join(ROOT, 'requirements-jupyter.txt'), path.join(dir, 'requirements-jupyter.txt'));
    fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'tslab'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const fake = path.join(dir, 'python3');
    fs.writeFileSync(fake, '#!/bin/sh\n# Like Debian\'s python3 without python3-venv: no ensurepip.\ncase "$*" in *ensurepip*) echo "ModuleNotFoundError: No module named \'ensurepip\'" >&2; exit 1;; *sys.version_info*) echo 3.11; exit 0;; esac\nexit 1\n', { mode: 0o755 });
    const said: string[] = [];
    assert.throws(
      () => setupJupyter({ root: dir, python: fake, log: (line) => said.push(line) }),
      (err: Error) => {
        assert.match(err.message, /-m venv' is not available/);
        assert.match(err.message, /sudo apt-get install python3-venv {3}\(or python3\.11-venv\)/);
        return true;
      },
    );
    assert.deepEqual(said, [], 'nothing was started');
    assert.ok(!fs.existsSync(path.join(dir, '.venv')), 'no half-made venv');
  } finally {
    cleanup();
  }
});
