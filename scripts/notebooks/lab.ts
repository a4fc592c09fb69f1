/**
 * `npm run lab`: JupyterLab (the project-local one in .venv/) on notebooks/, TypeScript kernel.
 *
 * Extra arguments go to `jupyter lab` (e.g. `npm run lab -- --port 9999 --no-browser`).
 * GPULAB_LAB_DIR serves another folder than notebooks/ (the browser tests serve copies under build/).
 * JupyterLab runs as a child; SIGTERM and SIGHUP sent to this process are passed on to it, and
 * Ctrl+C reaches it directly from the terminal (JupyterLab then asks whether to shut down).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setupJupyter } from '../setup/jupyter';

const ROOT = path.resolve(__dirname, '..', '..');

/** The arguments `jupyter lab` gets for serving `dir`, before the user's own. */
function labArgs(dir: string, env: NodeJS.ProcessEnv = process.env, uid: number = os.userInfo().uid): string[] {
  const args = [`--ServerApp.root_dir=${dir}`];
  // CI and containers run as root; jupyter refuses to start there without --allow-root.
  if (uid === 0) args.push('--allow-root');
  // Without a display there is no browser to open: just print the URL.
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY && process.platform === 'linux') args.push('--no-browser');
  return args;
}

function main(): void {
  setupJupyter({ root: ROOT });
  const dir = process.env.GPULAB_LAB_DIR || path.join(ROOT, 'notebooks');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir} is not a folder`);
  console.log(`[lab] starting JupyterLab on ${dir} (TypeScript kernel); open the http://…/lab?token=… URL it prints below. Ctrl+C stops it.`);
  const child = spawn(path.join(ROOT, '.venv', 'bin', 'jupyter'), ['lab', ...labArgs(dir), ...process.argv.slice(2)], {
    cwd: process.cwd(),
    stdio: 'inherit',
    // Kernel specs and config from .venv first (tslab of this checkout, tslab as the default kernel).
    env: { ...process.env, JUPYTER_PREFER_ENV_PATH: '1' },
  });
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  // The terminal sends Ctrl+C to JupyterLab too: wait for it to decide, do not die first.
  process.on('SIGINT', () => undefined);
  child.on('error', (err) => {
    console.error(`[lab] ERROR: could not start jupyter lab: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(`[lab] ERROR: ${(err as Error).message}`);
    process.exit(1);
  }
}
