/**
 * The WebGPU backend in Node: tfjs-backend-webgpu running on Dawn (npm `webgpu`, dawn.node),
 * which drives the GPU through Vulkan on Linux.
 *
 * Importing this module registers the `webgpu` provider with `./registry`; nothing heavy loads
 * until backends are first probed, so importing gpulab stays cheap and never fails when dawn.node
 * or a Vulkan driver is missing: the `webgpu` backend is then simply listed as unavailable, with
 * the reason.
 *
 * ```ts
 * const dev = await device.useBackend('webgpu');
 * dev.adapter;   // { vendor: 'nvidia', architecture: 'hopper', device: '…', description: '…' }
 * dev.software;  // true on lavapipe/llvmpipe/SwiftShader (CI): correct, but slower than wasm
 * await webgpu.shutdown();   // destroy the GPU device and let the process exit
 * ```
 *
 * The order matters: tfjs-backend-webgpu registers its backend only if `navigator.gpu` exists
 * when it is imported, so {@link probeWebgpu} installs the `navigator.gpu` shim first and only
 * then imports the backend package. Adapters are ranked above wasm only when they are hardware.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
// Only the version: the backend package itself is imported after the navigator.gpu shim exists.
import { version as backendPackageVersion } from '@tensorflow/tfjs-backend-webgpu/package.json';
import { nvidiaGpuName } from '../commands';
import { registerBackendProvider, type AdapterInfo, type BackendProbe, type BackendProvider } from './registry';

/** Rank of a hardware WebGPU adapter (tensorflow-gpu 100, tensorflow-cpu 60, wasm 50, cpu 10). */
export const HARDWARE_RANK = 90;
/** Rank of a software adapter (lavapipe & co.): below wasm, which is faster on the same CPU. */
export const SOFTWARE_RANK = 40;

/** The WebGPU objects this module uses (a subset of the DOM's WebGPU types). */
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: object): Promise<unknown>;
}
/** `navigator.gpu` as created by dawn.node. */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power'; forceFallbackAdapter?: boolean }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}
interface WebGpuBackendLike {
  device?: { destroy?: () => void };
}
type WebGpuBackendClass = new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;

/** Options for {@link installNavigatorGpu}. */
export interface DawnOptions {
  /**
   * Dawn switches passed to `create()`, e.g. `['backend=vulkan']`, `['adapter=NVIDIA H100 80GB HBM3']`
   * or `['enable-dawn-features=dump_shaders']`. Default: none (Dawn picks the backend).
   */
  dawnOptions?: string[];
}

/** What {@link probeWebgpu} found, beyond the generic {@link BackendProbe}. */
export interface WebgpuProbe extends BackendProbe {
  name: 'webgpu';
}

const SHIM_MARK = Symbol.for('gpulab.webgpu.navigatorGpu');
const BACKEND_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

let dawn: DawnModule | null = null;
let configured: string[] = [];
let savedFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;
let lastSoftware = false;

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/**
 * Load dawn.node. The `webgpu` package is an ES module: Node ≥ 20.19 `require`s it directly
 * (synchronously, the same way in compiled code and under tsx: eslint.config.mjs allows this one
 * `require`); older Node versions load dawn.node itself, the native addon in the package's
 * `dist/<platform>-<arch>/` folder.
 */
export function loadDawn(): DawnModule {
  if (dawn) return dawn;
  try {
    dawn = require('webgpu') as DawnModule;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    const pkgDir = path.dirname(require.resolve('webgpu/package.json'));
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    const addon = { exports: {} } as NodeJS.Module;
    process.dlopen(addon, path.join(pkgDir, 'dist', `${process.platform}-${arch}`, 'dawn.node'));
    dawn = addon.exports as DawnModule;
  }
  if (typeof dawn?.create !== 'function') {
    dawn = null;
    throw new Error("the 'webgpu' package loaded but has no create()");
  }
  return dawn;
}

/**
 * Make `navigator.gpu` (and the WebGPU globals such as `GPUBufferUsage`) exist in Node, backed by
 * Dawn. Idempotent; keeps a `navigator.gpu` that is already there (a browser, Deno, or one the
 * user created). Must run before `@tensorflow/tfjs-backend-webgpu` is imported.
 */
export function installNavigatorGpu(options: DawnOptions = {}): GpuLike {
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  if (g.navigator?.gpu) return g.navigator.gpu;
  const d = loadDawn();
  for (const [k, v] of Object.entries(d.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  configured = options.dawnOptions ?? configured;
  const gpu = d.create(configured);
  (gpu as unknown as Record<symbol, boolean>)[SHIM_MARK] = true;
  if (g.navigator && typeof g.navigator === 'object') {
    // Node ≥ 21 has a global `navigator` (hardwareConcurrency, …): add `gpu` to it.
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true, enumerable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu },
      configurable: true,
      writable: true,
      enumerable: false,
    });
  }
  return gpu;
}

/** Remove the shim's `navigator.gpu` (only ours), dropping the last reference to Dawn's instance. */
function removeNavigatorGpu(): void {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const gpu = g.navigator?.gpu as Record<symbol, boolean> | undefined;
  if (!gpu || !gpu[SHIM_MARK]) return;
  const nav = g.navigator as Record<string, unknown>;
  if (Object.keys(nav).length === 1 && 'gpu' in nav && Object.getPrototypeOf(nav) === Object.prototype) {
    delete (globalThis as Record<string, unknown>).navigator;
  } else {
    delete nav.gpu;
  }
}

/**
 * True for software (CPU-emulated) GPU adapters: Mesa lavapipe/llvmpipe/softpipe, SwiftShader,
 * Microsoft's Basic Render Driver, or any adapter Dawn marks as a fallback adapter.
 */
export function isSoftwareAdapter(info: GpuAdapterInfoLike): boolean {
  if (info.isFallbackAdapter) return true;
  if ((info.architecture ?? '').toLowerCase() === 'software') return true;
  const text = [info.vendor, info.device, info.description].join(' ');
  return /lavapipe|llvmpipe|softpipe|swiftshader|swrast|basic render driver/i.test(text);
}

/** The driver named in a Dawn adapter description ("llvmpipe: Mesa 25.0.7 …" → "Mesa 25.0.7"). */
export function driverFromDescription(description: string): string | undefined {
  const m = /Mesa [\w.~+-]+/.exec(description) ?? /\d+\.\d+(?:\.\d+)*/.exec(description);
  return m ? m[0] : undefined;
}

/**
 * A readable device name for banners and chart labels: "lavapipe (Mesa 25.0.7)", "SwiftShader",
 * or the GPU model ("NVIDIA H100 80GB HBM3"). `deviceLabel` adds "[software GPU]" to software ones.
 */
export function adapterDisplayName(info: AdapterInfo, software: boolean): string {
  const text = `${info.device} ${info.description}`;
  if (software) {
    const mesa = /Mesa ([\d.]+)/.exec(text);
    if (/llvmpipe|lavapipe/i.test(text)) return mesa ? `lavapipe (Mesa ${mesa[1]})` : 'lavapipe';
    if (/swiftshader/i.test(text)) return 'SwiftShader';
    return info.description || info.device || info.vendor || 'software adapter';
  }
  if (/nvidia/i.test(info.vendor)) {
    const smi = nvidiaGpuName();
    if (smi) return smi;
  }
  const dev = info.device.replace(/[-_]+/g, ' ').trim();
  const vendor = info.vendor.toUpperCase();
  return dev ? (dev.toUpperCase().startsWith(vendor) ? dev.toUpperCase() : `${vendor} ${dev.toUpperCase()}`) : info.description || vendor || 'WebGPU adapter';
}

/** Why Dawn found no adapter, as far as the machine tells (Linux: the Vulkan loader and drivers). */
export function noAdapterHint(): string {
  if (process.platform !== 'linux') return 'no WebGPU adapter (Metal/D3D12 driver missing?)';
  const dawnDir = (() => {
    try {
      return path.join(path.dirname(require.resolve('webgpu/package.json')), 'dist', `linux-${process.arch}`);
    } catch {
      return null;
    }
  })();
  // Ask the dynamic linker, as Dawn does (beside dawn.node first, then the system's search path).
  const dlopenError = (file: string): string | null => {
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, file);
      return null;
    } catch (err) {
      const msg = (err as Error).message;
      return /did not self-register/i.test(msg) ? null : msg;
    }
  };
  const beside = dawnDir ? path.join(dawnDir, 'libvulkan.so.1') : null;
  const loaderError = beside && fs.existsSync(beside) ? dlopenError(beside) : dlopenError('libvulkan.so.1');
  if (loaderError) {
    return /cannot open shared object file/.test(loaderError)
      ? 'libvulkan.so.1 (the Vulkan loader) was not found: install libvulkan1 (Debian/Ubuntu) or vulkan-loader'
      : `the Vulkan loader libvulkan.so.1 does not load: ${loaderError}`;
  }
  const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const icds = icdDirs.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.json')) : []));
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (icds.length === 0 && !explicit) {
    return 'no Vulkan driver (ICD) is installed: install the GPU driver, or Mesa ≥ 23 lavapipe for a software GPU (npm run setup:test-deps installs it)';
  }
  const mesa = (() => {
    try {
      const status = fs.readFileSync('/var/lib/dpkg/status', 'utf8');
      const m = /Package: mesa-vulkan-drivers\n(?:[^\n]+\n)*?Version: ([^\n]+)/.exec(status);
      return m ? m[1] : null;
    } catch {
      return null;
    }
  })();
  if (mesa && parseInt(mesa.replace(/^\d+:/, ''), 10) < 23) {
    return `Dawn rejects Mesa ${mesa} lavapipe (it needs Mesa ≥ 23): npm run setup:test-deps installs it from backports`;
  }
  return `no usable Vulkan adapter among the drivers ${explicit ? `in ${explicit}` : `(${icds.join(', ')})`}`;
}

function unavailable(reason: string): WebgpuProbe {
  return { name: 'webgpu', available: false, accelerator: false, software: false, deviceName: '', adapter: null, rank: -1, reason };
}

/**
 * The factory tfjs-backend-webgpu registers on import (adapter → device with the adapter's
 * limits and optional features), for when it was imported before the shim existed.
 */
function fallbackFactory(Backend: WebGpuBackendClass): () => Promise<tf.KernelBackend> {
  return async () => {
    const gpu = installNavigatorGpu();
    const adapter = await gpu.requestAdapter({
      powerPreference: tf.env().getBool('WEBGPU_USE_LOW_POWER_GPU') ? 'low-power' : 'high-performance',
    });
    if (!adapter) throw new Error('no WebGPU adapter');
    const requiredFeatures = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
    return new Backend(device, adapter.info);
  };
}

/**
 * Make sure tfjs has a 'webgpu' backend factory. Imports the backend package (after the shim)
 * and, for a software adapter, re-registers the factory at a priority below wasm so that tfjs's
 * own automatic choice agrees with gpulab's ranking.
 */
async function ensureBackendRegistered(software: boolean): Promise<void> {
  // A literal specifier, so bundlers (the GPU kit's esbuild) include the package.
  const pkg = (await import('@tensorflow/tfjs-backend-webgpu')) as { WebGPUBackend?: WebGpuBackendClass };
  if (!tf.findBackendFactory('webgpu')) {
    if (savedFactory) {
      tf.registerBackend('webgpu', savedFactory, software ? 1.5 : 3);
      return;
    }
    // The package was imported before navigator.gpu existed, so it registered nothing.
    // Register the same factory it would have, from its exported backend class.
    const Backend = pkg.WebGPUBackend;
    if (!Backend) {
      throw new Error(
        "@tensorflow/tfjs-backend-webgpu registered no 'webgpu' backend and exports no WebGPUBackend: " +
          'import gpulab (or call webgpu.installNavigatorGpu()) before importing it',
      );
    }
    savedFactory = fallbackFactory(Backend);
    tf.registerBackend('webgpu', savedFactory, software ? 1.5 : 3);
    return;
  }
  const factory = tf.findBackendFactory('webgpu') as () => tf.KernelBackend | Promise<tf.KernelBackend>;
  savedFactory ??= factory;
  if (software && !tf.findBackend('webgpu')) {
    // No instance yet: re-register below wasm (priority 2) for tfjs's auto-selection.
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', factory, 1.5);
  }
}

/**
 * Probe WebGPU through Dawn: install the `navigator.gpu` shim, ask for a high-performance
 * adapter, describe it, and register tfjs's webgpu backend. Never throws: failures come back as
 * an unavailable probe whose `reason` names the missing piece. The backend itself is only
 * initialised (GPU device created) when it is selected.
 */
export async function probeWebgpu(): Promise<WebgpuProbe> {
  let gpu: GpuLike;
  try {
    gpu = installNavigatorGpu();
  } catch (err) {
    return unavailable(`the 'webgpu' package (dawn.node) failed to load: ${errorText(err)}`);
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return unavailable(`navigator.gpu.requestAdapter() threw: ${errorText(err)}`);
  }
  if (!adapter) return unavailable(`Dawn found no WebGPU adapter: ${noAdapterHint()}`);
  // `info` fields are getters on the prototype (a spread would copy nothing): read each one.
  const src = adapter.info ?? {};
  const info: AdapterInfo = {
    vendor: src.vendor ?? '',
    architecture: src.architecture ?? '',
    device: src.device ?? '',
    description: src.description ?? '',
  };
  const software = isSoftwareAdapter({ ...info, isFallbackAdapter: src.isFallbackAdapter ?? adapter.isFallbackAdapter });
  lastSoftware = software;
  const driver = driverFromDescription(info.description);
  if (driver) info.driver = driver;
  try {
    await ensureBackendRegistered(software);
  } catch (err) {
    return unavailable(errorText(err));
  }
  return {
    name: 'webgpu',
    available: true,
    accelerator: !software,
    software,
    deviceName: adapterDisplayName(info, software),
    adapter: info,
    rank: software ? SOFTWARE_RANK : HARDWARE_RANK,
    reason: software
      ? `software adapter (${info.description || info.device}): correct but slower than wasm, so ranked below it`
      : undefined,
    package: { name: BACKEND_PACKAGE, version: backendPackageVersion },
  };
}

/** The provider of the `webgpu` slot, registered when this module is imported. */
export const webgpuProvider: BackendProvider = { name: 'webgpu', probe: probeWebgpu };
registerBackendProvider(webgpuProvider);

/**
 * Tear WebGPU down cleanly: dispose tfjs's webgpu backend (its tensors become invalid; if it was
 * the active backend, tfjs picks another on the next op), destroy the GPU device, and drop the
 * `navigator.gpu` shim so nothing keeps the Node process (or the tslab kernel) alive. The backend
 * can be started again afterwards: the next probe/`useBackend('webgpu')` re-creates everything.
 */
export async function shutdown(): Promise<void> {
  const instance = tf.findBackend('webgpu') as unknown as WebGpuBackendLike | null;
  const factory = tf.findBackendFactory('webgpu') as typeof savedFactory;
  if (factory) savedFactory ??= factory;
  if (factory || instance) {
    try {
      tf.removeBackend('webgpu');
    } catch {
      /* already gone */
    }
  }
  try {
    instance?.device?.destroy?.();
  } catch {
    /* a lost device cannot be destroyed twice */
  }
  removeNavigatorGpu();
  const original = savedFactory;
  if (original) {
    // Keep the backend selectable: selecting it again re-installs navigator.gpu and lets the
    // original factory create a fresh device.
    tf.registerBackend('webgpu', () => (installNavigatorGpu(), original()), lastSoftware ? 1.5 : 3);
  }
}
