/** lib/env.ts: every knob read from the environment, parsed in one place. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as env from '../../lib/env';
import { ROOT } from '../support/helpers';

const KNOBS = ['GPULAB_QUICK', 'GPULAB_BACKEND', 'GPULAB_DATA_DIR', 'GPULAB_RESULTS_DIR', 'GPULAB_WASM_THREADS'] as const;

/** Run `fn` with exactly these GPULAB_* variables set (the others unset), then put the environment back. */
function withEnv<T>(vars: Partial<Record<(typeof KNOBS)[number], string>>, fn: () => T): T {
  const saved = Object.fromEntries(KNOBS.map((k) => [k, process.env[k]]));
  for (const k of KNOBS) delete process.env[k];
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const k of KNOBS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

test('GPULAB_QUICK: anything but empty, 0, false or no (any case, any spaces) means quick', () => {
  for (const v of ['1', 'true', 'yes', 'TRUE', ' 1 ', 'anything']) {
    assert.equal(withEnv({ GPULAB_QUICK: v }, env.isQuick), true, `GPULAB_QUICK='${v}'`);
  }
  for (const v of ['', '0', 'false', 'False', 'no', ' NO ', '  ']) {
    assert.equal(withEnv({ GPULAB_QUICK: v }, env.isQuick), false, `GPULAB_QUICK='${v}'`);
  }
  assert.equal(withEnv({}, env.isQuick), false, 'unset');
  assert.equal(withEnv({ GPULAB_QUICK: '1' }, () => env.pick(60000, 600)), 600);
  assert.equal(withEnv({}, () => env.pick(60000, 600)), 60000);
  assert.match(withEnv({ GPULAB_QUICK: '1' }, env.modeLabel), /^quick mode \(GPULAB_QUICK=1/);
  assert.equal(withEnv({}, env.modeLabel), 'full mode');
});

test('GPULAB_BACKEND: a forced backend in lower case; empty or auto forces none', () => {
  assert.equal(withEnv({ GPULAB_BACKEND: ' WebGPU ' }, env.forcedBackend), 'webgpu');
  assert.equal(withEnv({ GPULAB_BACKEND: 'tensorflow' }, env.forcedBackend), 'tensorflow');
  for (const v of ['', '  ', 'auto', 'AUTO']) assert.equal(withEnv({ GPULAB_BACKEND: v }, env.forcedBackend), undefined, `'${v}'`);
  assert.equal(withEnv({}, env.forcedBackend), undefined);
});

test('folders: the repository root holds package.json "gpulab-notebooks"; data and results default under it, and the variables win (made absolute)', () => {
  assert.equal(env.repoRoot(), ROOT);
  assert.equal((JSON.parse(fs.readFileSync(path.join(env.repoRoot(), 'package.json'), 'utf8')) as { name: string }).name, 'gpulab-notebooks');
  assert.equal(withEnv({}, env.dataDir), path.join(ROOT, 'data'));
  assert.equal(withEnv({}, env.resultsDir), path.join(ROOT, 'results', 'local'));
  assert.equal(withEnv({ GPULAB_DATA_DIR: '/tmp/gpulab-data' }, env.dataDir), '/tmp/gpulab-data');
  assert.equal(withEnv({ GPULAB_DATA_DIR: 'rel/data' }, env.dataDir), path.resolve('rel/data'));
  assert.equal(withEnv({ GPULAB_RESULTS_DIR: 'out' }, env.resultsDir), path.resolve('out'));
});

test('GPULAB_WASM_THREADS: unset is null, 1 to 8 is taken, anything else throws naming the variable and the value', () => {
  assert.equal(withEnv({}, env.wasmThreads), null);
  assert.equal(withEnv({ GPULAB_WASM_THREADS: '' }, env.wasmThreads), null);
  assert.equal(withEnv({ GPULAB_WASM_THREADS: ' 2 ' }, env.wasmThreads), 2);
  assert.equal(withEnv({ GPULAB_WASM_THREADS: '8' }, env.wasmThreads), 8);
  for (const v of ['0', '9', '1.5', 'two', '-1']) {
    assert.throws(() => withEnv({ GPULAB_WASM_THREADS: v }, env.wasmThreads), new RegExp(`GPULAB_WASM_THREADS must be an integer from 1 to 8, got '${v.replace('.', '\\.')}'`));
  }
});
