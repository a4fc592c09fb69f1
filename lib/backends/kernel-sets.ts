/**
 * gpulab's kernel overrides, one shape for every backend: a {@link KernelSet} can be installed and
 * taken out, so "the same training with tfjs's stock kernels and with gpulab's" is one loop over
 * sets (see `experiments.compareTraining`).
 *
 * ```ts
 * const set = kernelSets.forBackend('wasm');   // gpulab's wasm kernels (wasm-fast)
 * set.uninstall();                              // tfjs's stock kernels from now on
 * set.install();                                // gpulab's again (the default once the backend is active)
 * ```
 */
import * as native from './native';
import * as wasmFast from './wasm-fast';

/** A set of kernel overrides for one backend. */
export interface KernelSet {
  /** What it is, for tables: e.g. 'gpulab wasm kernels'. */
  name: string;
  /** The tfjs backend whose kernels it overrides. */
  backend: string;
  /** The kernels it overrides. */
  kernels: readonly string[];
  /** Register the overrides (idempotent). */
  install(): void;
  /** Put the backend's stock kernels back (idempotent). */
  uninstall(): void;
  /** True while installed. */
  installed(): boolean;
}

/** gpulab's wasm kernels (lib/backends/wasm-fast): fast transposed matmuls, Slice, GatherV2. */
export const wasm: KernelSet = {
  name: 'gpulab wasm kernels',
  backend: 'wasm',
  kernels: wasmFast.OVERRIDDEN_KERNELS,
  install: () => wasmFast.installFastKernels(),
  uninstall: () => wasmFast.uninstallFastKernels(),
  installed: () => wasmFast.fastKernelsInstalled(),
};

/** gpulab's native kernels (lib/backends/native): 2-D MatMul, fused dense, Step, Reshape. */
export const tensorflow: KernelSet = {
  name: 'gpulab native kernels',
  backend: 'tensorflow',
  kernels: native.NATIVE_OVERRIDDEN_KERNELS,
  install: () => native.installNativeFastKernels(),
  uninstall: () => native.uninstallNativeFastKernels(),
  installed: () => native.nativeFastKernelsInstalled(),
};

/** gpulab's kernel set for `backend`, or null when it has none (webgpu, cpu). */
export function forBackend(backend: string): KernelSet | null {
  return backend === 'wasm' ? wasm : backend === 'tensorflow' ? tensorflow : null;
}

/**
 * Run `fn` with `set` installed, or with tfjs's stock kernels when `set` is null (every set in
 * `others` uninstalled); the sets' earlier states are restored afterwards, also when `fn` throws.
 */
export async function withKernels<T>(set: KernelSet | null, others: readonly KernelSet[], fn: () => Promise<T>): Promise<T> {
  const all = [...new Set([...(set ? [set] : []), ...others])];
  const before = all.map((s) => s.installed());
  try {
    for (const s of all) if (s !== set) s.uninstall();
    set?.install();
    return await fn();
  } finally {
    all.forEach((s, i) => (before[i] ? s.install() : s.uninstall()));
  }
}
