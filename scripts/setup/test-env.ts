/**
 * Everything `npm test` needs on a fresh machine beyond `npm ci`, set up idempotently; each step
 * says what it is doing.
 *
 *  1. the project-local Jupyter in .venv/ and the tslab kernel (notebook, JupyterLab and export suites)
 *  2. the native TensorFlow backend (tfjs-node built against pip's TensorFlow 2.21). A failure is
 *     reported and the tests carry on: test/unit/backends/native.test.ts then fails under CI.
 *  3. the system packages (Chromium, lavapipe): installed under CI=true or as root; for anyone
 *     else, never (no sudo): it prints `npm run setup:test-deps` and the suites that need them skip.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { setupJupyter } from './jupyter';
import { ensureTestDeps } from './test-deps';

const ROOT = path.resolve(__dirname, '..', '..');

function main(): number {
  setupJupyter({ root: ROOT });
  const tf = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'tensorflow.ts'), '--optional'], { cwd: ROOT, stdio: 'inherit' });
  if (tf.status !== 0) throw new Error(`setup:tensorflow --optional exited ${tf.status ?? tf.signal}`);
  ensureTestDeps({ auto: true });
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(`[setup-test-env] ERROR: ${(err as Error).message}`);
  process.exitCode = 1;
}
