/**
 * See where the time and memory go, live: the TypeScript version of the article's nvidia-smi,
 * nvprof and Nsight.
 *
 * - {@link Sampler}: runs alongside training and records, every interval, process memory (RSS,
 *   heap), process CPU use and `tf.memory()`; and, where an NVIDIA driver is present,
 *   `nvidia-smi --query-gpu=... --format=csv` at the same interval. Training events from a tfjs
 *   callback ({@link Sampler.callback}) or a hand-written loop ({@link Sampler.event}) are lined up
 *   with the samples in a polars DataFrame ({@link toDataFrame}). A source that is missing (no
 *   nvidia-smi) or unreliable (tfjs-node's `tf.memory()`) is recorded as such, with the reason:
 *   never as zeros.
 * - {@link parseNvidiaSmiCsv}: a parser for what nvidia-smi really prints (units, repeated
 *   headers, `[N/A]`, a line cut off mid-write).
 * - {@link profileStep}: `tf.profile` + `tf.time` around one training step: a table of kernels by
 *   total time and bytes, and kernelMs against wallMs, explained per backend
 *   ({@link explainTimers}).
 * - {@link timePipeline}: per-batch time split between fetching the batch (input pipeline) and
 *   the training step (compute), measured by {@link timeBatches} (which `train.trainLoop` uses too).
 * - {@link traceSteps}, {@link TraceRecorder}: a kernel timeline of a few training steps (every
 *   kernel a span), written as Chrome trace-event JSON ({@link writeChromeTrace}) for Perfetto and
 *   drawn as a Gantt chart ({@link ganttSpec}).
 * - {@link findOnPath}, {@link runTool}, {@link externalTools}: run nvidia-smi / nsys / ncu when
 *   they exist, and say plainly when they do not.
 *
 * One file per concern: `nvidia-smi` (CSV parser), `tools` (external tools, profiler commands),
 * `sampler`, `frames` (DataFrames and the timeline chart), `profile` (kernel profile),
 * `pipeline` (input pipeline vs compute) and `trace` (kernel timeline); finding and running a
 * tool is in `lib/commands.ts` (re-exported by `tools`). Leak accounting is not here: it lives
 * in `memory` (`leakGuard`, `trackEpochMemory`, `leakVerdict`).
 */
export * from './nvidia-smi';
export * from './tools';
export * from './sampler';
export * from './frames';
export * from './profile';
export * from './pipeline';
export * from './trace';
