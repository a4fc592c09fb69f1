/** Column helpers shared by the monitor's DataFrames and timings (internal: not re-exported by the index). */
import pl from 'nodejs-polars';

/** Bytes per MiB. */
export const MB = 1024 * 1024;
/** A Float64 column. */
export const f64 = (name: string, xs: (number | null)[]) => pl.Series(name, xs, pl.Float64);
/** A Utf8 column. */
export const str = (name: string, xs: (string | null)[]) => pl.Series(name, xs, pl.Utf8);
/** A Bool column. */
export const bool = (name: string, xs: boolean[]) => pl.Series(name, xs, pl.Bool);
/** Median of a list; NaN when empty. */
export function medianOf(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
