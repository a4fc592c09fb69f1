import { test } from 'node:test';
import assert from 'node:assert/strict';
import pl from 'nodejs-polars';
import * as charts from '../../lib/charts';
import { sendBundle, VEGALITE_MIME } from '../../lib/display';
// Loaded so that it sits in require.cache, where lib/display.ts looks for a kernel's writer.
import 'tslab/dist/jupyter';
import { assertMarksVisible, markProblems, pathGeometry, svgMarks } from '../support/chart-check';

const rows = [
  { backend: 'wasm', gflops: 17, lo: 15, hi: 18, epoch: 1, acc: 0.7, group: 'a' },
  { backend: 'cpu', gflops: 0.5, lo: 0.4, hi: 0.6, epoch: 2, acc: 0.8, group: 'a' },
  { backend: 'webgpu', gflops: 3, lo: 2, hi: 4, epoch: 3, acc: 0.85, group: 'b' },
];

function marks(svg: string): number {
  return (svg.match(/role="graphics-symbol"/g) ?? []).length + (svg.match(/<path /g) ?? []).length;
}

test('every builder gives a Vega-Lite v5 spec that compiles and renders to SVG with marks', async () => {
  const specs = [
    charts.barChart({ title: 'bars', data: rows, x: 'backend', y: 'gflops', errorLow: 'lo', errorHigh: 'hi', sortByValue: true }),
    charts.barChart({ title: 'grouped', data: rows, x: 'backend', y: 'gflops', color: 'group', logY: true }),
    charts.lineChart({ title: 'lines', subtitle: 'sub', data: rows, x: 'epoch', y: 'acc', color: 'group', bandLow: 'lo', bandHigh: 'hi' }),
    charts.scatterChart({ title: 'scatter', data: rows, x: 'gflops', y: 'acc', label: 'backend', frontier: true, logX: true }),
  ];
  for (const spec of specs) {
    assert.equal((spec as { $schema?: string }).$schema, charts.VEGA_LITE_SCHEMA);
    const vg = charts.compile(spec);
    assert.ok(vg && typeof vg === 'object');
    const svg = await charts.toSvg(spec);
    assert.match(svg, /^<svg/);
    assert.ok(marks(svg) >= 3, `expected marks in the SVG of ${charts.summaryLine(spec)}`);
    assertMarksVisible(svgMarks(svg), charts.summaryLine(spec));
  }
});

// Notebook 05 under load: one model was both the fastest and the most accurate, so the frontier
// was a single point, and a line through one point has no length (JupyterLab's chart check failed).
test('a scatter whose Pareto frontier is one point draws no zero-length frontier line', async () => {
  const dominated = [{ t: 1, acc: 0.9, name: 'best' }, { t: 2, acc: 0.8, name: 'b' }, { t: 3, acc: 0.7, name: 'c' }];
  assert.equal(charts.paretoFrontier(dominated, 't', 'acc').length, 1);
  const spec = charts.scatterChart({ title: 'one-point frontier', data: dominated, x: 't', y: 'acc', frontier: true });
  assertMarksVisible(svgMarks(await charts.toSvg(spec)), charts.summaryLine(spec));
  const two = charts.scatterChart({ title: 'two-point frontier', data: [...dominated, { t: 0.5, acc: 0.5, name: 'fast' }], x: 't', y: 'acc', frontier: true });
  assert.equal(((two as { layer: { mark: { type: string } }[] }).layer).filter((l) => l.mark.type === 'line').length, 1, 'a real frontier is still drawn');
});

// The two log-scale bar charts that drew empty axes (02's seed experiment: stacked + log; 05's
// latency: grouped + log), with data shaped like theirs.
const seedRows = [
  { run: 'wasm (this machine)', seconds: 43, source: 'measured here' },
  { run: 'webgpu (this machine)', seconds: 310, source: 'projected here from a subset' },
  { run: 'article: CPU', seconds: 70.5, source: 'reported by the article' },
  { run: 'article: GPU', seconds: 62.6, source: 'reported by the article' },
];
const latencyRows = [
  { model: 'small', batch: 'batch 1', ms: 0.8 }, { model: 'small', batch: 'batch 256', ms: 10 },
  { model: 'large', batch: 'batch 1', ms: 3 }, { model: 'large', batch: 'batch 256', ms: 120 },
];

test('log-scale bar charts draw every bar with height, the smallest one too (02 seed experiment, 05 latency)', async () => {
  const specs = [
    charts.barChart({ title: 'seed', data: seedRows, x: 'run', y: 'seconds', color: 'source', stacked: true, logY: true }),
    charts.barChart({ title: 'latency', data: latencyRows, x: 'model', y: 'ms', color: 'batch', logY: true }),
    charts.barChart({ title: 'exact power of ten', data: [{ k: 'a', v: 10 }, { k: 'b', v: 1000 }], x: 'k', y: 'v', logY: true, errorLow: 'v', errorHigh: 'v' }),
  ];
  for (const spec of specs) {
    const items = svgMarks(await charts.toSvg(spec));
    assertMarksVisible(items, charts.summaryLine(spec));
    const bars = items.filter((i) => i.kind === 'rect');
    assert.equal(bars.length, (spec as { data: { values: unknown[] } }).data.values.length, 'one bar per row');
    for (const b of bars) assert.ok(b.height >= 5, `bar ${b.label} is only ${b.height} px tall`);
  }
});

test('a log-scale bar chart refuses values it cannot show and stacked parts, naming the chart', () => {
  assert.throws(() => charts.barChart({ title: 'T', data: [{ k: 'a', v: 0 }], x: 'k', y: 'v', logY: true }), /barChart "T": logY needs positive values, but v = 0/);
  assert.throws(
    () => charts.barChart({ title: 'S', data: [{ k: 'a', p: 'x', v: 1 }, { k: 'a', p: 'y', v: 2 }], x: 'k', y: 'v', color: 'p', stacked: true, logY: true }),
    /barChart "S": stacked bars cannot be drawn on a log scale \(k = a has several parts\)/,
  );
});

test('the mark check fails a chart that draws empty axes: the old stacked log-scale bar spec', async () => {
  // What barChart built before the fix: a stacked bar on a log scale, stack starting at 0.
  const broken = {
    $schema: charts.VEGA_LITE_SCHEMA, title: 'seed (old spec)', width: 480, height: 280, data: { values: seedRows },
    layer: [{ mark: { type: 'bar', tooltip: true }, encoding: {
      x: { field: 'run', type: 'nominal', sort: null },
      y: { field: 'seconds', type: 'quantitative', scale: { type: 'log' } },
      color: { field: 'source', type: 'nominal' },
    } }],
  } as unknown as charts.ChartSpec;
  const svg = await charts.toSvg(broken);
  assert.match(svg, /role="graphics-symbol"/, 'the old spec does emit bar elements (why the old test passed)');
  const problems = markProblems(svgMarks(svg));
  assert.ok(problems.length >= seedRows.length, problems.join('\n'));
  assert.match(problems[0], /rect "run: wasm \(this machine\); seconds: 43; source: measured here" is [\d.]+×0 px: not visible/);
  assert.throws(() => assertMarksVisible(svgMarks(svg), 'old seed chart'), /old seed chart: the chart does not draw its data/);
  // The grouped one (05) was just as empty.
  const grouped = JSON.parse(JSON.stringify(broken)) as { layer: { encoding: Record<string, unknown> }[]; data: { values: unknown[] } };
  grouped.data.values = latencyRows;
  grouped.layer[0].encoding = { x: { field: 'model', type: 'nominal' }, y: { field: 'ms', type: 'quantitative', scale: { type: 'log' } }, color: { field: 'batch', type: 'nominal' }, xOffset: { field: 'batch' } };
  assert.ok(markProblems(svgMarks(await charts.toSvg(grouped as unknown as charts.ChartSpec))).length >= 4);
});

test('the mark check: no marks, lines without length and points off the plot all fail', async () => {
  const empty = charts.barChart({ title: 'nothing', data: [], x: 'k', y: 'v' });
  assert.deepEqual(markProblems(svgMarks(await charts.toSvg(empty))), ['no data marks drawn (bars, lines, points or areas): the chart shows empty axes']);
  const plot = { width: 100, height: 50 };
  const base = { layer: 'mark-line role-mark layer_0_marks', x: 0, y: 0, width: 0, height: 0, length: 0, plot, label: '' };
  assert.match(markProblems([{ ...base, kind: 'line' }]).join(), /line layer "mark-line role-mark layer_0_marks": none of its 1 item\(s\) has any length/);
  assert.deepEqual(markProblems([{ ...base, kind: 'line', length: 3 }, { ...base, kind: 'line' }]), [], 'one series of a single point is fine');
  assert.match(markProblems([{ ...base, kind: 'symbol', x: 120, y: 10, width: 4, height: 4 }]).join(), /outside the 100×50 plot/);
  assert.deepEqual(markProblems([{ ...base, kind: 'symbol', x: 10, y: 10, width: 4, height: 4 }]), []);
  assert.deepEqual(pathGeometry('M1,2h10v5h-10Z'), { x: 1, y: 2, width: 10, height: 5, length: 30 });
  // A bar whose value is 0 is flat on a linear scale; that is drawn correctly.
  const zero = charts.barChart({ title: 'zero', data: [{ k: 'a', v: 0 }, { k: 'b', v: 3 }], x: 'k', y: 'v' });
  assert.deepEqual(markProblems(svgMarks(await charts.toSvg(zero))), []);
  assert.match(markProblems([{ ...base, kind: 'rect', width: 10, height: 0, label: 'k: a; v: 2' }]).join(), /rect "k: a; v: 2" is 10×0 px/);
});

test('charts accept a polars DataFrame', async () => {
  const df = pl.DataFrame({ x: [1, 2, 3], y: [2, 4, 8] });
  const spec = charts.lineChart({ title: 'df', data: df, x: 'x', y: 'y' });
  assert.deepEqual((spec as { data: { values: unknown[] } }).data.values, [{ x: 1, y: 2 }, { x: 2, y: 4 }, { x: 3, y: 8 }]);
  assert.match(await charts.toSvg(spec), /<svg/);
});

test('an invalid spec fails to compile with vega-lite\'s message', () => {
  const bad = { $schema: charts.VEGA_LITE_SCHEMA, data: { values: [] }, mark: 'nonsense' } as unknown as charts.ChartSpec;
  assert.throws(() => charts.compile(bad), /Vega-Lite could not compile chart "\[chart\] chart \(0 data points\)": /);
});

test('the bundle holds exactly vega-lite v5, SVG and text, and show() sends it as ONE message', async () => {
  const spec = charts.barChart({ title: 'Throughput', data: rows, x: 'backend', y: 'gflops' });
  const b = await charts.bundle(spec);
  assert.deepEqual(Object.keys(b).sort(), [VEGALITE_MIME, 'image/svg+xml', 'text/plain']);
  assert.equal(b[VEGALITE_MIME], spec);
  assert.equal(b['text/plain'], '[chart] Throughput (3 data points)');
  // Outside a kernel there is no tslab writer: show() prints the summary instead.
  const jupyter = require.cache[require.resolve('tslab/dist/jupyter')]?.exports as { lastWriteDisplayData: unknown };
  assert.equal(sendBundle(b), false);
  const sent: unknown[] = [];
  jupyter.lastWriteDisplayData = (msg: unknown) => sent.push(msg);
  try {
    await charts.show(spec);
  } finally {
    jupyter.lastWriteDisplayData = null;
  }
  assert.equal(sent.length, 1);
  const msg = sent[0] as { data: Record<string, unknown>; metadata: Record<string, unknown> };
  assert.deepEqual(msg.metadata, { [VEGALITE_MIME]: { embed_options: { renderer: 'svg' } } }, 'JupyterLab renders it as SVG');
  assert.deepEqual(Object.keys(msg.data).sort(), [VEGALITE_MIME, 'image/svg+xml', 'text/plain']);
});

test('paretoFrontier keeps only points not beaten on both axes', () => {
  const pts = [
    { t: 1, acc: 0.5 }, { t: 2, acc: 0.7 }, { t: 3, acc: 0.6 }, { t: 4, acc: 0.9 }, { t: 5, acc: 0.9 },
  ];
  assert.deepEqual(charts.paretoFrontier(pts, 't', 'acc').map((p) => p.t), [1, 2, 4]);
  assert.deepEqual(charts.paretoFrontier(pts, 't', 'acc', 'min-x-min-y').map((p) => p.t), [1]);
});

test('provenance labels backend, device and dataset', () => {
  const line = charts.provenance('generated stand-in', {
    backend: 'wasm', name: 'CPU X', adapter: null, software: false, accelerator: false, cores: 2, cpuModel: 'CPU X',
    memoryGiB: 1, platform: 'linux-x64', versions: { tfjs: '4', node: '20', tslab: '1', backendPackage: null },
  });
  assert.equal(line, 'measured on wasm · CPU X (2 cores) · data: generated stand-in');
});

test('heatmapChart and stacked bars compile and render (issue 4 additions)', async () => {
  const cells = [
    { width: 32, batch: 1, speedup: 0.5 },
    { width: 32, batch: 64, speedup: 2 },
    { width: 512, batch: 1, speedup: 1.5 },
    { width: 512, batch: 64, speedup: 12 },
  ];
  const heat = charts.heatmapChart({ title: 'crossover', data: cells, x: 'batch', y: 'width', value: 'speedup', logColor: true, midpoint: 1 });
  const svg = await charts.toSvg(heat);
  assert.match(svg, /<svg/);
  assert.match(svg, />12</, 'cell labels are drawn');
  const stacked = charts.barChart({ title: 'breakdown', data: [{ p: 'naive', part: 'data', s: 3 }, { p: 'naive', part: 'compute', s: 2 }], x: 'p', y: 's', color: 'part', stacked: true });
  const layer0 = (stacked as unknown as { layer: { encoding: Record<string, unknown> }[] }).layer[0];
  assert.equal('xOffset' in layer0.encoding, false);
  assert.match(await charts.toSvg(stacked), /<svg/);
  const grouped = charts.barChart({ title: 'grouped', data: [{ p: 'a', part: 'x', s: 1 }], x: 'p', y: 's', color: 'part' });
  assert.equal('xOffset' in (grouped as unknown as { layer: { encoding: Record<string, unknown> }[] }).layer[0].encoding, true);
});

test('timelineChart stacks one panel per group with its own y axis and draws the marks in each', async () => {
  const data = [
    { t: 0, v: 10, s: 'cpu %', p: 'utilization' }, { t: 1, v: 90, s: 'cpu %', p: 'utilization' }, { t: 2, v: 50, s: 'cpu %', p: 'utilization' },
    { t: 0, v: 300, s: 'rss', p: 'memory' }, { t: 1, v: 320, s: 'rss', p: 'memory' }, { t: 2, v: 330, s: 'rss', p: 'memory' },
  ];
  const spec = charts.timelineChart({ title: 'timeline', subtitle: 'sub', data, x: 't', y: 'v', series: 's', panel: 'p', marks: [{ x: 1.5, label: 'epoch 1' }] });
  const panels = (spec as { vconcat: { layer: unknown[] }[] }).vconcat;
  assert.equal(panels.length, 2);
  assert.equal(panels[0].layer.length, 3, 'lines, rules, rule labels');
  assert.equal(charts.summaryLine(spec), '[chart] timeline (6 data points)');
  const svg = await charts.toSvg(spec);
  assert.match(svg, /^<svg/);
  assert.equal((svg.match(/>epoch 1<\/text>/g) ?? []).length, 2, 'the mark label appears in both panels');
  const single = charts.timelineChart({ title: 'one', data: data.slice(0, 3), x: 't', y: 'v', series: 's' });
  assert.equal((single as { vconcat: unknown[] }).vconcat.length, 1);
  assert.match(await charts.toSvg(single), /^<svg/);
});
