/**
 * `npm run setup:jupyter`: a project-local Jupyter in .venv/ (git-ignored), with the tslab kernel
 * of this checkout. No sudo, no system Jupyter. Idempotent: a second run checks and says
 * "nothing to do".
 *
 *  1. python3 -m venv .venv            (GPULAB_PYTHON=/path/to/python3 picks another interpreter)
 *  2. pip install -r requirements-jupyter.txt   (exact versions: JupyterLab 4, nbclient, nbconvert)
 *  3. the tslab kernel spec inside the venv (.venv/share/jupyter/kernels/tslab), pointing at
 *     node_modules/.bin/tslab of this checkout: not in ~/.local, so other projects are untouched
 *  4. .venv/etc/jupyter/jupyter_server_config.json: new notebooks default to the tslab kernel
 *
 * Everything that runs Jupyter here (npm run lab, the runner, the tests, npm run publish) uses
 * .venv/bin/jupyter and .venv/bin/python.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../lib/fsutil';
import { findOnPath } from '../../lib/monitor/tools';

/** Options of {@link setupJupyter}. */
export interface SetupJupyterOptions {
  /** The checkout: holds requirements-jupyter.txt and node_modules/.bin/tslab; the venv goes in its .venv/. */
  root: string;
  /** The Python that creates the venv (default `$GPULAB_PYTHON`, else `python3`). */
  python?: string;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/** What the server config of the venv says: new notebooks get the TypeScript kernel. */
const SERVER_CONFIG = `{
  "MappingKernelManager": { "default_kernel_name": "tslab" }
}
`;

/** The modules a working venv imports. */
const MODULES = ['jupyterlab', 'nbclient', 'nbconvert', 'ipykernel'];

/**
 * Make `<root>/.venv` a Jupyter with the pinned packages and this checkout's tslab kernel, doing
 * only what is missing. Throws an Error that says what to do when it cannot (no tslab, no
 * Python venv module, pip failing).
 */
export function setupJupyter(options: SetupJupyterOptions): void {
  const { root } = options;
  const say = options.log ?? ((line: string) => console.log(`[setup-jupyter] ${line}`));
  const py = options.python ?? process.env.GPULAB_PYTHON ?? 'python3';
  const venv = path.join(root, '.venv');
  const vpy = path.join(venv, 'bin', 'python');
  const req = path.join(root, 'requirements-jupyter.txt');
  const stamp = path.join(venv, '.gpulab-requirements');
  const tslab = path.join(root, 'node_modules', '.bin', 'tslab');
  const kernelJson = path.join(venv, 'share', 'jupyter', 'kernels', 'tslab', 'kernel.json');
  const serverConfig = path.join(venv, 'etc', 'jupyter', 'jupyter_server_config.json');
  const env = { ...process.env, JUPYTER_PREFER_ENV_PATH: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  const run = (cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}) =>
    spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', ...opts });
  const ok = (cmd: string, args: readonly string[]) => run(cmd, args, { stdio: 'ignore' }).status === 0;
  const output = (cmd: string, args: readonly string[]) => {
    const r = run(cmd, args);
    return r.status === 0 ? String(r.stdout) : null;
  };

  if (!isExecutable(tslab)) throw new Error(`${tslab} is missing: run npm ci first`);
  if (!fs.existsSync(req)) throw new Error(`${req} is missing`);
  let changed = false;

  // 1. The virtual environment (recreated if its interpreter no longer runs, e.g. Python moved).
  if (isExecutable(vpy) && !ok(vpy, ['-c', 'import sys'])) {
    say(`${venv} is broken (its python does not run): recreating it`);
    fs.rmSync(venv, { recursive: true, force: true });
  }
  if (!isExecutable(vpy)) {
    if (!findOnPath(py)) throw new Error(`no ${py} found: install Python 3.9 or newer (or set GPULAB_PYTHON=/path/to/python3)`);
    if (!ok(py, ['-c', 'import venv, ensurepip'])) {
      const ver = output(py, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'])?.trim() || '3';
      throw new Error(
        `'${py} -m venv' is not available (Python's venv/ensurepip module is missing).\n` +
          `  On Debian/Ubuntu install it:  sudo apt-get install python3-venv   (or python${ver}-venv)\n` +
          '  then run this again (npm run setup:jupyter).',
      );
    }
    say(`creating the virtual environment ${venv} with ${(output(py, ['--version']) ?? py).trim()} (${findOnPath(py) ?? py})`);
    if (run(py, ['-m', 'venv', venv], { stdio: 'inherit' }).status !== 0) {
      throw new Error(`'${py} -m venv ${venv}' failed (on Debian/Ubuntu: sudo apt-get install python3-venv)`);
    }
    changed = true;
  }

  // 2. The pinned packages; the stamp records what was installed (requirements + interpreter).
  const want = `${fs.readFileSync(req, 'utf8')}${output(vpy, ['-c', 'import sys; print(sys.version)']) ?? ''}`.replace(/\n+$/, '');
  const havePackages = () => ok(vpy, ['-c', `import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ${JSON.stringify(MODULES)}) else 1)`]);
  if (!(readOr(stamp) === want && havePackages())) {
    const count = fs.readFileSync(req, 'utf8').split('\n').filter((l) => /^[A-Za-z]/.test(l)).length;
    say(`installing ${count} pinned packages from ${path.basename(req)} into ${venv} (about 20 s)`);
    if (run(vpy, ['-m', 'pip', 'install', '--quiet', '--timeout', '5', '--retries', '0', '-r', req], { stdio: 'inherit' }).status !== 0) {
      throw new Error(`pip could not install ${path.basename(req)} into ${venv} (no network? see the messages above)`);
    }
    if (!havePackages()) throw new Error('the packages installed but do not import');
    writeFileAtomic(stamp, want);
    changed = true;
  }

  // 3. The tslab kernel spec inside the venv, naming this checkout's tslab.
  const kernelOk = () => {
    try {
      const spec = JSON.parse(fs.readFileSync(kernelJson, 'utf8')) as { argv?: string[]; language?: string };
      return spec.argv?.[0] === tslab && spec.language === 'typescript';
    } catch {
      return false;
    }
  };
  if (!kernelOk()) {
    say(`registering the TypeScript kernel (tslab) in ${venv} with ${tslab}`);
    if (run(tslab, ['install', `--python=${vpy}`, `--binary=${tslab}`, '--sys-prefix'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
      throw new Error('tslab install --sys-prefix failed');
    }
    if (!kernelOk()) throw new Error(`kernel registration failed: ${kernelJson} does not name ${tslab}`);
    changed = true;
  }

  // 4. New notebooks (and notebooks without kernel metadata) get the TypeScript kernel.
  if (readOr(serverConfig) !== SERVER_CONFIG) {
    writeFileAtomic(serverConfig, SERVER_CONFIG);
    say(`default kernel for new notebooks: tslab (${serverConfig})`);
    changed = true;
  }

  const versions = output(vpy, ['-c', 'from importlib.metadata import version as v; print("JupyterLab %s, nbclient %s, nbconvert %s" % (v("jupyterlab"), v("nbclient"), v("nbconvert")))'])?.trim();
  if (changed) say(`ready: ${venv} (${versions}, kernel tslab → ${tslab})`);
  else say(`nothing to do: ${venv} is up to date (${versions}, kernel tslab → ${tslab})`);
}

const isExecutable = (file: string): boolean => findOnPath(file) !== null;

function readOr(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

if (require.main === module) {
  try {
    setupJupyter({ root: path.resolve(__dirname, '..', '..') });
  } catch (err) {
    console.error(`[setup-jupyter] ERROR: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
