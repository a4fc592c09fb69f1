/**
 * The native TensorFlow backend (`tensorflow` in tfjs): `@tensorflow/tfjs-node` (or
 * `@tensorflow/tfjs-node-gpu`) with its binding built by `npm run setup:tensorflow` against pip's
 * TensorFlow 2.21 libraries (see scripts/setup/tensorflow.ts and the README).
 *
 * What this module adds on top of the package:
 *
 * 1. **What loaded.** {@link nativeInfo} reads the TensorFlow version from the C library, tells a
 *    GPU from a CPU run by TensorFlow's own device list (the binding looks for a `GPU` device when
 *    it creates its eager context), and names the shared library the process really mapped.
 *    {@link setupStatus} returns what the setup script last recorded, so a fallback can say why.
 * 2. **Fast kernels.** tfjs-node runs every `matMul` through TensorFlow's `BatchMatMulV2` after
 *    reshaping the operands to rank 3, even for plain 2-D products; for the small products of a
 *    training step that op costs ≈80–100 µs where the 2-D `MatMul` op takes ≈20 µs (measured in
 *    bench/native.ts). Its `_FusedMatMul` is a tfjs-level matMul + add + activation, and its
 *    `Step` (the ReLU gradient) builds two full-size constant tensors per call.
 *    {@link installNativeFastKernels} overrides `BatchMatMul`, `_FusedMatMul`, `Step` and
 *    `Reshape` for the `tensorflow` backend: unbatched products go to `MatMul` with
 *    `transpose_a`/`transpose_b` (plus `BiasAdd`/`Relu`), `Step` to four TensorFlow ops, and
 *    `Reshape` reuses one shape tensor per shape instead of uploading a new one per call. It is
 *    installed automatically whenever `device.useBackend('tensorflow')` activates the backend.
 *
 * ```ts
 * native.nativeInfo();                    // { tfVersion: '2.21.0', gpu: false, library: '…/libtensorflow_cc.so.2', … }
 * native.uninstallNativeFastKernels();    // measure the stock kernels ("before")
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { onActivate } from './device';
import { repoRoot } from '../env';

const TENSORFLOW = 'tensorflow';

/** The npm packages that provide the native backend. */
export const NATIVE_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'] as const;
/** One of {@link NATIVE_PACKAGES}. */
export type NativePackage = (typeof NATIVE_PACKAGES)[number];

/** What the native backend that loaded is. */
export interface NativeInfo {
  /** The npm package that registered the backend. */
  package: NativePackage | string;
  /** Its version. */
  packageVersion: string;
  /** TensorFlow's own version (`TF_Version()` of the loaded C library), e.g. '2.21.0'. */
  tfVersion: string;
  /** True when TensorFlow's device list has a GPU (the backend then places ops on it). */
  gpu: boolean;
  /** Absolute path of the TensorFlow library the process mapped, when it can be read (Linux). */
  library: string | null;
}

/** What `npm run setup:tensorflow` last recorded (`.tensorflow/status-<variant>.json`). */
export interface SetupStatus {
  ok: boolean;
  variant: 'cpu' | 'gpu';
  /** The step that failed, when `ok` is false. */
  step?: string;
  reason?: string;
  fix?: string;
  /** ISO time of the run. */
  at?: string;
}

interface Binding {
  TF_Version: string;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  TF_COMPLEX64: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
}
interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}
type NodeBackend = tf.KernelBackend & {
  binding: Binding;
  isUsingGpuDevice: boolean;
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.TensorInfo;
  disposeData(dataId: object): boolean | void;
};
type KernelArgs = { inputs: Record<string, tf.TensorInfo | null | undefined>; backend: NodeBackend; attrs: Record<string, unknown> };
type RawKernelFunc = (args: KernelArgs) => tf.TensorInfo;

let loadedPackage: string | null = null;

/** The folder `npm run setup:tensorflow` caches into (`GPULAB_TF_CACHE`, default `<repo>/.tensorflow`). */
export function cacheDir(): string {
  return process.env.GPULAB_TF_CACHE ? path.resolve(process.env.GPULAB_TF_CACHE) : path.join(repoRoot(), '.tensorflow');
}

/** The setup script's last record for `variant`, or null when it never ran (or the file is unreadable). */
export function setupStatus(variant: 'cpu' | 'gpu' = 'cpu'): SetupStatus | null {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(cacheDir(), `status-${variant}.json`), 'utf8')) as SetupStatus;
    return typeof s.ok === 'boolean' ? s : null;
  } catch {
    return null;
  }
}

/**
 * One sentence on why the native backend is missing, from the setup record: used in the device
 * probe's fallback note (e.g. "setup:tensorflow failed at step "wheel": … (fix: …)").
 */
export function setupHint(): string {
  if (/^(0|false|no|off)$/i.test(process.env.GPULAB_NATIVE ?? '')) return 'GPULAB_NATIVE=0 skips it';
  const records = [setupStatus('cpu'), setupStatus('gpu')].filter((s): s is SetupStatus => s !== null);
  if (!records.length) return 'run npm run setup:tensorflow to build it';
  return records
    .map((s) => {
      const cmd = `npm run setup:tensorflow${s.variant === 'gpu' ? ' -- --gpu' : ''}`;
      return s.ok
        ? `${cmd} built it, but it does not load now: run it again`
        : `${cmd} failed at step "${s.step ?? '?'}": ${s.reason ?? 'no reason recorded'}${s.fix ? ` (fix: ${s.fix})` : ''}`;
    })
    .join('; ');
}

/**
 * The order to try the native packages in: the GPU build first only when an NVIDIA GPU is
 * visible (otherwise its CUDA libraries cannot help, and its TensorFlow may be older).
 */
export function packageOrder(nvidiaGpuVisible: boolean): NativePackage[] {
  return nvidiaGpuVisible ? ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] : ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];
}

/** Record which package registered the `tensorflow` backend (the device probe calls it). */
export function markLoaded(pkg: string): void {
  loadedPackage = pkg;
}

/**
 * The TensorFlow shared library this process mapped (`libtensorflow_cc.so.2` or
 * `libtensorflow.so.2`), read from /proc/self/maps; null elsewhere or before it loaded.
 * `maps` is injectable for tests.
 */
export function loadedTensorflowLibrary(maps?: string): string | null {
  let text = maps;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/maps', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /\s(\/\S*\/libtensorflow(?:_cc)?\.(?:so[.\d]*|\d+\.dylib|dylib))\s*$/m.exec(text);
  return m ? m[1] : null;
}

function versionOf(pkg: string): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Describe the registered `tensorflow` backend, or null when none is registered. Creating the
 * backend instance (first call) starts TensorFlow's eager context.
 */
export function nativeInfo(): NativeInfo | null {
  if (!tf.findBackendFactory(TENSORFLOW)) return null;
  const b = tf.findBackend(TENSORFLOW) as unknown as Partial<NodeBackend> | null;
  if (!b) return null;
  const pkg = loadedPackage ?? '@tensorflow/tfjs-node';
  return {
    package: pkg,
    packageVersion: versionOf(pkg),
    tfVersion: b.binding?.TF_Version ?? 'unknown',
    gpu: b.isUsingGpuDevice === true,
    library: loadedTensorflowLibrary(),
  };
}

// ---------------------------------------------------------------------------------------------
// Fast kernels
// ---------------------------------------------------------------------------------------------

/** The kernels {@link installNativeFastKernels} overrides on the `tensorflow` backend. */
export const NATIVE_OVERRIDDEN_KERNELS: readonly string[] = ['BatchMatMul', '_FusedMatMul', 'Step', 'Reshape'];

const originals = new Map<string, tf.KernelConfig>();
let installed = false;
/** Kept int32 shape tensors for TensorFlow's Reshape, by shape. */
const shapeTensors = new Map<string, tf.Tensor>();
/** Kept float32 scalars (Step's constants), by value. */
const scalars = new Map<number, tf.Tensor>();
const stats = { matMul2d: 0, fused2d: 0, passthrough: 0, steps: 0, reshapes: 0 };

const typeAttr = (be: NodeBackend, name = 'T'): OpAttr => ({ name, type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT });

/** Most constants kept per cache; the oldest is disposed beyond it. */
const MAX_KEPT = 256;

function keptConstant<K>(cache: Map<K, tf.Tensor>, key: K, make: () => tf.Tensor): tf.Tensor {
  let t = cache.get(key);
  if (!t || t.isDisposed) {
    t = tf.keep(make());
    cache.set(key, t);
    if (cache.size > MAX_KEPT) {
      const [oldest, tensor] = cache.entries().next().value as [K, tf.Tensor];
      cache.delete(oldest);
      tensor.dispose();
    }
  }
  return t;
}

function reshape(be: NodeBackend, x: tf.TensorInfo, shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
  const s = keptConstant(shapeTensors, shape.join(','), () => tf.tensor1d(shape, 'int32'));
  return be.executeSingleOutput('Reshape', [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: tfDtype(be, dtype) }, { name: 'Tshape', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_INT32 }], [x, s]);
}

function tfDtype(be: NodeBackend, dtype: tf.DataType): number {
  const b = be.binding;
  switch (dtype) {
    case 'float32': return b.TF_FLOAT;
    case 'int32': return b.TF_INT32;
    case 'bool': return b.TF_BOOL;
    case 'complex64': return b.TF_COMPLEX64;
    default: throw new Error(`native fast kernels: no TensorFlow dtype for ${dtype}`);
  }
}

/** A rank-2 operand, or a rank-3 one whose batch is 1 (what tfjs' matMul makes of a 2-D one). */
function unbatched(t: tf.TensorInfo): boolean {
  return t.dtype === 'float32' && (t.shape.length === 2 || (t.shape.length === 3 && t.shape[0] === 1));
}

/** The 2-D view of an unbatched operand, and whether a Reshape made it (so it must be freed). */
function as2d(be: NodeBackend, t: tf.TensorInfo): [tf.TensorInfo, boolean] {
  return t.shape.length === 2 ? [t, false] : [reshape(be, t, t.shape.slice(1)), true];
}

/** `MatMul` on the 2-D views of `a` and `b`, returned in the rank the inputs had. */
function matMul2d(be: NodeBackend, a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean, epilogue?: (out: tf.TensorInfo) => tf.TensorInfo): tf.TensorInfo {
  const [a2, freeA] = as2d(be, a);
  const [b2, freeB] = as2d(be, b);
  let out = be.executeSingleOutput('MatMul', [
    typeAttr(be),
    { name: 'transpose_a', type: be.binding.TF_ATTR_BOOL, value: transposeA },
    { name: 'transpose_b', type: be.binding.TF_ATTR_BOOL, value: transposeB },
  ], [a2, b2]);
  if (freeA) be.disposeData(a2.dataId);
  if (freeB) be.disposeData(b2.dataId);
  if (epilogue) {
    const next = epilogue(out);
    if (next !== out) be.disposeData(out.dataId);
    out = next;
  }
  if (a.shape.length === 3) {
    const out3 = reshape(be, out, [1, ...out.shape]);
    be.disposeData(out.dataId);
    out = out3;
  }
  return out;
}

function original(name: string): RawKernelFunc {
  const cfg = originals.get(name);
  if (!cfg) throw new Error(`native fast kernels: no original ${name} kernel saved`);
  return cfg.kernelFunc as unknown as RawKernelFunc;
}

const fastKernels: Record<string, RawKernelFunc> = {
  BatchMatMul: (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (!unbatched(a) || !unbatched(b) || a.shape.length !== b.shape.length) {
      stats.passthrough++;
      return original('BatchMatMul')(args);
    }
    stats.matMul2d++;
    return matMul2d(args.backend, a, b, args.attrs.transposeA === true, args.attrs.transposeB === true);
  },
  _FusedMatMul: (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const activation = args.attrs.activation ?? 'linear';
    const be = args.backend;
    const n = (b?.shape[b.shape.length - (args.attrs.transposeB === true ? 2 : 1)]) ?? -1;
    const biasOk = !bias || (bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === n);
    if (!a || !b || !unbatched(a) || !unbatched(b) || a.shape.length !== b.shape.length || preluActivationWeights || !biasOk || (activation !== 'linear' && activation !== 'relu')) {
      stats.passthrough++;
      return original('_FusedMatMul')(args);
    }
    stats.fused2d++;
    return matMul2d(be, a, b, args.attrs.transposeA === true, args.attrs.transposeB === true, (out) => {
      let r = out;
      if (bias) r = be.executeSingleOutput('BiasAdd', [typeAttr(be)], [r, bias]);
      if (activation === 'relu') {
        const relu = be.executeSingleOutput('Relu', [typeAttr(be)], [r]);
        if (r !== out) be.disposeData(r.dataId);
        r = relu;
      }
      return r;
    });
  },
  Reshape: (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const shape = args.attrs.shape as number[];
    if (x.dtype === 'string') return original('Reshape')(args);
    stats.reshapes++;
    // tfjs-node uploads a new int32 shape tensor on every call; reuse one per shape.
    return reshape(args.backend, x, shape, x.dtype);
  },
  Step: (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') {
      stats.passthrough++;
      return original('Step')(args);
    }
    stats.steps++;
    const be = args.backend;
    const alpha = Number(args.attrs.alpha ?? 0);
    const zero = keptConstant(scalars, 0, () => tf.scalar(0, 'float32'));
    const one = keptConstant(scalars, 1, () => tf.scalar(1, 'float32'));
    const alphaT = keptConstant(scalars, alpha, () => tf.scalar(alpha, 'float32'));
    // step(x) = x > 0 ? 1 : alpha, and NaN stays NaN (as on the other backends).
    const gt = be.executeSingleOutput('Greater', [typeAttr(be)], [x, zero]);
    const stepped = be.executeSingleOutput('SelectV2', [typeAttr(be)], [gt, one, alphaT]);
    const nan = be.executeSingleOutput('IsNan', [typeAttr(be)], [x]);
    const out = be.executeSingleOutput('SelectV2', [typeAttr(be)], [nan, x, stepped]);
    for (const t of [gt, stepped, nan]) be.disposeData(t.dataId);
    return out;
  },
};

/**
 * Override `BatchMatMul`, `_FusedMatMul`, `Step` and `Reshape` on the `tensorflow` backend with the fast
 * paths described in the module doc. Idempotent; a no-op when tfjs has no `tensorflow` backend.
 */
export function installNativeFastKernels(): void {
  if (installed || !tf.findBackendFactory(TENSORFLOW)) return;
  for (const name of NATIVE_OVERRIDDEN_KERNELS) {
    const cfg = tf.getKernel(name, TENSORFLOW);
    if (!cfg) continue;
    originals.set(name, cfg);
    tf.unregisterKernel(name, TENSORFLOW);
    tf.registerKernel({ ...cfg, kernelFunc: fastKernels[name] as unknown as tf.KernelFunc });
  }
  installed = true;
}

/** Restore tfjs-node's own kernels (to measure "before"). Idempotent. */
export function uninstallNativeFastKernels(): void {
  if (!installed) return;
  for (const [name, cfg] of originals) {
    tf.unregisterKernel(name, TENSORFLOW);
    tf.registerKernel(cfg);
  }
  originals.clear();
  installed = false;
}

/** True while the fast kernels are installed. */
export function nativeFastKernelsInstalled(): boolean {
  return installed;
}

/** How often each fast path ran since the last {@link resetNativeKernelStats}. */
export function nativeKernelStats(): { matMul2d: number; fused2d: number; passthrough: number; steps: number; reshapes: number } {
  return { ...stats };
}

/** Zero the {@link nativeKernelStats} counters. */
export function resetNativeKernelStats(): void {
  stats.matMul2d = stats.fused2d = stats.passthrough = stats.steps = stats.reshapes = 0;
}

// Installed automatically whenever gpulab activates the tensorflow backend.
onActivate(TENSORFLOW, () => installNativeFastKernels());
