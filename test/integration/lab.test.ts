/**
 * Every notebook, run the way a reader runs it: JupyterLab 4 (the project-local one in .venv/,
 * see scripts/setup/jupyter.ts) in a real browser (Debian's chromium, driven by playwright-core),
 * on 127.0.0.1 with a token, in quick mode.
 *
 * For each notebook: open it, Run ▸ Run All Cells (JupyterLab's own command, not nbclient), wait
 * until every code cell has run and the kernel is idle, then assert: the kernel is the TypeScript
 * one (tslab of this checkout); no cell shows an error; every chart output is drawn by JupyterLab's
 * Vega renderer (not the SVG fallback) with its data marks visible (test/support/chart-check.ts). One cell
 * is then run a second time and must still work. A screenshot of one chart is kept under
 * build/test-artifacts/. The server works on copies under build/, never on notebooks/ itself.
 * Without Chromium the suite skips, naming `npm run setup:test-deps`; under CI=true it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { VEGALITE_MIME } from '../../lib/display';
import { findOnPath } from '../../lib/monitor/tools';
import { listNotebooks, type Notebook } from '../../scripts/notebooks/format';
import { chromiumPath } from '../../scripts/setup/test-deps';
import { ROOT, scriptArgs } from '../support/helpers';
import { assertMarksVisible, domMarks } from '../support/chart-check';
import { skipUnlessInstalled } from '../support/system-deps';

const CHROMIUM = chromiumPath();
/** Without Chromium: skip, naming the install command (under CI: run, and fail). */
const skip = skipUnlessInstalled('Chromium (the browser these tests drive)', findOnPath(CHROMIUM) ? null : `${CHROMIUM} is missing`);
const VENV = path.join(ROOT, '.venv');
const JUPYTER = path.join(VENV, 'bin', 'jupyter');
const TSLAB = path.join(ROOT, 'node_modules', '.bin', 'tslab');
const NOTEBOOKS = path.join(ROOT, 'notebooks');
const ARTIFACTS = path.join(ROOT, 'build', 'test-artifacts');
const WORK = path.join(ROOT, 'build', 'test-lab');
const MARKER = 'lab-test-copies.md';
const names = listNotebooks(NOTEBOOKS);
/** The notebook whose first chart is screenshotted and whose chart cell is re-run. */
const showcase = names.find((n) => n.startsWith('00-')) ?? names[0];
/** Per notebook: quick mode runs in under ~2 min here; JupyterLab and the browser share the 2 cores. */
const RUN_MS = 480_000;

let proc: ChildProcess;
let context: BrowserContext;
let base = '';
let token = '';
let log = '';
let scratch = '';
const external: string[] = [];

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function api<T>(route: string, init?: RequestInit): Promise<T> {
  const res = await fetch(`${base}${route}`, { ...init, headers: { Authorization: `token ${token}`, ...(init?.headers ?? {}) } });
  assert.ok(res.ok, `${init?.method ?? 'GET'} ${route}: HTTP ${res.status}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(JUPYTER), `${JUPYTER} is missing: run npm run setup:jupyter`);
  assert.ok(findOnPath(CHROMIUM), `${CHROMIUM} is missing: npm run setup:test-deps installs Debian's chromium`);
  // Fresh copies: saving in JupyterLab must never touch the committed notebooks. The copies live
  // under build/ so the kernel (cwd = the notebook's folder) resolves `gpulab` from this checkout.
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  for (const n of names) fs.copyFileSync(path.join(NOTEBOOKS, n), path.join(WORK, n));
  fs.writeFileSync(path.join(WORK, MARKER), 'Copies of notebooks/ for test/integration/lab.test.ts; rebuilt on every run.\n');
  if (fs.existsSync(ARTIFACTS)) for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith('jupyterlab-')) fs.rmSync(path.join(ARTIFACTS, f));
  // JupyterLab's own state (settings, workspaces, runtime files) in a scratch folder, not ~/.jupyter.
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-lab-'));
  const settings = path.join(scratch, 'settings', '@jupyterlab', 'apputils-extension');
  fs.mkdirSync(settings, { recursive: true });
  // No "news" / update toasts over the notebook.
  fs.writeFileSync(path.join(settings, 'notification.jupyterlab-settings'), JSON.stringify({ fetchNews: 'false', checkForUpdates: false }));
  const port = await freePort();
  token = randomBytes(24).toString('hex');
  base = `http://127.0.0.1:${port}`;
  // Started the way `npm run lab` starts it (scripts/notebooks/lab.ts: --allow-root as root, tslab default),
  // on the work folder (GPULAB_LAB_DIR), with the test's address and token.
  proc = spawn(
    process.execPath,
    scriptArgs('scripts/notebooks/lab.ts', [
      '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0',
      `--IdentityProvider.token=${token}`, '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
    ]),
    {
      cwd: WORK,
      env: {
        ...process.env,
        GPULAB_QUICK: '1',
        GPULAB_LAB_DIR: WORK,
        JUPYTER_CONFIG_DIR: path.join(scratch, 'config'),
        JUPYTER_RUNTIME_DIR: path.join(scratch, 'runtime'),
        JUPYTERLAB_SETTINGS_DIR: path.join(scratch, 'settings'),
        JUPYTERLAB_WORKSPACES_DIR: path.join(scratch, 'workspaces'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  const end = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`jupyter lab exited with ${proc.exitCode}:\n${log}`);
    try {
      if ((await fetch(`${base}/api/status?token=${token}`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`jupyter lab did not answer at ${base} within 90 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // The server must serve the copies: a marker only WORK holds proves it before anything is saved.
  const listing = await api<{ content: { name: string }[] }>('/api/contents?content=1');
  assert.ok(listing.content.some((e) => e.name === MARKER), `jupyter lab serves another folder than ${WORK}: refusing to run (it would save into it)`);
  context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(scratch, 'chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
  });
  // Nothing leaves the machine.
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'data:' || u.protocol === 'blob:' || u.hostname === '127.0.0.1') return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
});

after(async () => {
  await context?.close();
  if (proc && proc.exitCode === null) {
    try {
      const sessions = await api<{ id: string }[]>('/api/sessions');
      for (const s of sessions) await api(`/api/sessions/${s.id}`, { method: 'DELETE' });
    } catch {
      /* the server is already gone */
    }
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  }
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test('JupyterLab (npm run lab) is the project-local 4.x, prints its URL, and defaults to the tslab kernel of this checkout', { skip }, async () => {
  // (A token given on the command line is printed masked, as token=...; a generated one in full.)
  assert.ok(log.includes(`http://127.0.0.1:${new URL(base).port}/lab?token=`), `npm run lab did not print its URL:\n${log}`);
  assert.match(log, /\.venv\/lib\/python[\d.]+\/site-packages\/jupyterlab/, 'the JupyterLab of .venv');
  const specs = await api<{ default: string; kernelspecs: Record<string, { spec: { argv: string[]; language: string; display_name: string } }> }>('/api/kernelspecs');
  assert.equal(specs.default, 'tslab');
  assert.equal(specs.kernelspecs.tslab?.spec.argv[0], TSLAB, 'the kernel spec comes from .venv, not ~/.local');
  assert.equal(specs.kernelspecs.tslab?.spec.display_name, 'TypeScript');
  const page = await context.newPage();
  try {
    await page.goto(`${base}/lab?token=${token}`, { waitUntil: 'load' });
    const config = await page.evaluate(() => JSON.parse(document.getElementById('jupyter-config-data')?.textContent ?? '{}') as { appVersion?: string });
    assert.match(config.appVersion ?? '', /^4\.\d+\.\d+$/, 'JupyterLab 4');
  } finally {
    await page.close();
  }
});

/** Wait until every code cell shows an execution count (none queued or running) and the kernel is idle. */
async function waitForRunAll(page: Page, timeout: number): Promise<void> {
  await page.waitForFunction(
    () => {
      const prompts = Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')).map((p) => p.textContent ?? '');
      const idle = document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle';
      return prompts.length > 0 && prompts.every((t) => /\[\d+\]/.test(t)) && idle;
    },
    undefined,
    { timeout, polling: 500 },
  );
}

/** Run a command from JupyterLab's main menu, as a reader does: the menu, then the item by its label. */
async function menuCommand(page: Page, menu: string, label: string): Promise<void> {
  await page.locator('#jp-MainMenu .lm-MenuBar-itemLabel', { hasText: new RegExp(`^${menu}$`) }).click();
  await page.locator('.lm-Menu-item:not(.lm-mod-disabled)', { has: page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${label}$`) }) }).first().click();
}

interface CellState {
  index: number;
  prompt: string;
  errors: string[];
  vega: number;
  fallbacks: number;
}

async function cellStates(page: Page): Promise<CellState[]> {
  return page.$$eval('.jp-Notebook .jp-CodeCell', (cells) =>
    cells.map((c, index) => ({
      index,
      prompt: c.querySelector('.jp-InputArea-prompt')?.textContent ?? '',
      errors: Array.from(c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')).map((e) => e.textContent ?? ''),
      vega: c.querySelectorAll('.jp-RenderedVegaCommon5').length,
      fallbacks: c.querySelectorAll('.jp-OutputArea-output .jp-RenderedSVG, .jp-OutputArea-output .jp-RenderedImage').length,
    })),
  );
}

async function assertChartsDrawn(page: Page, what: string): Promise<number> {
  const charts = page.locator('.jp-RenderedVegaCommon5');
  const n = await charts.count();
  for (let i = 0; i < n; i++) {
    const chart = charts.nth(i);
    await chart.locator('svg g.role-mark').first().waitFor({ state: 'attached', timeout: 30_000 });
    assertMarksVisible(await chart.locator('svg').first().evaluate(domMarks), `${what}: chart ${i + 1} in JupyterLab`);
  }
  return n;
}

for (const file of names) {
  const name = path.basename(file, '.ipynb');
  test(`${name} runs all cells in JupyterLab: TypeScript kernel, no errors, every chart drawn by the Vega renderer`, { skip, timeout: RUN_MS + 120_000 }, async () => {
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await page.goto(`${base}/lab/tree/${encodeURIComponent(file)}?reset&token=${token}`, { waitUntil: 'load' });
      await page.locator('.jp-Notebook .jp-CodeCell').first().waitFor({ timeout: 120_000 });
      // The kernel the notebook got without asking: tslab, shown as TypeScript.
      const kernelName = await page
        .waitForFunction(
          () => {
            const k = document.querySelector('.jp-NotebookPanel-toolbar .jp-Toolbar-kernelName')?.textContent?.trim() ?? '';
            const idle = document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle';
            return idle && k && !/^(No Kernel|Kernel)$/.test(k) ? k : false;
          },
          undefined,
          { timeout: 120_000, polling: 250 },
        )
        .then((h) => h.jsonValue());
      assert.equal(kernelName, 'TypeScript');
      // The server's session for it (JupyterLab may show the name a moment before the session exists).
      let kernel: string | undefined;
      for (const end = Date.now() + 60_000; !kernel && Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
        kernel = (await api<{ path: string; kernel: { name: string } | null }[]>('/api/sessions')).find((s) => s.path === file)?.kernel?.name;
      }
      assert.equal(kernel, 'tslab');

      const t0 = Date.now();
      await menuCommand(page, 'Run', 'Run All Cells');
      await waitForRunAll(page, RUN_MS);
      const seconds = (Date.now() - t0) / 1000;

      const cells = await cellStates(page);
      for (const c of cells) {
        assert.deepEqual(c.errors.filter((t) => /(Error|Exception|Traceback|Unhandled)\b/.test(t)), [], `${name} code cell ${c.index + 1} shows an error`);
        assert.equal(c.fallbacks, 0, `${name} code cell ${c.index + 1}: a chart fell back to the static SVG/image instead of JupyterLab's Vega renderer`);
      }
      const drawn = await assertChartsDrawn(page, name);

      // Save through JupyterLab (File ▸ Save), then compare with the chart outputs the saved notebook holds.
      type Saved = { content: Notebook };
      let saved: Saved | null = null;
      // Up to three tries (on a loaded 2-core machine a menu click can land before the menu is live).
      for (let attempt = 0; attempt < 3 && !saved; attempt++) {
        await page.keyboard.press('Escape');
        await menuCommand(page, 'File', 'Save( Notebook)?');
        for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
          const got = await api<Saved>(`/api/contents/${encodeURIComponent(file)}?content=1`);
          if (got.content.cells.every((c) => c.cell_type !== 'code' || typeof c.execution_count === 'number')) {
            saved = got;
            break;
          }
        }
      }
      if (!saved) {
        const dialog = await page.locator('.jp-Dialog').allTextContents();
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTIFACTS, `jupyterlab-${name}-save-failed.png`) });
        assert.fail(`${name}: JupyterLab did not save the executed notebook (3 tries)${dialog.length ? `; dialog: ${dialog.join(' | ')}` : ''}\n${log.split('\n').slice(-15).join('\n')}`);
      }
      const bundles = saved.content.cells.flatMap((c) => c.outputs ?? []).filter((o) => o.data?.[VEGALITE_MIME]).length;
      assert.equal(drawn, bundles, `${name}: ${bundles} chart outputs, ${drawn} drawn by the Vega renderer`);
      assert.ok(saved.content.cells.filter((c) => c.cell_type === 'code').length === cells.length);
      console.log(`${name}: ${cells.length} code cells, ${drawn} charts, run all in ${seconds.toFixed(1)} s`);

      if (file === showcase) {
        // People re-run cells: run the first chart cell (or the last code cell) again.
        const again = cells.find((c) => c.vega > 0) ?? cells[cells.length - 1];
        const cell = page.locator('.jp-Notebook .jp-CodeCell').nth(again.index);
        const before = Number(/\[(\d+)\]/.exec(again.prompt)?.[1]);
        await cell.locator('.jp-InputArea-prompt').click();
        await menuCommand(page, 'Run', 'Run Selected Cell and Do not Advance');
        await page.waitForFunction(
          ([i, n]) => {
            const p = document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')[i as number]?.textContent ?? '';
            const m = /\[(\d+)\]/.exec(p);
            return !!m && Number(m[1]) > (n as number) && document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle';
          },
          [again.index, before],
          { timeout: 120_000, polling: 250 },
        );
        const after = (await cellStates(page))[again.index];
        assert.deepEqual(after.errors.filter((t) => /(Error|Exception|Traceback|Unhandled)\b/.test(t)), [], 're-running the cell shows an error');
        assert.equal(after.vega, again.vega, 'the re-run cell shows its chart again');
        if (again.vega > 0) {
          const chart = cell.locator('.jp-RenderedVegaCommon5').first();
          await chart.locator('svg g.role-mark').first().waitFor({ state: 'attached', timeout: 30_000 });
          assertMarksVisible(await chart.locator('svg').first().evaluate(domMarks), `${name}: the re-run chart`);
          fs.mkdirSync(ARTIFACTS, { recursive: true });
          const shot = path.join(ARTIFACTS, `jupyterlab-${name}-chart.png`);
          await chart.scrollIntoViewIfNeeded();
          await chart.screenshot({ path: shot });
          assert.ok(fs.statSync(shot).size > 5_000, 'a real screenshot');
        }
      }
      // JupyterLab's debugger panel asks every kernel for a debug session; tslab has none, and the
      // rejected promise surfaces as a page error. It is not a fault of the notebook.
      assert.deepEqual(pageErrors.filter((e) => e !== 'No active debugger session'), [], 'JupyterLab page errors');
    } finally {
      // Close the kernel: the next notebook gets the CPU.
      try {
        const sessions = await api<{ id: string; path: string }[]>('/api/sessions');
        for (const s of sessions.filter((x) => x.path === file)) await api(`/api/sessions/${s.id}`, { method: 'DELETE' });
      } catch {
        /* reported by the test itself */
      }
      await page.close();
    }
  });
}

test('a chart screenshot from JupyterLab was saved, and nothing was requested outside 127.0.0.1', { skip }, () => {
  const shots = fs.existsSync(ARTIFACTS) ? fs.readdirSync(ARTIFACTS).filter((f) => f.startsWith('jupyterlab-') && f.endsWith('.png')) : [];
  assert.ok(shots.length >= 1, 'no JupyterLab chart screenshot in build/test-artifacts/');
  assert.deepEqual(external, []);
});
