/**
 * The notebook file format (nbformat 4), typed once for everything in this repository that reads
 * or writes a notebook: the runner's launcher (scripts/notebooks/run.ts), nbtool, the published
 * site (scripts/site/) and the tests.
 *
 * - The shapes: {@link Notebook}, {@link Cell}, {@link Output}, {@link MultilineText}.
 * - Reading: {@link readNotebook} checks what it reads and names the file and the problem.
 * - Writing: {@link writeNotebook} writes atomically, in the layout Jupyter writes (one-space
 *   indent, a final newline), so a committed notebook and a rewritten one diff cleanly.
 * - Committed notebooks are clean: {@link cleanNotebook} strips outputs, execution counts and the
 *   runner's metadata.
 * - The percent form (`// %%` cells) that notebooks are edited in: {@link fromPercent},
 *   {@link toPercent}.
 * - The collection: {@link listNotebooks} gives a folder's notebooks in reading order.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { readFileOrThrow, writeFileAtomic } from '../../lib/fsutil';

/** Multiline text as nbformat stores it: one string, or a list of lines. */
export type MultilineText = string | string[];

/** One output of a code cell. */
export interface Output {
  output_type: 'stream' | 'display_data' | 'execute_result' | 'error' | string;
  name?: string;
  text?: MultilineText;
  data?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  execution_count?: number | null;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** One cell. `outputs` and `execution_count` exist on code cells only. */
export interface Cell {
  cell_type: 'code' | 'markdown' | 'raw' | string;
  id?: string;
  source: MultilineText;
  /** nbclient records its per-cell timing stamps under `execution`. */
  metadata?: { execution?: Record<string, string>; [k: string]: unknown };
  outputs?: Output[];
  execution_count?: number | null;
}

/** What this repository keeps in a notebook's metadata. */
export interface NotebookMetadata {
  kernelspec?: { name?: string; display_name?: string; language?: string };
  language_info?: Record<string, unknown> & { name?: string };
  /** Written by the runner into executed copies (never into committed notebooks). */
  gpulab?: { quick?: boolean; executed_seconds?: number; summary?: string };
  [k: string]: unknown;
}

/** A notebook. */
export interface Notebook {
  cells: Cell[];
  metadata: NotebookMetadata;
  nbformat: number;
  nbformat_minor?: number;
}

/** The kernel metadata every notebook of the collection carries: the TypeScript kernel (tslab). */
const TSLAB_METADATA: Readonly<NotebookMetadata> = Object.freeze({
  kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' },
  language_info: {
    codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true },
    file_extension: '.ts',
    mimetype: 'text/typescript',
    name: 'typescript',
    version: '3.7.2',
  },
});

/** Join nbformat multiline text (anything else reads as ''). */
export function text(x: MultilineText | unknown): string {
  if (Array.isArray(x)) return x.join('');
  return typeof x === 'string' ? x : '';
}

/** Split text into nbformat's list of lines, each keeping its '\n' (the last one has none). */
function lines(s: string): string[] {
  const parts = s.split('\n').map((l, i, a) => (i < a.length - 1 ? `${l}\n` : l));
  return parts[parts.length - 1] === '' ? parts.slice(0, -1) : parts;
}

/**
 * Check parsed JSON as a notebook: an object with a `cells` list of cells that each have a
 * `cell_type`, in nbformat 4. Throws an Error naming `file` and the problem; fills in an empty
 * `metadata` when there is none.
 */
function checkNotebook(value: unknown, file: string): Notebook {
  const nb = value as Notebook;
  if (!nb || typeof nb !== 'object' || !Array.isArray(nb.cells)) throw new Error(`${file}: not a notebook (no "cells" list)`);
  if (nb.nbformat !== 4) throw new Error(`${file}: nbformat ${String(nb.nbformat)} is not supported (need 4)`);
  nb.metadata ??= {};
  nb.cells.forEach((c, i) => {
    if (typeof c?.cell_type !== 'string') throw new Error(`${file}: cell ${i} has no cell_type`);
  });
  return nb;
}

/** Read and check one notebook file. Throws an Error naming the file when it cannot be read, is not JSON or not an nbformat 4 notebook. */
export function readNotebook(file: string): Notebook {
  const raw = readFileOrThrow(file, 'the notebook', 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${file}: not valid JSON, so not a notebook (${(err as Error).message})`, { cause: err });
  }
  return checkNotebook(value, file);
}

/** The text of a notebook file, as Jupyter writes it: JSON with a one-space indent and a final newline. */
export function serializeNotebook(nb: Notebook): string {
  return `${JSON.stringify(nb, null, 1)}\n`;
}

/** Write a notebook file atomically (a failed write leaves the old file as it was). */
export function writeNotebook(file: string, nb: Notebook): void {
  writeFileAtomic(file, serializeNotebook(nb));
}

/** A stable cell id from the cell's text and position (nbformat 4.5 wants one per cell). */
function cellId(source: string, index: number): string {
  return crypto.createHash('sha1').update(`${index}:${source}`).digest('hex').slice(0, 8);
}

/**
 * Make a notebook clean, in place, as committed notebooks are: no outputs, no execution counts,
 * no runner metadata (`gpulab`) and no signature; a cell without an id gets one. Returns it.
 */
export function cleanNotebook(nb: Notebook): Notebook {
  nb.cells.forEach((c, i) => {
    if (c.cell_type === 'code') {
      c.outputs = [];
      c.execution_count = null;
    }
    if (!c.id) c.id = cellId(text(c.source), i);
  });
  delete nb.metadata.gpulab;
  delete nb.metadata.signature;
  return nb;
}

/**
 * Build a clean notebook from its percent form: a line `// %%` starts a code cell, a line
 * `// %% [markdown]` a markdown cell whose lines are `// text` comments. Text before the first
 * marker is a code cell; empty cells are dropped.
 */
export function fromPercent(src: string): Notebook {
  const cells: Cell[] = [];
  let cur: { type: 'code' | 'markdown'; body: string[] } | null = null;
  const flush = (): void => {
    if (!cur) return;
    let body = cur.body.join('\n').replace(/^\n+|\n+$/g, '');
    if (cur.type === 'markdown') body = body.split('\n').map((l) => l.replace(/^\/\/ ?/, '')).join('\n');
    if (body.trim()) {
      const id = cellId(body, cells.length);
      cells.push(
        cur.type === 'markdown'
          ? { cell_type: 'markdown', id, metadata: {}, source: lines(body) }
          : { cell_type: 'code', execution_count: null, id, metadata: {}, outputs: [], source: lines(body) },
      );
    }
    cur = null;
  };
  for (const line of src.split('\n')) {
    const m = /^\/\/ %%(.*)$/.exec(line);
    if (m) {
      flush();
      cur = { type: /\[markdown\]/.test(m[1]) ? 'markdown' : 'code', body: [] };
    } else {
      cur ??= { type: 'code', body: [] };
      cur.body.push(line);
    }
  }
  flush();
  return { cells, metadata: structuredClone(TSLAB_METADATA) as NotebookMetadata, nbformat: 4, nbformat_minor: 5 };
}

/** The percent form of a notebook (see {@link fromPercent}): markdown cells as comments, every other cell as code. */
export function toPercent(nb: Notebook): string {
  return nb.cells
    .map((c) => {
      const src = text(c.source);
      return c.cell_type === 'markdown'
        ? `// %% [markdown]\n${src.split('\n').map((l) => (l ? `// ${l}` : '//')).join('\n')}\n`
        : `// %%\n${src}\n`;
    })
    .join('\n');
}

/**
 * The notebooks of a folder in reading order: the `*.ipynb` file names, sorted (the collection
 * numbers them `NN-name.ipynb`), without the runner's `*.failed.ipynb` partial runs.
 */
export function listNotebooks(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb') && !f.endsWith('.failed.ipynb'))
    .sort();
}
