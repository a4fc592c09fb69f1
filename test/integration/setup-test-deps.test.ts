/**
 * scripts/setup/test-deps.ts (what `npm test` and `npm run setup:test-deps` run for Chromium and
 * lavapipe): under CI=true or as root it installs what is missing; as anyone else outside CI it
 * never calls sudo, and prints the one command that would install it. Run against fake `sudo`,
 * `apt-get`, `apt-cache`, `dpkg-query` and `ldconfig` that record their calls and fail, so nothing
 * on this machine changes; a non-root user is `nobody` (through setpriv) when the tests run as root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOnPath } from '../../lib/monitor/tools';
import { INSTALL_COMMAND } from '../../scripts/setup/test-deps';
import { addSuiteToDeb822, backportsLine, majorOf } from '../../scripts/setup/vulkan';
import { ROOT, scriptArgs, tempDir } from '../support/helpers';
import { skipUnlessInstalled } from '../support/system-deps';

const SCRIPT = 'scripts/setup/test-deps.ts';
const isRoot = os.userInfo().uid === 0;
const setpriv = findOnPath('setpriv');

/** A folder of fake system tools that append their name and arguments to calls.log, then fail. */
function fakeTools(dir: string): { bin: string; calls: () => string[] } {
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'calls.log');
  fs.mkdirSync(bin);
  fs.writeFileSync(log, '');
  for (const tool of ['sudo', 'apt-get', 'apt-cache', 'dpkg-query', 'ldconfig']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${JSON.stringify(log)}\nexit 1\n`, { mode: 0o755 });
  }
  // Whoever runs the script (nobody, below) must be able to record its calls.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(log, 0o666);
  return { bin, calls: () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

/** Run test-deps.ts with the fake tools first on PATH, no Chromium, and `env`; as `nobody` when `asUser` and this process is root. */
function runDeps(dir: string, args: string[], env: Record<string, string>, asUser: boolean) {
  const { bin, calls } = fakeTools(dir);
  const base: NodeJS.ProcessEnv = { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, TMPDIR: os.tmpdir(), GPULAB_CHROMIUM: path.join(dir, 'no-chromium'), ...env };
  const node = [process.execPath, ...scriptArgs(SCRIPT, args)];
  const argv = asUser && isRoot ? [setpriv ?? 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node] : node;
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, env: base, encoding: 'utf8' });
  return { ...r, calls: calls() };
}

const nonRootSkip = isRoot && !setpriv ? 'running as root without setpriv: cannot run the script as another user' : false;

test('as a non-root user outside CI: never calls sudo or apt-get, prints the one install command, exits 0', { skip: nonRootSkip }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = runDeps(dir, ['--auto'], {}, true);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /missing: chromium/);
    assert.match(r.stdout, /missing: lavapipe/);
    assert.match(r.stdout, new RegExp(`To install: ${INSTALL_COMMAND}$`, 'm'));
    assert.deepEqual(r.calls.filter((c) => /^(sudo|apt-get) /.test(c)), [], 'no sudo, no apt-get');
  } finally {
    cleanup();
  }
});

test('as a non-root user under CI=true: installs through sudo (and fails when that fails)', { skip: nonRootSkip }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = runDeps(dir, ['--auto'], { CI: 'true' }, true);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const sudo = r.calls.filter((c) => c.startsWith('sudo '));
    assert.ok(sudo.length >= 1, `sudo was not called: ${r.calls.join(' | ')}`);
    assert.match(sudo[0], /^sudo env DEBIAN_FRONTEND=noninteractive apt-get .*update$/);
    assert.deepEqual(r.calls.filter((c) => c.startsWith('apt-get ')), [], 'apt-get only through sudo');
    assert.match(r.stderr, /\[test-deps\] ERROR: sudo env DEBIAN_FRONTEND=noninteractive apt-get .* exited 1/);
  } finally {
    cleanup();
  }
});

test('npm run setup:test-deps says first that it uses sudo and changes the apt sources, then uses sudo', { skip: nonRootSkip }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = runDeps(dir, [], {}, true);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const said = r.stdout.split('\n');
    const warned = said.findIndex((l) => /with sudo/.test(l));
    assert.ok(warned >= 0, r.stdout);
    if (fs.readFileSync('/etc/os-release', 'utf8').includes('VERSION_CODENAME=bookworm')) {
      assert.match(r.stdout, /changes the apt sources: it adds bookworm-backports/);
    }
    assert.ok(warned < said.findIndex((l) => /apt-get update/.test(l)), 'the warning comes before the first install step');
    assert.match(r.calls.find((c) => c.startsWith('sudo ')) ?? '', /apt-get .*update$/);
  } finally {
    cleanup();
  }
});

test('as root outside CI: installs with apt-get directly, no sudo', { skip: isRoot ? false : 'needs root' }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = runDeps(dir, ['--auto'], {}, false);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.deepEqual(r.calls.filter((c) => c.startsWith('sudo ')), []);
    assert.match(r.calls.find((c) => c.startsWith('apt-get ')) ?? '', /^apt-get -o DPkg::Lock::Timeout=600 -y -qq update$/);
  } finally {
    cleanup();
  }
});

test('the suites\' rule: missing outside CI skips naming the install command; under CI, or when present, they run', () => {
  const reason = skipUnlessInstalled('Chromium', '/usr/bin/chromium is missing', {});
  assert.ok(reason);
  assert.match(reason, /Chromium is not available \(\/usr\/bin\/chromium is missing\); npm run setup:test-deps installs it/);
  assert.equal(skipUnlessInstalled('Chromium', '/usr/bin/chromium is missing', { CI: 'true' }), false);
  assert.equal(skipUnlessInstalled('Chromium', null, {}), false);
});

test('backports go into the existing Debian entry: only the plain-codename stanza, once; or a sources.list line on the same mirror', () => {
  const deb822 = [
    'Types: deb',
    'URIs: http://mirror.example/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    '',
    'Types: deb',
    'URIs: http://mirror.example/debian-security',
    'Suites: bookworm-security',
    'Components: main',
  ].join('\n');
  const once = addSuiteToDeb822(deb822, 'bookworm', 'bookworm-backports');
  assert.equal(once, deb822.replace('Suites: bookworm bookworm-updates', 'Suites: bookworm bookworm-updates bookworm-backports'));
  assert.equal(addSuiteToDeb822(once ?? '', 'bookworm', 'bookworm-backports'), once, 'idempotent');
  assert.equal(addSuiteToDeb822('Suites: bookworm-security\n', 'bookworm', 'bookworm-backports'), null);
  assert.equal(
    backportsLine('# deb http://old.example/debian bookworm main\ndeb http://mirror.example/debian bookworm main contrib\n', 'bookworm', 'bookworm-backports'),
    'deb http://mirror.example/debian bookworm-backports main contrib',
  );
  assert.equal(backportsLine('deb http://mirror.example/debian bullseye main\n', 'bookworm', 'bookworm-backports'), null);
  assert.equal(majorOf('1:25.0.7-2~bpo12+1'), 25);
  assert.equal(majorOf('22.3.6-1+deb12u1'), 22);
});
