/**
 * The system packages some test suites need, beyond `npm ci` and the project-local Jupyter:
 *
 * - Chromium, for the browser suites (test/integration/site.test.ts, lab.test.ts): Debian's own
 *   build at /usr/bin/chromium (`GPULAB_CHROMIUM` names another), driven by playwright-core
 *   (npm's browser downloads cannot reach their host everywhere).
 * - Mesa >= 23 lavapipe and the Vulkan loader, a software GPU for the WebGPU suite
 *   (test/unit/backends/webgpu.test.ts); scripts/setup/vulkan.ts. `GPULAB_SKIP_VULKAN=1` leaves it out
 *   (e.g. on a machine with a real GPU).
 *
 *   npm run setup:test-deps     installs what is missing: says first that it uses sudo (when not
 *                               root) and may add Debian backports to the apt sources
 *   test-deps.ts --auto         what `npm test` runs: under CI=true or as root it installs what is
 *                               missing, as CI needs; as anyone else it changes nothing and prints
 *                               the one command that would (the suites then skip, naming it)
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { findOnPath } from '../../lib/monitor/tools';
import { installLavapipe, lavapipeStatus, type SystemCommand } from './vulkan';

/** The command that installs the missing test dependencies: what skipped suites tell a person to run. */
export const INSTALL_COMMAND = 'npm run setup:test-deps';

/** True under CI (`CI=true`, `1` or `yes`): there a missing test dependency is a failure, never a skip. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test((env.CI ?? '').trim());
}

/** The Chromium the browser suites drive: `GPULAB_CHROMIUM`, else Debian's /usr/bin/chromium. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.GPULAB_CHROMIUM || '/usr/bin/chromium';
}

/** A missing test dependency: its name, what it is for, and what was found. */
export interface MissingDep {
  name: 'chromium' | 'lavapipe';
  for: string;
  detail: string;
}

/** The test dependencies missing on this machine (none on a machine that is not Linux with apt). */
function missingTestDeps(env: NodeJS.ProcessEnv = process.env): MissingDep[] {
  const missing: MissingDep[] = [];
  const chromium = chromiumPath(env);
  if (!findOnPath(chromium)) missing.push({ name: 'chromium', for: 'the browser suites (site, lab)', detail: `${chromium} is missing` });
  if (env.GPULAB_SKIP_VULKAN !== '1' && process.platform === 'linux') {
    const lavapipe = lavapipeStatus();
    if (!lavapipe.ok) missing.push({ name: 'lavapipe', for: `the WebGPU suite (software Vulkan, Mesa >= 23)`, detail: lavapipe.detail });
  }
  return missing;
}

/** What installing needs, said before anything is changed. */
function announce(missing: readonly MissingDep[], sudo: boolean, say: (line: string) => void): void {
  const how = sudo ? 'with sudo (you may be asked for your password)' : 'as root';
  say(`this installs ${missing.map((m) => m.name).join(' and ')} with apt-get, ${how}.`);
  if (missing.some((m) => m.name === 'lavapipe')) {
    say('On Debian 12 it changes the apt sources: it adds bookworm-backports to the existing Debian entry (a backup goes to /var/backups), because Debian 12\'s own Mesa is too old for Dawn.');
  }
}

/**
 * Install the missing test dependencies with apt-get, through sudo when `sudo` is true. Throws
 * saying what failed.
 */
function installTestDeps(missing: readonly MissingDep[], sudo: boolean, say: (line: string) => void): void {
  if (!findOnPath('apt-get') || !findOnPath('dpkg-query')) {
    throw new Error(`there is no apt-get here: install ${missing.map((m) => (m.name === 'lavapipe' ? 'Mesa >= 23 lavapipe (mesa-vulkan-drivers / vulkan-swrast) and the Vulkan loader' : 'Chromium')).join(' and ')} yourself`);
  }
  const system: SystemCommand = (argv, options = {}) => {
    const [cmd, ...args] = sudo ? ['sudo', ...argv] : argv;
    const r = spawnSync(cmd, args, { input: options.input, stdio: [options.input === undefined ? 'inherit' : 'pipe', 'ignore', 'inherit'] });
    if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} exited ${r.status ?? r.signal}`);
  };
  const apt = (args: readonly string[]) => system(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-o', 'DPkg::Lock::Timeout=600', '-y', '-qq', ...args]);
  if (missing.some((m) => m.name === 'lavapipe')) installLavapipe(apt, system, say);
  if (missing.some((m) => m.name === 'chromium')) {
    say('installing the Debian package chromium');
    apt(['update']);
    apt(['install', 'chromium']);
    const chromium = chromiumPath();
    if (!findOnPath(chromium)) throw new Error(`apt-get installed chromium but ${chromium} is missing`);
    say(`chromium installed: ${chromium}`);
  }
}

/** Options of {@link ensureTestDeps}. */
export interface EnsureOptions {
  /**
   * false (npm run setup:test-deps): install what is missing. true (npm test): install only under
   * CI or as root; otherwise print the install command and change nothing.
   */
  auto: boolean;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  say?: (line: string) => void;
}

/**
 * Check the test dependencies and install the missing ones where allowed (see
 * {@link EnsureOptions.auto}). Returns what is still missing; throws when an install fails.
 */
export function ensureTestDeps(options: EnsureOptions): MissingDep[] {
  const env = options.env ?? process.env;
  const uid = options.uid ?? os.userInfo().uid;
  const say = options.say ?? ((line: string) => console.log(`[test-deps] ${line}`));
  const missing = missingTestDeps(env);
  if (missing.length === 0) {
    say(`nothing to install: chromium (${chromiumPath(env)}) ${env.GPULAB_SKIP_VULKAN === '1' ? 'is present; lavapipe is not wanted (GPULAB_SKIP_VULKAN=1)' : 'and lavapipe are present'}`);
    return [];
  }
  for (const m of missing) say(`missing: ${m.name}, for ${m.for} (${m.detail})`);
  if (options.auto && !inCi(env) && uid !== 0) {
    say(`not installing (that needs sudo, and changes apt sources): the suites that need ${missing.map((m) => m.name).join(' or ')} skip.`);
    say(`To install: ${INSTALL_COMMAND}`);
    return missing;
  }
  const sudo = uid !== 0;
  announce(missing, sudo, say);
  installTestDeps(missing, sudo, say);
  return missingTestDeps(env);
}

if (require.main === module) {
  try {
    const still = ensureTestDeps({ auto: process.argv.includes('--auto') });
    if (!process.argv.includes('--auto') && still.length) throw new Error(`still missing: ${still.map((m) => m.name).join(', ')}`);
  } catch (err) {
    console.error(`[test-deps] ERROR: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
