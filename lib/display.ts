/**
 * The display channel: sends a MIME bundle to the notebook as one display_data output when this
 * code runs inside a tslab kernel. The bottom of the house: `charts` and `nb` both send through it.
 */

/** The MIME type JupyterLab 4 renders Vega-Lite 5 specs under. */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

/** A display bundle: MIME type → content. */
export type MimeBundle = Record<string, unknown>;

type WriteDisplayData = (data: { data: MimeBundle; metadata: Record<string, unknown>; transient: Record<string, unknown> }, update: boolean) => void;

/**
 * The display writer of the tslab kernel this code runs in, or null outside a kernel. It is
 * looked up among the modules already loaded (a kernel has loaded its `tslab/dist/jupyter.js`),
 * so it is found even when the kernel is a different tslab install (global, or another checkout)
 * than the one this library would import; outside a kernel nothing is loaded to find out.
 */
function kernelDisplayWriter(): WriteDisplayData | null {
  for (const [key, mod] of Object.entries(require.cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(key)) continue;
    const w = (mod?.exports as { lastWriteDisplayData?: WriteDisplayData | null } | undefined)?.lastWriteDisplayData;
    if (typeof w === 'function') return w;
  }
  return null;
}

/**
 * Send a multi-MIME bundle to the notebook as ONE display_data message, through tslab's
 * internal `lastWriteDisplayData` (the public `display.*` API sends one MIME type per output),
 * with optional output `metadata` (per MIME type). Returns false when not running inside a tslab kernel.
 */
export function sendBundle(data: MimeBundle, metadata: Record<string, unknown> = {}): boolean {
  const write = kernelDisplayWriter();
  if (!write) return false;
  write({ data, metadata, transient: {} }, false);
  return true;
}
