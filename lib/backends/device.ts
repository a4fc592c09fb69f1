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
 * Other modules add providers with {@link registerBackendProvider}.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { forcedBackend } from '../env';
import { nvidiaGpuName } from '../monitor/tools';

/** The backends gpulab knows how to run. */
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** All backend names, in the order the collection presents them. */
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

/** A GPU adapter as reported by the backend (WebGPU adapter info, or the CUDA device). */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Driver version where the backend can tell. */
  driver?: string;
}

/** What probing one backend found on this machine. */
export interface BackendProbe {
  name: BackendName;
  /** True when the backend can be selected on this machine. */
  available: boolean;
  /** True when it computes on a GPU or other accelerator (a software GPU counts as not). */
  accelerator: boolean;
  /** True for software GPU adapters (lavapipe, llvmpipe, SwiftShader). */
  software: boolean;
  /** Human-readable device name: GPU model or CPU model. */
  deviceName: string;
  /** GPU adapter details, or null for CPU backends. */
  adapter: AdapterInfo | null;
  /** Higher is faster; used for automatic selection. */
  rank: number;
  /** Why it is unavailable (names the missing package or library), or a note when available. */
  reason?: string;
  /** The npm package providing it and its version, when known. */
  package?: { name: string; version: string };
  /** For the native `tensorflow` backend: what TensorFlow loaded. */
  native?: NativeDetails;
}

/** What the native `tensorflow` backend runs: TensorFlow's version, its library, CPU or GPU. */
export interface NativeDetails {
  /** `TF_Version()` of the loaded library, e.g. '2.21.0'. */
  tfVersion: string;
  /** Absolute path of the TensorFlow library the process mapped (null where it cannot be read). */
  library: string | null;
  /** Where TensorFlow places ops, from its device list. */
  device: 'CPU' | 'GPU';
}

/** Something that can make a backend available. */
export interface BackendProvider {
  name: BackendName;
  /** Load packages, create adapters, register the backend with tfjs. Must not throw. */
  probe(): Promise<BackendProbe>;
}

/** A description of the device a result was measured on; attached to every Result. */
export interface DeviceInfo {
  backend: BackendName | string;
  /** GPU model when an accelerator ran, else the CPU model. */
  name: string;
  adapter: AdapterInfo | null;
  software: boolean;
  accelerator: boolean;
  /** Logical CPU cores of the machine. */
  cores: number;
  cpuModel: string;
  /** Total machine memory in GiB. */
  memoryGiB: number;
  platform: string;
  versions: { tfjs: string; node: string; tslab: string | null; backendPackage: string | null };
  /** Set when the requested backend could not run and another ran instead. */
  fallbackNote?: string;
  /** Set for the native `tensorflow` backend: TensorFlow version, library, CPU vs GPU. */
  native?: NativeDetails;
}

const providers = new Map<BackendName, BackendProvider>();
const activateHooks: { name: string; hook: () => void }[] = [];
let probeCache: Promise<BackendProbe[]> | null = null;
let current: DeviceInfo | null = null;

/** The CPU model string of this machine (first core), trimmed. */
export function cpuModel(): string {
  const cpus = os.cpus();
  return (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
}

function versionOf(pkg: string): string | null {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

function cpuProbe(name: BackendName, rank: number, pkg: string, reason?: string): BackendProbe {
  return {
    name,
    available: true,
    accelerator: false,
    software: false,
    deviceName: cpuModel(),
    adapter: null,
    rank,
    reason,
    package: { name: pkg, version: versionOf(pkg) ?? 'unknown' },
  };
}

function unavailable(name: BackendName, reason: string): BackendProbe {
  return { name, available: false, accelerator: false, software: false, deviceName: '', adapter: null, rank: -1, reason };
}

/**
 * Register (or replace) the provider of a backend. Clears the probe cache so the next
 * {@link listBackends} call sees it.
 */
export function registerBackendProvider(provider: BackendProvider): void {
  providers.set(provider.name, provider);
  probeCache = null;
}

/** Name the shared library a failed native load was missing, from its error text. */
export function missingLibraryFrom(message: string): string | null {
  const m = /([\w.+-]+\.(?:so|dylib|dll)(?:\.[\w.]+)?): cannot open shared object file/.exec(message)
    ?? /Library not loaded:\s*(\S+)/.exec(message)
    ?? /(\S+\.dll)/.exec(message);
  return m ? m[1] : null;
}

/**
 * The CUDA libraries libtensorflow 2.9.1 (tfjs-node-gpu 4.x) loads at run time: CUDA 11.2 and
 * cuDNN 8.1. TensorFlow does not fail when one is missing; it logs and runs on the CPU.
 */
export const TFJS_NODE_GPU_CUDA_LIBRARIES: readonly string[] = [
  'libcudart.so.11.0', 'libcublas.so.11', 'libcublasLt.so.11', 'libcufft.so.10', 'libcurand.so.10',
  'libcusolver.so.11', 'libcusparse.so.11', 'libcudnn.so.8',
];

/**
 * True when the dynamic linker can load the shared library `name` (searched like `dlopen`:
 * LD_LIBRARY_PATH, the ldconfig cache). Loading a non-addon library makes Node throw
 * "did not self-register" or similar *after* a successful dlopen, which counts as loadable.
 */
export function canLoadSharedLibrary(name: string): boolean {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, name);
    return true;
  } catch (err) {
    return !/cannot open shared object file|image not found|Library not loaded|No such file/i.test(
      (err as Error).message,
    );
  }
}

/**
 * The CUDA 12 libraries TensorFlow 2.21 (tfjs-node-gpu built by `setup:tensorflow --gpu`) loads
 * at run time, from the nvidia-* wheels.
 */
export const TF221_CUDA_LIBRARIES: readonly string[] = ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9'];

/**
 * Probe the native TensorFlow backend: `@tensorflow/tfjs-node` (built by `npm run
 * setup:tensorflow` against pip's TensorFlow) or `@tensorflow/tfjs-node-gpu`, the GPU package
 * first when an NVIDIA GPU is visible. CPU vs GPU comes from TensorFlow's device list (the
 * binding's `isUsingGpuDevice`), so tfjs-node-gpu without a usable GPU ranks as a native CPU
 * backend, naming the CUDA library it lacks.
 *
 * `load` (default `require`), `canLoad` (default {@link canLoadSharedLibrary}) and
 * `nvidiaVisible` (default: `nvidia-smi` names a GPU) are injectable for tests.
 */
export async function probeTensorflow(
  load: (id: string) => unknown = require,
  canLoad: (library: string) => boolean = canLoadSharedLibrary,
  nvidiaVisible: () => boolean = () => nvidiaGpuName() !== null,
): Promise<BackendProbe> {
  const native = loadNativeModule();
  const tried: string[] = [];
  // TensorFlow logs INFO lines (oneDNN, CPU features) to the process's stderr when it loads;
  // keep warnings and errors only, unless the user asked for more.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  for (const pkg of native.packageOrder(nvidiaVisible())) {
    try {
      load(pkg);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/Cannot find module/.test(msg) && msg.includes(pkg) && !/tfjs_binding/.test(msg)) {
        tried.push(`${pkg} is not installed`);
      } else {
        const lib = missingLibraryFrom(msg);
        tried.push(
          lib
            ? `${pkg} is installed but cannot load ${lib}`
            : `${pkg} failed to load: ${msg.split('\n')[0]}`,
        );
      }
      continue;
    }
    if (!tf.findBackend('tensorflow')) {
      tried.push(`${pkg} loaded but registered no 'tensorflow' backend`);
      continue;
    }
    native.markLoaded(pkg);
    const info = native.nativeInfo();
    const gpu = info?.gpu === true;
    const tfVersion = info?.tfVersion ?? 'unknown';
    let reason = `TensorFlow ${tfVersion} on ${gpu ? 'GPU' : 'CPU'}${info?.library ? ` (${info.library})` : ''}`;
    if (pkg.endsWith('-gpu') && !gpu) {
      // libtensorflow loaded, but its device list has no GPU: it runs on the CPU.
      const cuda = tfVersion.startsWith('2.9.') ? TFJS_NODE_GPU_CUDA_LIBRARIES : TF221_CUDA_LIBRARIES;
      const missing = process.platform === 'linux' ? cuda.find((l) => !canLoad(l)) : undefined;
      const needs = tfVersion.startsWith('2.9.') ? 'CUDA 11.2 + cuDNN 8.1; CUDA 12 does not work' : 'CUDA 12 from the nvidia-* wheels that setup:tensorflow --gpu fetched';
      reason += missing
        ? `: ${pkg} is installed but cannot load ${missing} (it needs ${needs}), so TensorFlow sees no GPU`
        : `: ${pkg} is installed but TensorFlow sees no CUDA GPU (it needs an NVIDIA driver and ${needs})`;
    }
    const gpuName = gpu ? (nvidiaGpuName() ?? 'CUDA GPU') : null;
    return {
      name: 'tensorflow',
      available: true,
      accelerator: gpu,
      software: false,
      deviceName: gpuName ?? cpuModel(),
      adapter: gpuName ? { vendor: 'nvidia', architecture: '', device: gpuName, description: `CUDA via TensorFlow ${tfVersion}` } : null,
      rank: gpu ? 100 : 60,
      reason,
      package: { name: pkg, version: versionOf(pkg) ?? 'unknown' },
      native: { tfVersion, library: info?.library ?? null, device: gpu ? 'GPU' : 'CPU' },
    };
  }
  return unavailable('tensorflow', `${tried.join('; ')} (${native.setupHint()})`);
}

function loadNativeModule(): typeof import('./native') {
  // Loaded on first probe: native.ts registers its activation hook through this module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./native') as typeof import('./native');
}

async function probeWasm(): Promise<BackendProbe> {
  try {
    require('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    return unavailable('wasm', `@tensorflow/tfjs-backend-wasm failed to load: ${(err as Error).message}`);
  }
  return cpuProbe('wasm', 50, '@tensorflow/tfjs-backend-wasm', 'WebAssembly with SIMD on the CPU');
}

registerBackendProvider({ name: 'tensorflow', probe: () => probeTensorflow() });
registerBackendProvider({
  name: 'webgpu',
  // Loaded on first probe, not on import: importing gpulab stays cheap and cannot fail on Dawn.
  probe: async () => {
    let mod: typeof import('./webgpu');
    try {
      mod = require('./webgpu') as typeof import('./webgpu');
    } catch (err) {
      return unavailable('webgpu', `the WebGPU (Dawn) provider failed to load: ${(err as Error).message}`);
    }
    return mod.probeWebgpu();
  },
});
registerBackendProvider({ name: 'wasm', probe: probeWasm });
registerBackendProvider({
  name: 'cpu',
  probe: async () => cpuProbe('cpu', 10, '@tensorflow/tfjs-backend-cpu', 'plain JavaScript on the CPU'),
});

/**
 * Probe every known backend (once; cached) and return them ranked, fastest first.
 * Unavailable backends come last, each with the reason.
 */
export async function listBackends(options: { refresh?: boolean } = {}): Promise<BackendProbe[]> {
  if (!probeCache || options.refresh) {
    probeCache = (async () => {
      const out: BackendProbe[] = [];
      for (const name of BACKEND_NAMES) {
        const p = providers.get(name);
        if (!p) continue;
        try {
          out.push(await p.probe());
        } catch (err) {
          out.push(unavailable(name, `probe failed: ${(err as Error).message}`));
        }
      }
      return out.sort((a, b) => Number(b.available) - Number(a.available) || b.rank - a.rank);
    })();
  }
  return probeCache;
}

/**
 * Run `hook` every time {@link activateBackend} (and so {@link useBackend}) makes `name` the
 * current backend, e.g. to install kernel overrides for it. Returns a function that removes it.
 * A hook that throws makes the activation fail with its message.
 */
export function onActivate(name: string, hook: () => void): () => void {
  const entry = { name, hook };
  activateHooks.push(entry);
  return () => {
    const i = activateHooks.indexOf(entry);
    if (i >= 0) activateHooks.splice(i, 1);
  };
}

/**
 * Activate `name` in tfjs and check that it really took: `setBackend` must return true
 * and `getBackend()` must name it. Throws with the reason otherwise.
 */
export async function activateBackend(name: string): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (err) {
    throw new Error(`tf.setBackend('${name}') threw: ${(err as Error).message}`);
  }
  // The cpu backend greets Node users on its first tensor with a banner suggesting tfjs-node.
  // Our device banner already says which backend runs and why, so that greeting is skipped.
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (name === 'cpu' && backend.firstUse === true) backend.firstUse = false;
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`tf.setBackend('${name}') returned ${ok}; tf.getBackend() is '${tf.getBackend()}'`);
  }
  for (const h of activateHooks) if (h.name === name) h.hook();
}

function describeProbe(p: BackendProbe, fallbackNote?: string): DeviceInfo {
  return {
    backend: p.name,
    name: p.deviceName || cpuModel(),
    adapter: p.adapter,
    software: p.software,
    accelerator: p.accelerator,
    cores: os.cpus().length,
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()}-${os.arch()}`,
    versions: {
      tfjs: tf.version.tfjs,
      node: process.versions.node,
      tslab: versionOf('tslab'),
      backendPackage: p.package ? `${p.package.name}@${p.package.version}` : null,
    },
    fallbackNote,
    ...(p.native ? { native: p.native } : {}),
  };
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
      note = `backend '${wanted}' is unknown (known: ${BACKEND_NAMES.join(', ')})`;
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
      current = describeProbe(p, note);
      if (note) console.warn(`[gpulab] ${note}`);
      return current;
    } catch (err) {
      failures.push(`'${p.name}' failed to activate: ${(err as Error).message}`);
    }
  }
  throw new Error(`No tfjs backend could be activated. ${[note, ...failures].filter(Boolean).join('; ')}`);
}

/**
 * Describe the device that is running now. Call {@link useBackend} first; if it was not called,
 * describes whatever tfjs is using as a CPU backend.
 */
export function describeDevice(): DeviceInfo {
  if (current && current.backend === tf.getBackend()) return current;
  const name = tf.getBackend() ?? 'none';
  const nat = name === 'tensorflow' ? loadNativeModule().nativeInfo() : null;
  return describeProbe({
    name: name as BackendName,
    available: true,
    accelerator: nat?.gpu === true,
    software: false,
    deviceName: cpuModel(),
    adapter: null,
    rank: 0,
    ...(nat ? { native: { tfVersion: nat.tfVersion, library: nat.library, device: nat.gpu ? 'GPU' : 'CPU' } as NativeDetails } : {}),
  });
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
  const previous = current ?? null;
  const info = await useBackend(name);
  if (info.backend !== name) throw new Error(`withBackend('${name}'): ${info.fallbackNote ?? 'could not activate'}`);
  try {
    return await fn(info);
  } finally {
    if (previous) await useBackend(String(previous.backend));
  }
}
