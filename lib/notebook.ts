/**
 * Notebook output helpers: markdown, visible notices, tables and the device banner every
 * notebook opens with. Inside tslab they send display_data; elsewhere they print text.
 */
import type { DeviceInfo } from './backends/device';
import { deviceLabel, listBackends, useBackend, type BackendName } from './backends/device';
import { modeLabel } from './env';
import { type Row } from './charts';
import { sendBundle } from './display';

function send(mime: 'text/markdown' | 'text/html', content: string, plain: string): void {
  if (!sendBundle({ [mime]: content, 'text/plain': plain })) console.log(plain);
}

/** What a dataset says about where it came from (`data.loadFashionMnist`'s result fits). */
export interface DatasetFacts {
  /** `'generated-stand-in'` when the loader fell back to the generated data. */
  source: string;
  /** Why the stand-in is in use, e.g. the download error. */
  reason?: string;
  train: { count: number };
  test: { count: number };
}

/** Show markdown text as a notebook output. */
export function markdown(text: string): void {
  send('text/markdown', text, text);
}

/**
 * A visible notice (a highlighted block), for things a reader must not miss: generated
 * stand-in data, a backend fallback, a missing tool.
 */
export function notice(text: string): void {
  send('text/markdown', `> **⚠ Notice:** ${text}`, `NOTICE: ${text}`);
}

/** The notice text for a dataset that is the generated stand-in (empty for the real data). */
export function standInNotice(ds: DatasetFacts): string {
  if (ds.source !== 'generated-stand-in') return '';
  return (
    `This notebook runs on a **generated stand-in**, not Fashion-MNIST: ${ds.train.count.toLocaleString('en-US')} train and ` +
    `${ds.test.count.toLocaleString('en-US')} test 28×28 images of synthetic garment silhouettes with noise (seeded, ` +
    `learnable, same shapes as the real data), because the real Fashion-MNIST files are not in the data cache` +
    `${ds.reason && /could not be downloaded/.test(ds.reason) ? ' and could not be downloaded here' : ''}. ` +
    `Accuracies are not comparable with published Fashion-MNIST results; timings are. ` +
    `Run \`npm run data:fetch\` with internet access to use the real data.`
  );
}

/**
 * Show the visible "generated stand-in" notice when `ds` is the stand-in (nothing otherwise).
 * The data layer only reports where the data came from; printing it is the notebook's call.
 */
export function announce(ds: DatasetFacts): void {
  const text = standInNotice(ds);
  if (text) notice(text);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: unknown, digits: number): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(digits - 1) : v.toPrecision(digits);
  }
  if (typeof v === 'bigint') return v.toString();
  return v === null || v === undefined ? '' : String(v);
}

/** Render rows as a plain-text table (what `table` prints outside a notebook, and its text/plain). */
export function textTable(rows: readonly Row[], options: { digits?: number } = {}): string {
  if (rows.length === 0) return '(no rows)';
  const cols = Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => fmt(r[c], options.digits ?? 4)));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (xs: string[]) => xs.map((x, i) => x.padEnd(widths[i])).join('  ');
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Show rows as an HTML table (with a text/plain twin). Numbers get `digits` significant digits. */
export function table(rows: readonly Row[], options: { digits?: number; caption?: string } = {}): void {
  const digits = options.digits ?? 4;
  const cols = rows.length ? Object.keys(rows[0]) : [];
  const html =
    `<table>${options.caption ? `<caption>${esc(options.caption)}</caption>` : ''}` +
    `<thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(fmt(r[c], digits))}</td>`).join('')}</tr>`).join('') +
    `</tbody></table>`;
  send('text/html', html, (options.caption ? `${options.caption}\n` : '') + textTable(rows, { digits }));
}

/** The banner text for a device: backend, device, cores, versions, mode. */
export function bannerText(info: DeviceInfo): string {
  const v = info.versions;
  return [
    `Backend: ${deviceLabel(info)}`,
    `Machine: ${info.cpuModel}, ${info.cores} cores, ${info.memoryGiB} GiB, ${info.platform}`,
    `Versions: tfjs ${v.tfjs} (${v.backendPackage ?? 'core'}), Node ${v.node}, tslab ${v.tslab ?? 'n/a'}`,
    ...(info.native ? [`TensorFlow: ${info.native.tfVersion} on ${info.native.device}, ${info.native.library ?? 'library path unknown'}`] : []),
    `Mode: ${modeLabel()}`,
  ].join('\n');
}

/**
 * The first call of every notebook: pick the backend (fastest, or `GPULAB_BACKEND`), print the
 * device banner, and show a notice if the requested backend fell back.
 */
export async function setup(request?: BackendName | 'auto'): Promise<DeviceInfo> {
  const info = await useBackend(request);
  console.log(bannerText(info));
  if (info.fallbackNote) notice(info.fallbackNote);
  else if (info.backend !== 'tensorflow') {
    // Say why the native TensorFlow backend (faster than wasm on the CPU) did not run.
    const native = (await listBackends()).find((p) => p.name === 'tensorflow' && !p.available);
    if (native) console.log(`Native TensorFlow backend: unavailable (${native.reason ?? 'no reason given'})`);
  }
  return info;
}

/** Rows describing every backend probe, for a table: name, available, device, rank, reason. */
export async function backendTable(): Promise<Row[]> {
  return (await listBackends()).map((p) => ({
    backend: p.name,
    available: p.available,
    accelerator: p.accelerator,
    device: p.deviceName || '—',
    rank: p.rank,
    note: p.reason ?? '',
  }));
}

/**
 * A measured time compared with a baseline, in words that follow the numbers: `'2.3× faster'`,
 * `'1.4× slower'`, or `'about as fast (1.03×)'` when the two are within `tolerance` (default 10 %)
 * of each other; `'not measured'` when either time is missing or not positive. Summaries use it
 * instead of writing "faster" next to a ratio that may have come out below 1.
 */
export function speedup(baselineSeconds: number, seconds: number, tolerance = 0.1): string {
  if (!(baselineSeconds > 0) || !(seconds > 0) || !Number.isFinite(baselineSeconds) || !Number.isFinite(seconds)) return 'not measured';
  const ratio = baselineSeconds / seconds;
  if (Math.abs(ratio - 1) <= tolerance) return `about as fast (${ratio.toFixed(2)}×)`;
  return ratio > 1 ? `${ratio.toFixed(ratio < 10 ? 2 : 1)}× faster` : `${(1 / ratio).toFixed(1 / ratio < 10 ? 2 : 1)}× slower`;
}
