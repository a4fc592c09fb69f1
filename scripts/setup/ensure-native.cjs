#!/usr/bin/env node
// postinstall: make sure nodejs-polars can load its native binary.
//
// npm sometimes records nodejs-polars' platform package (e.g. nodejs-polars-linux-x64-gnu)
// in package-lock.json but never extracts it (npm/cli#4828). When that happens we fetch the
// exact tarball with `npm pack` and unpack it into node_modules ourselves: no nested install,
// same registry, same version as nodejs-polars.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const log = (msg) => console.log(`[gpulab postinstall] ${msg}`);

function polarsLoads() {
  try {
    execFileSync(process.execPath, ['-e', "require('nodejs-polars')"], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function platformPackage() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report?.getReport()?.header?.glibcVersionRuntime;
    return `nodejs-polars-linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'darwin') return `nodejs-polars-darwin-${arch}`;
  if (platform === 'win32') return `nodejs-polars-win32-${arch}-msvc`;
  return null;
}

function main() {
  if (polarsLoads()) {
    log('nodejs-polars native binary: ok');
    return;
  }
  const name = platformPackage();
  const polarsPkg = path.join(root, 'node_modules', 'nodejs-polars', 'package.json');
  if (!name || !fs.existsSync(polarsPkg)) {
    log(`nodejs-polars is not installed or ${process.platform}/${process.arch} has no binary package; skipping`);
    return;
  }
  const version = JSON.parse(fs.readFileSync(polarsPkg, 'utf8')).version;
  log(`npm skipped ${name}@${version}; fetching it with npm pack`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulab-polars-'));
  try {
    const npm = process.env.npm_execpath
      ? [process.execPath, [process.env.npm_execpath]]
      : ['npm', []];
    const out = execFileSync(npm[0], [...npm[1], 'pack', `${name}@${version}`, '--silent', '--pack-destination', tmp], {
      cwd: tmp,
      encoding: 'utf8',
    });
    const tarball = path.join(tmp, out.trim().split('\n').pop());
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
  if (!polarsLoads()) {
    console.error(`[gpulab postinstall] nodejs-polars still cannot load after installing ${name}; see node -e "require('nodejs-polars')"`);
    process.exit(1);
  }
  log(`nodejs-polars native binary: installed ${name}@${version}`);
}

main();
