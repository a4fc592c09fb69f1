/**
 * Reading executed notebooks for the published site (the file format itself is
 * scripts/notebooks/format.ts): the run's device and date (from the device banner every notebook prints in its first code cell,
 * and nbclient's per-cell timing), and the title and one-line summary shown on the index.
 */
import * as path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { VEGALITE_MIME } from '../../lib/display';
import { text, type Cell, type Notebook } from '../notebooks/format';

/** The MIME type of a plain Vega v5 spec (rendered the same way, for notebooks that send one). */
export const VEGA_MIME = 'application/vnd.vega.v5+json';

/** Remove ANSI colour/escape sequences (kernels colour their stderr and tracebacks). */
export function stripAnsi(s: string): string {
  return stripVTControlCharacters(s);
}

/** Where and how a notebook's numbers were produced, for the index and each page's footer. */
export interface RunInfo {
  /** The banner's backend label, e.g. "wasm · Intel(R) Xeon(R) Processor (2 cores)"; null without a banner. */
  deviceLabel: string | null;
  /** The backend name, e.g. "wasm", "webgpu". */
  backend: string | null;
  /** The banner's machine line: CPU model, cores, memory, platform. */
  machine: string | null;
  /** The GPU that computed, or null when a CPU backend ran (or the banner is missing). */
  gpu: string | null;
  /** True when the banner marks a software GPU adapter (lavapipe, llvmpipe …). */
  softwareGpu: boolean;
  /** Versions line pieces. */
  tfjs: string | null;
  node: string | null;
  backendPackage: string | null;
  tslab: string | null;
  /** The banner's mode line ("quick mode (…)" or "full mode"). */
  mode: string | null;
  /** True for a GPULAB_QUICK run (from the runner's metadata, else from the banner). */
  quick: boolean | null;
  /** When the run started (ISO), from nbclient's cell timing; null when the notebook has none. */
  date: string | null;
  /** Seconds the whole notebook took, as the runner recorded it. */
  seconds: number | null;
}

/** The banner lines `nb.setup()` prints (see `bannerText` in lib/notebook.ts). */
export interface Banner {
  deviceLabel: string;
  machine: string | null;
  versions: string | null;
  mode: string | null;
}

/** Find the device banner ("Backend: …" then Machine/Versions/Mode lines) in a stdout text. */
export function parseBanner(stdout: string): Banner | null {
  const line = (key: string) => new RegExp(`^${key}: (.+)$`, 'm').exec(stdout)?.[1]?.trim() ?? null;
  const deviceLabel = line('Backend');
  if (!deviceLabel) return null;
  return { deviceLabel, machine: line('Machine'), versions: line('Versions'), mode: line('Mode') };
}

/**
 * Split a device label ("backend · what[ [software GPU]]", as `device.deviceLabel` writes it)
 * into the backend and the GPU. A CPU device ends in "(N cores)"; anything else is a GPU.
 */
export function splitDeviceLabel(label: string): { backend: string; gpu: string | null; software: boolean } {
  const software = /\s*\[software GPU\]\s*$/.test(label);
  const clean = label.replace(/\s*\[software GPU\]\s*$/, '');
  const sep = clean.indexOf(' · ');
  const backend = sep >= 0 ? clean.slice(0, sep).trim() : clean.trim();
  const what = sep >= 0 ? clean.slice(sep + 3).trim() : '';
  const cpu = what === '' || /\(\d+ cores?\)$/.test(what);
  return { backend, gpu: cpu ? null : what, software };
}

/** The pieces of the banner's versions line: "tfjs X (pkg), Node Y, tslab Z". */
export function parseVersions(line: string | null): { tfjs: string | null; backendPackage: string | null; node: string | null; tslab: string | null } {
  const s = line ?? '';
  const tf = /tfjs ([^\s,(]+)(?: \(([^)]+)\))?/.exec(s);
  return {
    tfjs: tf?.[1] ?? null,
    backendPackage: tf?.[2] ?? null,
    node: /Node ([^\s,]+)/.exec(s)?.[1] ?? null,
    tslab: /tslab ([^\s,]+)/.exec(s)?.[1] ?? null,
  };
}

/** The stdout text of a cell. */
export function stdoutOf(cell: Cell | undefined): string {
  return (cell?.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stdout').map((o) => text(o.text)).join('');
}

/** When the run started: the earliest nbclient timing stamp of any code cell. */
export function runDate(nb: Notebook): string | null {
  for (const c of nb.cells) {
    const e = c.cell_type === 'code' ? c.metadata?.execution : undefined;
    const stamp = e?.['iopub.execute_input'] ?? e?.['iopub.status.busy'] ?? e?.['shell.execute_reply'];
    if (stamp && !Number.isNaN(Date.parse(stamp))) return new Date(stamp).toISOString();
  }
  return null;
}

/**
 * The run information of an executed notebook: the first device banner printed by its code cells
 * (normally the first cell's `setup()`), the runner's metadata, and nbclient's timing.
 */
export function runInfo(nb: Notebook): RunInfo {
  let banner: Banner | null = null;
  for (const c of nb.cells) {
    if (c.cell_type !== 'code') continue;
    banner = parseBanner(stdoutOf(c));
    if (banner) break;
  }
  const split = banner ? splitDeviceLabel(banner.deviceLabel) : null;
  const v = parseVersions(banner?.versions ?? null);
  const metaQuick = nb.metadata.gpulab?.quick;
  return {
    deviceLabel: banner?.deviceLabel ?? null,
    backend: split?.backend ?? null,
    machine: banner?.machine ?? null,
    gpu: split?.gpu ?? null,
    softwareGpu: split?.software ?? false,
    ...v,
    mode: banner?.mode ?? null,
    quick: typeof metaQuick === 'boolean' ? metaQuick : banner?.mode ? /quick/i.test(banner.mode) : null,
    date: runDate(nb),
    seconds: typeof nb.metadata.gpulab?.executed_seconds === 'number' ? nb.metadata.gpulab.executed_seconds : null,
  };
}

/** Strip inline markdown to plain text (for the index summary and page titles). */
export function plainText(md: string): string {
  return md
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(\*|_)(.+?)\1/g, '$2')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The first sentence of a paragraph, capped at `max` characters on a word boundary. */
export function firstSentence(paragraph: string, max = 220): string {
  const s = paragraph.trim();
  const m = /^(.+?[.!?])(?=\s+["“(A-Z0-9`*_])/.exec(s);
  const sentence = m ? m[1] : s;
  if (sentence.length <= max) return sentence;
  const cut = sentence.slice(0, max);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), max * 0.6)).replace(/[\s,;:]+$/, '')} …`;
}

/**
 * The title (the first `# heading` of the first markdown cell, without a leading "NN ·") and a
 * one-line summary: `metadata.gpulab.summary` when a notebook sets it, else the first sentence of
 * the first paragraph after the title (by convention, the article's claim). Falls back to the
 * file name when a notebook has no title.
 */
export function titleAndSummary(nb: Notebook, fileName: string): { title: string; summary: string } {
  const md = nb.cells.filter((c) => c.cell_type === 'markdown').map((c) => text(c.source));
  const first = md.join('\n\n');
  const heading = /^#\s+(.+)$/m.exec(first);
  const base = path.basename(fileName, '.ipynb');
  const title = heading ? plainText(heading[1]).replace(/^\d+\s*[·:.\-–—]\s*/, '') : base;
  let summary = nb.metadata.gpulab?.summary;
  if (typeof summary !== 'string' || !summary.trim()) {
    const afterTitle = heading ? first.slice(first.indexOf(heading[0]) + heading[0].length) : first;
    const paragraph = afterTitle
      .split(/\n\s*\n/)
      .map((p) => p.trim())
      .find((p) => p && !/^(#|```|~~~|\||>|<|!\[|-{3,}|\*{3,})/.test(p));
    summary = paragraph ? firstSentence(plainText(paragraph)) : '';
  }
  return { title, summary: summary.trim() };
}

/** The number of chart outputs (Vega-Lite or Vega specs) in a notebook. */
export function chartCount(nb: Notebook): number {
  let n = 0;
  for (const c of nb.cells) for (const o of c.outputs ?? []) if (o.data && (o.data[VEGALITE_MIME] || o.data[VEGA_MIME])) n++;
  return n;
}
