/** lib/monitor/tools.ts: external tools (nvidia-smi one-shot queries, nsys, ncu), found or plainly missing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as monitor from '../../../lib/monitor';
import { fixture as fixtureFile, ROOT, tempDir } from '../../support/helpers';

const fixture = (name: string) => fixtureFile('nvidia-smi', name);

test('external tools: a missing tool says so; a failing one reports its exit and message', async () => {
  assert.equal(monitor.findOnPath('surely-not-a-real-tool-xyz'), null);
  assert.ok(monitor.findOnPath('sh'));
  const missing = await monitor.runTool('surely-not-a-real-tool-xyz', ['--version']);
  assert.equal(missing.found, false);
  assert.match(missing.reason!, /is not on PATH/);
  const failing = await monitor.runTool('sh', ['-c', 'echo out; echo broken >&2; exit 3']);
  assert.equal(failing.exitCode, 3);
  assert.equal(failing.stdout, 'out\n');
  assert.match(failing.reason!, /exited with 3: broken/);
  const slow = await monitor.runTool('sh', ['-c', 'sleep 5'], { timeoutMs: 100 });
  assert.match(slow.reason!, /did not finish within 100 ms/);
  const ok = await monitor.runTool('sh', ['-c', 'echo fine']);
  assert.equal(ok.reason, null);
  const tools = await monitor.externalTools();
  assert.deepEqual(tools.map((t) => t.tool), ['nvidia-smi', 'nsys', 'ncu', 'nvprof']);
  for (const t of tools) assert.ok(t.path !== null || /not on PATH/.test(t.reason ?? ''), `${t.tool}: a path or a reason`);
});

test('queryNvidiaSmi parses a one-shot query, or says why it could not run', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const exe = path.join(dir, 'fake-smi');
    fs.writeFileSync(exe, `#!/bin/sh\ncat ${JSON.stringify(fixture('h100-idle.csv'))}\n`, { mode: 0o755 });
    const q = await monitor.queryNvidiaSmi(undefined, { command: exe });
    assert.equal(q.reason, null);
    assert.equal(q.csv!.records[0].raw.name, 'NVIDIA H100 80GB HBM3');
    const none = await monitor.queryNvidiaSmi(undefined, { command: path.join(dir, 'absent') });
    assert.equal(none.csv, null);
    assert.match(none.reason!, /not on PATH/);
    // The device banners' GPU name comes from the same query.
    assert.equal(monitor.nvidiaGpuName({ command: exe }), 'NVIDIA H100 80GB HBM3');
    assert.equal(monitor.nvidiaGpuName({ command: path.join(dir, 'absent') }), null);
    const failing = path.join(dir, 'failing-smi');
    fs.writeFileSync(failing, '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver" >&2\nexit 9\n', { mode: 0o755 });
    const bad = monitor.queryNvidiaSmiSync(undefined, { command: failing });
    assert.equal(bad.csv, null);
    assert.match(bad.reason!, /exited with 9: NVIDIA-SMI has failed/);
    const slow = path.join(dir, 'slow-smi');
    fs.writeFileSync(slow, '#!/bin/sh\nsleep 5\n', { mode: 0o755 });
    assert.match(monitor.queryNvidiaSmiSync(undefined, { command: slow, timeoutMs: 200 }).reason!, /did not finish within 200 ms/);
  } finally {
    cleanup();
  }
});

test('writeStepScript writes a runnable profiler target; profilerCommands name the tools', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const script = monitor.writeStepScript(dir, { steps: 2 });
    const r = await monitor.runTool(process.execPath, ['--import', 'tsx', script], { timeoutMs: 120_000, cwd: ROOT, env: { ...process.env, GPULAB_BACKEND: 'wasm' } });
    assert.equal(r.reason, null, r.stderr);
    assert.match(r.stdout, /gpulab-step: 2 steps on wasm/);
    const cmds = monitor.profilerCommands(script, dir);
    assert.deepEqual(cmds.map((c) => c.tool), ['nsys', 'ncu', 'nvprof']);
    for (const c of cmds) assert.equal(c.args[c.args.length - 1], script);
  } finally {
    cleanup();
  }
});
