/**
 * Byte units, so a conversion reads as what it is: `bytes / MiB`, never a written-out `2 ** 20`.
 * (A value divided by `MiB` is labelled "MiB", never "MB": MB is 10^6 bytes.)
 */

/** Bytes per mebibyte (2^20). */
export const MiB = 2 ** 20;

/** Bytes per gibibyte (2^30). */
export const GiB = 2 ** 30;
