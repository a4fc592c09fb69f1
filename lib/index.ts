/**
 * gpulab: the shared library of the notebooks. One line in the first cell imports it all:
 *
 * ```ts
 * import { tf, pl, device, timing, charts, nb, results, env, data } from 'gpulab';
 * ```
 *
 * `tf` and `pl` are the same TensorFlow.js and nodejs-polars instances the library uses.
 */
export * as tf from '@tensorflow/tfjs';
export { default as pl } from 'nodejs-polars';
export * as device from './backends/device';
export * as timing from './timing';
export * as charts from './charts';
export * as results from './results';
export * as env from './env';
export * as nb from './notebook';
export { setup } from './notebook';

// --- data layer (issue 3) ---
export * as data from './data';


// --- training, wasm speed-ups (issue 4) ---
export * as wasmFast from './backends/wasm-fast';
export * as flops from './flops';
export * as train from './train';
export * as experiments from './experiments';


// --- memory management, precision (issue 5) ---
export * as imageDirectory from './data/image-directory';
export * as memory from './memory';
export * as precision from './precision';


// --- transfer learning, pruning (issue 6) ---
export * as transfer from './transfer';
export * as pruning from './pruning';
export * as complexity from './complexity';
/** Importing it registers wasm's missing Conv2DBackpropFilter kernel, so convnets train on wasm. */
export * as wasmConvGrad from './backends/wasm-conv-grad';


// --- monitoring and profiling (issue 7) ---
export * as monitor from './monitor';


// --- webgpu (issue 8) ---
export * as webgpu from './backends/webgpu';


// --- native tensorflow backend (issue 15) ---
export * as native from './backends/native';

