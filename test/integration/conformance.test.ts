/**
 * tfjs-core's own op suite (the ≈4,200 specs shipped in @tensorflow/tfjs-core/dist/tests.js) on
 * the `tensorflow` and `wasm` backends, once with tfjs's stock kernels and once with gpulab's
 * installed, each backend held to its own project's list (harness: test/conformance/, README
 * there). Fails naming every spec that passes stock and fails with gpulab's kernels. Every spec
 * file runs (≈10 s a run on an idle 2-core machine; four runs, two at a time).
 * Under CI=true a tensorflow backend that cannot load fails the suite; elsewhere it is skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { matchesTestFilters, parseTfjsNodeIgnoreList, selectionFor, tfjsNodeIgnoreList, wasmIncludeList } from '../conformance/lists';
import { countsTable, describeRegressions, nativeUnavailable, runConformance, type Comparison } from '../conformance/suite';
import { ROOT } from '../support/helpers';
import { inCi } from '../../scripts/setup/test-deps';

const IN_CI = inCi();

test("the backends' own spec lists: tfjs-node's ignore list from the installed package, wasm's include list as committed", () => {
  const { list } = tfjsNodeIgnoreList();
  assert.ok(list.includes('bitwiseAnd') && list.includes('raggedGather') && list.length > 50, `tfjs-node IGNORE_LIST read (${list.length} entries)`);
  assert.throws(() => parseTfjsNodeIgnoreList('var OTHER = [];', 'x.js'), /x\.js: no IGNORE_LIST array found/);
  const tfNode = selectionFor('tensorflow');
  assert.equal(tfNode.runs('matMul test-tensorflow {} A x B'), true);
  assert.equal(tfNode.runs('depthwiseConv2D test-tensorflow {} input=1x3x3x1'), false);
  const wasm = wasmIncludeList();
  assert.equal(wasm.source.tag, 'tfjs-v4.22.0');
  assert.match(wasm.license, /Apache-2\.0/);
  const filters = [{ include: 'add ', excludes: ['gradient'] }, { include: 'gradient' }];
  const custom = (n: string) => !n.includes('test-wasm');
  assert.equal(matchesTestFilters('add test-wasm {} c + A', filters, custom), true);
  assert.equal(matchesTestFilters('add test-wasm {} gradient: scalar + 1D', filters, custom), false, 'the first matching filter decides, as in tfjs');
  assert.equal(matchesTestFilters('util test', filters, custom), true, 'a plain describe() always runs');
  const w = selectionFor('wasm');
  assert.equal(w.runs('matmul test-wasm {} A x B'), true);
  assert.equal(w.runs('conv2d test-wasm {} gradient x=[1,3,3,1] f=[2,2,1,1] s=1 p=0'), false);
});

test('the single-instance check fails when a second tfjs-core is loaded', () => {
  const script = [
    "require('@tensorflow/tfjs');", // the stock CommonJS tfjs-core (dist/tf-core.node.js) loads first: a second instance
    "const { buildCoreBundle } = require('./test/conformance/bundle.ts');",
    "const { useBundledCore, assertSingleCore } = require('./test/conformance/single-core.ts');",
    'buildCoreBundle().then((file) => {',
    '  const bundle = require(file);',
    '  for (const step of [() => useBundledCore(bundle.core), () => assertSingleCore(bundle.core)]) {',
    "    try { step(); console.log('passed'); } catch (e) { console.log(e.message); }",
    '  }',
    '});',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const [install, check] = r.stdout.trim().split('\n').slice(-2);
  assert.match(install, /tfjs-core was loaded before the shared instance was installed: .*tf-core\.node\.js/);
  assert.match(check, /tfjs-core is not one instance: a second tfjs-core is loaded: .*tf-core\.node\.js.*NOT: @tensorflow\/tfjs has the same Tensor class/);
});

test("tfjs-core's op suite: every spec that passes with tfjs's kernels passes with gpulab's (tensorflow, wasm)", async (t) => {
  const why = nativeUnavailable();
  if (why && IN_CI) assert.fail(`CI=true but ${why}`);
  const backends = why ? (['wasm'] as const) : (['tensorflow', 'wasm'] as const);
  if (why) t.diagnostic(`tensorflow skipped: ${why}`);
  const t0 = performance.now();
  const comparisons: Comparison[] = await runConformance({ backends });
  for (const line of countsTable(comparisons).split('\n')) t.diagnostic(line);
  t.diagnostic(`${((performance.now() - t0) / 1000).toFixed(1)} s wall, two runs at a time`);
  for (const c of comparisons) {
    assert.ok(c.stock.specs.length > 1000, `${c.backend}: the stock run selected ${c.stock.specs.length} specs (the list or the loading is broken)`);
    assert.equal(c.stock.singleCore.checks.length, 5, `${c.backend}: one tfjs-core instance (${c.stock.singleCore.checks.join('; ')})`);
    assert.ok(c.gpulab.kernelsChanged.length > 0, `${c.backend}: gpulab's kernels were installed`);
  }
  const failing = comparisons.filter((c) => c.regressions.length);
  const report = failing.map((c) => `${c.backend}: ${c.regressions.length} spec(s) pass with tfjs's kernels and fail with gpulab's:\n${describeRegressions(c)}`);
  assert.equal(failing.length, 0, report.join('\n'));
});
