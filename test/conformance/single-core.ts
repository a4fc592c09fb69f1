/**
 * One tfjs-core instance for the specs, the backends and gpulab.
 *
 * tfjs-core's specs are ES modules that import tfjs-core's internals (`../engine`, `../tensor`),
 * while `@tensorflow/tfjs`, tfjs-node and the wasm backend `require('@tensorflow/tfjs-core')`,
 * which is the separate CommonJS bundle `dist/tf-core.node.js`. Loaded side by side they would be
 * two instances: two `Tensor` classes, two sets of flags, and specs that do not test what the
 * backends run. {@link useBundledCore} puts the bundle's tfjs-core (see bundle.ts) in Node's
 * module cache under `@tensorflow/tfjs-core`'s own path BEFORE anything else loads it, so every
 * `require('@tensorflow/tfjs-core')` returns it; {@link assertSingleCore} proves afterwards that
 * no second copy was loaded and that `@tensorflow/tfjs` sees the same engine and classes.
 */
import { createRequire, Module } from 'node:module';
import * as path from 'node:path';

type Core = typeof import('@tensorflow/tfjs-core');
/** Loads a package at call time: a static import would load tfjs-core before the shared one is installed. */
const lateRequire = createRequire(__filename);

/** The folder of the installed tfjs-core package. */
export const CORE_PACKAGE_DIR = path.dirname(require.resolve('@tensorflow/tfjs-core/package.json'));

/** Module-cache entries that are files of the installed tfjs-core package. */
function coreFilesInCache(): string[] {
  return Object.keys(require.cache).filter((f) => f.startsWith(CORE_PACKAGE_DIR + path.sep));
}

/**
 * Make `require('@tensorflow/tfjs-core')` return `core` from now on, for every package in this
 * process. Throws when some tfjs-core file is already loaded (it would be a second instance).
 * Returns the path the entry was registered under.
 */
export function useBundledCore(core: Core): string {
  const already = coreFilesInCache();
  if (already.length) throw new Error(`tfjs-core was loaded before the shared instance was installed: ${already.join(', ')}`);
  const entry = require.resolve('@tensorflow/tfjs-core');
  const m = new Module(entry);
  m.filename = entry;
  m.loaded = true;
  m.exports = core;
  require.cache[entry] = m;
  return entry;
}

/** What {@link assertSingleCore} checked. */
export interface SingleCoreReport {
  /** The path `@tensorflow/tfjs-core` resolves to, served by the shared instance. */
  entry: string;
  /** tfjs-core files in the module cache (only `entry` when all is well). */
  coreFilesLoaded: string[];
  /** The checks that held. */
  checks: string[];
}

/**
 * Throw unless exactly one tfjs-core instance is loaded and it is `core`: the module cache holds
 * no tfjs-core file but the shared entry, and `@tensorflow/tfjs` (through which tfjs-node, the
 * wasm backend and gpulab reach tfjs-core) has the same `Tensor` class, engine and kernel
 * registry as `core`.
 */
export function assertSingleCore(core: Core): SingleCoreReport {
  const entry = require.resolve('@tensorflow/tfjs-core');
  const files = coreFilesInCache();
  const problems: string[] = [];
  const checks: string[] = [];
  const others = files.filter((f) => f !== entry || require.cache[f]?.exports !== core);
  if (others.length) problems.push(`a second tfjs-core is loaded: ${others.join(', ')}`);
  else checks.push('no tfjs-core file but the shared entry is in the module cache');
  const tfjs = lateRequire('@tensorflow/tfjs') as Core;
  const same: [string, boolean][] = [
    ['@tensorflow/tfjs has the same Tensor class', tfjs.Tensor === core.Tensor],
    ['@tensorflow/tfjs has the same engine', tfjs.engine() === core.engine()],
    ['@tensorflow/tfjs has the same environment (flags)', tfjs.env() === core.env()],
    ['a tensor made through @tensorflow/tfjs is a Tensor of the shared core', tfjs.tidy(() => tfjs.scalar(1) instanceof core.Tensor)],
  ];
  for (const [what, ok] of same) (ok ? checks : problems).push(ok ? what : `NOT: ${what}`);
  if (problems.length) throw new Error(`tfjs-core is not one instance: ${problems.join('; ')}`);
  return { entry, coreFilesLoaded: files, checks };
}
