/**
 * nvidia-smi's CSV output parsed as it really is printed (units, repeated headers, `[N/A]`, a line
 * cut off mid-write), and the GPU sample the sampler records.
 */
import { readFileOrThrow } from '../fsutil';

// ---------------------------------------------------------------------------------------------
// nvidia-smi CSV
// ---------------------------------------------------------------------------------------------

/** One data line of nvidia-smi CSV output. */
export interface NvidiaSmiRecord {
  /** 1-based line number in the parsed text. */
  line: number;
  /** Every field as printed (trimmed), keyed by the field name without its unit. */
  raw: Record<string, string>;
  /**
   * Numeric fields with their units stripped (`"22 %"` → 22, `"841 MiB"` → 841). `null` means the
   * driver did not report a value (`[N/A]`, `[Not Supported]`, …): see {@link missing}.
   */
  values: Record<string, number | null>;
  /** Field → what nvidia-smi printed instead of a value (e.g. `[N/A]`). */
  missing: Record<string, string>;
  /** The `timestamp` field as epoch milliseconds (nvidia-smi prints local time), or null. */
  timestampMs: number | null;
}

/** A line that could not be read as data, with the reason. */
export interface NvidiaSmiLineError {
  line: number;
  text: string;
  reason: string;
}

/** The result of {@link parseNvidiaSmiCsv}. */
export interface NvidiaSmiCsv {
  /** Where the text came from (file name or command), used in error messages. */
  source: string;
  /** Field names in column order, without units (`utilization.gpu`). */
  fields: string[];
  /** Field → unit from the header (`utilization.gpu` → `%`). */
  units: Record<string, string>;
  records: NvidiaSmiRecord[];
  /** Lines that were not data: driver messages, wrong field counts, cut-off lines, non-numbers. */
  errors: NvidiaSmiLineError[];
}

/** Options for {@link parseNvidiaSmiCsv} and {@link NvidiaSmiCsvStream}. */
export interface NvidiaSmiParseOptions {
  /** Named in errors; default `'nvidia-smi output'`. */
  source?: string;
  /** The field list, for output printed with `--format=csv,noheader`. */
  fields?: readonly string[];
  /** Throw on the first bad line (the error names the source and line) instead of collecting it. */
  strict?: boolean;
}

const HEADER_CELL = /^[a-z][a-z0-9_.]*(?:\s*\[[^\]]*\])?$/i;
const KNOWN_PLAIN_FIELDS = new Set(['timestamp', 'index', 'name', 'uuid', 'serial', 'pstate', 'count', 'driver_version', 'compute_cap']);
const NUMERIC_FIELD = /^(index|count|temperature\.|utilization\.|memory\.|power\.|clocks\.|fan\.|pcie\.link\.|encoder\.stats\.|enforced\.power)/;
const NUMBER_WITH_UNIT = /^(-?\d+(?:\.\d+)?)(?:\s*(%|[KMGT]?iB|[KMGT]?B|W|[KMG]?Hz|C))?$/;
const NOT_A_VALUE = /^\[[^\]]*\]$|^N\/A$/i;
const TIMESTAMP = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/;

/** Parse nvidia-smi's `timestamp` field (`2023/06/22 18:56:56.252`, local time) to epoch ms, or null. */
export function parseNvidiaSmiTimestamp(text: string): number | null {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, ms] = m;
  return new Date(+y, +mo - 1, +d, +h, +mi, +s, ms ? +ms.padEnd(3, '0') : 0).getTime();
}

function splitHeaderCell(cell: string): { field: string; unit: string | null } {
  const m = /^(.*?)\s*\[([^\]]*)\]$/.exec(cell);
  return m ? { field: m[1].trim(), unit: m[2] } : { field: cell.trim(), unit: null };
}

function looksLikeHeader(cells: string[]): boolean {
  return cells.length > 0 && cells.every((c) => HEADER_CELL.test(c)) &&
    cells.some((c) => c.includes('.') || KNOWN_PLAIN_FIELDS.has(splitHeaderCell(c).field));
}

/**
 * An incremental nvidia-smi CSV reader: feed it chunks of stdout as they arrive (a
 * `--loop-ms` stream), get back the complete records. A line cut off mid-write stays pending
 * until {@link end}, which reports it as an error.
 */
export class NvidiaSmiCsvStream {
  /** Field names (no units) from the header or the `fields` option. */
  fields: string[];
  /** Field → unit from the header. */
  units: Record<string, string> = {};
  /** Every line that was not data, with the reason. */
  readonly errors: NvidiaSmiLineError[] = [];
  private pending = '';
  private lineNo = 0;
  private readonly source: string;
  private readonly strict: boolean;

  constructor(options: NvidiaSmiParseOptions = {}) {
    this.source = options.source ?? 'nvidia-smi output';
    this.strict = options.strict ?? false;
    this.fields = options.fields ? options.fields.map((f) => splitHeaderCell(f).field) : [];
  }

  /** Add a chunk of text; returns the records completed by it. */
  push(chunk: string): NvidiaSmiRecord[] {
    this.pending += chunk;
    const out: NvidiaSmiRecord[] = [];
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      const rec = this.readLine(line);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * The text has ended. A last line without a newline is parsed when it is complete; when it
   * has too few fields it was cut off mid-write and is reported as an error.
   */
  end(): NvidiaSmiRecord[] {
    const rest = this.pending;
    this.pending = '';
    if (!rest.trim()) return [];
    const rec = this.readLine(rest);
    return rec ? [rec] : [];
  }

  private fail(line: number, text: string, reason: string): null {
    if (this.strict) throw new Error(`${this.source}:${line}: ${reason}: ${JSON.stringify(text)}`);
    this.errors.push({ line, text, reason });
    return null;
  }

  private readLine(text: string): NvidiaSmiRecord | null {
    const line = ++this.lineNo;
    if (!text.trim()) return null;
    const cells = text.split(',').map((c) => c.trim());
    if (looksLikeHeader(cells)) {
      const parsed = cells.map(splitHeaderCell);
      const names = parsed.map((p) => p.field);
      if (this.fields.length && names.join(',') !== this.fields.join(',')) {
        // A different query in the same stream: adopt the new header.
        this.units = {};
      }
      this.fields = names;
      for (const p of parsed) if (p.unit) this.units[p.field] = p.unit;
      return null;
    }
    if (!this.fields.length) return this.fail(line, text, 'data line before any header (pass `fields` for --format=csv,noheader)');
    if (cells.length !== this.fields.length) {
      const reason = cells.length < this.fields.length && cells.length > 1
        ? `expected ${this.fields.length} fields, got ${cells.length} (line cut off?)`
        : cells.length === 1
          ? 'not a CSV data line (a message from nvidia-smi or the driver?)'
          : `expected ${this.fields.length} fields, got ${cells.length}`;
      return this.fail(line, text, reason);
    }
    const rec: NvidiaSmiRecord = { line, raw: {}, values: {}, missing: {}, timestampMs: null };
    for (let i = 0; i < cells.length; i++) {
      const field = this.fields[i];
      const cell = cells[i];
      rec.raw[field] = cell;
      if (field === 'timestamp') {
        rec.timestampMs = parseNvidiaSmiTimestamp(cell);
        if (rec.timestampMs === null) return this.fail(line, text, `field 'timestamp' is not a timestamp: ${JSON.stringify(cell)}`);
        continue;
      }
      const numericExpected = field in this.units || NUMERIC_FIELD.test(field);
      if (cell === '' || NOT_A_VALUE.test(cell)) {
        if (numericExpected) rec.values[field] = null;
        rec.missing[field] = cell === '' ? '(empty)' : cell;
        continue;
      }
      const m = NUMBER_WITH_UNIT.exec(cell);
      if (m) {
        rec.values[field] = Number(m[1]);
      } else if (numericExpected) {
        return this.fail(line, text, `field '${field}' is not a number: ${JSON.stringify(cell)}`);
      }
    }
    return rec;
  }
}

/**
 * Parse the CSV that `nvidia-smi --query-gpu=... --format=csv` prints: the header names the
 * fields (units in brackets), values carry units (`22 %`, `841 MiB`, `71.2 W`), values the
 * driver cannot give are `[N/A]`/`[Not Supported]` (→ `null`, with the text kept in
 * `missing`), a shell loop repeats the header, and a killed `--loop-ms` may leave a cut-off last
 * line. Bad lines are collected in `errors` (or thrown with `strict`), naming the source and line.
 */
export function parseNvidiaSmiCsv(text: string, options: NvidiaSmiParseOptions = {}): NvidiaSmiCsv {
  const s = new NvidiaSmiCsvStream(options);
  const records = [...s.push(text), ...s.end()];
  return { source: options.source ?? 'nvidia-smi output', fields: s.fields, units: s.units, records, errors: s.errors };
}

/** Read and parse an nvidia-smi CSV file; errors name the file. */
export function readNvidiaSmiCsv(file: string, options: Omit<NvidiaSmiParseOptions, 'source'> = {}): NvidiaSmiCsv {
  return parseNvidiaSmiCsv(readFileOrThrow(file, 'nvidia-smi CSV', 'utf8'), { ...options, source: file });
}

/** The fields the sampler asks nvidia-smi for. */
export const GPU_QUERY_FIELDS: readonly string[] = [
  'timestamp', 'index', 'name', 'utilization.gpu', 'utilization.memory',
  'memory.used', 'memory.total', 'temperature.gpu', 'power.draw',
];

/** One GPU reading from nvidia-smi, on the sampler's clock. */
export interface GpuSample {
  /** Milliseconds since the sampler started (from nvidia-smi's own timestamp when present). */
  tMs: number;
  /** GPU index, or null when the query had no `index`. */
  gpu: number | null;
  name: string | null;
  utilizationPct: number | null;
  memoryUtilizationPct: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  temperatureC: number | null;
  powerW: number | null;
  /** Field → what nvidia-smi printed instead of a value. */
  missing: Record<string, string>;
}

/** Map a parsed record to a {@link GpuSample}; `tMs` comes from `toMs(record)`. */
export function gpuSampleFromRecord(rec: NvidiaSmiRecord, tMs: number): GpuSample {
  const v = (k: string) => (k in rec.values ? rec.values[k] : null);
  return {
    tMs,
    gpu: v('index'),
    name: rec.raw.name ?? null,
    utilizationPct: v('utilization.gpu'),
    memoryUtilizationPct: v('utilization.memory'),
    memoryUsedMiB: v('memory.used'),
    memoryTotalMiB: v('memory.total'),
    temperatureC: v('temperature.gpu'),
    powerW: v('power.draw'),
    missing: { ...rec.missing },
  };
}
