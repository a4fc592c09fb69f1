/**
 * `npm run test:conformance`: tfjs-core's whole op suite on the `tensorflow` and `wasm` backends,
 * stock kernels against gpulab's, with a table of the counts and every regression named. Exits 1
 * on any regression.
 *
 *   npm run test:conformance                                   # both backends, every spec file
 *   npm run test:conformance -- --backend wasm                 # one backend
 *   npm run test:conformance -- --files ops/mat_mul_test,ops/reshape_test
 *   npm run test:conformance -- --json results/local/conformance.json
 */
import * as path from 'node:path';
import { SUITE_BACKENDS, type SuiteBackend } from './lists';
import { countsTable, describeRegressions, nativeUnavailable, runConformance } from './suite';
import { writeFileAtomic } from '../../lib/fsutil';

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const only = arg('--backend');
  if (only !== undefined && !SUITE_BACKENDS.includes(only as SuiteBackend)) throw new Error(`--backend must be one of ${SUITE_BACKENDS.join(', ')}, got ${only}`);
  let backends: SuiteBackend[] = only ? [only as SuiteBackend] : [...SUITE_BACKENDS];
  if (backends.includes('tensorflow')) {
    const why = nativeUnavailable();
    if (why) {
      console.log(`tensorflow: skipped, ${why}`);
      backends = backends.filter((b) => b !== 'tensorflow');
    }
  }
  const files = arg('--files')?.split(',').filter(Boolean) ?? null;
  const t0 = performance.now();
  const comparisons = await runConformance({ backends, files });
  console.log(`tfjs-core op suite (${files ? `${files.length} spec files` : 'every spec file'}), stock kernels against gpulab's:\n`);
  console.log(countsTable(comparisons));
  for (const c of comparisons) console.log(`\n${c.backend}: list ${c.stock.listSource}; gpulab changed ${c.gpulab.kernelsChanged.join(', ')}`);
  console.log(`\nwall time ${((performance.now() - t0) / 1000).toFixed(1)} s (runs two at a time)`);
  const json = arg('--json');
  if (json) {
    writeFileAtomic(path.resolve(json), JSON.stringify(comparisons.map((c) => ({ backend: c.backend, regressions: c.regressions, gained: c.gained, stock: c.stock, gpulab: c.gpulab })), null, 1));
  }
  let failed = 0;
  for (const c of comparisons) {
    if (c.gained.length) console.log(`\n${c.backend}: ${c.gained.length} spec(s) fail stock and pass with gpulab's kernels:\n${c.gained.map((n) => `  + ${n}`).join('\n')}`);
    if (c.regressions.length) {
      failed += c.regressions.length;
      console.log(`\n${c.backend}: ${c.regressions.length} spec(s) pass with tfjs's kernels and FAIL with gpulab's:\n${describeRegressions(c)}`);
    }
  }
  console.log(`\n${failed ? `FAIL: ${failed} regression(s)` : 'ok: no regressions from gpulab\'s kernels'}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
