/** A sampled run as polars DataFrames, tables and a timeline chart. */
import pl from 'nodejs-polars';
import { timelineChart, type ChartSpec, type Row } from '../charts';
import { type GpuSample } from './nvidia-smi';
import { type MonitorRun, type TrainingEvent } from './sampler';
import { f64, str, bool } from './columns';
import { MiB } from '../units';

// ---------------------------------------------------------------------------------------------
// DataFrames
// ---------------------------------------------------------------------------------------------

function epochBatchAt(events: readonly TrainingEvent[], tMs: number): { epoch: number | null; batch: number | null } {
  let epoch: number | null = null;
  let batch: number | null = null;
  for (const e of events) {
    if (e.tMs > tMs) break;
    if (e.kind === 'epoch-begin') {
      epoch = e.epoch;
      batch = null;
    } else if (e.kind === 'batch-end') {
      if (e.epoch !== null) epoch = e.epoch;
      batch = e.batch;
    } else if (e.kind === 'epoch-end') {
      epoch = e.epoch;
    }
  }
  return { epoch, batch };
}

function gpuAt(gpu: readonly GpuSample[], tMs: number, maxAgeMs: number, index: number): GpuSample | null {
  let best: GpuSample | null = null;
  for (const g of gpu) {
    if ((g.gpu ?? 0) !== index) continue;
    if (g.tMs <= tMs && tMs - g.tMs <= maxAgeMs && (!best || g.tMs > best.tMs)) best = g;
  }
  return best;
}


/**
 * The run as one polars DataFrame, one row per process sample, lined up with training events and
 * the GPU:
 *
 * `t_s, trigger, lag_ms, epoch, batch, cpu_pct, rss_mib, heap_used_mib, heap_total_mib, external_mib,
 * array_buffers_mib, tf_tensors, tf_mib, tf_gpu_mib, tf_memory_unreliable, gpu_util_pct,
 * gpu_mem_util_pct, gpu_mem_used_mib, gpu_mem_total_mib, gpu_temp_c, gpu_power_w, gpu_note`.
 *
 * `epoch`/`batch` are the epoch and the last finished batch at that moment (null before the first
 * event). GPU columns come from the latest nvidia-smi reading of GPU `gpuIndex` (default 0) no
 * older than 3 intervals; where there is none they are null and `gpu_note` says why (nvidia-smi
 * missing, no reading yet, or the `[N/A]` the driver printed). Never zeros.
 */
export function toDataFrame(run: MonitorRun, options: { gpuIndex?: number } = {}): pl.DataFrame {
  const idx = options.gpuIndex ?? 0;
  const gpuSource = run.sources.find((s) => s.source === 'nvidia-smi');
  const gpuMissing = !run.gpu.length ? (gpuSource?.reason ?? 'no nvidia-smi samples') : null;
  const maxAge = Math.max(3 * run.intervalMs, 1000);
  const rows = run.samples.map((s) => {
    const g = gpuMissing ? null : gpuAt(run.gpu, s.tMs, maxAge, idx);
    const note = gpuMissing
      ?? (g === null
        ? `no nvidia-smi reading of GPU ${idx} within ${maxAge} ms`
        : Object.keys(g.missing).length
          ? Object.entries(g.missing).map(([k, v]) => `${k}: ${v}`).join('; ')
          : null);
    return { s, g, note, ...epochBatchAt(run.events, s.tMs) };
  });
  const col = <T>(fn: (r: (typeof rows)[number]) => T) => rows.map(fn);
  return pl.DataFrame([
    f64('t_s', col((r) => r.s.tMs / 1000)),
    str('trigger', col((r) => r.s.trigger)),
    f64('lag_ms', col((r) => r.s.lagMs)),
    f64('epoch', col((r) => r.epoch)),
    f64('batch', col((r) => r.batch)),
    f64('cpu_pct', col((r) => r.s.cpuPct)),
    f64('rss_mib', col((r) => r.s.rssBytes / MiB)),
    f64('heap_used_mib', col((r) => r.s.heapUsedBytes / MiB)),
    f64('heap_total_mib', col((r) => r.s.heapTotalBytes / MiB)),
    f64('external_mib', col((r) => r.s.externalBytes / MiB)),
    f64('array_buffers_mib', col((r) => r.s.arrayBuffersBytes / MiB)),
    f64('tf_tensors', col((r) => r.s.tfNumTensors)),
    f64('tf_mib', col((r) => r.s.tfNumBytes / MiB)),
    f64('tf_gpu_mib', col((r) => (r.s.tfNumBytesInGPU === null ? null : r.s.tfNumBytesInGPU / MiB))),
    bool('tf_memory_unreliable', col((r) => r.s.tfUnreliable)),
    f64('gpu_util_pct', col((r) => r.g?.utilizationPct ?? null)),
    f64('gpu_mem_util_pct', col((r) => r.g?.memoryUtilizationPct ?? null)),
    f64('gpu_mem_used_mib', col((r) => r.g?.memoryUsedMiB ?? null)),
    f64('gpu_mem_total_mib', col((r) => r.g?.memoryTotalMiB ?? null)),
    f64('gpu_temp_c', col((r) => r.g?.temperatureC ?? null)),
    f64('gpu_power_w', col((r) => r.g?.powerW ?? null)),
    str('gpu_note', col((r) => r.note)),
  ]);
}

/** The nvidia-smi samples as a DataFrame (`t_s, gpu, name, util_pct, mem_util_pct, mem_used_mib, mem_total_mib, temp_c, power_w, missing`); empty when there were none. */
export function gpuToDataFrame(run: MonitorRun): pl.DataFrame {
  const g = run.gpu;
  return pl.DataFrame([
    f64('t_s', g.map((x) => x.tMs / 1000)),
    f64('gpu', g.map((x) => x.gpu)),
    str('name', g.map((x) => x.name)),
    f64('util_pct', g.map((x) => x.utilizationPct)),
    f64('mem_util_pct', g.map((x) => x.memoryUtilizationPct)),
    f64('mem_used_mib', g.map((x) => x.memoryUsedMiB)),
    f64('mem_total_mib', g.map((x) => x.memoryTotalMiB)),
    f64('temp_c', g.map((x) => x.temperatureC)),
    f64('power_w', g.map((x) => x.powerW)),
    str('missing', g.map((x) => (Object.keys(x.missing).length ? Object.entries(x.missing).map(([k, v]) => `${k}: ${v}`).join('; ') : null))),
  ]);
}

/** The training events as a DataFrame: `t_s, kind, epoch, batch, label`, plus one column per log key (loss, acc …). */
export function eventsToDataFrame(run: MonitorRun): pl.DataFrame {
  const ev = run.events;
  const keys = [...new Set(ev.flatMap((e) => Object.keys(e.logs)))].sort();
  return pl.DataFrame([
    f64('t_s', ev.map((e) => e.tMs / 1000)),
    str('kind', ev.map((e) => e.kind)),
    f64('epoch', ev.map((e) => e.epoch)),
    f64('batch', ev.map((e) => e.batch)),
    str('label', ev.map((e) => e.label)),
    ...keys.map((k) => f64(k, ev.map((e) => (k in e.logs ? e.logs[k] : null)))),
  ]);
}

/** The run's sources as table rows: what was measured, what was missing or unreliable, and why. */
export function sourcesTable(run: MonitorRun): Row[] {
  return run.sources.map((s) => ({ source: s.source, status: s.status, reason: s.reason ?? '' }));
}

/** One line of a timeline: which value, its label, and which panel it goes in. */
export interface TimelineSeries {
  /** A column of {@link toDataFrame} (or a GpuSample field via `gpu:`, e.g. `gpu:utilizationPct`). */
  column: string;
  label: string;
  panel: string;
}

/** The default timeline: utilization (process CPU, GPU) and memory (RSS, tf bytes, GPU memory). */
export const DEFAULT_TIMELINE: readonly TimelineSeries[] = [
  { column: 'cpu_pct', label: 'process CPU (% of one core)', panel: 'utilization (%)' },
  { column: 'gpu:utilizationPct', label: 'GPU utilization (nvidia-smi)', panel: 'utilization (%)' },
  { column: 'rss_mib', label: 'process RSS', panel: 'memory (MiB)' },
  { column: 'heap_used_mib', label: 'JS heap used', panel: 'memory (MiB)' },
  { column: 'tf_mib', label: 'tf.memory() numBytes', panel: 'memory (MiB)' },
  { column: 'gpu:memoryUsedMiB', label: 'GPU memory used (nvidia-smi, MiB)', panel: 'memory (MiB)' },
];

/**
 * Long rows for a timeline chart (`t_s, series, panel, value`) and the epoch marks. A series with
 * no values at all (e.g. GPU columns without nvidia-smi) is left out and listed in `omitted` with
 * the reason, so a chart can say so instead of drawing zeros.
 */
export function timelineRows(run: MonitorRun, series: readonly TimelineSeries[] = DEFAULT_TIMELINE): {
  rows: Row[];
  marks: { x: number; label: string }[];
  omitted: { label: string; reason: string }[];
} {
  const df = toDataFrame(run);
  const records = df.toRecords() as Record<string, unknown>[];
  const rows: Row[] = [];
  const omitted: { label: string; reason: string }[] = [];
  const gpuReason = run.sources.find((s) => s.source === 'nvidia-smi')?.reason ?? 'no nvidia-smi samples';
  for (const s of series) {
    const before = rows.length;
    if (s.column.startsWith('gpu:')) {
      const key = s.column.slice(4) as keyof GpuSample;
      for (const g of run.gpu) {
        const v = g[key];
        if (typeof v === 'number' && (g.gpu ?? 0) === 0) rows.push({ t_s: g.tMs / 1000, series: s.label, panel: s.panel, value: v });
      }
      if (rows.length === before) omitted.push({ label: s.label, reason: run.gpu.length ? 'nvidia-smi reported no value for it' : gpuReason });
    } else {
      for (const r of records) {
        const v = r[s.column];
        if (typeof v === 'number' && Number.isFinite(v)) rows.push({ t_s: Number(r.t_s), series: s.label, panel: s.panel, value: v });
      }
      if (rows.length === before) omitted.push({ label: s.label, reason: `no values in column '${s.column}'` });
    }
  }
  const marks = run.events
    .filter((e) => e.kind === 'epoch-end' || e.kind === 'mark')
    .map((e) => ({ x: e.tMs / 1000, label: e.kind === 'mark' ? (e.label ?? 'mark') : `epoch ${(e.epoch ?? 0) + 1}` }));
  return { rows, marks, omitted };
}

/**
 * A timeline chart of a run: one panel per `panel` (utilization, memory), one line per series,
 * a rule at every epoch end. Series without any values are named in the subtitle as missing.
 */
export function timelineSpec(run: MonitorRun, options: { title: string; subtitle?: string | string[]; series?: readonly TimelineSeries[]; width?: number; panelHeight?: number }): ChartSpec {
  const { rows, marks, omitted } = timelineRows(run, options.series ?? DEFAULT_TIMELINE);
  const sub = options.subtitle === undefined ? [] : Array.isArray(options.subtitle) ? options.subtitle : [options.subtitle];
  const byReason = new Map<string, string[]>();
  for (const o of omitted) byReason.set(o.reason, [...(byReason.get(o.reason) ?? []), o.label]);
  const missing = [...byReason.entries()].map(([reason, labels]) => `missing: ${labels.join(', ')}: ${reason}`);
  return timelineChart({
    title: options.title,
    subtitle: [...sub, ...missing],
    data: rows,
    x: { field: 't_s', title: 'seconds since the sampler started' },
    y: { field: 'value', title: '' },
    series: 'series',
    panel: 'panel',
    marks,
    width: options.width,
    panelHeight: options.panelHeight,
  });
}
