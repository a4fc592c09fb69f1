/**
 * The site builder (scripts/site/publish.ts, scripts/site/*) without a browser: the device banner and
 * run info, titles and summaries, every output type, markdown, and a whole site built from
 * fixture notebooks (pages in order, navigation, footer, offline assets, atomic replacement).
 * The real-browser checks are in test/integration/site.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from '../support/helpers';
import { bannerText } from '../../lib/notebook';
import { bundle, barChart } from '../../lib/charts';
import type { DeviceInfo } from '../../lib/backends';
import { VEGALITE_MIME } from '../../lib/display';
import { type Cell, type Notebook, type Output } from '../../scripts/notebooks/format';
import { chartCount, firstSentence, parseBanner, runInfo, splitDeviceLabel, titleAndSummary } from '../../scripts/site/notebook';
import { footerHtml, jsonForScript, renderMarkdown, renderOutputs, type ChartFile, type PageContext } from '../../scripts/site/render';
import { buildSite, packageDir, staleNotebooks, VENDOR_FILES } from '../../scripts/site/build';

const cpuInfo: DeviceInfo = {
  backend: 'wasm',
  name: 'Test CPU 3000',
  adapter: null,
  software: false,
  accelerator: false,
  cores: 2,
  cpuModel: 'Test CPU 3000',
  memoryGiB: 16,
  platform: 'linux-x64',
  versions: { tfjs: '4.22.0', node: '20.20.2', tslab: '1.0.22', backendPackage: '@tensorflow/tfjs-backend-wasm@4.22.0' },
};
const gpuInfo: DeviceInfo = {
  ...cpuInfo,
  backend: 'webgpu',
  name: 'NVIDIA H100 80GB HBM3',
  accelerator: true,
  adapter: { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB HBM3', description: '' },
  versions: { ...cpuInfo.versions, backendPackage: '@tensorflow/tfjs-backend-webgpu@4.22.0' },
};

const stream = (name: 'stdout' | 'stderr', t: string): Output => ({ output_type: 'stream', name, text: t });
const code = (source: string, outputs: Output[], n: number, stamp = '2026-11-20T10:00:00.000Z'): Cell => ({
  cell_type: 'code',
  source,
  outputs,
  execution_count: n,
  metadata: { execution: { 'iopub.status.busy': stamp, 'iopub.status.idle': stamp } },
});
const md = (source: string): Cell => ({ cell_type: 'markdown', source, metadata: {} });

async function chartOutput(title: string): Promise<Output> {
  const spec = barChart({ title, data: [{ k: 'a', v: 1 }, { k: 'b', v: 3 }], x: 'k', y: 'v' });
  return { output_type: 'display_data', data: await bundle(spec), metadata: {} };
}

async function fixtureNotebook(o: { title: string; claim: string; info: DeviceInfo; charts: number; quick?: boolean; extra?: Cell[] }): Promise<Notebook> {
  const charts: Output[] = [];
  for (let i = 0; i < o.charts; i++) charts.push(await chartOutput(`${o.title} chart ${i + 1}`));
  return {
    nbformat: 4,
    metadata: { kernelspec: { name: 'tslab', language: 'typescript' }, gpulab: { quick: o.quick ?? true, executed_seconds: 12.5 } },
    cells: [
      md(`# ${o.title}\n\n${o.claim} More text that is not the summary.\n\nSecond paragraph.`),
      code("import { setup } from 'gpulab';\nconst dev = await setup();", [stream('stdout', `${bannerText(o.info)}\n`)], 1),
      ...(o.extra ?? []),
      ...charts.map((c, i) => code(`await charts.show(chart${i});`, [c], i + 2)),
    ],
  };
}

const ctx = (name = 'nb'): PageContext => ({ name, pages: new Set(['00-a', '01-b']), language: 'typescript' });

test('the device banner the lib prints is parsed back into machine, backend, versions and mode', () => {
  const b = parseBanner(`noise\n${bannerText(cpuInfo)}\nmore`);
  assert.ok(b);
  assert.equal(b.deviceLabel, 'wasm · Test CPU 3000 (2 cores)');
  assert.match(b.machine ?? '', /^Test CPU 3000, 2 cores, 16 GiB, linux-x64$/);
  assert.equal(parseBanner('no banner here'), null);
  assert.deepEqual(splitDeviceLabel('wasm · Test CPU 3000 (2 cores)'), { backend: 'wasm', gpu: null, software: false });
  assert.deepEqual(splitDeviceLabel('webgpu · llvmpipe (LLVM 15) [software GPU]'), { backend: 'webgpu', gpu: 'llvmpipe (LLVM 15)', software: true });
});

test('run info: CPU and GPU runs, versions, mode and date', async () => {
  const cpu = runInfo(await fixtureNotebook({ title: 'A', claim: 'Claim.', info: cpuInfo, charts: 0 }));
  assert.equal(cpu.backend, 'wasm');
  assert.equal(cpu.gpu, null);
  assert.equal(cpu.tfjs, '4.22.0');
  assert.equal(cpu.node, '20.20.2');
  assert.equal(cpu.backendPackage, '@tensorflow/tfjs-backend-wasm@4.22.0');
  assert.equal(cpu.quick, true);
  assert.equal(cpu.seconds, 12.5);
  assert.equal(cpu.date, '2026-11-20T10:00:00.000Z');
  const gpu = runInfo(await fixtureNotebook({ title: 'A', claim: 'Claim.', info: gpuInfo, charts: 0, quick: false }));
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(gpu.gpu, 'NVIDIA H100 80GB HBM3');
  assert.equal(gpu.quick, false);
  const footer = footerHtml(gpu);
  for (const want of ['CPU Test CPU 3000, 2 cores', 'NVIDIA H100 80GB HBM3', 'webgpu · NVIDIA H100', '2026-11-20 10:00 UTC', 'tfjs 4.22.0', 'Node 20.20.2', 'full mode']) {
    assert.ok(footer.includes(want), `footer lacks "${want}": ${footer}`);
  }
  assert.match(footerHtml(cpu), /data-field="gpu">none used \(CPU backend\)/);
  const bare = runInfo({ nbformat: 4, metadata: {}, cells: [code('1', [stream('stdout', '1\n')], 1)] });
  assert.equal(bare.deviceLabel, null);
  assert.match(footerHtml(bare), /not recorded/);
});

test('title and one-line summary come from the first heading and the paragraph after it', async () => {
  const nb = await fixtureNotebook({ title: '03 · Batch processing', claim: 'The article says **batching** makes the `GPU` [fast](https://x.org).', info: cpuInfo, charts: 0 });
  assert.deepEqual(titleAndSummary(nb, '03-batch.ipynb'), { title: 'Batch processing', summary: 'The article says batching makes the GPU fast.' });
  nb.metadata.gpulab = { summary: 'Set by the notebook.' };
  assert.equal(titleAndSummary(nb, '03-batch.ipynb').summary, 'Set by the notebook.');
  assert.deepEqual(titleAndSummary({ nbformat: 4, metadata: {}, cells: [] }, '07-x.ipynb'), { title: '07-x', summary: '' });
  assert.match(firstSentence('word '.repeat(100)), /… ?$/);
  assert.ok(firstSentence('word '.repeat(100)).length <= 222);
});

test('outputs: streams merged and de-coloured, errors, HTML, markdown, images, plain text', () => {
  const charts: ChartFile[] = [];
  const env = { usedIds: new Set<string>(), pages: new Set<string>() };
  const html = renderOutputs(
    [
      stream('stdout', 'one\n'),
      stream('stdout', '\u001b[31mtwo\u001b[0m <b>\n'),
      stream('stderr', 'careful\n'),
      { output_type: 'error', ename: 'Error', evalue: 'boom', traceback: ['\u001b[31mError: boom\u001b[0m'] },
      { output_type: 'display_data', data: { 'text/html': '<table><tr><td>cell</td></tr></table>', 'text/plain': 'cell' } },
      { output_type: 'display_data', data: { 'text/markdown': '**bold** result', 'text/plain': 'x' } },
      { output_type: 'display_data', data: { 'image/png': 'iVBORw0KGgo=\n', 'text/plain': '<Figure>' } },
      { output_type: 'execute_result', data: { 'text/plain': '<not html>' } },
    ],
    ctx(),
    charts,
    env,
  );
  assert.match(html, /<pre class="output stream stdout">one\ntwo &lt;b&gt;\n<\/pre>/);
  assert.match(html, /<pre class="output stream stderr">careful\n<\/pre>/);
  assert.match(html, /<pre class="output error">Error: boom<\/pre>/);
  assert.match(html, /<div class="output html"><table><tr><td>cell<\/td><\/tr><\/table><\/div>/);
  assert.match(html, /<strong>bold<\/strong> result/);
  assert.match(html, /<img src="data:image\/png;base64,iVBORw0KGgo=" alt="&lt;Figure&gt;">/);
  assert.match(html, /<pre class="output text">&lt;not html&gt;<\/pre>/);
  assert.equal(charts.length, 0);
});

test('a chart bundle becomes an interactive figure with its SVG as the no-script fallback', async () => {
  const charts: ChartFile[] = [];
  const out = await chartOutput('Speed </script><script>alert(1)</script>');
  const html = renderOutputs([out], ctx('05-x'), charts, { usedIds: new Set(), pages: new Set() });
  assert.equal(charts.length, 1);
  assert.equal(charts[0].file, 'charts/05-x-1.svg');
  assert.match(charts[0].svg, /^<svg/);
  assert.match(html, /<figure class="chart" id="chart-1" data-mode="vega-lite"><div class="chart-view"><\/div><img class="chart-fallback" src="charts\/05-x-1.svg" alt="\[chart\] Speed [^"]*" width="\d+" height="\d+">/);
  assert.equal((html.match(/<\/script>/g) ?? []).length, 1, 'the spec cannot close its script tag early');
  const json = /<script type="application\/json" class="chart-spec">(.*?)<\/script>/s.exec(html)?.[1] ?? '';
  assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(out.data?.[VEGALITE_MIME])));
  assert.equal(JSON.parse(jsonForScript({ s: '</script>&\u2028' })).s, '</script>&\u2028');
  const noSvg = renderOutputs([{ output_type: 'display_data', data: { [VEGALITE_MIME]: { mark: 'bar' }, 'text/plain': '[chart] t' } }], ctx(), [], { usedIds: new Set(), pages: new Set() });
  assert.match(noSvg, /chart-nosvg">\[chart\] t \(interactive chart: needs JavaScript\)/);
});

test('markdown: highlighted code, heading ids, notebook links pointing at pages', () => {
  const env = { usedIds: new Set<string>(), pages: new Set(['01-b']) };
  const html = renderMarkdown('## Why it is slow\n\n## Why it is slow\n\n```ts\nconst x: number = 1;\n```\n\nSee [next](01-b.ipynb#top) and [other](09-z.ipynb).', env);
  assert.match(html, /<h2 id="why-it-is-slow">/);
  assert.match(html, /<h2 id="why-it-is-slow-2">/);
  assert.match(html, /<code class="hljs language-ts"><span class="hljs-keyword">const<\/span>/);
  assert.match(html, /href="01-b\.html#top"/);
  assert.match(html, /href="09-z\.ipynb"/, 'links to notebooks that are not in the site stay as they are');
});

function writeNotebook(file: string, nb: Notebook): void {
  fs.writeFileSync(file, JSON.stringify(nb));
}

test('a site built from fixture notebooks: index in order, pages, navigation, footer, offline assets', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const nbs = path.join(dir, 'nbs');
    fs.mkdirSync(nbs);
    writeNotebook(path.join(nbs, '01-second.ipynb'), await fixtureNotebook({ title: '01 · Second', claim: 'The second claim.', info: gpuInfo, charts: 2, quick: false }));
    writeNotebook(
      path.join(nbs, '00-first.ipynb'),
      await fixtureNotebook({ title: '00 · First', claim: 'The first claim.', info: cpuInfo, charts: 1, extra: [md('Read [the next one](01-second.ipynb).')] }),
    );
    const out = path.join(dir, 'site');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'stale.html'), 'from an old build');
    const lines: string[] = [];
    const report = buildSite({ root: ROOT, sources: nbs, from: nbs, out, run: false, log: (l) => lines.push(l) });

    assert.deepEqual(report.pages.map((p) => [p.file, p.charts, p.backend]), [['00-first.html', 1, 'wasm'], ['01-second.html', 2, 'webgpu']]);
    assert.deepEqual(report.executed, []);
    assert.equal(report.index, path.join(out, 'index.html'));
    assert.ok(!fs.existsSync(path.join(out, 'stale.html')), 'the old site is replaced as a whole');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['nbs', 'site'], 'no temp folders are left beside the site');

    const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    const first = index.indexOf('href="00-first.html"');
    const second = index.indexOf('href="01-second.html"');
    assert.ok(first > 0 && second > first, 'the index lists the notebooks in order');
    assert.match(index, /<p class="summary">The first claim\.<\/p><p class="device">Numbers measured on wasm · Test CPU 3000 \(2 cores\) · quick mode/);
    assert.match(index, /<p class="summary">The second claim\.<\/p><p class="device">Numbers measured on webgpu · NVIDIA H100 80GB HBM3 · full mode · 2026-11-20 10:00 UTC · 2 charts/);
    assert.match(index, /1 of 2 notebooks ran in quick mode/);
    assert.doesNotMatch(index, /https?:\/\/(?!vega\.github\.io\/schema)/, 'no external resources on the index');

    const p0 = fs.readFileSync(path.join(out, '00-first.html'), 'utf8');
    const p1 = fs.readFileSync(path.join(out, '01-second.html'), 'utf8');
    assert.match(p0, /<a class="nav-next" rel="next" href="01-second.html">Second →<\/a>/);
    assert.match(p0, /<span class="nav-prev nav-none">/);
    assert.match(p1, /<a class="nav-prev" rel="prev" href="00-first.html">← First<\/a>/);
    for (const p of [p0, p1]) {
      assert.match(p, /<a class="nav-contents" href="index.html">Contents<\/a>/);
      assert.match(p, /<script defer src="assets\/vendor\/vega-embed.min.js"><\/script>/);
      assert.doesNotMatch(p, /<(script|link)[^>]+(src|href)="(https?:)?\/\//, 'no CDN');
    }
    assert.match(p0, /href="01-second.html">the next one<\/a>/);
    assert.match(p0, /data-field="gpu">none used \(CPU backend\)/);
    assert.match(p1, /data-field="gpu">NVIDIA H100 80GB HBM3/);
    assert.equal((p1.match(/<figure class="chart"/g) ?? []).length, 2);
    for (const f of ['charts/00-first-1.svg', 'charts/01-second-1.svg', 'charts/01-second-2.svg', 'notebooks/00-first.ipynb', 'assets/site.js', 'assets/site.css', 'assets/vendor/README.txt']) {
      assert.ok(fs.existsSync(path.join(out, f)), `${f} is missing`);
    }
    for (const [pkg, file, dest] of VENDOR_FILES) {
      assert.ok(fs.readFileSync(path.join(out, 'assets', dest)).equals(fs.readFileSync(path.join(packageDir(pkg, ROOT), file))), `${dest} is a copy of ${pkg}/${file}`);
    }
  } finally {
    cleanup();
  }
});

test('missing, stale or broken executed notebooks are clear errors, and the old site survives', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = path.join(dir, 'src');
    const exe = path.join(dir, 'exe');
    const out = path.join(dir, 'site');
    fs.mkdirSync(src);
    fs.mkdirSync(exe);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'index.html'), 'previous site');
    const nb = await fixtureNotebook({ title: '00 · A', claim: 'Claim.', info: cpuInfo, charts: 0 });
    writeNotebook(path.join(src, '00-a.ipynb'), { ...nb, cells: nb.cells.map((c) => ({ ...c, outputs: c.cell_type === 'code' ? [] : undefined })) });
    assert.throws(() => buildSite({ root: ROOT, sources: src, from: exe, out, run: false, log: () => {} }), /no up-to-date executed copy in .*exe of: 00-a\.ipynb/);

    writeNotebook(path.join(exe, '00-a.ipynb'), nb);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(exe, '00-a.ipynb'), old, old);
    assert.deepEqual(staleNotebooks(src, exe), ['00-a.ipynb'], 'an executed copy older than its source is stale');
    fs.utimesSync(path.join(exe, '00-a.ipynb'), new Date(), new Date());
    assert.deepEqual(staleNotebooks(src, exe), []);

    fs.writeFileSync(path.join(exe, '00-a.ipynb'), '{"cells": [');
    assert.throws(() => buildSite({ root: ROOT, sources: src, from: exe, out, run: false, log: () => {} }), /00-a\.ipynb: not valid JSON/);
    assert.equal(fs.readFileSync(path.join(out, 'index.html'), 'utf8'), 'previous site');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['exe', 'site', 'src'], 'the failed build left no temp folder');
    assert.throws(() => buildSite({ root: ROOT, sources: path.join(dir, 'none'), from: exe, out, run: false }), /notebook folder .*none does not exist/);
  } finally {
    cleanup();
  }
});

test('the publish CLI rejects unknown arguments and prints the site path when it succeeds', async () => {
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/site/publish.ts', '--bogus'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown argument --bogus/);
  const { dir, cleanup } = tempDir();
  try {
    writeNotebook(path.join(dir, '00-a.ipynb'), await fixtureNotebook({ title: '00 · A', claim: 'Claim.', info: cpuInfo, charts: 1 }));
    const out = path.join(dir, 'site');
    const ok = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/site/publish.ts', '--sources', dir, '--from', dir, '--out', out, '--no-run'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /00-a\.html +1 chart +\(wasm\)/);
    assert.ok(ok.stdout.trimEnd().endsWith(`Site: ${path.join(out, 'index.html')}`), ok.stdout);
  } finally {
    cleanup();
  }
});

test('chartCount counts Vega-Lite and Vega outputs', async () => {
  const nb = await fixtureNotebook({ title: 'A', claim: 'C.', info: cpuInfo, charts: 3 });
  assert.equal(chartCount(nb), 3);
});
