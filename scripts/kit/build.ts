/**
 * `npm run kit`: build the carryable GPU kit, everything needed to run the benchmarks on a bare
 * Linux x86-64 GPU machine that has a driver but no Node and no internet, in build/gpu-kit/:
 *
 *   run.sh               unpacks once, sets up the Vulkan driver/library paths, runs the bench
 *                        (a POSIX shell script: it runs before the kit's node is unpacked)
 *   gpulab-kit.tar.xz    bin/node (this machine's node binary), app/main.cjs (the bench entry
 *                        bundled by esbuild with the lib and tfjs), app/smoke.cjs (bench/gpu-smoke.ts),
 *                        the tfjs wasm binaries, app/node_modules/webgpu (dawn.node for linux-x64
 *                        only, with libvulkan.so.1 beside it), lib/compat (libstdc++ from GCC 12,
 *                        used only where the host's is older), lib/gl (libGLdispatch.so.0, used only
 *                        where the host lacks it: NVIDIA's Vulkan driver links it)
 *   MANIFEST.json, KIT_ID, README.txt
 *
 * Usage: node --import tsx scripts/kit/build.ts [--entry FILE] [--verify]
 *   --entry FILE  the bench entry to bundle (default $GPULAB_KIT_ENTRY, else bench/run.ts; when that
 *                 does not exist, bench/gpu-smoke.ts, with a notice)
 *   --verify      afterwards, unpack the kit into a temp folder and run its smoke test in an empty
 *                 environment (no PATH, no NODE_PATH), with the kit's own node
 * Environment: GPULAB_KIT_NODE (node binary to ship; default the one running this),
 *              GPULAB_KIT_OUT (default build/gpu-kit). Debian packages are cached in .kit/.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { findOnPath } from '../../lib/monitor/tools';

const ROOT = path.resolve(__dirname, '..', '..');
const SMOKE = 'bench/gpu-smoke.ts';
const LIMIT_MB = 60;
const CACHE = '.kit';
const DAWN_PKG = 'node_modules/webgpu';
const DAWN = `${DAWN_PKG}/dist/linux-x64/dawn.node`;
/** Large native packages the benchmarks do not need: bundled as a stub that says so when used. */
const STUB = './scripts/kit/unavailable-module.ts';
const MIB = 1024 * 1024;

const say = (line: string) => console.log(`[gpu-kit] ${line}`);

/** Run a command in the repository root; throws with `why` and its stderr when it fails. */
function run(cmd: string, args: readonly string[], why: string, options: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * MIB, ...options });
  if (r.error || r.status !== 0) {
    throw new Error(`${why}: ${cmd} ${args.join(' ')} ${r.error ? `could not run (${r.error.message})` : `exited ${r.status ?? r.signal}`}\n${String(r.stderr ?? '').trim()}`);
  }
  return String(r.stdout ?? '');
}

function parseArgs(argv: readonly string[]): { entry: string; verify: boolean } {
  let entry = process.env.GPULAB_KIT_ENTRY ?? '';
  let verify = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--entry') {
      entry = argv[++i] ?? '';
      if (!entry) throw new Error('--entry needs a file');
    } else if (argv[i] === '--verify') verify = true;
    else throw new Error(`unknown argument '${argv[i]}' (usage: build.ts [--entry FILE] [--verify])`);
  }
  if (!entry) {
    entry = 'bench/run.ts';
    if (!fs.existsSync(path.join(ROOT, entry))) {
      say(`NOTICE: ${entry} does not exist yet; the kit's main entry is ${SMOKE} instead`);
      entry = SMOKE;
    }
  }
  if (!fs.existsSync(path.join(ROOT, entry))) throw new Error(`bench entry '${entry}' not found`);
  return { entry, verify };
}

/** Bundle a bench entry with the lib and tfjs into one CommonJS file. */
function bundle(entry: string, outfile: string): void {
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    logLevel: 'warning',
    legalComments: 'none',
    // dawn.node's package stays a real package (it locates its .node file itself).
    external: ['webgpu', 'tslab', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    alias: { 'nodejs-polars': STUB, sharp: STUB },
  });
}

/** The Debian packages libvulkan1 (the Vulkan loader) and libglvnd0 (libGLdispatch), downloaded once into .kit/debs. */
function debianPackages(): string[] {
  const dir = path.join(ROOT, CACHE, 'debs');
  fs.mkdirSync(dir, { recursive: true });
  return ['libvulkan1', 'libglvnd0'].map((pkg) => {
    const find = () => fs.readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('_amd64.deb'));
    if (!find()) {
      say(`downloading Debian package ${pkg} (apt-get download, into ${CACHE}/debs)`);
      // As root, apt's download sandbox user cannot write into the repo: download as root.
      const sandbox = os.userInfo().uid === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
      run('apt-get', ['download', ...sandbox, `${pkg}:amd64`], `apt-get download ${pkg} failed (needs apt and a reachable Debian/Ubuntu mirror)`, { cwd: dir });
    }
    const file = find();
    if (!file) throw new Error(`apt-get download ${pkg} left no ${pkg}_*_amd64.deb in ${dir}`);
    return path.join(dir, file);
  });
}

/** The path of a library in the linker cache (x86-64), or null. */
function systemLibrary(name: string): string | null {
  for (const line of run('ldconfig', ['-p'], 'ldconfig -p failed').split('\n')) {
    const m = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
    if (m && m[1] === name && m[2].includes('x86-64')) return m[3];
  }
  return null;
}

function packageVersion(name: string): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Fill the kit folder `k` (the future gpulab-kit/ of the payload); returns libvulkan1's version. */
function stage(k: string, entry: string, nodeBin: string, scratch: string): string {
  for (const d of ['bin', 'app/node_modules/webgpu/dist/linux-x64', 'lib/compat', 'lib/gl']) fs.mkdirSync(path.join(k, d), { recursive: true });
  // 1. The JS: the bench entry and the smoke test, each bundled with the lib and tfjs.
  say(`bundling ${entry} (main) and ${SMOKE} (smoke) with esbuild`);
  bundle(entry, path.join(k, 'app', 'main.cjs'));
  bundle(SMOKE, path.join(k, 'app', 'smoke.cjs'));
  const wasmDir = path.join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, f), path.join(k, 'app', f));
  // 2. Dawn: the webgpu package, linux-x64 only.
  for (const f of ['package.json', 'index.js', 'LICENSE.md']) fs.copyFileSync(path.join(ROOT, DAWN_PKG, f), path.join(k, 'app/node_modules/webgpu', f));
  fs.copyFileSync(path.join(ROOT, DAWN), path.join(k, 'app/node_modules/webgpu/dist/linux-x64/dawn.node'));
  // 3. Debian's libvulkan1 and libglvnd0 (copyFileSync follows the packages' symlinks).
  const debs = debianPackages();
  const x = path.join(scratch, 'debs');
  fs.mkdirSync(x, { recursive: true });
  for (const deb of debs) run('dpkg-deb', ['-x', deb, x], `dpkg-deb -x ${deb} failed`);
  fs.copyFileSync(path.join(x, 'usr/lib/x86_64-linux-gnu/libvulkan.so.1'), path.join(k, 'app/node_modules/webgpu/dist/linux-x64/libvulkan.so.1'));
  fs.copyFileSync(path.join(x, 'usr/lib/x86_64-linux-gnu/libGLdispatch.so.0'), path.join(k, 'lib/gl/libGLdispatch.so.0'));
  // 4. libstdc++/libgcc_s of this machine (GCC 12: dawn.node needs GLIBCXX_3.4.30), for older hosts.
  for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) {
    const src = systemLibrary(lib);
    if (!src) throw new Error(`${lib} not found on this machine`);
    fs.copyFileSync(src, path.join(k, 'lib/compat', lib));
  }
  // 5. node.
  fs.copyFileSync(nodeBin, path.join(k, 'bin/node'));
  fs.chmodSync(path.join(k, 'bin/node'), 0o755);
  return path.basename(debs[0]).split('_')[1];
}

function readme(entry: string): string {
  return `gpulab GPU kit: run the gpulab benchmarks on a Linux x86-64 GPU machine with no Node and no internet.
Copy this whole folder there, then:

  ./run.sh                       run the bench (${entry})
  ./run.sh --smoke               describe the GPU, time a matMul, train a few MLP steps (JSON)
  ./run.sh --smoke --epochs 5    the article's seed experiment: 784-500-10 MLP, batch 100, 5 epochs

It unpacks once into \${TMPDIR:-/tmp}/gpulab-kit-<id> (or $GPULAB_KIT_DIR). Needs glibc >= 2.34,
the GPU driver's Vulkan driver (ICD json; NVIDIA's under /usr/local/nvidia is found automatically),
and xz+tar or python3. Contents and versions: MANIFEST.json.
`;
}

/** Unpack the kit in a temp folder and run its smoke test with no environment at all (no PATH, no HOME). */
function verify(out: string): void {
  const v = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-kit-verify.'));
  fs.cpSync(out, path.join(v, 'kit'), { recursive: true });
  const unpacked = path.join(v, 'unpacked');
  say(`verifying: an empty environment (no PATH, no HOME), ${v}/kit/run.sh --smoke, unpacking into ${unpacked}`);
  const r = spawnSync('/bin/sh', [path.join(v, 'kit', 'run.sh'), '--smoke'], { cwd: v, env: { GPULAB_KIT_DIR: unpacked }, encoding: 'utf8', maxBuffer: 64 * MIB });
  fs.writeFileSync(path.join(v, 'smoke.json'), r.stdout ?? '');
  if (r.status !== 0) throw new Error(`the kit's smoke test failed (output kept in ${v}):\n${r.stdout}\n${r.stderr}`);
  const smoke = JSON.parse(r.stdout) as { execPath: string; node: string; label: string; device: { backend: string }; results: { experiment: string; variant: string; median: number }[] };
  say(`verify: node ${smoke.node} at ${smoke.execPath}; ${smoke.label}; ${smoke.results.map((x) => `${x.experiment} ${x.variant}: median ${x.median.toFixed(3)} s`).join('; ')}`);
  if (!smoke.execPath.startsWith(`${unpacked}/`) || smoke.device.backend !== 'webgpu') {
    throw new Error(`verify: the smoke did not run on webgpu with the kit's node (${v}/smoke.json)`);
  }
  fs.rmSync(v, { recursive: true, force: true });
  say('verify: ok');
}

function main(): void {
  const { entry, verify: wantVerify } = parseArgs(process.argv.slice(2));
  const out = path.resolve(ROOT, process.env.GPULAB_KIT_OUT ?? 'build/gpu-kit');
  const nodeBin = fs.realpathSync(process.env.GPULAB_KIT_NODE ?? process.execPath);
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('build on Linux x86-64 (the kit ships this machine\'s node binary)');
  const target = spawnSync(nodeBin, ['-p', 'process.platform + "-" + process.arch'], { encoding: 'utf8' }).stdout?.trim();
  if (target !== 'linux-x64') throw new Error(`${nodeBin} is not a linux-x64 node`);
  if (!fs.existsSync(path.join(ROOT, DAWN))) throw new Error(`${DAWN} missing: run npm ci`);
  for (const tool of ['xz', 'tar', 'dpkg-deb', 'apt-get', 'ldconfig']) if (!findOnPath(tool)) throw new Error(`${tool} is needed to build the kit`);

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-kit-stage.'));
  const partial = `${out}.partial`;
  try {
    const k = path.join(scratch, 'gpulab-kit');
    const vulkan = stage(k, entry, nodeBin, scratch);
    // 6. Pack, and describe.
    fs.rmSync(partial, { recursive: true, force: true });
    fs.mkdirSync(partial, { recursive: true });
    const payload = path.join(partial, 'gpulab-kit.tar.xz');
    say('compressing (xz -9; the node binary dominates, this takes a minute or two)');
    run('tar', ['-C', scratch, '--owner=0', '--group=0', '--numeric-owner', '--use-compress-program=xz -9 -T2', '-cf', payload, 'gpulab-kit'], 'packing the kit failed');
    const sha = createHash('sha256').update(fs.readFileSync(payload)).digest('hex');
    fs.writeFileSync(path.join(partial, 'KIT_ID'), `${sha.slice(0, 12)}\n`);
    fs.copyFileSync(path.join(__dirname, 'run.sh'), path.join(partial, 'run.sh'));
    fs.chmodSync(path.join(partial, 'run.sh'), 0o755);
    const size = (f: string) => fs.statSync(path.join(k, f)).size;
    const manifest = {
      entry,
      smoke: SMOKE,
      builtAt: new Date().toISOString(),
      payloadSha256: sha,
      payloadBytes: fs.statSync(payload).size,
      node: spawnSync(path.join(k, 'bin/node'), ['--version'], { encoding: 'utf8' }).stdout.trim(),
      versions: { tfjs: packageVersion('@tensorflow/tfjs'), 'tfjs-backend-webgpu': packageVersion('@tensorflow/tfjs-backend-webgpu'), webgpu: packageVersion('webgpu'), libvulkan1: vulkan },
      unpackedBytes: { 'bin/node': size('bin/node'), 'dawn.node': size('app/node_modules/webgpu/dist/linux-x64/dawn.node'), 'main.cjs': size('app/main.cjs'), 'smoke.cjs': size('app/smoke.cjs') },
      requires: 'Linux x86-64, glibc >= 2.34, a GPU driver with a Vulkan ICD, xz+tar or python3 to unpack',
    };
    fs.writeFileSync(path.join(partial, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.writeFileSync(path.join(partial, 'README.txt'), readme(entry));
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(partial, out);
    const bytes = fs.readdirSync(out).reduce((sum, f) => sum + fs.statSync(path.join(out, f)).size, 0);
    say(`built ${path.relative(ROOT, out)}: ${(bytes / MIB).toFixed(1)} MiB (payload sha256 ${sha.slice(0, 12)}, entry ${entry})`);
    if (bytes > LIMIT_MB * MIB) throw new Error(`the kit is ${(bytes / MIB).toFixed(1)} MiB, over the ${LIMIT_MB} MiB limit`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    fs.rmSync(partial, { recursive: true, force: true });
  }
  // 7. Optional: prove it runs without this machine's Node or node_modules.
  if (wantVerify) verify(out);
}

try {
  main();
} catch (err) {
  console.error(`[gpu-kit] ERROR: ${(err as Error).message}`);
  process.exitCode = 1;
}
