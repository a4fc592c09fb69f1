/** Shared test helpers. */
import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** A fresh temp folder, removed by the returned cleanup function. */
export function tempDir(prefix = 'gpulab-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The repository root (this file is test/support/helpers.ts). */
export const ROOT = path.resolve(__dirname, '..', '..');

/** tsx's loader as a file URL, so `node --import` finds it from any working directory. */
const TSX = pathToFileURL(require.resolve('tsx')).href;

/**
 * Run a TypeScript script of this repository the way package.json does (`node --import tsx
 * FILE ...`), synchronously, from ROOT unless `options.cwd` says otherwise; output as text.
 */
export function runScript(file: string, args: readonly string[] = [], options: Partial<SpawnSyncOptionsWithStringEncoding> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', TSX, path.resolve(ROOT, file), ...args], { cwd: ROOT, ...options, encoding: 'utf8' });
}

/** The `node` arguments that run a TypeScript script of this repository, for an asynchronous `spawn`. */
export function scriptArgs(file: string, args: readonly string[] = []): string[] {
  return ['--import', TSX, path.resolve(ROOT, file), ...args];
}

/** A file of test/fixtures/ (e.g. `fixture('nvidia-smi', 'h100-idle.csv')`). */
export function fixture(...parts: string[]): string {
  return path.join(ROOT, 'test', 'fixtures', ...parts);
}
