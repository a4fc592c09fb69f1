/**
 * Speed-ups for the tfjs WebAssembly backend in Node.
 *
 * 1. **Fast transposed matmuls.** In tfjs-backend-wasm 4.22 a `matMul` with `transposeA` or
 *    `transposeB` (exactly what autodiff emits in every backward pass) runs a scalar loop at
 *    ≈1.5–2 GFLOP/s, while the same product untransposed runs through XNNPACK at ≈20+. So
 *    `model.fit` and `optimizer.minimize` train ≈5× slower than the matmul peak allows.
 *    {@link installFastKernels} registers kernel overrides for `BatchMatMul` and `_FusedMatMul`
 *    that transpose the operand explicitly (a cheap memory pass) and then call the original
 *    kernel's fast untransposed path. A batched left operand times a shared right operand is
 *    folded into one 2-D product, which also takes the fast path. It is installed automatically
 *    whenever `device.useBackend('wasm')` activates the wasm backend. The same install also
 *    replaces `Slice`, whose stock kernel copies the *whole* input out of the heap first (one
 *    100-row slice of a 60000×784 tensor took ≈200 ms; `model.predict`/`evaluate` slice per batch),
 *    and `GatherV2`, whose stock kernel addresses every element separately (`model.fit` gathers
 *    each shuffled batch: ≈3 ms of a ≈12 ms training step for the seed MLP).
 *
 * 2. **Threads in Node (opt-in).** tfjs disables wasm multithreading in Node, and its C++ side
 *    caps the thread pool at logical cores / 2. {@link enableWasmThreads} (or
 *    `GPULAB_WASM_THREADS=n` in the environment, read when gpulab is imported) loads the
 *    threaded-SIMD build with `n` real worker threads. It must run before the wasm backend
 *    first initialises, or it re-creates the backend (every wasm tensor is lost).
 *
 * ```ts
 * wasmFast.fastKernelsInstalled();      // true once wasm was selected through gpulab
 * wasmFast.uninstallFastKernels();        // measure the stock kernels ("before")
 * await wasmFast.enableWasmThreads(2);   // then device.useBackend('wasm')
 * ```
 */
import os, { type CpuInfo } from 'node:os';
import * as path from 'node:path';
import { Worker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { wasmThreads as wasmThreadsFromEnv } from '../env';
import { beforeProbing, onActivate } from './registry';
import { loadedWasmPackage, loadWasmPackage, WASM_PACKAGE } from './wasm';

type Backend = tf.KernelBackend & {
  disposeData(dataId: object): boolean | void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
};
type KernelArgs = { inputs: Record<string, tf.TensorInfo | undefined>; backend: Backend; attrs: Record<string, unknown> };
type RawKernelFunc = (args: KernelArgs) => tf.TensorInfo;

const WASM = 'wasm';
/** The kernels this module overrides. */
export const OVERRIDDEN_KERNELS: readonly string[] = ['BatchMatMul', '_FusedMatMul', 'Slice', 'GatherV2'];

const originals = new Map<string, tf.KernelConfig>();
let installed = false;
/** How many matmuls took each route since the last {@link resetKernelStats}. */
const stats = { transposedA: 0, transposedB: 0, folded: 0, passthrough: 0, slices: 0, gathers: 0 };

function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Swap the last two axes of `x` with the wasm Transpose kernel; the caller disposes the result. */
function transposeLastTwo(x: tf.TensorInfo, backend: Backend): tf.TensorInfo {
  const cfg = tf.getKernel('Transpose', WASM);
  if (!cfg) throw new Error('wasm-fast: the wasm Transpose kernel is not registered');
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return (cfg.kernelFunc as unknown as RawKernelFunc)({ inputs: { x }, backend, attrs: { perm } });
}

/** A view of `x` with a new shape (no copy): the original kernels reshape and ref-count themselves. */
function view(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * Shared logic of both overrides: make both operands untransposed (explicit transposes),
 * fold a batched `a` times an unbatched `b` into one 2-D product, then call `original`.
 */
function untransposedCall(kernel: string, args: KernelArgs, extraInputs: Record<string, tf.TensorInfo | undefined>): tf.TensorInfo {
  const original = originals.get(kernel)!.kernelFunc as unknown as RawKernelFunc;
  const { backend, attrs } = args;
  let a = args.inputs.a!;
  let b = args.inputs.b!;
  const transposeA = Boolean(attrs.transposeA);
  const transposeB = Boolean(attrs.transposeB);
  const temps: tf.TensorInfo[] = [];
  try {
    if (transposeA) {
      a = transposeLastTwo(a, backend);
      temps.push(a);
      stats.transposedA++;
    }
    if (transposeB) {
      b = transposeLastTwo(b, backend);
      temps.push(b);
      stats.transposedB++;
    }
    const newAttrs = { ...attrs, transposeA: false, transposeB: false };
    const aOuter = a.shape.slice(0, -2);
    const bOuter = b.shape.slice(0, -2);
    const batchA = product(aOuter);
    const batchB = product(bOuter);
    if (batchA > 1 && batchB === 1) {
      // [..., M, K] × [K, N]: one [batch·M, K] × [K, N] product, which XNNPACK runs fast.
      const [m, k] = a.shape.slice(-2);
      const n = b.shape[b.shape.length - 1];
      const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter), m, n];
      const rank3 = kernel === '_FusedMatMul'; // the fused kernel expects rank-3 operands
      const a2 = view(a, rank3 ? [1, batchA * m, k] : [batchA * m, k]);
      const b2 = view(b, rank3 ? [1, k, n] : [k, n]);
      const out = original({ inputs: { ...extraInputs, a: a2, b: b2 }, backend, attrs: newAttrs });
      stats.folded++;
      return { ...out, shape: outShape } as tf.TensorInfo;
    }
    if (!transposeA && !transposeB) stats.passthrough++;
    return original({ inputs: { ...extraInputs, a, b }, backend, attrs: newAttrs });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * The shape checks of the stock wasm `BatchMatMul` kernel, in its order and with its words: the
 * batch dimensions must broadcast, then the inner dimensions must match. The overrides run them
 * before they transpose or fold anything: the fold takes `k` from `a` and views `b` as `[k, n]`, so
 * without the check a mismatched `b` gives numbers (read past its end) instead of the error.
 * `op` names the operation in the message: 'matMul' as the stock kernel says, 'fused matMul' as
 * `tf.fused.matMul` says (the stock fused kernel leaves the check to that op).
 */
function assertMatMulShapes(args: KernelArgs, op: 'matMul' | 'fused matMul'): void {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs;
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const innerShapeA = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const innerShapeB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  tf.util.assert(innerShapeA === innerShapeB, () => `Error in ${op}: inner shapes (${innerShapeA}) and (${innerShapeB}) of Tensors with shapes ${a.shape} and ` +
    `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
}

function needsHelp(args: KernelArgs): boolean {
  const { a, b } = args.inputs;
  if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  if (args.attrs.transposeA || args.attrs.transposeB) return true;
  return product(a.shape.slice(0, -2)) > 1 && product(b.shape.slice(0, -2)) === 1;
}

/**
 * The override of a matmul kernel: the stock kernel where it is already fast, else its shape
 * checks, then the call without transposes (and folded where it can be). `_FusedMatMul` passes its
 * bias and PReLU weights on.
 */
function fastMatMul(kernel: 'BatchMatMul' | '_FusedMatMul', op: 'matMul' | 'fused matMul'): RawKernelFunc {
  return (args) => {
    if (!needsHelp(args)) {
      stats.passthrough++;
      return (originals.get(kernel)!.kernelFunc as unknown as RawKernelFunc)(args);
    }
    assertMatMulShapes(args, op);
    const { bias, preluActivationWeights } = args.inputs;
    return untransposedCall(kernel, args, kernel === '_FusedMatMul' ? { bias, preluActivationWeights } : {});
  };
}

/**
 * Slice without copying the whole input: the stock wasm kernel reads the entire tensor out of the
 * heap (`readSync`) before taking the slice, so 100 rows of a 60000×784 tensor cost ≈200 ms.
 * This reads through a heap view and copies only the slice, one contiguous run at a time.
 */
function fastSlice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x!;
  const { backend } = args;
  if (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') {
    return (originals.get('Slice')!.kernelFunc as unknown as RawKernelFunc)(args);
  }
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor, args.attrs.begin as number | number[], args.attrs.size as number | number[] | undefined);
  const out = backend.makeOutput(size, x.dtype);
  stats.slices++;
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  // Views after makeOutput: allocating may grow (and so replace) the wasm heap.
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    ov.set(xv.subarray(0, 1));
    return out;
  }
  const strides = [...tf.util.computeStrides(x.shape), 1];
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const off = tf.slice_util.computeFlatOffset(begin, strides);
    ov.set(xv.subarray(off, off + n));
    return out;
  }
  // Copy runs along the last axis, walking the outer indices like an odometer.
  const inner = size[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < n; o += inner) {
    let off = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
    ov.set(xv.subarray(off, off + inner), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Gather by copying whole slices: the stock wasm kernel computes every element's address one by
 * one (≈3 ms for 100 rows of a 20000×784 tensor, the batch gather `model.fit` does every step
 * when shuffling); here each gathered slice is one contiguous copy.
 */
function fastGather(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x!;
  const indices = args.inputs.indices!;
  const { backend } = args;
  if ((x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') || indices.dtype !== 'int32') {
    return (originals.get('GatherV2')!.kernelFunc as unknown as RawKernelFunc)(args);
  }
  const axis = tf.util.parseAxisParam(args.attrs.axis as number, x.shape)[0];
  const batchDims = (args.attrs.batchDims as number | undefined) ?? 0;
  const idx = backend.typedArrayFromHeap(indices) as Int32Array;
  const axisDim = x.shape[axis];
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i];
    if (!(v >= 0 && v <= axisDim - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${axisDim - 1}]`);
  }
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, axis, batchDims);
  const out = backend.makeOutput(info.outputShape, x.dtype);
  stats.gathers++;
  const perBatch = idx.length / info.batchSize;
  if (tf.util.sizeFromShape(info.outputShape) === 0) return out;
  // Views after makeOutput: allocating may grow (and so replace) the wasm heap.
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  const iv = backend.typedArrayFromHeap(indices) as Int32Array;
  const { outerSize, dimSize, sliceSize } = info;
  let o = 0;
  for (let b = 0; b < info.batchSize; b++) {
    for (let r = 0; r < outerSize; r++) {
      const base = (b * outerSize + r) * dimSize;
      for (let k = 0; k < perBatch; k++) {
        const from = (base + iv[b * perBatch + k]) * sliceSize;
        if (sliceSize === 1) ov[o] = xv[from];
        else ov.set(xv.subarray(from, from + sliceSize), o);
        o += sliceSize;
      }
    }
  }
  return out;
}

/**
 * Register the fast overrides of the wasm backend's `BatchMatMul`, `_FusedMatMul`, `Slice` and
 * `GatherV2` kernels ({@link OVERRIDDEN_KERNELS}; idempotent).
 * The wasm package must be loaded (gpulab loads it when it probes backends). Works before or
 * after the backend initialises: the original kernels' setup functions are kept, so a later
 * (re-)initialisation still sets them up.
 */
export function installFastKernels(): void {
  if (installed) return;
  const impls: Record<string, RawKernelFunc> = { BatchMatMul: fastMatMul('BatchMatMul', 'matMul'), _FusedMatMul: fastMatMul('_FusedMatMul', 'fused matMul'), Slice: fastSlice, GatherV2: fastGather };
  for (const name of OVERRIDDEN_KERNELS) {
    const cfg = tf.getKernel(name, WASM);
    if (!cfg) throw new Error(`wasm-fast: kernel ${name} is not registered for the wasm backend (is ${WASM_PACKAGE} loaded? device.listBackends() or useBackend('wasm') loads it)`);
    originals.set(name, cfg);
  }
  for (const name of OVERRIDDEN_KERNELS) {
    tf.unregisterKernel(name, WASM);
    tf.registerKernel({ ...originals.get(name)!, kernelFunc: impls[name] as unknown as tf.KernelFunc });
  }
  installed = true;
}

/** Put the stock tfjs-backend-wasm kernels back (for "before" measurements). No-op if not installed. */
export function uninstallFastKernels(): void {
  if (!installed) return;
  for (const name of OVERRIDDEN_KERNELS) {
    tf.unregisterKernel(name, WASM);
    tf.registerKernel(originals.get(name)!);
  }
  installed = false;
}

/** True while the fast overrides are registered. */
export function fastKernelsInstalled(): boolean {
  return installed;
}

/** Counts of the routes the overrides took: explicit transposes of a/b, folded batches, untouched calls. */
export function kernelStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Zero the {@link kernelStats} counters. */
export function resetKernelStats(): void {
  stats.transposedA = stats.transposedB = stats.folded = stats.passthrough = stats.slices = stats.gathers = 0;
}

// Installed automatically whenever gpulab activates the wasm backend.
onActivate(WASM, () => installFastKernels());

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------

let workerShimInstalled = false;

/**
 * Make the emscripten pthread pool work under Node: tfjs hands the worker a `blob:` URL (which
 * Node's `worker_threads` cannot load) and posts the main script as a Blob. This Worker class
 * loads the same worker source with `eval: true` and points the worker at the threaded build's
 * file on disk instead, which is emscripten's normal Node flow.
 */
async function installWorkerShim(): Promise<void> {
  if (workerShimInstalled) return;
  const pkgDir = path.dirname(require.resolve(`${WASM_PACKAGE}/package.json`));
  const mainJs = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  let source: string;
  try {
    // A literal specifier, so bundlers include it (its types: lib/backends/wasm-worker.d.ts).
    source = (await import('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js')).wasmWorkerContents;
  } catch (err) {
    throw new Error(`wasm-fast: cannot read the wasm worker source (${WASM_PACKAGE}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js): ${(err as Error).message}`, { cause: err });
  }
  // The template literal holds raw newlines inside JS string literals; tfjs escapes them the same way.
  const workerSource = source.replace(/\n/g, '\\n');
  class NodeBlobWorker extends Worker {
    constructor(file: string | URL, options?: WorkerOptions) {
      if (typeof file === 'string' && file.startsWith('blob:')) super(workerSource, { ...options, eval: true });
      else super(file, options);
    }
    override postMessage(message: unknown, transfer?: readonly TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') message = { ...m, urlOrBlob: mainJs };
      super.postMessage(message, transfer);
    }
  }
  // The threaded module assigns `global.Worker = worker_threads.Worker` when it starts; keep ours.
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => NodeBlobWorker, set: () => {} });
  workerShimInstalled = true;
}

/**
 * Run the wasm backend with `threads` real worker threads (the threaded-SIMD build), or with the
 * default single-threaded build when `threads` is 1.
 *
 * Call it before the wasm backend is first used. If the backend already exists it is removed
 * and re-registered (all wasm tensors are lost); activate it again with `device.useBackend('wasm')`.
 * The thread count takes effect when the backend next initialises; check it afterwards with
 * {@link wasmThreadsCount}.
 */
export async function enableWasmThreads(threads: number): Promise<void> {
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new Error(`enableWasmThreads: threads must be an integer from 1 to 8, got ${threads}`);
  }
  const wasm = await loadWasmPackage();
  const factory = tf.findBackendFactory(WASM);
  if (!factory) throw new Error('enableWasmThreads: the wasm backend is not registered with tfjs');
  const base = (factory as { __gpulabBase?: typeof factory }).__gpulabBase ?? factory;
  if (threads > 1) await installWorkerShim();
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
  wasm.setThreadsCount(threads);
  // The C++ side caps the pool at (logical cores / 2), read from os.cpus() while the module
  // initialises; report 2 × threads cores for exactly that window.
  const wrapped = async () => {
    // The default import is the module object itself: the one emscripten calls os.cpus() on.
    const osModule = os as { cpus: () => CpuInfo[] };
    const realCpus = osModule.cpus;
    if (threads > 1) {
      osModule.cpus = () => {
        const c = realCpus();
        return Array.from({ length: 2 * threads }, (_, i) => c[i % c.length]);
      };
    }
    try {
      return await base();
    } finally {
      osModule.cpus = realCpus;
    }
  };
  (wrapped as { __gpulabBase?: typeof factory }).__gpulabBase = base;
  const wasActive = tf.getBackend() === WASM;
  tf.removeBackend(WASM);
  tf.registerBackend(WASM, wrapped, 2);
  if (wasActive) await tf.setBackend(WASM);
}

/**
 * The number of threads the initialised wasm backend really runs (XNNPACK's pool size), or null
 * when the wasm backend has not been initialised yet.
 */
export function wasmThreadsCount(): number | null {
  try {
    return loadedWasmPackage()?.getThreadsCount() ?? null;
  } catch {
    return null;
  }
}

// GPULAB_WASM_THREADS=n: opt in when gpulab is imported, before any backend initialises.
{
  let n: number | null = null;
  try {
    n = wasmThreadsFromEnv();
  } catch (err) {
    console.warn(`[gpulab] ${(err as Error).message}; running wasm single-threaded`);
  }
  if (n !== null && n > 1) {
    // Probing and selecting backends wait for it, so wasm starts with the threads asked for.
    beforeProbing(enableWasmThreads(n).catch((err) => console.warn(`[gpulab] GPULAB_WASM_THREADS=${n} could not be applied: ${(err as Error).message}`)));
  }
}
