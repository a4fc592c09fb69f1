/**
 * The sampler: process memory, CPU, `tf.memory()` and nvidia-smi at a fixed interval while
 * training runs, lined up with training events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { GPU_QUERY_FIELDS, type GpuSample, NvidiaSmiCsvStream, type NvidiaSmiLineError, type NvidiaSmiRecord, gpuSampleFromRecord } from './nvidia-smi';
import { findOnPath } from './tools';

// ---------------------------------------------------------------------------------------------
// The sampler
// ---------------------------------------------------------------------------------------------

/** One sample of the process and of tfjs, taken on the JavaScript thread. */
export interface ProcessSample {
  /** Milliseconds since the sampler started. */
  tMs: number;
  /**
   * How late this sample is against its schedule. Samples are taken on the JavaScript thread:
   * while a synchronous kernel (wasm, cpu) or a long step runs, the timer waits, and the lag says
   * how long. Event-triggered samples have lag 0.
   */
  lagMs: number;
  /** `'timer'`, `'event'` (taken at an epoch boundary), `'start'` or `'stop'`. */
  trigger: 'timer' | 'event' | 'start' | 'stop';
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory of C++ objects bound to JS (wasm memory and tensor buffers land here and in arrayBuffers). */
  externalBytes: number;
  arrayBuffersBytes: number;
  /** Process CPU time over wall time since the previous sample, in % of one core; null for the first. */
  cpuPct: number | null;
  /** `tf.memory().numTensors`. */
  tfNumTensors: number;
  /** `tf.memory().numBytes` (an upper bound when {@link tfUnreliable}). */
  tfNumBytes: number;
  /** GPU bytes where the backend reports them (webgpu, webgl), else null (see the run's sources). */
  tfNumBytesInGPU: number | null;
  /** True when the backend says its memory numbers are unreliable (tfjs-node, the cpu backend). */
  tfUnreliable: boolean;
  /** The backend that was active. */
  backend: string;
}

/** Kinds of training events. */
export type TrainingEventKind = 'train-begin' | 'epoch-begin' | 'batch-end' | 'epoch-end' | 'train-end' | 'mark';

/** A training event (from a tfjs callback or a hand-written loop), on the sampler's clock. */
export interface TrainingEvent {
  tMs: number;
  kind: TrainingEventKind;
  /** 0-based epoch, or null. */
  epoch: number | null;
  /** 0-based batch within the epoch, or null. */
  batch: number | null;
  /** Free text (for `mark`). */
  label: string | null;
  /** Numeric logs (loss, acc, dataMs …). */
  logs: Record<string, number>;
}

/** Whether one source of measurements worked in a run. */
export interface SourceStatus {
  source: 'process' | 'tf.memory' | 'tf.memory (GPU bytes)' | 'nvidia-smi';
  /** `ok`, `missing` (no values, never zeros) or `unreliable` (values are upper bounds). */
  status: 'ok' | 'missing' | 'unreliable';
  /** Why it is missing or unreliable; null when ok. */
  reason: string | null;
}

/** Everything a sampler recorded. */
export interface MonitorRun {
  intervalMs: number;
  /** ISO time the sampler started. */
  startedAt: string;
  durationMs: number;
  samples: ProcessSample[];
  gpu: GpuSample[];
  events: TrainingEvent[];
  sources: SourceStatus[];
  /** nvidia-smi lines that could not be read. */
  gpuErrors: NvidiaSmiLineError[];
}

/** Options for {@link Sampler}. */
export interface SamplerOptions {
  /** Sampling interval in milliseconds (default 200). nvidia-smi is asked for the same interval. */
  intervalMs?: number;
  /**
   * `'auto'` (default): poll nvidia-smi when it is on PATH. `false`: never. A string: the
   * nvidia-smi executable to run (tests pass a recorded-output player).
   */
  nvidiaSmi?: 'auto' | false | string;
  /** Take a sample at every epoch begin/end event (default true), so per-epoch memory is exact. */
  sampleOnEpochEvents?: boolean;
}

/** Thrown by {@link monitor} when the monitored function throws; carries the run up to that point. */
export class MonitoredError extends Error {
  /** What the sampler recorded until the failure. */
  readonly run: MonitorRun;
  constructor(cause: unknown, run: MonitorRun) {
    super(`monitored run failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MonitoredError';
    this.run = run;
  }
}

const RESERVED_EVENT_COLUMNS = new Set(['t_s', 'kind', 'epoch', 'batch', 'label']);

/**
 * Samples process memory, CPU use, `tf.memory()` and (where present) nvidia-smi at a fixed
 * interval while training runs, and records training events to line them up with.
 *
 * ```ts
 * const s = new monitor.Sampler({ intervalMs: 100 }).start();
 * try { await model.fit(xs, ys, { epochs: 3, callbacks: [s.callback()] }); }
 * finally { run = await s.stop(); }
 * monitor.toDataFrame(run);
 * ```
 *
 * Prefer {@link monitor}, which stops the sampler even when training throws.
 */
export class Sampler {
  /** The sampling interval in ms. */
  readonly intervalMs: number;
  private readonly nvidiaSmiOption: 'auto' | false | string;
  private readonly sampleOnEpochEvents: boolean;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private t0 = 0;
  private epoch0 = 0;
  private startedAt = '';
  private lastTick = 0;
  private lastCpu: NodeJS.CpuUsage | null = null;
  private lastCpuT = 0;
  private timer: NodeJS.Timeout | null = null;
  private child: ChildProcess | null = null;
  private childExit: Promise<void> | null = null;
  private stream: NvidiaSmiCsvStream | null = null;
  private gpuStderr = '';
  private gpuStatus: SourceStatus = { source: 'nvidia-smi', status: 'missing', reason: 'the sampler has not started' };
  private stoppingChild = false;
  private readonly samples: ProcessSample[] = [];
  private readonly gpu: GpuSample[] = [];
  private readonly events: TrainingEvent[] = [];
  private tfReasons = new Set<string>();
  private tfUnreliableSeen = false;
  private gpuBytesSeen = false;
  private finalRun: MonitorRun | null = null;
  private currentEpoch: number | null = null;

  constructor(options: SamplerOptions = {}) {
    const interval = options.intervalMs ?? 200;
    if (!Number.isFinite(interval) || interval < 1) throw new Error(`Sampler: intervalMs must be ≥ 1, got ${interval}`);
    this.intervalMs = Math.round(interval);
    this.nvidiaSmiOption = options.nvidiaSmi ?? 'auto';
    this.sampleOnEpochEvents = options.sampleOnEpochEvents ?? true;
  }

  /** True between {@link start} and {@link stop}. */
  get running(): boolean {
    return this.state === 'running';
  }

  /** Milliseconds since start on the sampler's clock. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** Start sampling (and nvidia-smi, where present). Throws if already started. */
  start(): this {
    if (this.state !== 'idle') throw new Error(`Sampler.start: the sampler is already ${this.state}; create a new one`);
    this.state = 'running';
    this.t0 = performance.now();
    this.epoch0 = Date.now();
    this.startedAt = new Date(this.epoch0).toISOString();
    this.lastCpu = process.cpuUsage();
    this.lastCpuT = 0;
    this.startGpu();
    this.take('start', 0);
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  private tick(): void {
    if (this.state !== 'running') return;
    const t = this.now();
    const lag = Math.max(0, t - this.lastTick - this.intervalMs);
    this.lastTick = t;
    this.take('timer', lag);
  }

  /** Take one sample now (also done by the timer); returns it. */
  sample(): ProcessSample {
    if (this.state !== 'running') throw new Error('Sampler.sample: the sampler is not running');
    return this.take('event', 0);
  }

  private take(trigger: ProcessSample['trigger'], lagMs: number): ProcessSample {
    const tMs = this.now();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    let cpuPct: number | null = null;
    if (this.lastCpu && tMs - this.lastCpuT > 0 && trigger !== 'start') {
      const usedUs = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
      cpuPct = (usedUs / 1000 / (tMs - this.lastCpuT)) * 100;
    }
    this.lastCpu = cpu;
    this.lastCpuT = tMs;
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    const unreliable = m.unreliable === true;
    if (unreliable) {
      this.tfUnreliableSeen = true;
      for (const r of m.reasons ?? []) this.tfReasons.add(r);
    }
    const inGpu = typeof m.numBytesInGPU === 'number' ? m.numBytesInGPU : null;
    if (inGpu !== null) this.gpuBytesSeen = true;
    const s: ProcessSample = {
      tMs,
      lagMs,
      trigger,
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      arrayBuffersBytes: mem.arrayBuffers,
      cpuPct,
      tfNumTensors: m.numTensors,
      tfNumBytes: m.numBytes,
      tfNumBytesInGPU: inGpu,
      tfUnreliable: unreliable,
      backend: tf.getBackend() ?? 'none',
    };
    this.samples.push(s);
    return s;
  }

  private startGpu(): void {
    if (this.nvidiaSmiOption === false) {
      this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: 'nvidia-smi polling was turned off (nvidiaSmi: false)' };
      return;
    }
    const exe = this.nvidiaSmiOption === 'auto' ? findOnPath('nvidia-smi') : findOnPath(this.nvidiaSmiOption);
    if (!exe) {
      this.gpuStatus = {
        source: 'nvidia-smi',
        status: 'missing',
        reason: this.nvidiaSmiOption === 'auto'
          ? 'nvidia-smi is not on PATH (no NVIDIA driver on this machine): no GPU utilization or GPU memory was recorded'
          : `${this.nvidiaSmiOption} was not found or is not executable`,
      };
      return;
    }
    this.stream = new NvidiaSmiCsvStream({ source: exe });
    this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: 'nvidia-smi started but printed no sample yet' };
    const child = spawn(exe, [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv', `--loop-ms=${this.intervalMs}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.childExit = new Promise<void>((resolve) => {
      child.on('close', (code, signal) => {
        this.consumeGpu(this.stream?.end() ?? []);
        if (!this.stoppingChild && code !== 0) {
          const msg = (this.gpuStderr.trim() || 'no message').split('\n')[0];
          const reason = `nvidia-smi exited with ${code ?? signal}: ${msg}`;
          this.gpuStatus = this.gpu.length
            ? { source: 'nvidia-smi', status: 'ok', reason: `${reason} (after ${this.gpu.length} samples)` }
            : { source: 'nvidia-smi', status: 'missing', reason };
        }
        resolve();
      });
      child.on('error', (err) => {
        this.gpuStatus = { source: 'nvidia-smi', status: 'missing', reason: `nvidia-smi could not start: ${err.message}` };
        resolve();
      });
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.consumeGpu(this.stream!.push(d)));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.gpuStderr += d));
    child.unref();
  }

  private consumeGpu(records: NvidiaSmiRecord[]): void {
    for (const r of records) {
      const arrived = this.now();
      const tMs = r.timestampMs !== null ? r.timestampMs - this.epoch0 : arrived;
      this.gpu.push(gpuSampleFromRecord(r, tMs));
    }
    if (this.gpu.length && this.gpuStatus.status !== 'ok') this.gpuStatus = { source: 'nvidia-smi', status: 'ok', reason: null };
  }

  /**
   * Record a training event. `epoch-begin`/`epoch-end` also take a sample (unless
   * `sampleOnEpochEvents` is false). Events after {@link stop} are ignored.
   */
  event(kind: TrainingEventKind, info: { epoch?: number | null; batch?: number | null; label?: string; logs?: Record<string, unknown> } = {}): void {
    if (this.state !== 'running') return;
    const logs: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.logs ?? {})) {
      // tfjs batch logs repeat `batch` and `size`; keep them under another name so columns stay unique.
      if (typeof v === 'number' && Number.isFinite(v)) logs[RESERVED_EVENT_COLUMNS.has(k) ? `log_${k}` : k] = v;
    }
    if (kind === 'epoch-begin' && info.epoch !== undefined) this.currentEpoch = info.epoch;
    const epoch = info.epoch !== undefined ? info.epoch : kind === 'batch-end' ? this.currentEpoch : null;
    this.events.push({ tMs: this.now(), kind, epoch: epoch ?? null, batch: info.batch ?? null, label: info.label ?? null, logs });
    if (this.sampleOnEpochEvents && (kind === 'epoch-begin' || kind === 'epoch-end')) this.take('event', 0);
  }

  /**
   * A tfjs callback for `model.fit` / `fitDataset` that records train/epoch/batch events with
   * their logs. It yields to the event loop after every batch (`yieldEvery: 'batch'`), so the
   * timer gets a chance to sample during training.
   */
  callback(): tf.CustomCallback {
    return new tf.CustomCallback(
      {
        onTrainBegin: async () => this.event('train-begin'),
        onEpochBegin: async (epoch) => this.event('epoch-begin', { epoch }),
        onBatchEnd: async (batch, logs) => this.event('batch-end', { batch, logs }),
        onEpochEnd: async (epoch, logs) => this.event('epoch-end', { epoch, logs }),
        onTrainEnd: async () => this.event('train-end'),
      },
      'batch',
    );
  }

  private sources(): SourceStatus[] {
    const out: SourceStatus[] = [{ source: 'process', status: 'ok', reason: null }];
    out.push(this.tfUnreliableSeen
      ? { source: 'tf.memory', status: 'unreliable', reason: `the '${this.samples.find((s) => s.tfUnreliable)?.backend}' backend reports unreliable memory: ${[...this.tfReasons].join(' ') || 'no reason given'}` }
      : { source: 'tf.memory', status: 'ok', reason: null });
    out.push(this.gpuBytesSeen
      ? { source: 'tf.memory (GPU bytes)', status: 'ok', reason: null }
      : { source: 'tf.memory (GPU bytes)', status: 'missing', reason: `the '${this.samples[0]?.backend ?? tf.getBackend()}' backend keeps tensors in host memory and reports no numBytesInGPU` });
    out.push({ ...this.gpuStatus });
    return out;
  }

  /** What has been recorded so far (a copy); after {@link stop}, the final run. */
  snapshot(): MonitorRun {
    if (this.finalRun) return this.finalRun;
    return {
      intervalMs: this.intervalMs,
      startedAt: this.startedAt,
      durationMs: this.state === 'idle' ? 0 : this.now(),
      samples: [...this.samples],
      gpu: [...this.gpu],
      events: [...this.events],
      sources: this.sources(),
      gpuErrors: [...(this.stream?.errors ?? [])],
    };
  }

  /**
   * Stop sampling: clear the timer, take a last sample, stop nvidia-smi and read what it had
   * printed. Safe to call twice (the second call returns the same run).
   */
  async stop(): Promise<MonitorRun> {
    if (this.finalRun) return this.finalRun;
    if (this.state === 'idle') throw new Error('Sampler.stop: the sampler was never started');
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.take('stop', 0);
    const durationMs = this.now();
    this.state = 'stopped';
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.stoppingChild = true;
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child?.kill('SIGKILL'), 2000);
      await this.childExit;
      clearTimeout(killer);
    } else if (this.childExit) {
      await this.childExit;
    }
    const run = this.snapshot();
    run.durationMs = durationMs;
    this.finalRun = run;
    return run;
  }

  /** The process id of the nvidia-smi child, or null when none was started (for tests). */
  get nvidiaSmiPid(): number | null {
    return this.child?.pid ?? null;
  }
}

/**
 * Run `fn` with a started {@link Sampler} and always stop it, even when `fn` throws. On success
 * returns `fn`'s value and the run; on failure throws a {@link MonitoredError} whose `run` holds
 * everything recorded until the failure and whose `cause` is the original error.
 */
export async function monitor<T>(fn: (sampler: Sampler) => T | Promise<T>, options: SamplerOptions = {}): Promise<{ value: T; run: MonitorRun }> {
  const sampler = new Sampler(options).start();
  let value: T;
  try {
    value = await fn(sampler);
  } catch (err) {
    const run = await sampler.stop();
    throw new MonitoredError(err, run);
  }
  return { value, run: await sampler.stop() };
}
