/**
 * postinstall: make sure nodejs-polars can load its native binary.
 *
 * npm sometimes records nodejs-polars' platform package (e.g. nodejs-polars-linux-x64-gnu) in
 * package-lock.json but never extracts it (npm/cli#4828). When that happens we fetch the exact
 * tarball with `npm pack` and unpack it into node_modules ourselves: no nested install, same
 * registry, same version as nodejs-polars.
 *
 * Runs under `node --import tsx` at postinstall time: npm runs the root package's postinstall
 * after every dependency (tsx among them) is in node_modules.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** How to run npm from here: the npm that runs this script (`npm_execpath`, through this node), else `npm` on PATH. */
export function npmCommand(): [string, string[]] {
  return process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
}

const ROOT = path.resolve(__dirname, '..', '..');
const log = (msg: string) => console.log(`[gpulab postinstall] ${msg}`);

function polarsLoads(root: string): boolean {
  try {
    execFileSync(process.execPath, ['-e', "require('nodejs-polars')"], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The nodejs-polars binary package for this platform, or null where there is none. */
function polarsPlatformPackage(platform: NodeJS.Platform = process.platform, arch: string = process.arch, glibc: boolean = hasGlibc()): string | null {
  if (platform === 'linux') return `nodejs-polars-linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  if (platform === 'darwin') return `nodejs-polars-darwin-${arch}`;
  if (platform === 'win32') return `nodejs-polars-win32-${arch}-msvc`;
  return null;
}

function hasGlibc(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return Boolean(report?.header?.glibcVersionRuntime);
}

/**
 * Make nodejs-polars loadable in `root`'s node_modules, unpacking its platform package when npm
 * left it out. Throws when it still cannot load afterwards.
 */
export function ensureNative(root: string = ROOT): void {
  if (polarsLoads(root)) {
    log('nodejs-polars native binary: ok');
    return;
  }
  const name = polarsPlatformPackage();
  const polarsPkg = path.join(root, 'node_modules', 'nodejs-polars', 'package.json');
  if (!name || !fs.existsSync(polarsPkg)) {
    log(`nodejs-polars is not installed or ${process.platform}/${process.arch} has no binary package; skipping`);
    return;
  }
  const version = (JSON.parse(fs.readFileSync(polarsPkg, 'utf8')) as { version: string }).version;
  log(`npm skipped ${name}@${version}; fetching it with npm pack`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-polars-'));
  try {
    const [npm, npmArgs] = npmCommand();
    const out = execFileSync(npm, [...npmArgs, 'pack', `${name}@${version}`, '--silent', '--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' });
    const tarball = path.join(tmp, out.trim().split('\n').pop() ?? '');
    const unpacked = path.join(tmp, 'unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    const dest = path.join(root, 'node_modules', name);
    const staging = `${dest}.tmp-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.cpSync(path.join(unpacked, 'package'), staging, { recursive: true });
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(staging, dest);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!polarsLoads(root)) {
    throw new Error(`nodejs-polars still cannot load after installing ${name}; see node -e "require('nodejs-polars')"`);
  }
  log(`nodejs-polars native binary: installed ${name}@${version}`);
}

if (require.main === module) {
  try {
    ensureNative();
  } catch (err) {
    console.error(`[gpulab postinstall] ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
