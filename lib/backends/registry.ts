/**
 * The backend registry: the bottom of `lib/backends`. Each backend module registers itself here
 * when it is imported: its provider (how to probe it on this machine) and its activation hooks
 * (what to install whenever it becomes the current backend). `device` ranks and selects among
 * what registered; it imports no backend, and no backend imports it.
 *
 * ```
 * registry ← native · webgpu · wasm · wasm-fast · wasm-conv-grad ← device (ranks what registered)
 * ```
 *
 * Also here, because every layer above shares them: the probe and device shapes
 * ({@link BackendProbe}, {@link DeviceInfo}), the device that runs now ({@link describeDevice},
 * which `timing` and `results` record) and {@link versionOf}.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { GiB } from '../units';

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
  /**
   * What the provider can tell about its backend while tfjs runs it without a gpulab probe (the
   * backend was set with `tf.setBackend` directly), e.g. the native backend's TensorFlow version
   * and whether it computes on a GPU. Optional.
   */
  describeActive?(): Partial<Pick<BackendProbe, 'accelerator' | 'native'>>;
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
const setups: Promise<unknown>[] = [];
let registrations = 0;
const activateHooks: { name: string; hook: () => void }[] = [];
let current: DeviceInfo | null = null;

/**
 * Register (or replace) the provider of a backend. Each backend module calls it when imported;
 * tests call it to put a fake in a slot. `device.listBackends` probes again after a change.
 */
export function registerBackendProvider(provider: BackendProvider): void {
  providers.set(provider.name, provider);
  registrations++;
}

/** The registered providers, in {@link BACKEND_NAMES} order. */
export function registeredProviders(): BackendProvider[] {
  return BACKEND_NAMES.flatMap((name) => providers.get(name) ?? []);
}

/** How many registrations happened so far: a probe cache is stale when this has changed. */
export function registrationCount(): number {
  return registrations;
}

/**
 * Hold back probing until `work` has settled: for set-up a backend module starts when it is
 * imported and that must finish before the backend is probed or selected (the wasm thread count
 * from `GPULAB_WASM_THREADS`). Its failure is the module's to report; probing goes on regardless.
 */
export function beforeProbing(work: Promise<unknown>): void {
  setups.push(work);
}

/** Settles when every piece of work passed to {@link beforeProbing} so far has settled (`device` awaits it). */
export async function probingMayStart(): Promise<void> {
  await Promise.allSettled(setups);
}

/**
 * Run `hook` every time `device.activateBackend` (and so `device.useBackend`) makes `name` the
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

/** Run the {@link onActivate} hooks of `name`, in the order they were added (`device` calls it). */
export function runActivateHooks(name: string): void {
  for (const h of [...activateHooks]) if (h.name === name) h.hook();
}

const versions = new Map<string, string>();

/**
 * The installed version of the npm package `pkg` (read from its package.json once, then
 * remembered), or null when it is not installed (asked again next time: it may be installed since).
 */
export function versionOf(pkg: string): string | null {
  const known = versions.get(pkg);
  if (known !== undefined) return known;
  try {
    const file = require.resolve(`${pkg}/package.json`);
    const version = (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? null;
    if (version !== null) versions.set(pkg, version);
    return version;
  } catch {
    return null;
  }
}

/** The CPU model string of this machine (first core), trimmed. */
export function cpuModel(): string {
  const cpus = os.cpus();
  return (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
}

/**
 * An available backend that computes on this machine's CPU, provided by the npm package `pkg`
 * (no package recorded when `pkg` is left out).
 */
export function cpuProbe(name: BackendName, rank: number, pkg?: string, reason?: string): BackendProbe {
  return {
    name,
    available: true,
    accelerator: false,
    software: false,
    deviceName: cpuModel(),
    adapter: null,
    rank,
    reason,
    ...(pkg ? { package: { name: pkg, version: versionOf(pkg) ?? 'unknown' } } : {}),
  };
}

/** A backend that cannot run here, and why. */
export function unavailable(name: BackendName, reason: string): BackendProbe {
  return { name, available: false, accelerator: false, software: false, deviceName: '', adapter: null, rank: -1, reason };
}

/** The {@link DeviceInfo} of a probed backend, with this machine's CPU, memory and versions. */
export function deviceInfoFrom(p: BackendProbe, fallbackNote?: string): DeviceInfo {
  return {
    backend: p.name,
    name: p.deviceName || cpuModel(),
    adapter: p.adapter,
    software: p.software,
    accelerator: p.accelerator,
    cores: os.cpus().length,
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / GiB) * 10) / 10,
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

/** Record the device `device.useBackend` selected (what {@link describeDevice} returns while it runs). */
export function setCurrentDevice(info: DeviceInfo | null): void {
  current = info;
}

/** The device `device.useBackend` selected last, or null when it was never called. */
export function currentDevice(): DeviceInfo | null {
  return current;
}

/**
 * Describe the device that is running now: the one `device.useBackend` selected, or, when tfjs
 * runs another backend (useBackend never called, or `tf.setBackend` since), whatever that
 * backend's provider can tell, on this machine's CPU.
 */
export function describeDevice(): DeviceInfo {
  if (current && current.backend === tf.getBackend()) return current;
  const name = (tf.getBackend() ?? 'none') as BackendName;
  const active = providers.get(name)?.describeActive?.() ?? {};
  return deviceInfoFrom({ ...cpuProbe(name, 0), ...active });
}
