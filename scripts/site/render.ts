/**
 * HTML for the published site: one page per executed notebook, and the index.
 *
 * Why a TypeScript renderer on markdown-it + highlight.js rather than nbconvert with a custom
 * template: nbconvert's HTML export drops Vega-Lite outputs (it has no renderer for the
 * Vega-Lite MIME type), so a template would have to re-implement the chart
 * handling anyway, in Jinja plus Python filters. Here every output type (interactive chart with
 * its SVG fallback, HTML tables, markdown, images, streams, errors) is one small typed function,
 * tested with node:test like the rest of the project, built from two maintained libraries that
 * are already dev dependencies (markdown-it for CommonMark + GFM tables, highlight.js for code),
 * and publishing needs no Python beyond the notebook run itself.
 */
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import typescript from 'highlight.js/lib/languages/typescript';
import javascript from 'highlight.js/lib/languages/javascript';
import python from 'highlight.js/lib/languages/python';
import bash from 'highlight.js/lib/languages/bash';
import shell from 'highlight.js/lib/languages/shell';
import json from 'highlight.js/lib/languages/json';
import xml from 'highlight.js/lib/languages/xml';
import css from 'highlight.js/lib/languages/css';
import markdown from 'highlight.js/lib/languages/markdown';
import plaintext from 'highlight.js/lib/languages/plaintext';
import { VEGALITE_MIME } from '../../lib/display';
import { text, type Cell, type Notebook, type Output } from '../notebooks/format';
import { stripAnsi, VEGA_MIME, type RunInfo } from './notebook';

for (const [name, lang] of Object.entries({ typescript, javascript, python, bash, shell, json, xml, css, markdown, plaintext })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['js', 'jsx'], { languageName: 'javascript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['sh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['text', 'txt'], { languageName: 'plaintext' });

/** Escape text for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Highlight code as HTML (`<pre><code class="hljs language-x">`); unknown languages are escaped only. */
export function highlight(code: string, lang: string | undefined): string {
  const name = lang && hljs.getLanguage(lang) ? lang : undefined;
  const body = name ? hljs.highlight(code, { language: name, ignoreIllegals: true }).value : esc(code);
  return `<pre><code class="hljs${name ? ` language-${esc(name)}` : ''}">${body}</code></pre>`;
}

/** Per-page markdown state: heading ids already used, and the pages links may point at. */
interface MarkdownEnv {
  usedIds: Set<string>;
  pages: ReadonlySet<string>;
}

/** A URL-fragment id for a heading. */
export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/<[^>]+>/g, '')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'section'
  );
}

function createMarkdown(): MarkdownIt {
  // html: notebook markdown may hold HTML (the authors are this project); linkify bare URLs.
  const md = new MarkdownIt({ html: true, linkify: true, highlight: (code, lang) => highlight(code, lang || undefined) });
  // Headings get ids (unique per page) so sections can be linked.
  md.core.ruler.push('heading_ids', (state) => {
    const env = state.env as Partial<MarkdownEnv>;
    const used = (env.usedIds ??= new Set<string>());
    state.tokens.forEach((tok, i) => {
      if (tok.type !== 'heading_open' || tok.attrGet('id')) return;
      const base = slug(state.tokens[i + 1]?.content ?? '');
      let id = base;
      for (let k = 2; used.has(id); k++) id = `${base}-${k}`;
      used.add(id);
      tok.attrSet('id', id);
    });
  });
  // Links to another notebook of the collection ("03-x.ipynb#part") point at its page.
  const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env: Partial<MarkdownEnv>, self) => {
    const href = tokens[idx].attrGet('href') ?? '';
    const m = /^(?:\.\/|\.\.\/notebooks\/|notebooks\/)?([\w.-]+)\.ipynb(#.*)?$/.exec(href);
    if (m && env.pages?.has(m[1])) tokens[idx].attrSet('href', `${m[1]}.html${m[2] ?? ''}`);
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  return md;
}

const md = createMarkdown();

/** Render markdown (cells and text/markdown outputs) to HTML. */
export function renderMarkdown(source: string, env: MarkdownEnv = { usedIds: new Set(), pages: new Set() }): string {
  return md.render(source, env);
}

/** One chart's SVG fallback, written to the site as its own file. */
export interface ChartFile {
  /** Path relative to the site root, e.g. "charts/00-setup-and-devices-1.svg". */
  file: string;
  svg: string;
}

/** Everything needed to render one notebook page. */
export interface PageContext {
  /** The page's base name ("00-setup-and-devices"); chart files are named after it. */
  name: string;
  /** Base names of every page in the site, for rewriting `.ipynb` links. */
  pages: ReadonlySet<string>;
  /** The language code cells are highlighted as. */
  language: string;
}

/** Serialise a spec into a `<script type="application/json">` safely (no `</script>` break-out). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function svgSize(svg: string): { width: number; height: number } | null {
  const open = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const w = /\swidth="([\d.]+)"/.exec(open)?.[1];
  const h = /\sheight="([\d.]+)"/.exec(open)?.[1];
  return w && h ? { width: Math.round(Number(w)), height: Math.round(Number(h)) } : null;
}

function dataUri(mime: string, payload: string, base64: boolean): string {
  return `data:${mime};base64,${base64 ? payload.replace(/\s+/g, '') : Buffer.from(payload, 'utf8').toString('base64')}`;
}

function chartHtml(o: Output, mime: string, ctx: PageContext, charts: ChartFile[]): string {
  const spec = o.data?.[mime];
  const svg = text(o.data?.['image/svg+xml']);
  const label = text(o.data?.['text/plain']).trim() || '[chart]';
  const n = charts.length + 1;
  let fallback: string;
  if (svg.trim().startsWith('<svg') || svg.trim().startsWith('<?xml')) {
    const file = `charts/${ctx.name}-${n}.svg`;
    charts.push({ file, svg });
    const size = svgSize(svg);
    fallback = `<img class="chart-fallback" src="${esc(file)}" alt="${esc(label)}"${size ? ` width="${size.width}" height="${size.height}"` : ''}>`;
  } else {
    charts.push({ file: '', svg: '' }); // keeps the numbering stable; nothing is written
    fallback = `<p class="chart-fallback chart-nosvg">${esc(label)} (interactive chart: needs JavaScript)</p>`;
  }
  const kind = mime === VEGA_MIME ? 'vega' : 'vega-lite';
  return (
    `<figure class="chart" id="chart-${n}" data-mode="${kind}">` +
    `<div class="chart-view"></div>${fallback}` +
    `<script type="application/json" class="chart-spec">${jsonForScript(spec)}</script>` +
    `</figure>`
  );
}

/**
 * Render one display_data / execute_result bundle: the richest representation the site can show,
 * in this order: chart (Vega-Lite/Vega, with the bundle's SVG as the no-script fallback), HTML,
 * markdown, SVG, PNG/JPEG/GIF, JSON, plain text.
 */
export function renderDisplay(o: Output, ctx: PageContext, charts: ChartFile[], env: MarkdownEnv): string {
  const d = o.data ?? {};
  if (d[VEGALITE_MIME]) return chartHtml(o, VEGALITE_MIME, ctx, charts);
  if (d[VEGA_MIME]) return chartHtml(o, VEGA_MIME, ctx, charts);
  // HTML outputs come from this project's own notebooks (tables from nb.table), so they are trusted.
  if (d['text/html'] !== undefined) return `<div class="output html">${text(d['text/html'])}</div>`;
  if (d['text/markdown'] !== undefined) return `<div class="output markdown">${renderMarkdown(text(d['text/markdown']), env)}</div>`;
  const alt = esc(text(d['text/plain']).trim() || 'output image');
  if (d['image/svg+xml'] !== undefined) return `<div class="output image"><img src="${dataUri('image/svg+xml', text(d['image/svg+xml']), false)}" alt="${alt}"></div>`;
  for (const mime of ['image/png', 'image/jpeg', 'image/gif']) {
    if (d[mime] !== undefined) return `<div class="output image"><img src="${dataUri(mime, text(d[mime]), true)}" alt="${alt}"></div>`;
  }
  if (d['application/json'] !== undefined) return `<pre class="output json">${esc(JSON.stringify(d['application/json'], null, 2))}</pre>`;
  if (d['text/plain'] !== undefined) return `<pre class="output text">${esc(stripAnsi(text(d['text/plain'])))}</pre>`;
  return '';
}

/** Render a cell's outputs; consecutive stream chunks of the same stream are merged. */
export function renderOutputs(outputs: readonly Output[], ctx: PageContext, charts: ChartFile[], env: MarkdownEnv): string {
  const parts: string[] = [];
  let stream: { name: string; text: string } | null = null;
  const flush = () => {
    if (stream && stream.text) parts.push(`<pre class="output stream ${esc(stream.name)}">${esc(stripAnsi(stream.text))}</pre>`);
    stream = null;
  };
  for (const o of outputs) {
    if (o.output_type === 'stream') {
      const name = o.name === 'stderr' ? 'stderr' : 'stdout';
      if (stream && stream.name === name) stream.text += text(o.text);
      else {
        flush();
        stream = { name, text: text(o.text) };
      }
      continue;
    }
    flush();
    if (o.output_type === 'error') {
      const tb = (o.traceback ?? []).map(stripAnsi).join('\n');
      parts.push(`<pre class="output error">${esc(tb || `${o.ename ?? 'Error'}: ${o.evalue ?? ''}`)}</pre>`);
    } else if (o.output_type === 'display_data' || o.output_type === 'execute_result') {
      parts.push(renderDisplay(o, ctx, charts, env));
    }
  }
  flush();
  return parts.join('\n');
}

/** Render one cell. Raw cells are not published (they hold no tutorial content here). */
export function renderCell(cell: Cell, index: number, ctx: PageContext, charts: ChartFile[], env: MarkdownEnv): string {
  if (cell.cell_type === 'markdown') return `<section class="cell markdown">${renderMarkdown(text(cell.source), env)}</section>`;
  if (cell.cell_type !== 'code') return '';
  const src = text(cell.source);
  const count = typeof cell.execution_count === 'number' ? String(cell.execution_count) : ' ';
  const outputs = renderOutputs(cell.outputs ?? [], ctx, charts, env);
  return (
    `<section class="cell code" id="cell-${index}">` +
    `<div class="input"><span class="prompt" aria-label="execution count">[${esc(count)}]</span>${highlight(src, ctx.language)}</div>` +
    (outputs ? `<div class="outputs">${outputs}</div>` : '') +
    `</section>`
  );
}

/**
 * Render a notebook's cells; returns the HTML and one entry per chart (in page order). Entries with
 * an empty `file` are charts whose bundle had no SVG: nothing to write for them.
 */
export function renderNotebookBody(nb: Notebook, ctx: PageContext): { html: string; charts: ChartFile[] } {
  const charts: ChartFile[] = [];
  const env: MarkdownEnv = { usedIds: new Set(['contents', 'main', 'footer']), pages: ctx.pages };
  const html = nb.cells.map((c, i) => renderCell(c, i, ctx, charts, env)).filter(Boolean).join('\n');
  return { html, charts };
}

/** "2026-11-26 17:54 UTC" from an ISO date. */
export function formatDate(iso: string | null): string {
  if (!iso) return 'date not recorded';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The mode words for a run: "quick mode" / "full mode" / "" when unknown. */
export function modeWords(run: RunInfo): string {
  return run.quick === true ? 'quick mode' : run.quick === false ? 'full mode' : '';
}

/** The footer describing a run: machine (CPU/GPU), backend, date, tfjs and Node versions. */
export function footerHtml(run: RunInfo): string {
  const gpu = run.gpu ? `${run.gpu}${run.softwareGpu ? ' (software GPU)' : ''}` : run.deviceLabel ? 'none used (CPU backend)' : 'unknown';
  const rows: [string, string][] = [
    ['Machine', run.machine ? `CPU ${run.machine}` : 'not recorded (the notebook printed no device banner)'],
    ['GPU', gpu],
    ['Backend', run.deviceLabel ?? 'not recorded'],
    ['Date', formatDate(run.date)],
    ['Versions', [run.tfjs ? `tfjs ${run.tfjs}${run.backendPackage ? ` (${run.backendPackage})` : ''}` : 'tfjs not recorded', run.node ? `Node ${run.node}` : 'Node not recorded', run.tslab ? `tslab ${run.tslab}` : ''].filter(Boolean).join(', ')],
    ['Run', [modeWords(run) || 'mode not recorded', run.seconds !== null ? `executed in ${run.seconds} s` : ''].filter(Boolean).join(', ')],
  ];
  return `<dl class="run-info">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd data-field="${esc(k.toLowerCase())}">${esc(v)}</dd>`).join('')}</dl>`;
}

/** A link to a neighbour page in the prev/contents/next bar. */
export interface NavLink {
  href: string;
  title: string;
}

/** The previous / contents / next bar. */
export function navHtml(prev: NavLink | null, next: NavLink | null, where: 'top' | 'bottom'): string {
  const side = (l: NavLink | null, rel: 'prev' | 'next', arrow: string) =>
    l
      ? `<a class="nav-${rel}" rel="${rel}" href="${esc(l.href)}">${rel === 'prev' ? `${arrow} ` : ''}${esc(l.title)}${rel === 'next' ? ` ${arrow}` : ''}</a>`
      : `<span class="nav-${rel} nav-none"></span>`;
  return `<nav class="pager pager-${where}" aria-label="pages">${side(prev, 'prev', '←')}<a class="nav-contents" href="index.html">Contents</a>${side(next, 'next', '→')}</nav>`;
}

/** The shared page shell: head with the site's own assets, header, main, footer. */
export function pageShell(o: { title: string; main: string; footer: string; charts: boolean; bodyClass: string }): string {
  const scripts = o.charts
    ? ['vendor/vega.min.js', 'vendor/vega-lite.min.js', 'vendor/vega-embed.min.js', 'site.js'].map((s) => `<script defer src="assets/${s}"></script>`).join('\n')
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(o.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/highlight.css">
<link rel="stylesheet" href="assets/site.css">
${scripts}
</head>
<body class="${esc(o.bodyClass)}">
<header class="site-header"><a class="site-name" href="index.html">gpulab</a> <span class="site-tagline">making data science and deep learning fast on a GPU, measured live</span></header>
<main id="main">
${o.main}
</main>
<footer id="footer">
${o.footer}
</footer>
</body>
</html>
`;
}

/** One notebook's entry on the index. */
export interface IndexEntry {
  name: string;
  title: string;
  summary: string;
  run: RunInfo;
  charts: number;
}

/** The index: every notebook in order, its one-line summary and the device/backend of its numbers. */
export function indexHtml(entries: readonly IndexEntry[], builtAt: string): string {
  const quickRuns = entries.filter((e) => e.run.quick === true).length;
  const items = entries
    .map((e) => {
      const num = /^(\d+)/.exec(e.name)?.[1] ?? '';
      const mode = modeWords(e.run);
      const device = e.run.deviceLabel ? `Numbers measured on ${e.run.deviceLabel}` : 'Device not recorded';
      return (
        `<li class="entry" id="${esc(e.name)}"><span class="num">${esc(num)}</span><div>` +
        `<a class="entry-title" href="${esc(e.name)}.html">${esc(e.title)}</a>` +
        (e.summary ? `<p class="summary">${esc(e.summary)}</p>` : '') +
        `<p class="device">${esc(device)}${mode ? ` · ${esc(mode)}` : ''} · ${esc(formatDate(e.run.date))} · ${e.charts} chart${e.charts === 1 ? '' : 's'}</p>` +
        `</div></li>`
      );
    })
    .join('\n');
  const notice = quickRuns
    ? `<p class="notice">⚠ ${entries.length === 1 ? 'The notebook' : quickRuns === entries.length ? 'All notebooks' : `${quickRuns} of ${entries.length} notebooks`} ran in quick mode (GPULAB_QUICK=1): small sizes, so the numbers show the method rather than the full-size result.</p>`
    : '';
  const main =
    `<h1 id="contents">Published tutorials</h1>` +
    `<p class="intro">TypeScript notebooks that measure, live, what makes data-science and deep-learning work fast on a GPU. Every number on these pages was measured in the run shown beside it, on the device named there.</p>` +
    notice +
    `<ol class="toc">\n${items}\n</ol>`;
  return pageShell({
    title: 'gpulab · published tutorials',
    main,
    footer: `<p class="built">Built ${esc(formatDate(builtAt))} from ${entries.length} executed notebook${entries.length === 1 ? '' : 's'}. Charts use vega-embed, served from this site.</p>`,
    charts: false,
    bodyClass: 'index',
  });
}

/** A notebook page: navigation, rendered cells, navigation again, and the run footer. */
export function notebookPageHtml(o: { entry: IndexEntry; body: string; prev: NavLink | null; next: NavLink | null }): string {
  const { entry } = o;
  const main =
    navHtml(o.prev, o.next, 'top') +
    `<article class="notebook" data-notebook="${esc(entry.name)}">\n${o.body}\n</article>` +
    `<p class="download">Executed notebook: <a href="notebooks/${esc(entry.name)}.ipynb" download>${esc(entry.name)}.ipynb</a></p>` +
    navHtml(o.prev, o.next, 'bottom');
  return pageShell({
    title: `${entry.title} · gpulab`,
    main,
    footer: `<p class="footer-title">The numbers on this page were measured when this notebook ran:</p>${footerHtml(entry.run)}`,
    charts: entry.charts > 0,
    bodyClass: 'page',
  });
}
