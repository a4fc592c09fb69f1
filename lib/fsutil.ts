/** Small file-system helpers shared by every module that writes files. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Write a file atomically: the bytes go to a temp file beside the target, then a rename
 * puts them in place. A crash or error never leaves a half-written target behind.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
