/**
 * Software Vulkan that Dawn (npm `webgpu`) accepts, for the WebGPU correctness suite: find it,
 * and install it (through `npm run setup:test-deps`, scripts/setup/test-deps.ts).
 *
 * Dawn needs Mesa >= 23 lavapipe: Debian 12's own Mesa 22.3 lavapipe is rejected (it lacks
 * dynamic-indexing features Dawn requires). {@link installLavapipe}:
 *  1. If the distribution's own mesa-vulkan-drivers is >= 23 (Debian 13, Ubuntu 23.04+...): install it.
 *  2. On Debian 12 (bookworm): add `bookworm-backports` to the Suites of the machine's EXISTING
 *     Debian source entry (/etc/apt/sources.list.d/debian.sources, or a `deb ... bookworm main` line
 *     of /etc/apt/sources.list), so the same mirror is used; no mirror host is written by this repo.
 *     Then install mesa-vulkan-drivers from backports (apt also moves the other installed Mesa
 *     libraries, e.g. libgl1-mesa-dri, to the same backports version), plus libvulkan1.
 * Every command that changes the system goes through the caller's {@link SystemCommand}, which
 * adds sudo or not.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** The oldest Mesa whose lavapipe Dawn accepts. */
const MIN_MESA = 23;

const DEBIAN_SOURCES = '/etc/apt/sources.list.d/debian.sources';
const SOURCES_LIST = '/etc/apt/sources.list';
const BACKPORTS_LIST = '/etc/apt/sources.list.d/gpulab-backports.list';
/** Not beside the sources: apt warns about files with unknown extensions there. */
const SOURCES_BACKUP = '/var/backups/debian.sources.gpulab-bak';
const ICD_DIR = '/usr/share/vulkan/icd.d';

/** Runs a command that changes the system (as root: directly, else through sudo); throws when it fails. */
export type SystemCommand = (argv: readonly string[], options?: { input?: string }) => void;

/** What a query command printed, or '' when it is missing or fails. */
function query(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

/** The installed version of a Debian package, or null. */
function installedVersion(pkg: string): string | null {
  const line = query('dpkg-query', ['-W', '-f=${db:Status-Status} ${Version}\n', pkg])
    .split('\n')
    .find((l) => l.startsWith('installed '));
  return line ? line.slice('installed '.length).trim() : null;
}

/** The major number of a Debian version: `1:25.0.7-2~bpo12+1` → 25 (NaN when there is none). */
export function majorOf(version: string): number {
  return Number(/^(?:\d+:)?(\d+)/.exec(version)?.[1] ?? NaN);
}

/** True when the Vulkan loader (libvulkan.so.1) is in the linker cache. */
function loaderPresent(): boolean {
  // The whole output is read, then searched (a `| grep -q` under pipefail SIGPIPEs ldconfig).
  return /^\s*libvulkan\.so\.1 /m.test(query('ldconfig', ['-p']));
}

/** Whether lavapipe from Mesa >= {@link MIN_MESA} and the Vulkan loader are installed, and what was found. */
export function lavapipeStatus(): { ok: boolean; detail: string } {
  const mesa = installedVersion('mesa-vulkan-drivers');
  const icd = fs.existsSync(ICD_DIR) && fs.readdirSync(ICD_DIR).some((f) => /^lvp_icd.*\.json$/.test(f));
  const loader = loaderPresent();
  const detail = `mesa-vulkan-drivers ${mesa ?? 'not installed'}, lavapipe ICD ${icd ? 'present' : 'missing'}, libvulkan.so.1 ${loader ? 'present' : 'missing'}`;
  return { ok: mesa !== null && majorOf(mesa) >= MIN_MESA && icd && loader, detail };
}

/**
 * deb822 sources (debian.sources): add `suite` to the Suites of each stanza that names the plain
 * `codename` (not `codename-security`). Returns the new text, or null when no stanza names it.
 * A stanza that already has the suite is left as it is.
 */
export function addSuiteToDeb822(text: string, codename: string, suite: string): string | null {
  let found = false;
  const out = text.split('\n').map((line) => {
    if (!/^Suites:/.test(line)) return line;
    const suites = line.slice('Suites:'.length).trim().split(/\s+/);
    if (!suites.includes(codename)) return line;
    found = true;
    return suites.includes(suite) ? line : `${line.replace(/\s+$/, '')} ${suite}`;
  });
  return found ? out.join('\n') : null;
}

/**
 * One-line sources (sources.list): the `deb` line for `suite` on the same mirror as the first
 * uncommented `deb … codename …` line, or null when there is none.
 */
export function backportsLine(sourcesList: string, codename: string, suite: string): string | null {
  const re = new RegExp(`^deb\\s+[^#]*\\s${codename}\\s`);
  const line = sourcesList.split('\n').find((l) => re.test(l));
  return line ? line.replace(new RegExp(`\\s${codename}\\s`), ` ${suite} `) : null;
}

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  const text = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  for (const m of text.matchAll(/^(\w+)=(?:"([^"]*)"|(.*))$/gm)) out[m[1]] = m[2] ?? m[3] ?? '';
  return out;
}

/**
 * Install Mesa >= {@link MIN_MESA} lavapipe and the Vulkan loader with apt, enabling Debian
 * backports where the distribution's own Mesa is too old. `apt` runs apt-get with its arguments
 * (non-interactive); `system` runs any other command that changes the system. Throws saying why
 * when it cannot.
 */
export function installLavapipe(apt: (args: readonly string[]) => void, system: SystemCommand, say: (line: string) => void): void {
  const release = osRelease();
  const codename = release.VERSION_CODENAME ?? '';
  say(`need Mesa >= ${MIN_MESA} lavapipe + libvulkan1 (have mesa-vulkan-drivers '${installedVersion('mesa-vulkan-drivers') ?? ''}'); distribution: ${release.ID ?? '?'} ${codename || '?'}`);
  say('apt-get update');
  apt(['update']);
  const candidate = /Candidate:\s*(\S+)/.exec(query('apt-cache', ['policy', 'mesa-vulkan-drivers']))?.[1] ?? '';
  if (candidate && candidate !== '(none)' && majorOf(candidate) >= MIN_MESA) {
    say(`installing mesa-vulkan-drivers ${candidate} and libvulkan1 from the distribution`);
    apt(['install', '--no-install-recommends', 'mesa-vulkan-drivers', 'libvulkan1']);
  } else if (release.ID === 'debian' && codename) {
    const bp = `${codename}-backports`;
    if (query('apt-cache', ['policy']).includes(` ${bp}/main`)) {
      say(`${bp} already enabled`);
    } else {
      const deb822 = fs.existsSync(DEBIAN_SOURCES) ? addSuiteToDeb822(fs.readFileSync(DEBIAN_SOURCES, 'utf8'), codename, bp) : null;
      const line = deb822 === null && fs.existsSync(SOURCES_LIST) ? backportsLine(fs.readFileSync(SOURCES_LIST, 'utf8'), codename, bp) : null;
      if (deb822 !== null) {
        say(`enabling ${bp}: adding it to the Suites of the '${codename}' entry in ${DEBIAN_SOURCES} (backup: ${SOURCES_BACKUP})`);
        system(['mkdir', '-p', '/var/backups']);
        system(['cp', '-n', DEBIAN_SOURCES, SOURCES_BACKUP]);
        system(['tee', DEBIAN_SOURCES], { input: deb822 });
      } else if (line !== null) {
        say(`enabling ${bp}: ${BACKPORTS_LIST} gets the same mirror as the existing '${codename}' line of ${SOURCES_LIST}`);
        system(['tee', BACKPORTS_LIST], { input: `${line}\n` });
      } else {
        throw new Error(`found no Debian '${codename}' source entry to add ${bp} to; enable ${bp} yourself and re-run`);
      }
    }
    say(`apt-get update (with ${bp})`);
    apt(['update']);
    const bpVersion = query('apt-cache', ['madison', 'mesa-vulkan-drivers'])
      .split('\n')
      .map((l) => l.split('|').map((f) => f.trim()))
      .find((f) => f.length >= 3 && f[2].includes(bp))?.[1];
    if (!bpVersion || majorOf(bpVersion) < MIN_MESA) throw new Error(`${bp} has no mesa-vulkan-drivers >= ${MIN_MESA} (found '${bpVersion ?? 'none'}')`);
    say(`installing mesa-vulkan-drivers ${bpVersion} from ${bp}, and libvulkan1`);
    apt(['install', '--no-install-recommends', '-t', bp, 'mesa-vulkan-drivers']);
    apt(['install', '--no-install-recommends', 'libvulkan1']);
  } else {
    throw new Error(`${release.ID ?? 'this distribution'} ${codename} offers mesa-vulkan-drivers '${candidate || 'none'}' (< ${MIN_MESA}) and no known backports; install Mesa >= ${MIN_MESA} lavapipe yourself`);
  }
  const after = lavapipeStatus();
  if (!after.ok) throw new Error(`lavapipe or libvulkan.so.1 still missing after install (${after.detail})`);
  say(`lavapipe ok: ${after.detail}`);
}
