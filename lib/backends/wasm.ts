/**
 * The WebAssembly backend (`wasm`: tfjs-backend-wasm, XNNPACK with SIMD, on the CPU): its
 * provider, and the one place gpulab loads the package.
 *
 * Importing this module registers the provider with `./registry`. The package itself is loaded
 * on the first probe, not on import: once loaded, it registers the `wasm` backend with tfjs at a
 * higher priority than `cpu`, and a backend that needs an asynchronous start would then be tfjs's
 * default for code that never selected one.
 */
import { cpuProbe, registerBackendProvider, unavailable, type BackendProbe } from './registry';

/** The npm package of the wasm backend. */
export const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';

/** The module tfjs-backend-wasm exports (`setThreadsCount`, `getThreadsCount`, …). */
export type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

let loaded: WasmPackage | null = null;

/** Load tfjs-backend-wasm (once), which registers the `wasm` backend with tfjs. Throws naming the package when it cannot load. */
export async function loadWasmPackage(): Promise<WasmPackage> {
  if (!loaded) {
    try {
      loaded = await import('@tensorflow/tfjs-backend-wasm');
    } catch (err) {
      throw new Error(`${WASM_PACKAGE} cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
  }
  return loaded;
}

/** The package, when {@link loadWasmPackage} has loaded it; null before. */
export function loadedWasmPackage(): WasmPackage | null {
  return loaded;
}

/** Probe the wasm backend: available whenever its package loads. */
async function probeWasm(): Promise<BackendProbe> {
  try {
    await loadWasmPackage();
  } catch (err) {
    return unavailable('wasm', (err as Error).message);
  }
  return cpuProbe('wasm', 50, WASM_PACKAGE, 'WebAssembly with SIMD on the CPU');
}

registerBackendProvider({ name: 'wasm', probe: probeWasm });
