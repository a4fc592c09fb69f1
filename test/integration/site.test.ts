/**
 * The published site in a real browser (Debian's chromium, driven by playwright-core).
 * (Notebooks in JupyterLab's own UI: test/integration/lab.test.ts.)
 *
 * The site is built from quick-mode executed notebooks in build/test-notebooks into
 * build/test-site, and served on 127.0.0.1. It needs no other test file to run first: when
 * test/integration/notebooks.test.ts has just executed them (the usual `npm test` order) they are reused, and
 * publish executes any that are missing or older than their source itself (run alone, that takes
 * the few minutes of a quick run). For every page: no console errors, no request leaves
 * 127.0.0.1, every chart renders live with its data marks visible (test/support/chart-check.ts), every
 * link resolves. A screenshot of one page is kept in build/test-artifacts/. Without Chromium the
 * suite skips, naming `npm run setup:test-deps`; under CI=true it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, runScript } from '../support/helpers';
import { listNotebooks, readNotebook } from '../../scripts/notebooks/format';
import { chromiumPath } from '../../scripts/setup/test-deps';
import { chartCount } from '../../scripts/site/notebook';
import { findOnPath } from '../../lib/monitor/tools';
import { assertMarksVisible, domMarks } from '../support/chart-check';
import { skipUnlessInstalled } from '../support/system-deps';

const CHROMIUM = chromiumPath();
/** Without Chromium: skip, naming the install command (under CI: run, and fail). */
const skip = skipUnlessInstalled('Chromium (the browser these tests drive)', findOnPath(CHROMIUM) ? null : `${CHROMIUM} is missing`);
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const NOTEBOOKS = path.join(ROOT, 'notebooks');
const EXECUTED = path.join(ROOT, 'build', 'test-notebooks');
const SITE = path.join(ROOT, 'build', 'test-site');
const ARTIFACTS = path.join(ROOT, 'build', 'test-artifacts');
const names = listNotebooks(NOTEBOOKS).map((f) => path.basename(f, '.ipynb'));
const screenshotPage = names.includes('00-setup-and-devices') ? '00-setup-and-devices' : names[0];

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ipynb': 'application/x-ipynb+json',
  '.txt': 'text/plain; charset=utf-8',
};

/** A static file server for `root`, on 127.0.0.1 only, at a free port. */
async function serve(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const file = path.resolve(root, `.${pathname.endsWith('/') ? `${pathname}index.html` : pathname}`);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let site: { url: string; close: () => Promise<void> };
let context: BrowserContext;
let userDataDir: string;
const external: string[] = [];

before(async () => {
  if (skip) return;
  assert.ok(findOnPath(CHROMIUM), `${CHROMIUM} is missing: npm run setup:test-deps installs Debian's chromium`);
  const r = runScript('scripts/site/publish.ts', ['--from', EXECUTED, '--out', SITE], { env: { ...process.env, GPULAB_QUICK: '1' } });
  assert.equal(r.status, 0, `publish failed:\n${r.stdout}\n${r.stderr}`);
  site = await serve(SITE);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 900 },
  });
  // Nothing may leave the machine: the site is offline, and so is the Jupyter server.
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'data:' || u.hostname === '127.0.0.1') return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
});

after(async () => {
  await context?.close();
  await site?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

/** Open a page, recording console errors, page errors and failed responses. */
async function open(url: string, ctx: BrowserContext = context): Promise<{ page: Page; problems: string[] }> {
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  const res = await page.goto(url, { waitUntil: 'load' });
  assert.equal(res?.status(), 200, `${url} answered ${res?.status()}`);
  return { page, problems };
}

/** Every same-origin link on the page answers 200, and in-page anchors exist. */
async function assertLinksResolve(page: Page): Promise<string[]> {
  const hrefs = await page.$$eval('a[href]', (as) => as.map((a) => (a as HTMLAnchorElement).href));
  const own = hrefs.filter((h) => h.startsWith(site.url));
  for (const href of own) {
    const u = new URL(href);
    const res = await context.request.get(u.origin + u.pathname);
    assert.equal(res.status(), 200, `link ${href} on ${page.url()} does not resolve`);
    if (u.hash && u.pathname === new URL(page.url()).pathname) {
      assert.ok(await page.$(`[id="${decodeURIComponent(u.hash.slice(1))}"]`), `anchor ${u.hash} missing on ${page.url()}`);
    }
  }
  return own;
}

test(`the browser is the chromium at ${CHROMIUM}`, { skip }, async () => {
  // The binary's own version line (e.g. "Chromium 131.0.6778.85 built on Debian ...") must be the
  // version of the browser the pages run in: a bundled or other browser would differ.
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  const m = /^Chromium (\d+\.\d+\.\d+\.\d+)\b/.exec(r.stdout.trim());
  assert.ok(m, `${CHROMIUM} --version said: ${r.stdout}${r.stderr}`);
  assert.equal(context.browser()?.version(), m[1], 'the browser playwright drives is that binary');
  const page = await context.newPage();
  try {
    // The pages see it too (user agents carry only the major version).
    const ua = await page.evaluate(() => navigator.userAgent);
    assert.match(ua, new RegExp(`Chrome/${m[1].split('.')[0]}\\.`), `the page runs in ${ua}, not ${CHROMIUM} ${m[1]}`);
  } finally {
    await page.close();
  }
});

test('the index lists every notebook in order with summary and device, and all its links resolve', { skip }, async () => {
  const { page, problems } = await open(`${site.url}/index.html`);
  try {
    const entries = await page.$$eval('ol.toc > li.entry', (lis) =>
      lis.map((li) => ({
        href: li.querySelector('a.entry-title')?.getAttribute('href'),
        summary: li.querySelector('.summary')?.textContent ?? '',
        device: li.querySelector('.device')?.textContent ?? '',
      })),
    );
    assert.deepEqual(entries.map((e) => e.href), names.map((n) => `${n}.html`));
    for (const e of entries) {
      assert.ok(e.summary.length > 10, `${e.href} has no one-line summary`);
      assert.match(e.device, /^Numbers measured on \S+ · .+ · quick mode · \d{4}-\d\d-\d\d \d\d:\d\d UTC · \d+ charts?$/, `${e.href}: ${e.device}`);
    }
    const links = await assertLinksResolve(page);
    assert.ok(links.length >= names.length);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

for (const name of names) {
  test(`${name}.html: no console errors, every chart renders live, footer and links`, { skip }, async () => {
    const expected = chartCount(readNotebook(path.join(EXECUTED, `${name}.ipynb`)));
    const { page, problems } = await open(`${site.url}/${name}.html`);
    try {
      const figures = await page.$$('figure.chart');
      assert.equal(figures.length, expected, `${name}: ${expected} chart outputs in the notebook, ${figures.length} figures on the page`);
      if (expected > 0) await page.waitForSelector('body[data-charts="done"]', { timeout: 60_000 });
      const charts = await page.$$eval('figure.chart', (figs) =>
        figs.map((f) => ({
          id: f.id,
          live: f.classList.contains('chart-live'),
          marks: f.querySelectorAll('.chart-view svg g.role-mark > *').length,
          fallbackShown: (f.querySelector('.chart-fallback') as HTMLElement | null)?.offsetParent != null,
          actions: !!f.querySelector('.vega-actions'),
        })),
      );
      for (const c of charts) {
        assert.ok(c.live, `${name} ${c.id} did not render`);
        assert.ok(c.marks > 0, `${name} ${c.id} rendered an SVG with no marks`);
        assert.ok(!c.fallbackShown, `${name} ${c.id}: the static fallback is still shown`);
        assert.ok(c.actions, `${name} ${c.id}: no export/source menu`);
        assertMarksVisible(await page.locator(`[id="${c.id}"] .chart-view svg`).first().evaluate(domMarks), `${name}.html ${c.id}`);
      }
      const footer = await page.$$eval('#footer dd', (dds) => Object.fromEntries(dds.map((d) => [d.getAttribute('data-field'), d.textContent ?? ''])));
      assert.match(footer.machine ?? '', /^CPU .+ cores/);
      assert.ok(footer.gpu, 'GPU line');
      assert.match(footer.backend ?? '', / · /);
      assert.match(footer.date ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      assert.match(footer.versions ?? '', /tfjs \d+\.\d+\.\d+.*Node \d+\.\d+\.\d+/);
      const nav = await page.$$eval('nav.pager-top a', (as) => as.map((a) => a.getAttribute('href')));
      const i = names.indexOf(name);
      assert.deepEqual(nav, [i > 0 ? `${names[i - 1]}.html` : null, 'index.html', i < names.length - 1 ? `${names[i + 1]}.html` : null].filter(Boolean));
      await assertLinksResolve(page);
      assert.deepEqual(problems, []);
      if (name === screenshotPage) {
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        const shot = path.join(ARTIFACTS, `site-${name}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        assert.ok(fs.statSync(shot).size > 10_000, 'a real screenshot');
      }
    } finally {
      await page.close();
    }
  });
}

test('charts are interactive: hovering a mark shows its tooltip', { skip }, async (t) => {
  // Decided here, not at load time: the executed notebooks exist only once before() has run.
  const name = names.find((n) => chartCount(readNotebook(path.join(EXECUTED, `${n}.ipynb`))) > 0);
  if (!name) return t.skip('no notebook has a chart');
  const { page, problems } = await open(`${site.url}/${name}.html`);
  try {
    await page.waitForSelector('body[data-charts="done"]', { timeout: 60_000 });
    const marks = await page.$$('figure.chart .chart-view svg g.role-mark > path');
    let shown = '';
    for (const m of marks.slice(0, 20)) {
      await m.scrollIntoViewIfNeeded();
      await m.hover({ force: true });
      shown = await page
        .waitForSelector('#vg-tooltip-element.visible', { timeout: 1500 })
        .then(async (el) => (await el?.textContent()) ?? '')
        .catch(() => '');
      if (shown) break;
    }
    assert.ok(shown.length > 0, `no tooltip appeared over the marks of ${name}`);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('with scripts off, every chart shows the SVG from the notebook bundle', { skip }, async () => {
  const browser = context.browser();
  assert.ok(browser);
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  try {
    for (const name of names) {
      const { page } = await open(`${site.url}/${name}.html`, noJs);
      const imgs = await page.$$eval('figure.chart .chart-fallback', (els) =>
        els.map((e) => ({ tag: e.tagName, loaded: (e as HTMLImageElement).naturalWidth > 0, visible: (e as HTMLElement).offsetParent !== null })),
      );
      assert.equal(imgs.length, await page.locator('figure.chart').count());
      for (const img of imgs) assert.deepEqual(img, { tag: 'IMG', loaded: true, visible: true }, `${name}: a chart fallback is not shown`);
      assert.equal(await page.locator('.chart-view svg').count(), 0, 'nothing rendered without scripts');
      await page.close();
    }
  } finally {
    await noJs.close();
  }
});

test('no page requested anything outside 127.0.0.1 (vega, vega-lite, vega-embed are served by the site)', { skip }, () => {
  assert.deepEqual(external, []);
});
