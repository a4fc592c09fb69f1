/**
 * Backend discovery, ranking and selection, and a description of the device that ran.
 *
 * The notebooks' version of the article's "Enabling CUDA" step:
 *
 * ```ts
 * const dev = await device.useBackend();   // fastest available, or GPULAB_BACKEND
 * dev.backend; dev.name;                   // e.g. 'wasm', 'Intel(R) Xeon(R) ...'
 * ```
 *
 * Backends, best first: native `tensorflow` on a GPU (tfjs-node-gpu), hardware `webgpu` (Dawn in
 * Node), native `tensorflow` on the CPU (tfjs-node built against pip's TensorFlow by
 * `npm run setup:tensorflow`), `wasm`, software `webgpu` (lavapipe, SwiftShader), `cpu` (pure JS).
 * Each backend registers its provider with `./registry` when its module is imported (`lib/index.ts`
 * and `lib/backends/index.ts` import them all); this module ranks what registered and imports
 * none of them. The pure-JS `cpu` backend is registered here, as the last resort.
 */
import * as tf from '@tensorflow/tfjs';
import { forcedBackend } from '../env';
import {
  BACKEND_NAMES, cpuProbe, currentDevice, describeDevice, deviceInfoFrom, probingMayStart, registerBackendProvider, registeredProviders,
  registrationCount, runActivateHooks, setCurrentDevice, unavailable,
  type BackendName, type BackendProbe, type DeviceInfo,
} from './registry';

// The shapes and the current-device description live in the registry; they are part of `device.*`.
export {
  BACKEND_NAMES, cpuModel, describeDevice,
  type AdapterInfo, type BackendName, type BackendProbe, type BackendProvider, type DeviceInfo, type NativeDetails,
} from './registry';

// The pure-JS `cpu` backend ships inside @tensorflow/tfjs, so it is always there: the last resort.
registerBackendProvider({
  name: 'cpu',
  probe: async () => cpuProbe('cpu', 10, '@tensorflow/tfjs-backend-cpu', 'plain JavaScript on the CPU'),
});

let probeCache: Promise<BackendProbe[]> | null = null;
let probedAt = -1;

/**
 * Probe every known backend (once; cached) and return them ranked, fastest first.
 * Unavailable backends come last, each with the reason.
 */
export async function listBackends(options: { refresh?: boolean } = {}): Promise<BackendProbe[]> {
  if (!probeCache || options.refresh || probedAt !== registrationCount()) {
    probedAt = registrationCount();
    probeCache = (async () => {
      await probingMayStart();
      const out: BackendProbe[] = [];
      for (const p of registeredProviders()) {
        try {
          out.push(await p.probe());
        } catch (err) {
          out.push(unavailable(p.name, `probe failed: ${(err as Error).message}`));
        }
      }
      return out.sort((a, b) => Number(b.available) - Number(a.available) || b.rank - a.rank);
    })();
  }
  return probeCache;
}

/**
 * Activate `name` in tfjs and check that it really took: `setBackend` must return true
 * and `getBackend()` must name it. Throws with the reason otherwise.
 */
export async function activateBackend(name: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (err) {
    throw new Error(`tf.setBackend('${name}') threw: ${(err as Error).message}`, { cause: err });
  }
  // The cpu backend greets Node users on its first tensor with a banner suggesting tfjs-node.
  // Our device banner already says which backend runs and why, so that greeting is skipped.
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (name === 'cpu' && backend.firstUse === true) backend.firstUse = false;
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`tf.setBackend('${name}') returned ${ok}; tf.getBackend() is '${tf.getBackend()}'`);
  }
  runActivateHooks(name);
}

/**
 * Select a backend and make it current.
 *
 * @param request a backend name, or `'auto'`/undefined for `GPULAB_BACKEND` if set, else the
 *   fastest available. An unavailable request falls back to the fastest available one and the
 *   returned {@link DeviceInfo.fallbackNote} (also printed) says what was missing.
 */
export async function useBackend(request?: BackendName | 'auto' | string): Promise<DeviceInfo> {
  const wanted = request && request !== 'auto' ? request.toLowerCase() : forcedBackend();
  const probes = await listBackends();
  const available = probes.filter((p) => p.available);
  let note: string | undefined;
  let chosen: BackendProbe | undefined;
  if (wanted) {
    const p = probes.find((x) => x.name === wanted);
    if (!p) {
      note = (BACKEND_NAMES as readonly string[]).includes(wanted)
        ? `backend '${wanted}' has no provider registered (import gpulab or lib/backends, which register them all)`
        : `backend '${wanted}' is unknown (known: ${BACKEND_NAMES.join(', ')})`;
    } else if (!p.available) {
      note = `backend '${wanted}' is unavailable: ${p.reason ?? 'no reason given'}`;
    } else {
      chosen = p;
    }
  }
  const candidates = chosen ? [chosen, ...available.filter((p) => p !== chosen)] : available;
  const failures: string[] = [];
  for (const p of candidates) {
    try {
      await activateBackend(p.name);
      if (p !== chosen && note) note = `${note}. Running on '${p.name}' instead.`;
      if (failures.length) note = [note, ...failures].filter(Boolean).join('; ');
      const info = deviceInfoFrom(p, note);
      setCurrentDevice(info);
      if (note) console.warn(`[gpulab] ${note}`);
      return info;
    } catch (err) {
      failures.push(`'${p.name}' failed to activate: ${(err as Error).message}`);
    }
  }
  throw new Error(`No tfjs backend could be activated. ${[note, ...failures].filter(Boolean).join('; ')}`);
}

/** A short label for charts and logs: "wasm · Intel Xeon … (2 cores)" or "webgpu · NVIDIA H100 (software)". */
export function deviceLabel(info: DeviceInfo = describeDevice()): string {
  const what = info.accelerator || info.adapter ? info.name : `${info.name} (${info.cores} cores)`;
  return `${info.backend} · ${what}${info.software ? ' [software GPU]' : ''}`;
}

/**
 * Run `fn` with `name` as the current backend, then restore the previous one.
 * Used to time the same work on every backend.
 */
export async function withBackend<T>(name: BackendName, fn: (info: DeviceInfo) => Promise<T>): Promise<T> {
  const previous = currentDevice();
  const info = await useBackend(name);
  if (info.backend !== name) throw new Error(`withBackend('${name}'): ${info.fallbackNote ?? 'could not activate'}`);
  try {
    return await fn(info);
  } finally {
    if (previous) await useBackend(String(previous.backend));
  }
}
