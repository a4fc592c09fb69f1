/**
 * gpulab: the shared library of the notebooks. The first cell imports what it needs from here:
 *
 * ```ts
 * import { tf, pl, device, timing, charts, nb, env, data, train, setup } from 'gpulab';
 * ```
 *
 * `tf` and `pl` are the same TensorFlow.js and nodejs-polars instances the library uses; `MiB`
 * and `GiB` are the byte units every conversion divides by. The other exports are one namespace
 * per module, by role:
 *
 * - core measurement and reporting: `device` (backend choice: `./backends`, which imports every
 *   backend so each registers itself, then `device`'s ranking and selection), `timing` (warm-up,
 *   sync, repeats), `memory` (peaks, leaks, step memory), `monitor` (sampler, nvidia-smi, kernel
 *   profile, pipeline split, kernel trace), `flops`, `results`, `charts`, `nb` and `setup` (notebook output),
 *   `env` (paths, quick mode);
 * - data: `data` (Fashion-MNIST or its stand-in, IDX, batching, tabular), `imageDirectory`
 *   (streaming and writing class-per-folder image trees);
 * - models and training: `train` (seed models, training loop, `fit`, the fused training step), `modelIO` (atomic model
 *   save/load with float32/float16/uint8 weight storage);
 * - techniques: `precision`, `transfer`, `pruning`, `complexity`, `roofline` (measured ceilings,
 *   kernel regimes, MFU);
 * - backends: `wasmFast`, `wasmConvGrad`, `webgpu` and `native`, providers and tfjs 4.22
 *   patches, each registered when imported; `nativeOps` (TensorFlow ops as kernels, op counts)
 *   and `kernelSets` (each backend's overrides, one install/uninstall shape);
 * - experiments: `experiments`, measurements shared by more than one caller (notebooks 01 and 02
 *   and `npm run bench`), and `experiments.transferSource`, notebook 06's source task.
 *
 * The layers these modules form (every import points down) are declared in
 * test/unit/layers.test.ts, which fails on an import that climbs or on an import cycle.
 */
export * as tf from '@tensorflow/tfjs';
export { default as pl } from 'nodejs-polars';
export { MiB, GiB } from './units';

// --- core measurement and reporting ---
export * as device from './backends';
export * as timing from './timing';
export * as memory from './memory';
export * as monitor from './monitor';
export * as flops from './flops';
export * as results from './results';
export * as charts from './charts';
export * as nb from './notebook';
export { setup } from './notebook';
export * as env from './env';

// --- data ---
export * as data from './data';
export * as imageDirectory from './data/image-directory';

// --- models and training ---
export * as train from './train';
export * as modelIO from './model-io';

// --- techniques ---
export * as precision from './precision';
export * as transfer from './transfer';
export * as pruning from './pruning';
export * as complexity from './complexity';
export * as roofline from './roofline';

// --- backends: providers and patches, each registered when imported ---
export * as wasmFast from './backends/wasm-fast';
/** Importing it registers wasm's missing Conv2DBackpropFilter kernel, so convnets train on wasm. */
export * as wasmConvGrad from './backends/wasm-conv-grad';
export * as webgpu from './backends/webgpu';
export * as native from './backends/native';
/** TensorFlow's own ops as tfjs kernels (`TF:<Op>`) for the fused step, and counting the ops a step runs. */
export * as nativeOps from './backends/native-ops';
/** gpulab's kernel overrides per backend, one install/uninstall shape (`kernelSets.forBackend('wasm')`). */
export * as kernelSets from './backends/kernel-sets';

// --- experiments: measurements that notebooks 01/02 and the bench share; notebook 06's source task ---
export * as experiments from './experiments';
