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
 *    `Reshape` hands its shape to the backend as raw data instead of making an engine tensor of
 *    it per call. It is installed automatically whenever `device.useBackend('tensorflow')`
 *    activates the backend.
 *
 *    The overrides keep tfjs's kernel contract: the constants they need (a shape, Step's
 *    scalars) are written straight into the backend for one call and freed when it returns. They
 *    are never engine-tracked tensors (so `tf.memory()`, `tf.tidy` and tfjs's test-mode leak check
 *    see exactly what the stock kernels leave) and never cached, so nothing outlives the backend
 *    instance that `tf.engine().reset()` disposes. tfjs-core's own op suite checks this
 *    (test/conformance, `npm run test:conformance`).
 *
 * 3. **The provider.** {@link probeTensorflow} loads the package (the GPU build first when an
 *    NVIDIA GPU is visible) and says what runs or why nothing does. Importing this module
 *    registers it, and the fast kernels' activation hook, with `./registry`.
 *
 * ```ts
 * native.nativeInfo();                    // { tfVersion: '2.21.0', gpu: false, library: '…/libtensorflow_cc.so.2', … }
 * native.uninstallNativeFastKernels();    // measure the stock kernels ("before")
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { nvidiaGpuName } from '../commands';
import { repoRoot } from '../env';
import { floatT, type NodeBackend, type OpAttr } from './native-ops';
import { cpuModel, onActivate, registerBackendProvider, unavailable, versionOf, type BackendProbe } from './registry';

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
function markLoaded(pkg: string): void {
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
    packageVersion: versionOf(pkg) ?? 'unknown',
    tfVersion: b.binding?.TF_Version ?? 'unknown',
    gpu: b.isUsingGpuDevice === true,
    library: loadedTensorflowLibrary(),
  };
}

// ---------------------------------------------------------------------------------------------
// The provider: probing the native backend
// ---------------------------------------------------------------------------------------------

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
  const tried: string[] = [];
  // TensorFlow logs INFO lines (oneDNN, CPU features) to the process's stderr when it loads;
  // keep warnings and errors only, unless the user asked for more.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  for (const pkg of packageOrder(nvidiaVisible())) {
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
    markLoaded(pkg);
    const info = nativeInfo();
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
  return unavailable('tensorflow', `${tried.join('; ')} (${setupHint()})`);
}

// ---------------------------------------------------------------------------------------------
// Fast kernels
// ---------------------------------------------------------------------------------------------

/** The kernels {@link installNativeFastKernels} overrides on the `tensorflow` backend. */
export const NATIVE_OVERRIDDEN_KERNELS: readonly string[] = ['BatchMatMul', '_FusedMatMul', 'Step', 'Reshape'];

const originals = new Map<string, tf.KernelConfig>();
let installed = false;
const stats = { matMul2d: 0, fused2d: 0, passthrough: 0, steps: 0, reshapes: 0 };

const typeAttr = (be: NodeBackend): OpAttr => floatT(be.binding);

/** A constant one kernel call needs: its values, shape and dtype. */
interface Constant {
  values: Int32Array | Float32Array;
  shape: number[];
  dtype: 'int32' | 'float32';
}
const shapeVector = (shape: number[]): Constant => ({ values: Int32Array.from(shape), shape: [shape.length], dtype: 'int32' });
const floatScalar = (v: number): Constant => ({ values: Float32Array.of(v), shape: [], dtype: 'float32' });

/**
 * Run `body` with constants that live in the backend for this call only: written with
 * `backend.write` (never registered with the engine, so never counted or tracked by it) and
 * freed when `body` returns or throws.
 */
function withConstants<T>(be: NodeBackend, constants: Constant[], body: (infos: tf.TensorInfo[]) => T): T {
  const infos = constants.map(({ values, shape, dtype }): tf.TensorInfo => ({ dataId: be.write(values, shape, dtype), shape, dtype }));
  try {
    return body(infos);
  } finally {
    for (const info of infos) be.disposeData(info.dataId);
  }
}

function reshape(be: NodeBackend, x: tf.TensorInfo, shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
  const attrs = [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: tfDtype(be, dtype) }, { name: 'Tshape', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_INT32 }];
  return withConstants(be, [shapeVector(shape)], ([s]) => be.executeSingleOutput('Reshape', attrs, [x, s]));
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
    // tfjs-node makes (and disposes) an engine tensor of the shape on every call; pass it as raw data.
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
    return withConstants(be, [floatScalar(0), floatScalar(1), floatScalar(alpha)], ([zero, one, alphaT]) => {
      // step(x) = x > 0 ? 1 : alpha, and NaN stays NaN (as on the other backends).
      const gt = be.executeSingleOutput('Greater', [typeAttr(be)], [x, zero]);
      const stepped = be.executeSingleOutput('SelectV2', [typeAttr(be)], [gt, one, alphaT]);
      const nan = be.executeSingleOutput('IsNan', [typeAttr(be)], [x]);
      const out = be.executeSingleOutput('SelectV2', [typeAttr(be)], [nan, x, stepped]);
      for (const t of [gt, stepped, nan]) be.disposeData(t.dataId);
      return out;
    });
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

// Registered on import: the provider of the `tensorflow` slot (describing a backend someone set
// with tf.setBackend too), and the fast kernels, installed whenever gpulab activates it.
registerBackendProvider({
  name: TENSORFLOW,
  probe: () => probeTensorflow(),
  describeActive: () => {
    const info = nativeInfo();
    return info ? { accelerator: info.gpu, native: { tfVersion: info.tfVersion, library: info.library, device: info.gpu ? 'GPU' : 'CPU' } } : {};
  },
});
onActivate(TENSORFLOW, () => installNativeFastKernels());
