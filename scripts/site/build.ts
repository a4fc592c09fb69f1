/**
 * Build the static site from executed notebooks: one page per notebook, an index, the chart
 * SVG fallbacks, the executed notebooks for download, and the site's own copy of vega, vega-lite,
 * vega-embed (from node_modules, so the pages need no CDN) and a highlight.js theme.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listNotebooks, readNotebook, type Notebook } from '../notebooks/format';
import { runNotebooks } from '../notebooks/run';
import { chartCount, runInfo, titleAndSummary } from './notebook';
import { indexHtml, notebookPageHtml, renderNotebookBody, type IndexEntry } from './render';

/** Options of {@link buildSite}. */
export interface BuildOptions {
  /** The repository root (holds .venv, the project-local Jupyter that runs notebooks, and node_modules). */
  root: string;
  /** The committed notebooks: they decide which pages exist, and in which order. */
  sources: string;
  /** The folder of executed notebooks (same file names). */
  from: string;
  /** The site folder to (re)create. */
  out: string;
  /**
   * Execute the notebooks whose executed copy is missing or older than the source (into `from`)
   * before building. When false, such notebooks are an error.
   */
  run: boolean;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/** One published page. */
export interface PageReport {
  name: string;
  title: string;
  /** Path of the page relative to the site root. */
  file: string;
  charts: number;
  backend: string | null;
}

/** What {@link buildSite} wrote. */
export interface BuildReport {
  /** Absolute path of the site folder. */
  out: string;
  /** Absolute path of its index.html. */
  index: string;
  pages: PageReport[];
  /** Notebooks that were executed before building. */
  executed: string[];
}

/** The files copied from node_modules into `assets/`: [package, file inside it, name in the site]. */
export const VENDOR_FILES: readonly [string, string, string][] = [
  ['vega', 'build/vega.min.js', 'vendor/vega.min.js'],
  ['vega-lite', 'build/vega-lite.min.js', 'vendor/vega-lite.min.js'],
  ['vega-embed', 'build/vega-embed.min.js', 'vendor/vega-embed.min.js'],
  ['highlight.js', 'styles/github.css', 'highlight.css'],
];

/** The packages whose files the site redistributes, listed with their licenses in assets/vendor/README.txt. */
const VENDOR_PACKAGES = ['vega', 'vega-lite', 'vega-embed', 'highlight.js'] as const;

/** The vendor notice: each package's name, version and license, then its LICENSE text where the package ships one. */
function vendorNotice(root: string): string {
  return VENDOR_PACKAGES.map((name) => {
    const dir = packageDir(name, root);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string; homepage?: string };
    const license = fs.existsSync(path.join(dir, 'LICENSE')) ? `\n\n${fs.readFileSync(path.join(dir, 'LICENSE'), 'utf8').trim()}` : '';
    return `${name}@${pkg.version ?? '?'} (${pkg.license ?? 'license not stated'}) ${pkg.homepage ?? ''}`.trim() + license;
  }).join('\n\n----------------------------------------\n\n') + '\n';
}

/** The folder of an installed package (found even when its "exports" hide package.json). */
export function packageDir(name: string, root: string): string {
  const candidates = [path.join(root, 'node_modules'), ...(require.resolve.paths(name) ?? [])];
  for (const dir of candidates) {
    const d = path.join(dir, name);
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
  }
  throw new Error(`publish: the package "${name}" is not installed (run npm ci); the site copies its files from node_modules`);
}

/** The committed notebooks in reading order (file names). */
export function listSources(sources: string): string[] {
  if (!fs.existsSync(sources)) throw new Error(`publish: the notebook folder ${sources} does not exist`);
  const files = listNotebooks(sources);
  if (files.length === 0) throw new Error(`publish: no notebooks (*.ipynb) in ${sources}`);
  return files;
}

/** Notebooks whose executed copy in `from` is missing or older than the source. */
export function staleNotebooks(sources: string, from: string, files: readonly string[] = listSources(sources)): string[] {
  return files.filter((f) => {
    const exe = path.join(from, f);
    if (!fs.existsSync(exe)) return true;
    return fs.statSync(exe).mtimeMs < fs.statSync(path.join(sources, f)).mtimeMs;
  });
}

function executeNotebooks(o: BuildOptions, files: readonly string[]): void {
  const status = runNotebooks(['--out', o.from, ...files.map((f) => path.join(o.sources, f))], { root: o.root });
  if (status !== 0) {
    throw new Error(`publish: executing ${files.join(', ')} failed (the runner's report above names the cell); the site was not built`);
  }
}

function writeFile(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

/** Replace folder `out` by `tmp` in two renames, so readers never see a half-built site. */
function swapInto(tmp: string, out: string): void {
  const old = `${out}.old-${process.pid}-${Date.now()}`;
  const had = fs.existsSync(out);
  if (had) fs.renameSync(out, old);
  try {
    fs.renameSync(tmp, out);
  } catch (err) {
    if (had) fs.renameSync(old, out);
    throw err;
  }
  if (had) fs.rmSync(old, { recursive: true, force: true });
}

/**
 * Build the site. Executes stale or missing notebooks first when `run` is set, renders every
 * page into a temporary folder beside `out`, and swaps it into place only when all of it was
 * written.
 */
export function buildSite(o: BuildOptions): BuildReport {
  const log = o.log ?? ((s: string) => console.log(s));
  const sources = path.resolve(o.sources);
  const from = path.resolve(o.from);
  const out = path.resolve(o.out);
  const files = listSources(sources);

  const stale = staleNotebooks(sources, from, files);
  if (stale.length && !o.run) {
    throw new Error(`publish: no up-to-date executed copy in ${from} of: ${stale.join(', ')} (run the notebooks first, or allow publish to run them)`);
  }
  if (stale.length) {
    log(`publish: executing ${stale.length} notebook(s) whose executed copy is missing or older than the source: ${stale.join(', ')}`);
    executeNotebooks({ ...o, sources, from }, stale);
  }

  const notebooks: { file: string; name: string; nb: Notebook }[] = files.map((f) => ({
    file: path.join(from, f),
    name: path.basename(f, '.ipynb'),
    nb: readNotebook(path.join(from, f)),
  }));
  const pages = new Set(notebooks.map((n) => n.name));
  const entries: IndexEntry[] = notebooks.map(({ nb, name }) => ({ name, ...titleAndSummary(nb, name), run: runInfo(nb), charts: chartCount(nb) }));

  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = fs.mkdtempSync(`${out}.tmp-`);
  try {
    const report: PageReport[] = [];
    notebooks.forEach(({ nb, name, file }, i) => {
      const language = nb.metadata.kernelspec?.language ?? nb.metadata.language_info?.name ?? 'typescript';
      const { html, charts } = renderNotebookBody(nb, { name, pages, language });
      const entry = entries[i];
      const link = (e: IndexEntry | undefined) => (e ? { href: `${e.name}.html`, title: e.title } : null);
      writeFile(path.join(tmp, `${name}.html`), notebookPageHtml({ entry, body: html, prev: link(entries[i - 1]), next: link(entries[i + 1]) }));
      for (const c of charts) if (c.file) writeFile(path.join(tmp, c.file), c.svg);
      fs.mkdirSync(path.join(tmp, 'notebooks'), { recursive: true });
      fs.copyFileSync(file, path.join(tmp, 'notebooks', `${name}.ipynb`));
      report.push({ name, title: entry.title, file: `${name}.html`, charts: charts.length, backend: entry.run.backend });
    });
    writeFile(path.join(tmp, 'index.html'), indexHtml(entries, new Date().toISOString()));
    const own = path.join(__dirname, 'assets');
    for (const f of ['site.css', 'site.js']) writeFile(path.join(tmp, 'assets', f), fs.readFileSync(path.join(own, f)));
    for (const [pkg, file, dest] of VENDOR_FILES) {
      const src = path.join(packageDir(pkg, o.root), file);
      if (!fs.existsSync(src)) throw new Error(`publish: ${src} is missing (is ${pkg} installed completely? run npm ci)`);
      writeFile(path.join(tmp, 'assets', dest), fs.readFileSync(src));
    }
    writeFile(path.join(tmp, 'assets', 'vendor', 'README.txt'), `Copied from node_modules by scripts/site/publish.ts:\n\n${vendorNotice(o.root)}`);
    swapInto(tmp, out);
    return { out, index: path.join(out, 'index.html'), pages: report, executed: stale };
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
