/**
 * The backends, assembled. Importing this module imports every backend module, so each one
 * registers its provider and activation hooks with `./registry` (native TensorFlow, WebGPU
 * through Dawn, wasm with its fast kernels and the conv gradient it lacks), and then gives
 * `device`'s ranking and selection API over all of them.
 *
 * `lib/index.ts` does the same for notebooks; code that imports lib modules one by one (tests,
 * the bench) imports this instead of `./device`, which alone knows only the `cpu` backend.
 */
import './native';
import './webgpu';
import './wasm';
import './wasm-fast';
import './wasm-conv-grad';

export * from './device';
