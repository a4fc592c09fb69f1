/**
 * Charts as real notebook outputs: typed Vega-Lite v5 builders, an SVG rendered by vega in
 * Node, and {@link show}, which sends ONE display_data bundle holding Vega-Lite
 * (`VEGALITE_MIME` from `./display`: interactive in JupyterLab), `image/svg+xml` (nbconvert
 * HTML, classic Notebook, GitHub) and `text/plain` (a one-line summary).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import pl from 'nodejs-polars';
import { describeDevice, deviceLabel, type DeviceInfo } from './backends/device';
import { sendBundle, VEGALITE_MIME, type MimeBundle } from './display';


/** A Vega-Lite v5 top-level spec (re-exported so notebooks need no vega-lite import). */
export type ChartSpec = TopLevelSpec;

/** A row of chart data. */
export type Row = Record<string, string | number | boolean | null | undefined>;

/** Chart data: records, or a polars DataFrame (read with `toRecords()`). */
export type ChartData = readonly Row[] | pl.DataFrame;

/** The Vega-Lite schema URL of every spec built here (v5: what JupyterLab 4 renders). */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';


/** Options every builder takes. */
export interface CommonOptions {
  title: string;
  /** Extra lines under the title: device and dataset labels go here. */
  subtitle?: string | string[];
  width?: number;
  height?: number;
}

/** A field-encoding option: the column name, and optionally its axis title. */
export interface Field {
  field: string;
  title?: string;
}

function toRows(data: ChartData): Row[] {
  if (Array.isArray(data)) return [...(data as Row[])];
  if (typeof (data as { toRecords?: unknown }).toRecords === 'function') {
    return (data as pl.DataFrame).toRecords().map((r) => {
      const row: Row = {};
      for (const [k, v] of Object.entries(r)) {
        row[k] = typeof v === 'bigint' ? Number(v) : (v as Row[string]);
      }
      return row;
    });
  }
  throw new Error('charts: data must be an array of records or a polars DataFrame');
}

function f(x: string | Field): Field {
  return typeof x === 'string' ? { field: x } : x;
}

function header(o: CommonOptions) {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle, subtitleColor: '#555' } : o.title,
    width: o.width ?? 480,
    height: o.height ?? 280,
  };
}

/**
 * The subtitle line that labels where the numbers came from: backend, device and dataset.
 * Every measured chart should carry it.
 */
export function provenance(dataset?: string, device: DeviceInfo = describeDevice()): string {
  return `measured on ${deviceLabel(device)}${dataset ? ` · data: ${dataset}` : ''}`;
}

/** Options for {@link barChart}. */
export interface BarOptions extends CommonOptions {
  data: ChartData;
  /** Category axis. */
  x: string | Field;
  /** Value axis (e.g. the median). */
  y: string | Field;
  /** Optional colour (and grouping) field. */
  color?: string | Field;
  /** Error bar low/high fields (e.g. `min`/`max`). */
  errorLow?: string;
  errorHigh?: string;
  /**
   * Log-scale values: bars grow from the power of ten below the smallest value (a log scale has
   * no zero). Values must be positive; stacked parts cannot be combined with it.
   */
  logY?: boolean;
  /** Sort categories as given (default) or by value. */
  sortByValue?: boolean;
  /**
   * With `color`: stack the coloured parts in one bar (e.g. a time breakdown) instead of grouping
   * them. With `logY` there is no stacking: each category must have one part, coloured.
   */
  stacked?: boolean;
}

/**
 * The y scale of a log-scale bar chart. A bar needs a baseline below its top, and a log scale has
 * no zero: the floor is the power of ten strictly below the smallest value drawn (bar or error
 * low), so even the smallest bar has height. Throws, naming the chart, on a value a log scale
 * cannot show (≤ 0), and on stacked parts (a log scale cannot stack them).
 */
function logBarScale(o: BarOptions, values: readonly Row[], yField: string): { type: 'log'; domainMin: number } {
  const fields = [yField, ...(o.errorLow ? [o.errorLow] : [])];
  let min = Infinity;
  for (const r of values) {
    for (const field of fields) {
      const v = r[field];
      if (v === null || v === undefined) continue;
      const n = Number(v);
      if (!(n > 0)) throw new Error(`charts.barChart "${o.title}": logY needs positive values, but ${field} = ${String(v)}`);
      min = Math.min(min, n);
    }
  }
  if (o.stacked && o.color) {
    const x = f(o.x).field;
    const seen = new Set<string>();
    for (const r of values) {
      const key = String(r[x]);
      if (seen.has(key)) throw new Error(`charts.barChart "${o.title}": stacked bars cannot be drawn on a log scale (${x} = ${key} has several parts); drop logY or stacked`);
      seen.add(key);
    }
  }
  if (!Number.isFinite(min)) return { type: 'log', domainMin: 1 };
  let floor = 10 ** Math.floor(Math.log10(min));
  if (floor >= min) floor /= 10;
  return { type: 'log', domainMin: floor };
}

/** Bars with optional error bars (min–max or any low/high pair) and grouped colours. */
export function barChart(o: BarOptions): ChartSpec {
  const x = f(o.x);
  const y = f(o.y);
  const values = toRows(o.data);
  const color = o.color ? f(o.color) : undefined;
  const xEnc = {
    field: x.field,
    type: 'nominal' as const,
    title: x.title ?? x.field,
    sort: o.sortByValue ? { field: y.field, op: 'max' as const, order: 'descending' as const } : null,
    axis: { labelAngle: -30 },
  };
  const yScale = o.logY ? logBarScale(o, values, y.field) : { zero: true };
  const layers: unknown[] = [
    {
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: xEnc,
        // On a log scale bars are never stacked: a stack starts at 0, which a log scale cannot show
        // (Vega-Lite then draws every bar with zero height). Each bar grows up from the scale's floor.
        y: { field: y.field, type: 'quantitative', title: y.title ?? y.field, scale: yScale, ...(o.logY ? { stack: null } : {}) },
        ...(color ? { color: { field: color.field, type: 'nominal', title: color.title ?? color.field }, ...(o.stacked ? {} : { xOffset: { field: color.field } }) } : {}),
      },
    },
  ];
  if (o.errorLow && o.errorHigh) {
    layers.push({
      mark: { type: 'rule', color: '#222', strokeWidth: 1.5 },
      encoding: {
        x: xEnc,
        y: { field: o.errorLow, type: 'quantitative', title: y.title ?? y.field, scale: yScale },
        y2: { field: o.errorHigh },
        ...(color ? { xOffset: { field: color.field } } : {}),
      },
    });
  }
  return { ...header(o), data: { values }, layer: layers } as ChartSpec;
}

/** Options for {@link lineChart}. */
export interface LineOptions extends CommonOptions {
  data: ChartData;
  x: string | Field;
  y: string | Field;
  color?: string | Field;
  logX?: boolean;
  logY?: boolean;
  /** Draw a point at each datum (default true). */
  points?: boolean;
  /** Shade a band between two fields (e.g. min and max). */
  bandLow?: string;
  bandHigh?: string;
  /** Treat x as nominal/ordinal instead of quantitative. */
  xType?: 'quantitative' | 'ordinal' | 'temporal';
  /** Labelled reference lines: vertical at `x` (e.g. batch 100) or horizontal at `y` (e.g. a threshold). */
  rules?: readonly { x?: number; y?: number; label: string }[];
}

/** Lines over epochs, batch sizes, time …; one line per `color` value, optional min–max band. */
export function lineChart(o: LineOptions): ChartSpec {
  const x = f(o.x);
  const y = f(o.y);
  const color = o.color ? f(o.color) : undefined;
  const xEnc = {
    field: x.field,
    type: o.xType ?? 'quantitative',
    title: x.title ?? x.field,
    ...(o.logX ? { scale: { type: 'log' } } : {}),
  };
  const colorEnc = color ? { color: { field: color.field, type: 'nominal', title: color.title ?? color.field } } : {};
  const layers: unknown[] = [];
  if (o.bandLow && o.bandHigh) {
    layers.push({
      mark: { type: 'area', opacity: 0.2 },
      encoding: { x: xEnc, y: { field: o.bandLow, type: 'quantitative', ...(o.logY ? { scale: { type: 'log' } } : {}) }, y2: { field: o.bandHigh }, ...colorEnc },
    });
  }
  layers.push({
    mark: { type: 'line', point: o.points ?? true, tooltip: true },
    encoding: {
      x: xEnc,
      y: { field: y.field, type: 'quantitative', title: y.title ?? y.field, ...(o.logY ? { scale: { type: 'log' } } : {}) },
      ...colorEnc,
    },
  });
  const xScale = o.logX ? { scale: { type: 'log' } } : {};
  const yScale = o.logY ? { scale: { type: 'log' } } : {};
  const vertical = (o.rules ?? []).filter((r) => r.x !== undefined);
  const horizontal = (o.rules ?? []).filter((r) => r.y !== undefined);
  if (vertical.length) {
    const enc = { x: { field: 'x', type: o.xType ?? 'quantitative', ...xScale } };
    layers.push({ data: { values: vertical }, mark: { type: 'rule', color: '#777', strokeDash: [4, 3] }, encoding: enc });
    layers.push({ data: { values: vertical }, mark: { type: 'text', color: '#555', align: 'left', baseline: 'top', dx: 3, y: 2, fontSize: 10 }, encoding: { ...enc, text: { field: 'label' } } });
  }
  if (horizontal.length) {
    const enc = { y: { field: 'y', type: 'quantitative', ...yScale } };
    layers.push({ data: { values: horizontal }, mark: { type: 'rule', color: '#777', strokeDash: [2, 2] }, encoding: enc });
    layers.push({ data: { values: horizontal }, mark: { type: 'text', color: '#555', align: 'left', baseline: 'bottom', x: 3, dy: -2, fontSize: 10 }, encoding: { ...enc, text: { field: 'label' } } });
  }
  return { ...header(o), data: { values: toRows(o.data) }, layer: layers } as ChartSpec;
}

/** Options for {@link scatterChart}. */
export interface ScatterOptions extends CommonOptions {
  data: ChartData;
  x: string | Field;
  y: string | Field;
  color?: string | Field;
  /** A text label drawn beside each point. */
  label?: string;
  logX?: boolean;
  logY?: boolean;
  /**
   * Draw the Pareto frontier: points not beaten on both axes. `'min-x-max-y'` (default) suits
   * time (x, lower is better) vs accuracy (y, higher is better). A frontier of one point (it beats
   * every other) is not drawn as a line.
   */
  frontier?: boolean | 'min-x-max-y' | 'min-x-min-y';
}

/**
 * The Pareto frontier of `rows`: for `'min-x-max-y'`, the points for which no other point has
 * both a smaller-or-equal x and a larger y. Sorted by x.
 */
export function paretoFrontier<T extends Row>(rows: readonly T[], x: string, y: string, kind: 'min-x-max-y' | 'min-x-min-y' = 'min-x-max-y'): T[] {
  const sorted = [...rows].sort((a, b) => Number(a[x]) - Number(b[x]) || (kind === 'min-x-max-y' ? Number(b[y]) - Number(a[y]) : Number(a[y]) - Number(b[y])));
  const out: T[] = [];
  let best = kind === 'min-x-max-y' ? -Infinity : Infinity;
  for (const r of sorted) {
    const v = Number(r[y]);
    if (kind === 'min-x-max-y' ? v > best : v < best) {
      out.push(r);
      best = v;
    }
  }
  return out;
}

/** Scatter plot with optional point labels and a Pareto frontier line. */
export function scatterChart(o: ScatterOptions): ChartSpec {
  const x = f(o.x);
  const y = f(o.y);
  const color = o.color ? f(o.color) : undefined;
  const values = toRows(o.data);
  const xEnc = { field: x.field, type: 'quantitative', title: x.title ?? x.field, scale: o.logX ? { type: 'log' } : { zero: false } };
  const yEnc = { field: y.field, type: 'quantitative', title: y.title ?? y.field, scale: o.logY ? { type: 'log' } : { zero: false } };
  const layers: unknown[] = [
    {
      mark: { type: 'point', filled: true, size: 70, tooltip: true },
      encoding: { x: xEnc, y: yEnc, ...(color ? { color: { field: color.field, type: 'nominal', title: color.title ?? color.field } } : {}) },
    },
  ];
  if (o.label) {
    layers.push({ mark: { type: 'text', dx: 6, align: 'left', fontSize: 10 }, encoding: { x: xEnc, y: yEnc, text: { field: o.label } } });
  }
  const frontier = o.frontier ? paretoFrontier(values, x.field, y.field, o.frontier === true ? 'min-x-max-y' : o.frontier) : [];
  // One point that beats all others is the whole frontier: a line through it would have no length.
  if (frontier.length >= 2) {
    layers.push({
      data: { values: frontier },
      mark: { type: 'line', strokeDash: [4, 3], color: '#888' },
      encoding: { x: xEnc, y: yEnc },
    });
  }
  return { ...header(o), data: { values }, layer: layers } as ChartSpec;
}

/** Options for {@link heatmapChart}. */
export interface HeatmapOptions extends CommonOptions {
  data: ChartData;
  /** Column categories (e.g. batch size), in the order given. */
  x: string | Field;
  /** Row categories (e.g. model width), in the order given. */
  y: string | Field;
  /** The cell value (e.g. a speed-up). */
  value: string | Field;
  /** Colour on a log scale (suits ratios). */
  logColor?: boolean;
  /** A diverging colour scheme centred on this value (e.g. 1 for "faster vs slower"). */
  midpoint?: number;
  /** Number format of the cell labels (d3-format, default `.2~f`). */
  format?: string;
}

/** A grid of coloured, labelled cells over two categorical axes (e.g. speed-up over width × batch). */
export function heatmapChart(o: HeatmapOptions): ChartSpec {
  const x = f(o.x);
  const y = f(o.y);
  const v = f(o.value);
  const values = toRows(o.data);
  const order = (field: string) => [...new Set(values.map((r) => r[field]))] as (string | number)[];
  const xEnc = { field: x.field, type: 'ordinal' as const, title: x.title ?? x.field, sort: order(x.field) };
  const yEnc = { field: y.field, type: 'ordinal' as const, title: y.title ?? y.field, sort: order(y.field) };
  const scale: Record<string, unknown> = o.logColor ? { type: 'log' } : {};
  if (o.midpoint !== undefined) Object.assign(scale, { scheme: 'redblue', domainMid: o.midpoint });
  return {
    ...header(o),
    data: { values },
    layer: [
      { mark: { type: 'rect', tooltip: true }, encoding: { x: xEnc, y: yEnc, color: { field: v.field, type: 'quantitative', title: v.title ?? v.field, scale } } },
      { mark: { type: 'text', fontSize: 11 }, encoding: { x: xEnc, y: yEnc, text: { field: v.field, type: 'quantitative', format: o.format ?? '.2~f' } } },
    ],
  } as ChartSpec;
}

/** Options for {@link timelineChart}. */
export interface TimelineOptions {
  title: string;
  subtitle?: string | string[];
  /** Long rows: one per (time, series) value. */
  data: ChartData;
  /** Time axis (quantitative). */
  x: string | Field;
  /** Value axis. */
  y: string | Field;
  /** The field naming each line. */
  series: string;
  /** The field naming the panel a row goes in; one panel per value, stacked vertically (default: one panel). */
  panel?: string;
  /** Vertical rules with labels (e.g. epoch ends), drawn in every panel. */
  marks?: readonly { x: number; label: string }[];
  width?: number;
  /** Height of each panel (default 160). */
  panelHeight?: number;
}

/**
 * A timeline: lines over time in one or more stacked panels (e.g. utilization, memory), each
 * with its own y scale, and labelled vertical rules (e.g. epoch ends) across all panels.
 */
export function timelineChart(o: TimelineOptions): ChartSpec {
  const x = f(o.x);
  const y = f(o.y);
  const values = toRows(o.data);
  const panels = o.panel ? [...new Set(values.map((r) => String(r[o.panel as string])))] : [''];
  const marks = [...(o.marks ?? [])];
  const xEnc = { field: x.field, type: 'quantitative', title: x.title ?? x.field };
  const panelSpec = (panel: string, last: boolean) => ({
    width: o.width ?? 520,
    height: o.panelHeight ?? 160,
    layer: [
      {
        ...(o.panel ? { transform: [{ filter: { field: o.panel, equal: panel } }] } : {}),
        mark: { type: 'line', tooltip: true },
        encoding: {
          x: { ...xEnc, ...(last ? {} : { axis: { title: null } }) },
          y: { field: y.field, type: 'quantitative', title: panel || (y.title ?? y.field) },
          color: { field: o.series, type: 'nominal', title: null, legend: { orient: 'right', labelLimit: 260 } },
        },
      },
      ...(marks.length
        ? [
            { data: { values: marks }, mark: { type: 'rule', color: '#999', strokeDash: [4, 3] }, encoding: { x: { field: 'x', type: 'quantitative' } } },
            { data: { values: marks }, mark: { type: 'text', color: '#666', angle: 0, dx: 3, align: 'left', baseline: 'top', fontSize: 9, y: 2 }, encoding: { x: { field: 'x', type: 'quantitative' }, text: { field: 'label' } } },
          ]
        : []),
    ],
  });
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle, subtitleColor: '#555' } : o.title,
    data: { values },
    vconcat: panels.map((p, i) => panelSpec(p, i === panels.length - 1)),
    resolve: { scale: { color: 'shared' } },
  } as ChartSpec;
}

/** Options for {@link ganttChart}. */
export interface GanttChartOptions extends CommonOptions {
  /** One row per span. */
  data: ChartData;
  /** The field naming the lane (row) a span is drawn in, in order of first appearance. */
  lane: string;
  /** Span start (quantitative). */
  start: string | Field;
  /** Span end (same unit as start). */
  end: string;
  color?: string | Field;
  /** Extra fields shown in the tooltip. */
  tooltip?: readonly string[];
  /** Height of each lane in px (default 34). */
  laneHeight?: number;
}

/**
 * A Gantt chart: every span a bar from `start` to `end` in its lane, so the gaps between spans
 * show as empty space. The x axis zooms and pans (drag, scroll) where the chart is interactive.
 */
export function ganttChart(o: GanttChartOptions): ChartSpec {
  const start = f(o.start);
  const values = toRows(o.data);
  const lanes = [...new Set(values.map((r) => String(r[o.lane])))];
  const color = o.color ? f(o.color) : undefined;
  return {
    ...header(o),
    height: (o.laneHeight ?? 34) * Math.max(1, lanes.length),
    data: { values },
    params: [{ name: 'zoom', select: { type: 'interval', encodings: ['x'] }, bind: 'scales' }],
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: o.lane, type: 'nominal', title: null, sort: lanes },
      x: { field: start.field, type: 'quantitative', title: start.title ?? start.field },
      x2: { field: o.end },
      ...(color ? { color: { field: color.field, type: 'nominal', title: color.title ?? color.field } } : {}),
      tooltip: [...(o.tooltip ?? []), start.field, o.end].map((field) => ({ field })),
    },
  } as ChartSpec;
}

/** Options for {@link rooflineChart}. */
export interface RooflineChartOptions extends CommonOptions {
  /** One row per kernel (or kernel call): its arithmetic intensity and achieved rate. */
  data: ChartData;
  /** Arithmetic intensity, FLOPs per byte (log axis). */
  x: string | Field;
  /** Achieved GFLOP/s (log axis). */
  y: string | Field;
  color?: string | Field;
  /** The compute roof: the measured matmul ceiling, GFLOP/s. */
  peakGflops: number;
  /** The memory slope: measured bandwidth, GB/s (attainable GFLOP/s = GB/s × FLOPs per byte). */
  bandwidthGBs: number;
  /** Labels of the two ceilings (default: their values). */
  peakLabel?: string;
  bandwidthLabel?: string;
}

/**
 * A roofline: log–log, arithmetic intensity (FLOPs per byte) against GFLOP/s, with the measured
 * ceilings drawn as the bandwidth slope (GB/s × intensity) up to the ridge point and the flat
 * compute roof after it; each row of `data` is a point at its achieved rate.
 */
export function rooflineChart(o: RooflineChartOptions): ChartSpec {
  if (!(o.peakGflops > 0) || !(o.bandwidthGBs > 0)) throw new Error(`charts.rooflineChart "${o.title}": the ceilings must be positive (peak ${o.peakGflops} GFLOP/s, bandwidth ${o.bandwidthGBs} GB/s)`);
  const x = f(o.x);
  const y = f(o.y);
  const values = toRows(o.data);
  const ridge = o.peakGflops / o.bandwidthGBs;
  const xs = values.map((r) => Number(r[x.field])).filter((v) => v > 0 && Number.isFinite(v));
  const ys = values.map((r) => Number(r[y.field])).filter((v) => v > 0 && Number.isFinite(v));
  const decade = (v: number, up: boolean) => 10 ** (up ? Math.ceil(Math.log10(v)) : Math.floor(Math.log10(v)));
  const xMin = decade(Math.min(ridge / 100, ...xs), false);
  const xMax = decade(Math.max(ridge * 10, ...xs), true);
  const yMin = decade(Math.min(o.bandwidthGBs * xMin, ...ys), false);
  const yMax = decade(Math.max(o.peakGflops, ...ys) * 1.0001, true);
  const roof = [
    { x: xMin, y: o.bandwidthGBs * xMin, part: 'memory bandwidth' },
    { x: ridge, y: o.peakGflops, part: 'memory bandwidth' },
    { x: ridge, y: o.peakGflops, part: 'compute' },
    { x: xMax, y: o.peakGflops, part: 'compute' },
  ];
  const xScale = { type: 'log', domain: [xMin, xMax] };
  const yScale = { type: 'log', domain: [yMin, yMax] };
  const labels = [
    { x: xMin * 1.3, y: o.bandwidthGBs * xMin * 1.3, text: o.bandwidthLabel ?? `${o.bandwidthGBs.toPrecision(3)} GB/s` },
  ];
  const peakLabel = { x: xMax, y: o.peakGflops, text: o.peakLabel ?? `${o.peakGflops.toPrecision(3)} GFLOP/s` };
  return {
    ...header(o),
    layer: [
      {
        data: { values: roof },
        mark: { type: 'line', color: '#444', strokeWidth: 2 },
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: xScale, title: x.title ?? x.field, axis: { format: '~g' } },
          y: { field: 'y', type: 'quantitative', scale: yScale, title: y.title ?? y.field, axis: { format: '~g' } },
          detail: { field: 'part' },
        },
      },
      {
        data: { values: labels },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dy: -4, fontSize: 10, color: '#444' },
        encoding: { x: { field: 'x', type: 'quantitative', scale: xScale }, y: { field: 'y', type: 'quantitative', scale: yScale }, text: { field: 'text' } },
      },
      {
        data: { values: [peakLabel] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -4, fontSize: 10, color: '#444' },
        encoding: { x: { field: 'x', type: 'quantitative', scale: xScale }, y: { field: 'y', type: 'quantitative', scale: yScale }, text: { field: 'text' } },
      },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 60, opacity: 0.8, tooltip: true },
        encoding: {
          x: { field: x.field, type: 'quantitative', scale: xScale },
          y: { field: y.field, type: 'quantitative', scale: yScale },
          ...(o.color ? { color: { field: f(o.color).field, type: 'nominal', title: f(o.color).title ?? f(o.color).field } } : {}),
        },
      },
    ],
  } as ChartSpec;
}

/** Compile a Vega-Lite spec to Vega; throws naming the chart and vega-lite's message if the spec is invalid. */
export function compile(spec: ChartSpec): vega.Spec {
  try {
    return vl.compile(spec).spec;
  } catch (err) {
    throw new Error(`Vega-Lite could not compile chart "${summaryLine(spec)}": ${(err as Error).message}`, { cause: err });
  }
}

/** Render a Vega-Lite spec to an SVG string with vega in Node (no browser, no canvas). */
export async function toSvg(spec: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The one-line text/plain part of a chart bundle. */
export function summaryLine(spec: ChartSpec): string {
  const t = (spec as { title?: unknown }).title;
  const title = typeof t === 'string' ? t : t && typeof t === 'object' && 'text' in t ? String((t as { text: unknown }).text) : 'chart';
  const values = (spec as { data?: { values?: unknown[] } }).data?.values;
  return `[chart] ${title}${values ? ` (${values.length} data points)` : ''}`;
}

/** Build the three-part bundle for `spec`: Vega-Lite v5 object, SVG and a text summary. */
export async function bundle(spec: ChartSpec): Promise<MimeBundle> {
  return {
    [VEGALITE_MIME]: spec,
    'image/svg+xml': await toSvg(spec),
    'text/plain': summaryLine(spec),
  };
}

/**
 * The output metadata sent with a chart bundle: JupyterLab's Vega renderer reads
 * `embed_options` from it. Charts render as SVG there (sharp at any zoom, and the same renderer as
 * the published site) rather than vega-embed's default canvas.
 */
export const CHART_OUTPUT_METADATA: Readonly<Record<string, unknown>> = Object.freeze({ [VEGALITE_MIME]: { embed_options: { renderer: 'svg' } } });

/**
 * Show a chart in the notebook: one display bundle (Vega-Lite v5 + SVG + text). Outside a
 * notebook it prints the text summary. (Use {@link bundle} to get the bundle itself.)
 */
export async function show(spec: ChartSpec): Promise<void> {
  const b = await bundle(spec);
  if (!sendBundle(b, { ...CHART_OUTPUT_METADATA })) console.log(String(b['text/plain']));
}
