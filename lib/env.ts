/**
 * Every knob the notebooks and benchmarks read from the environment, read in one place.
 *
 * - `GPULAB_QUICK=1`      small sizes for CI; the same code paths run, only counts shrink.
 * - `GPULAB_BACKEND=name` force a backend (`tensorflow`, `webgpu`, `wasm`, `cpu`).
 * - `GPULAB_DATA_DIR`     where datasets and models are cached (default `<repo>/data`).
 * - `GPULAB_RESULTS_DIR`  where benchmark results are written (default `<repo>/results/local`).
 * - `GPULAB_WASM_THREADS=n` run the wasm backend with n worker threads (opt-in; default 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** True when `GPULAB_QUICK` is set to anything but `0`/`false`/empty: small sizes for CI. */
export function isQuick(): boolean {
  const v = (process.env.GPULAB_QUICK ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false' && v !== 'no';
}

/** Pick the full-size value normally, the quick one under `GPULAB_QUICK=1`. */
export function pick<T>(full: T, quick: T): T {
  return isQuick() ? quick : full;
}

/** A one-line description of the mode, for notebook banners: "full mode" or "quick mode (GPULAB_QUICK=1)". */
export function modeLabel(): string {
  return isQuick() ? 'quick mode (GPULAB_QUICK=1: small sizes)' : 'full mode';
}

/** The backend forced by `GPULAB_BACKEND`, or undefined when none is forced. */
export function forcedBackend(): string | undefined {
  const v = (process.env.GPULAB_BACKEND ?? '').trim().toLowerCase();
  return v === '' || v === 'auto' ? undefined : v;
}

/**
 * The repository root: the nearest folder above this module holding a package.json
 * whose name is `gpulab-notebooks`. Falls back to the current directory.
 */
export function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'gpulab-notebooks') return dir;
      } catch {
        /* not ours */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return process.cwd();
}

/** The data cache folder (`GPULAB_DATA_DIR` or `<repo>/data`). */
export function dataDir(): string {
  return process.env.GPULAB_DATA_DIR ? path.resolve(process.env.GPULAB_DATA_DIR) : path.join(repoRoot(), 'data');
}

/** The folder benchmark results are written to (`GPULAB_RESULTS_DIR` or `<repo>/results/local`). */
export function resultsDir(): string {
  return process.env.GPULAB_RESULTS_DIR
    ? path.resolve(process.env.GPULAB_RESULTS_DIR)
    : path.join(repoRoot(), 'results', 'local');
}

/**
 * The wasm thread count asked for by `GPULAB_WASM_THREADS` (an integer 1–8), or null when unset.
 * Throws naming the variable when it is not such an integer.
 */
export function wasmThreads(): number | null {
  const v = (process.env.GPULAB_WASM_THREADS ?? '').trim();
  if (v === '') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new Error(`GPULAB_WASM_THREADS must be an integer from 1 to 8, got '${v}'`);
  }
  return n;
}
