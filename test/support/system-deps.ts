/**
 * Suites that need a system package (Chromium, lavapipe) run, skip or fail by one rule: present,
 * they run; missing outside CI, they skip and name the command that installs it
 * (`npm run setup:test-deps`); missing under CI=true, they run, and fail.
 */
import { INSTALL_COMMAND, inCi } from '../../scripts/setup/test-deps';

/**
 * The skip reason for a suite that needs `what`, or false to run it. `missing` says why it is
 * unavailable (null when it is there).
 */
export function skipUnlessInstalled(what: string, missing: string | null, env: NodeJS.ProcessEnv = process.env): string | false {
  if (missing === null || inCi(env)) return false;
  return `${what} is not available (${missing}); ${INSTALL_COMMAND} installs it (it uses sudo)`;
}
