/**
 * npm run setup:tensorflow [-- --gpu] [-- --optional] [-- --force]
 *
 * Builds the native TensorFlow backend (`tensorflow` in tfjs) against today's TensorFlow:
 * the binding of @tensorflow/tfjs-node 4.22 (or tfjs-node-gpu with --gpu) compiled against the
 * libraries and headers of pip's TensorFlow 2.21 wheel, instead of the libtensorflow 2.9.1 that
 * the package's own install script downloads (CUDA 11.2 only; unreachable on some machines).
 *
 *   1. package   @tensorflow/tfjs-node(-gpu) is in node_modules (installed without its scripts)
 *   2. wheel     `python3 -m pip download` the wheel(s) into .tensorflow/wheels (git-ignored)
 *   3. extract   only libtensorflow_cc / libtensorflow_framework and tensorflow/include
 *                (--gpu: also the nvidia-* CUDA 12 libraries) into .tensorflow/<variant>-<version>/
 *   4. link      node_modules/@tensorflow/tfjs-node/deps/{include,lib} → that folder
 *   5. build     the binding with npm's bundled node-gyp (Node's own headers when present)
 *   6. check     a fresh `node` loads the package and runs on the 'tensorflow' backend
 *
 * Idempotent: when the binding loads and matches the wanted TensorFlow, it says so and stops.
 * After `npm ci` has wiped node_modules, the binding is restored from .tensorflow/ (checked by
 * loading it) or rebuilt. Failures print the step, the reason and the fix; with --optional the
 * script then exits 0 so that `npm start` / `npm test` carry on with wasm (under CI=true the
 * native tests fail loudly instead). GPULAB_NATIVE=0 skips everything.
 *
 * The Python run here (pip, and zipfile to unpack only the libraries and headers from the wheel)
 * is there because pip is: the wheel comes from pip, and Node has no zip reader of its own.
 */
import { spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOnPath } from '../../lib/commands';
import { writeFileAtomic } from '../../lib/fsutil';
import { ensureNative, npmCommand } from './ensure-native';

const TF_VERSION = '2.21.0';
const TFJS_NODE_VERSION = '4.22.0';
const root = path.resolve(__dirname, '..', '..');
const args = new Set(process.argv.slice(2));
const gpu = args.has('--gpu') || process.env.GPULAB_NATIVE === 'gpu';
const optional = args.has('--optional');
const force = args.has('--force');
const variant = gpu ? 'gpu' : 'cpu';
const pkgName = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
const pipSpec = gpu ? `tensorflow[and-cuda]==${TF_VERSION}` : `tensorflow-cpu==${TF_VERSION}`;
const cacheDir = process.env.GPULAB_TF_CACHE ? path.resolve(process.env.GPULAB_TF_CACHE) : path.join(root, '.tensorflow');
const treeDir = path.join(cacheDir, `tensorflow-${variant}-${TF_VERSION}`);
const tfDir = path.join(treeDir, 'tensorflow');
const pkgDir = path.join(root, 'node_modules', pkgName);
const statusFile = path.join(cacheDir, `status-${variant}.json`);
const t0 = Date.now();

const log = (msg: string) => console.log(`[setup:tensorflow] ${msg}`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A failed step: its name, why it failed, and what fixes it. */
class StepError extends Error {
  constructor(
    readonly step: string,
    reason: string,
    readonly fix: string,
  ) {
    super(reason);
  }
}

/** What the last run concluded, for the notebooks' fallback note (.tensorflow/status-<variant>.json). */
interface Status {
  ok: boolean;
  step?: string;
  reason?: string;
  fix?: string;
  tfVersion?: string;
  gpu?: boolean;
}

function writeStatus(obj: Status): void {
  try {
    writeFileAtomic(statusFile, `${JSON.stringify({ ...obj, variant, package: pkgName, tensorflow: TF_VERSION, at: new Date().toISOString() }, null, 2)}\n`);
  } catch {
    /* the status file is a courtesy for the notebooks' fallback note */
  }
}

type RunOptions = SpawnSyncOptions & { fix?: string };

function run(step: string, cmd: string, argv: readonly string[], opts: RunOptions = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, ...opts }) as SpawnSyncReturns<string>;
  if (r.error) throw new StepError(step, `${cmd} could not run: ${r.error.message}`, opts.fix ?? `install ${cmd}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').filter(Boolean);
    throw new StepError(step, `${path.basename(cmd)} ${argv.slice(0, 3).join(' ')} … exited ${r.status}:\n    ${out.slice(-12).join('\n    ')}`, opts.fix ?? 'see the output above');
  }
  return r;
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** N-API version folder node-pre-gyp resolves for the package (lib/napi-vN), as tfjs-node's index.js does. */
function bindingPath(): string {
  const fromPackage = createRequire(path.join(pkgDir, 'package.json'));
  const binary = fromPackage('@mapbox/node-pre-gyp') as { find: (packageJson: string) => string };
  return binary.find(path.join(pkgDir, 'package.json'));
}

const buildStamp = () => ({ package: pkgName, packageVersion: readJson<{ version?: string }>(path.join(pkgDir, 'package.json'))?.version, tensorflow: TF_VERSION, variant, node: process.versions.modules });

/** What loading the package in a fresh node showed. */
type LoadResult = { ok: true; backend: string; tf: string; gpu: boolean; y: number[] } | { ok: false; reason: string };

/** Loads the package in a fresh node and reports what TensorFlow runs. */
function loadCheck(): LoadResult {
  const code = `
    const tf = require(${JSON.stringify(pkgName)});
    const b = tf.backend();
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const y = tf.matMul(x, x).dataSync();
    console.log(JSON.stringify({ backend: tf.getBackend(), tf: b.binding.TF_Version, gpu: b.isUsingGpuDevice, y: Array.from(y) }));`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const res = JSON.parse(line) as { backend: string; tf: string; gpu: boolean; y: number[] };
    if (res.backend !== 'tensorflow') return { ok: false, reason: `the package loaded but the backend is '${res.backend}'` };
    if (res.y.join(',') !== '7,10,15,22') return { ok: false, reason: `a 2×2 matmul gave ${res.y}` };
    return { ok: true, ...res };
  } catch {
    const err = (r.stderr ?? '').trim().split('\n').filter((l) => /Error|error:|cannot open/.test(l)).slice(0, 3).join(' | ');
    return { ok: false, reason: err || `exit ${r.status}` };
  }
}

function describeLoad(res: { tf: string; gpu: boolean }): string {
  return `TensorFlow ${res.tf} on ${res.gpu ? 'GPU' : 'CPU'} (${pkgName})`;
}

function dirSize(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

// ---- steps ----

function ensurePackage(): void {
  if (fs.existsSync(path.join(pkgDir, 'binding.gyp'))) return;
  log(`1/6 package: ${pkgName} is not in node_modules; installing ${pkgName}@${TFJS_NODE_VERSION} without its install script`);
  const [npm, npmArgs] = npmCommand();
  run('package', npm, [...npmArgs, 'install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', `${pkgName}@${TFJS_NODE_VERSION}`], {
    fix: `run: npm install --no-save --ignore-scripts ${pkgName}@${TFJS_NODE_VERSION}`,
  });
  if (!fs.existsSync(path.join(pkgDir, 'binding.gyp'))) throw new StepError('package', `${pkgName} is still missing after npm install`, 'run npm ci');
  // `npm install` prunes what npm did not install itself, such as the nodejs-polars platform
  // binary that scripts/setup/ensure-native.ts unpacks (and --ignore-scripts skips our postinstall):
  // put it back.
  try {
    ensureNative(root);
  } catch (err) {
    throw new StepError('package', (err as Error).message, 'run: node --import tsx scripts/setup/ensure-native.ts');
  }
}

/**
 * --gpu: the nvidia-* requirements the TensorFlow wheel declares for its `and-cuda` extra, read
 * from the wheel's METADATA (so that only the CUDA wheels are fetched, not keras, numpy, …).
 */
function cudaRequirements(wheelDir: string): string[] {
  const script = `
import sys, zipfile, glob, os, re
w = [p for p in glob.glob(os.path.join(sys.argv[1], 'tensorflow-*.whl'))][0]
z = zipfile.ZipFile(w)
meta = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')][0]
for line in z.read(meta).decode().splitlines():
  if line.startswith('Requires-Dist:') and re.search(r'extra\\s*==\\s*["\\']and-cuda["\\']', line):
    print(line.split(':', 1)[1].split(';')[0].strip().replace(' ', ''))
`;
  const r = run('wheel', 'python3', ['-c', script, wheelDir], { fix: 'the tensorflow wheel has no and-cuda extra: check the TensorFlow version' });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

function pipDownload(wheelDir: string): void {
  const base = ['-m', 'pip', 'download', '--timeout', '5', '--retries', '0', '--disable-pip-version-check', '--only-binary=:all:', '--no-deps', '-d', wheelDir];
  const spec = gpu ? `tensorflow==${TF_VERSION}` : pipSpec;
  const fix = `check that \`python3 -m pip download ${spec}\` works (internet access to PyPI, or a configured index); TensorFlow 2.21 ships wheels for CPython 3.10–3.13`;
  const first = spawnSync('python3', [...base, spec], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (first.error) throw new StepError('wheel', `python3 could not run: ${first.error.message}`, 'install Python 3 with pip (Debian: apt-get install python3-pip)');
  if (first.status === 0) return gpu ? pipDownloadCuda(wheelDir, base, fix) : undefined;
  // This Python may have no matching wheel (e.g. a newer CPython): the libraries do not depend on
  // the Python version, so ask for the CPython 3.11 wheel explicitly.
  log('    no wheel for this Python; retrying for CPython 3.11 manylinux x86-64');
  const second = spawnSync('python3', [...base, '--python-version', '3.11', '--implementation', 'cp', '--platform', 'manylinux_2_27_x86_64', '--platform', 'manylinux_2_17_x86_64', '--platform', 'manylinux2014_x86_64', spec], { cwd: root, encoding: 'utf8' });
  if (second.status !== 0) {
    const lines = [...new Set(`${first.stderr}\n${second.stderr}`.trim().split('\n').filter((l) => /ERROR|error/.test(l)))].slice(-4);
    throw new StepError('wheel', `pip could not download ${spec}: ${lines.join(' | ') || `exit ${second.status}`}`, fix);
  }
  return gpu ? pipDownloadCuda(wheelDir, base, fix) : undefined;
}

/** --gpu: download the CUDA 12 libraries (nvidia-* wheels) that tensorflow[and-cuda] pulls in. */
function pipDownloadCuda(wheelDir: string, base: readonly string[], fix: string): void {
  const reqs = cudaRequirements(wheelDir);
  if (!reqs.length) throw new StepError('wheel', `the tensorflow ${TF_VERSION} wheel declares no and-cuda requirements`, fix);
  log(`    CUDA wheels for tensorflow[and-cuda]: ${reqs.join(' ')}`);
  run('wheel', 'python3', [...base, ...reqs], { fix });
}

/** Extracts the TensorFlow libraries + headers (and the nvidia-* libraries for --gpu) with Python's zipfile. */
function extract(wheelDir: string, dest: string): number {
  const script = `
import sys, zipfile, os, glob
wheel_dir, dest, gpu = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
tf = [w for w in glob.glob(os.path.join(wheel_dir, 'tensorflow*.whl')) if os.path.basename(w).split('-')[0] in ('tensorflow', 'tensorflow_cpu')]
if len(tf) != 1: sys.exit('expected one tensorflow wheel in %s, found %d' % (wheel_dir, len(tf)))
libs = ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2')
n = 0
with zipfile.ZipFile(tf[0]) as z:
  names = set(z.namelist())
  for lib in libs:
    if lib not in names: sys.exit('%s has no %s' % (os.path.basename(tf[0]), lib))
  for name in names:
    if name in libs or (name.startswith('tensorflow/include/') and not name.endswith('/')):
      z.extract(name, dest); n += 1
if gpu:
  for w in glob.glob(os.path.join(wheel_dir, 'nvidia_*.whl')):
    with zipfile.ZipFile(w) as z:
      for name in z.namelist():
        if name.startswith('nvidia/') and '/lib/' in name and not name.endswith('/'):
          z.extract(name, dest); n += 1
print(n)
`;
  const r = run('extract', 'python3', ['-c', script, wheelDir, dest, gpu ? '1' : '0'], { fix: `delete ${path.relative(root, cacheDir)}/ and run npm run setup:tensorflow again (the wheel may be truncated)` });
  return Number(r.stdout.trim());
}

function ensureTree(): boolean {
  const stampFile = path.join(treeDir, '.complete.json');
  if (readJson<{ spec?: string }>(stampFile)?.spec === pipSpec && fs.existsSync(path.join(tfDir, 'libtensorflow_cc.so.2'))) return false;
  const wheelDir = path.join(cacheDir, 'wheels');
  fs.rmSync(wheelDir, { recursive: true, force: true });
  fs.mkdirSync(wheelDir, { recursive: true });
  let t = Date.now();
  log(`2/6 wheel: python3 -m pip download ${pipSpec} (${gpu ? 'the tensorflow wheel, then only its nvidia-* CUDA 12 wheels: several GB' : '≈274 MB'}; pip's cache makes a second fetch fast)`);
  pipDownload(wheelDir);
  const wheelBytes = fs.readdirSync(wheelDir).reduce((s, f) => s + fs.statSync(path.join(wheelDir, f)).size, 0);
  log(`    downloaded ${(wheelBytes / 2 ** 20).toFixed(0)} MiB in ${secs(Date.now() - t)}`);
  t = Date.now();
  const staging = `${treeDir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  log(`3/6 extract: the TensorFlow libraries and tensorflow/include${gpu ? ' and the nvidia-* libraries' : ''} → ${path.relative(root, treeDir)}/`);
  const files = extract(wheelDir, staging);
  fs.writeFileSync(path.join(staging, '.complete.json'), `${JSON.stringify({ spec: pipSpec, files, wheelBytes, at: new Date().toISOString() })}\n`);
  fs.rmSync(treeDir, { recursive: true, force: true });
  fs.renameSync(staging, treeDir);
  fs.rmSync(wheelDir, { recursive: true, force: true });
  log(`    ${files} files, ${(dirSize(treeDir) / 2 ** 20).toFixed(0)} MiB on disk, in ${secs(Date.now() - t)} (the wheel itself is deleted)`);
  return true;
}

/** node_modules/<pkg>/deps/include → the header tree; deps/lib holds relative symlinks to the libraries. */
function linkDeps(): void {
  const deps = path.join(pkgDir, 'deps');
  fs.rmSync(deps, { recursive: true, force: true });
  fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
  fs.symlinkSync(path.relative(deps, path.join(tfDir, 'include')), path.join(deps, 'include'));
  const libDir = path.join(deps, 'lib');
  const rel = (f: string) => path.relative(libDir, path.join(tfDir, f));
  // binding.gyp links -ltensorflow -ltensorflow_framework; libtensorflow_cc.so.2 exports the
  // C and eager C API that libtensorflow.so.2 used to, and its soname is what the binding records.
  fs.symlinkSync(rel('libtensorflow_cc.so.2'), path.join(libDir, 'libtensorflow.so.2'));
  fs.symlinkSync('libtensorflow.so.2', path.join(libDir, 'libtensorflow.so'));
  fs.symlinkSync(rel('libtensorflow_cc.so.2'), path.join(libDir, 'libtensorflow_cc.so.2'));
  fs.symlinkSync(rel('libtensorflow_framework.so.2'), path.join(libDir, 'libtensorflow_framework.so.2'));
  fs.symlinkSync('libtensorflow_framework.so.2', path.join(libDir, 'libtensorflow_framework.so'));
}

/** The CUDA library folders of the nvidia-* wheels (--gpu). */
function nvidiaLibDirs(): string[] {
  const nv = path.join(treeDir, 'nvidia');
  if (!fs.existsSync(nv)) return [];
  return fs.readdirSync(nv).map((d) => path.join(nv, d, 'lib')).filter((d) => fs.existsSync(d));
}

function nodeGyp(): string {
  const candidates = [
    process.env.npm_execpath ? path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : null,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter((c): c is string => c !== null);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new StepError('build', `npm's bundled node-gyp was not found (looked in ${candidates.join(', ')})`, 'install node-gyp (npm install -g node-gyp) or run this through npm');
  return found;
}

/**
 * Node's own headers: <prefix>/include/node of the running node (Debian's nodejs, nodejs.org
 * tarballs, nvm all ship them). When absent, node-gyp downloads the headers as usual.
 */
function nodeDir(): string | null {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

function build(bindingFile: string): void {
  for (const tool of ['make', 'g++']) {
    if (!findOnPath(tool)) {
      throw new StepError('build', `${tool} is not installed`, 'install a C++ toolchain (Debian/Ubuntu: apt-get install build-essential)');
    }
  }
  const napi = /napi-v(\d+)/.exec(bindingFile)?.[1];
  const dir = nodeDir();
  const argv = [nodeGyp(), 'rebuild', `--jobs=${Math.max(1, os.cpus().length)}`,
    '--module_name=tfjs_binding', `--module_path=${path.dirname(bindingFile)}`, `--napi_build_version=${napi}`];
  if (dir) argv.push(`--nodedir=${dir}`);
  const env = { ...process.env };
  if (gpu) {
    // Absolute run paths: the real TensorFlow folder (its own $ORIGIN/../nvidia/... entries then
    // resolve) and every nvidia-* lib folder.
    const rpaths = [tfDir, ...nvidiaLibDirs()];
    env.LDFLAGS = `${env.LDFLAGS ?? ''} ${rpaths.map((p) => `-Wl,-rpath,${p}`).join(' ')}`.trim();
  }
  log(`5/6 build: node-gyp rebuild (${dir ? `Node headers from ${dir}/include/node` : "Node headers downloaded by node-gyp: none next to this node"}; ≈30 s on 2 cores)`);
  const t = Date.now();
  run('build', process.execPath, argv, {
    cwd: pkgDir,
    env,
    fix: dir ? 'see the compiler output above' : "node-gyp could not fetch Node's headers: install them (Debian: the nodejs package ships /usr/include/node) or set npm_config_nodedir",
  });
  if (!fs.existsSync(bindingFile)) throw new StepError('build', `node-gyp finished but ${bindingFile} is missing`, 'see the node-gyp output');
  fs.rmSync(path.join(pkgDir, 'build'), { recursive: true, force: true });
  log(`    built ${path.relative(root, bindingFile)} in ${secs(Date.now() - t)}`);
}

function main(): number {
  if (/^(0|false|no|off)$/i.test(process.env.GPULAB_NATIVE ?? '')) {
    log('GPULAB_NATIVE=0: skipped; the notebooks run on wasm (or WebGPU)');
    return 0;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`${process.platform}-${process.arch}: skipped. This script supports Linux x86-64 only (pip's TensorFlow wheels are built for it); the notebooks run on wasm here.`);
    writeStatus({ ok: false, step: 'platform', reason: `${process.platform}-${process.arch} is not supported by setup:tensorflow`, fix: 'use Linux x86-64' });
    return 0;
  }
  let step = 'package';
  try {
    ensurePackage();
    const bindingFile = bindingPath();
    const stamp = buildStamp();
    const cached = path.join(treeDir, 'bindings', `${pkgName.replace('/', '+')}-${stamp.packageVersion}`, path.basename(path.dirname(bindingFile)), 'tfjs_binding.node');
    const stampFile = path.join(pkgDir, 'deps', '.gpulab-build.json');
    if (!force && fs.existsSync(bindingFile) && JSON.stringify(readJson(stampFile)) === JSON.stringify(stamp)) {
      const res = loadCheck();
      if (res.ok) {
        log(`nothing to do: ${describeLoad(res)} already loads (${secs(Date.now() - t0)})`);
        writeStatus({ ok: true, tfVersion: res.tf, gpu: res.gpu });
        return 0;
      }
      log(`the existing build no longer loads (${res.reason}); rebuilding`);
    }
    step = 'wheel';
    const fresh = ensureTree();
    if (!fresh) log(`2-3/6 wheel + extract: ${path.relative(root, treeDir)}/ is already there`);
    step = 'link';
    log('4/6 link: deps/include and deps/lib → the extracted TensorFlow');
    linkDeps();
    step = 'build';
    let restored = false;
    if (!force && !fresh && fs.existsSync(cached)) {
      fs.mkdirSync(path.dirname(bindingFile), { recursive: true });
      fs.copyFileSync(cached, bindingFile);
      restored = true;
      log(`5/6 build: restored the binding built earlier from ${path.relative(root, cached)}`);
    } else {
      build(bindingFile);
    }
    step = 'check';
    log('6/6 check: loading it in a fresh node');
    let res = loadCheck();
    if (!res.ok && restored) {
      log(`    the restored binding does not load (${res.reason}); building it`);
      step = 'build';
      build(bindingFile);
      step = 'check';
      res = loadCheck();
    }
    if (!res.ok) {
      throw new StepError('check', `${pkgName} does not load: ${res.reason}`, `run node -e "require('${pkgName}')" to see the full error; npm run setup:tensorflow -- --force rebuilds`);
    }
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    if (!restored) fs.copyFileSync(bindingFile, cached);
    fs.writeFileSync(stampFile, JSON.stringify(stamp));
    if (gpu && !res.gpu) {
      log(`    note: TensorFlow loaded but sees no GPU (driver missing, or a CUDA library did not load); run with TF_CPP_MIN_LOG_LEVEL=0 to see why`);
    }
    log(`done: ${describeLoad(res)} in ${secs(Date.now() - t0)}`);
    writeStatus({ ok: true, tfVersion: res.tf, gpu: res.gpu });
    return 0;
  } catch (err) {
    const e = err instanceof StepError ? err : new StepError(step, err instanceof Error ? err.message : String(err), 'see the message above');
    console.error(`[setup:tensorflow] FAILED at step "${e.step}": ${e.message}`);
    console.error(`[setup:tensorflow]   fix: ${e.fix}`);
    console.error(`[setup:tensorflow]   until then the notebooks run on ${gpu ? 'the native CPU build if there is one, else wasm' : 'wasm'} (GPULAB_NATIVE=0 skips this step)`);
    writeStatus({ ok: false, step: e.step, reason: e.message.split('\n')[0], fix: e.fix });
    return optional ? 0 : 1;
  }
}

process.exitCode = main();
