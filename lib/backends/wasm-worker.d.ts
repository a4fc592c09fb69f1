// The emscripten worker source that tfjs-backend-wasm ships as a CommonJS module without types;
// wasm-fast.ts hands it to Node's worker_threads for the threaded build.
declare module '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js' {
  /** The worker script, as one string. */
  export const wasmWorkerContents: string;
}
