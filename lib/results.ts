/**
 * The one Result record of a measurement (`npm run bench` appends them to
 * `results/local/*.jsonl`), its JSON-lines storage, and its conversion to a polars DataFrame.
 * (The published site shows the executed notebooks; it does not read Result files.)
 */
import * as fs from 'node:fs';
import pl from 'nodejs-polars';
import type { DeviceInfo } from './backends/registry';
import { isQuick } from './env';
import { readJsonLines, writeFileAtomic } from './fsutil';
import type { Timing } from './timing';

/** A parameter value in a Result's `params`. */
export type ParamValue = number | string | boolean | null;

/** One measured figure: what was run, every sample, the summary, and the device that ran it. */
export interface Result {
  experiment: string;
  variant: string;
  params: Record<string, ParamValue>;
  /** What the samples measure, e.g. `seconds`, `samples/s`, `accuracy`. */
  metric: string;
  samples: number[];
  median: number;
  min: number;
  max: number;
  device: DeviceInfo;
  /** `fashion-mnist`, `generated-stand-in`, … */
  dataset: string;
  quick: boolean;
  /** ISO timestamp of the measurement. */
  at: string;
  /** Further measured values (accuracy, peak bytes, GFLOP/s …). */
  extra?: Record<string, ParamValue>;
}

/** Build a Result from a {@link Timing} (seconds) plus what was run. */
export function resultFromTiming(
  what: { experiment: string; variant: string; params?: Record<string, ParamValue>; dataset?: string; extra?: Record<string, ParamValue> },
  timing: Timing,
): Result {
  return {
    experiment: what.experiment,
    variant: what.variant,
    params: what.params ?? {},
    metric: 'seconds',
    samples: timing.samples,
    median: timing.median,
    min: timing.min,
    max: timing.max,
    device: timing.device,
    dataset: what.dataset ?? 'none',
    quick: isQuick(),
    at: new Date().toISOString(),
    extra: what.extra,
  };
}

const REQUIRED: (keyof Result)[] = ['experiment', 'variant', 'metric', 'samples', 'median', 'min', 'max', 'device'];

/** Check that `value` has the Result shape; throws naming `where` and the missing field. */
export function assertResult(value: unknown, where: string): asserts value is Result {
  if (!value || typeof value !== 'object') throw new Error(`${where}: not a JSON object`);
  for (const k of REQUIRED) {
    if (!(k in value)) throw new Error(`${where}: missing field '${k}'`);
  }
  const r = value as Result;
  if (!Array.isArray(r.samples) || r.samples.some((x) => typeof x !== 'number')) {
    throw new Error(`${where}: 'samples' must be an array of numbers`);
  }
}

/** Read a JSON-lines results file. Errors name the file, the line and the problem. */
export function readResults(file: string): Result[] {
  return readJsonLines(file, 'results', (v, where) => {
    assertResult(v, where);
    return v;
  });
}

/** Append results to a JSON-lines file atomically (the old contents plus the new lines, then rename). */
export function appendResults(file: string, results: readonly Result[]): void {
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const sep = old && !old.endsWith('\n') ? '\n' : '';
  writeFileAtomic(file, old + sep + results.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** Write results as one JSON array file atomically (what the site and committed GPU runs use). */
export function writeResultsJson(file: string, results: readonly Result[]): void {
  writeFileAtomic(file, JSON.stringify(results, null, 2) + '\n');
}

/**
 * Flatten Results into a polars DataFrame: one row per Result with `experiment`, `variant`,
 * `metric`, `median`, `min`, `max`, `n`, `backend`, `device`, `software`, `dataset`, plus each
 * `params.*` and `extra.*` key as its own column.
 */
export function resultsToDataFrame(results: readonly Result[]): pl.DataFrame {
  const rows = results.map((r) => {
    const row: Record<string, ParamValue> = {
      experiment: r.experiment,
      variant: r.variant,
      metric: r.metric,
      median: r.median,
      min: r.min,
      max: r.max,
      n: r.samples.length,
      backend: String(r.device.backend),
      device: r.device.name,
      software: r.device.software,
      dataset: r.dataset,
    };
    for (const [k, v] of Object.entries(r.params)) row[k] = v;
    for (const [k, v] of Object.entries(r.extra ?? {})) row[k] = v;
    return row;
  });
  return pl.DataFrame(rows);
}
