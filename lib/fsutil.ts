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

/**
 * Read a JSON-lines file: one value per non-blank line, each passed to `check` with its
 * `file:line` location (throw there to reject it). Errors name the file, the line and the
 * problem; `what` says what the file should hold ("results", "pruning summaries").
 */
export function readJsonLines<T>(file: string, what: string, check: (value: unknown, where: string) => T): T[] {
  const text = readFileOrThrow(file, what, 'utf8');
  const out: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new Error(`${file}:${i + 1}: invalid JSON (${(err as Error).message})`, { cause: err });
    }
    out.push(check(v, `${file}:${i + 1}`));
  });
  return out;
}

/**
 * Read a file, or throw an Error that names the file, what it should hold and why it could not
 * be read: `data/x.csv: cannot read nvidia-smi CSV (ENOENT)`. Without `encoding` the bytes come
 * back as a Buffer.
 */
export function readFileOrThrow(file: string, what: string): Buffer;
export function readFileOrThrow(file: string, what: string, encoding: BufferEncoding): string;
export function readFileOrThrow(file: string, what: string, encoding?: BufferEncoding): string | Buffer {
  try {
    return encoding ? fs.readFileSync(file, encoding) : fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}
