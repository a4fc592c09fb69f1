/** Shared test helpers. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh temp folder, removed by the returned cleanup function. */
export function tempDir(prefix = 'gpulab-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The repository root (this file is test/support/helpers.ts). */
export const ROOT = path.resolve(__dirname, '..', '..');
