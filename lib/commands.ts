/**
 * External commands (nvidia-smi, nsys, ncu, nvprof): find them on PATH and run them with a time
 * limit, never throwing; a missing tool or a failed run comes back as a reason in words.
 *
 * The bottom of the house: `backends` ask it for the GPU's name (device banners, ranking) and
 * `monitor` runs its samplers and profilers through it (`monitor.*` re-exports these functions).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The full path of an executable found on `PATH` (or in `searchPath`), or null. */
export function findOnPath(name: string, searchPath: string = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) {
    try {
      fs.accessSync(name, fs.constants.X_OK);
      return path.resolve(name);
    } catch {
      return null;
    }
  }
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      if (fs.statSync(file).isFile()) {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      }
    } catch {
      /* not here */
    }
  }
  return null;
}

/** What running an external command gave. */
export interface ToolRun {
  /** The command line as run (or as it would have been run). */
  command: string;
  /** False when the executable is not on PATH; nothing was run. */
  found: boolean;
  /** Exit code, or null when it did not run, timed out or was killed. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Why it did not run or did not succeed, in words; null on success. */
  reason: string | null;
  /** Wall milliseconds it ran. */
  ms: number;
}

/**
 * Run an external command (no shell) with a time limit and capture its output. Never throws: a
 * missing executable, a non-zero exit or a timeout come back as `reason`.
 */
export async function runTool(cmd: string, args: readonly string[] = [], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ToolRun> {
  const command = [cmd, ...args].join(' ');
  const exe = findOnPath(cmd);
  if (!exe) return { command, found: false, exitCode: null, stdout: '', stderr: '', reason: `${cmd} is not on PATH`, ms: 0 };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const t0 = performance.now();
  return new Promise<ToolRun>((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // Its own process group, so a timeout also ends what it started (e.g. the program nsys profiles).
    const child = spawn(exe, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ command, found: true, exitCode: null, stdout, stderr, reason: `${cmd} could not start: ${err.message}`, ms: performance.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(finished(cmd, command, { code, signal, timedOut, timeoutMs, stdout, stderr }, performance.now() - t0));
    });
  });
}

/** How a command that ran ended, as a {@link ToolRun} (shared by {@link runTool} and {@link runToolSync}). */
function finished(cmd: string, command: string, r: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; timeoutMs: number; stdout: string; stderr: string }, ms: number): ToolRun {
  const firstLine = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  const reason = r.timedOut
    ? `${cmd} did not finish within ${r.timeoutMs} ms and was killed`
    : r.code === 0
      ? null
      : `${cmd} exited with ${r.code ?? r.signal}${firstLine ? `: ${firstLine}` : ''}`;
  return { command, found: true, exitCode: r.timedOut ? null : r.code, stdout: r.stdout, stderr: r.stderr, reason, ms };
}

/**
 * {@link runTool}, synchronously (for code that cannot wait, such as a device banner). Never
 * throws: a missing executable, a non-zero exit or a timeout come back as `reason`.
 */
export function runToolSync(cmd: string, args: readonly string[] = [], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): ToolRun {
  const command = [cmd, ...args].join(' ');
  const exe = findOnPath(cmd);
  if (!exe) return { command, found: false, exitCode: null, stdout: '', stderr: '', reason: `${cmd} is not on PATH`, ms: 0 };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const t0 = performance.now();
  const r = spawnSync(exe, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  const ms = performance.now() - t0;
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) return { command, found: true, exitCode: null, stdout: r.stdout ?? '', stderr: r.stderr ?? '', reason: `${cmd} could not start: ${r.error.message}`, ms };
  return finished(cmd, command, { code: r.status, signal: r.signal, timedOut, timeoutMs, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }, ms);
}

/**
 * The name of the first GPU nvidia-smi lists ("NVIDIA H100 80GB HBM3"), or null when there is
 * none or nvidia-smi is missing or fails. `command` replaces `nvidia-smi` (tests).
 */
export function nvidiaGpuName(options: { command?: string } = {}): string | null {
  const run = runToolSync(options.command ?? 'nvidia-smi', ['--query-gpu=name', '--format=csv'], { timeoutMs: 5000 });
  if (run.reason) return null;
  // A header line naming the columns ("name"), then one line per GPU. (GPU names hold no comma.)
  const [header, first] = run.stdout.split('\n').filter((l) => l.trim() !== '');
  const column = (header ?? '').split(',').map((c) => c.trim()).indexOf('name');
  return (column >= 0 ? first?.split(',')[column]?.trim() : undefined) || null;
}
