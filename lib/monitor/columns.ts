/** Column helpers shared by the monitor's DataFrames (internal: not re-exported by the index). */
import pl from 'nodejs-polars';

/** A Float64 column. */
export const f64 = (name: string, xs: (number | null)[]) => pl.Series(name, xs, pl.Float64);
/** A Utf8 column. */
export const str = (name: string, xs: (string | null)[]) => pl.Series(name, xs, pl.Utf8);
/** A Bool column. */
export const bool = (name: string, xs: boolean[]) => pl.Series(name, xs, pl.Bool);
