/**
 * `npm run publish`: build the static tutorial site from the executed notebooks.
 *
 * Usage: node --import tsx scripts/site/publish.ts [--from DIR] [--out DIR] [--sources DIR] [--no-run]
 *   --from     executed notebooks (default build/notebooks); notebooks missing there, or older
 *              than their source, are executed into it first (full mode unless GPULAB_QUICK=1)
 *   --out      the site folder (default build/site), replaced as a whole
 *   --sources  the committed notebooks that decide the pages and their order (default notebooks)
 *   --no-run   never execute notebooks: fail instead when an executed copy is missing or stale
 *
 * The renderer is TypeScript on markdown-it + highlight.js (see scripts/site/render.ts for why).
 * Ends by printing the path of the site's index.html.
 */
import * as path from 'node:path';
import { buildSite } from './build';

const ROOT = path.resolve(__dirname, '..', '..');

interface Args {
  from: string;
  out: string;
  sources: string;
  run: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    from: path.join(ROOT, 'build', 'notebooks'),
    out: path.join(ROOT, 'build', 'site'),
    sources: path.join(ROOT, 'notebooks'),
    run: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`publish: ${a} needs a folder`);
      return path.resolve(v);
    };
    if (a === '--from') args.from = value();
    else if (a === '--out') args.out = value();
    else if (a === '--sources') args.sources = value();
    else if (a === '--no-run') args.run = false;
    else if (a === '--help' || a === '-h') {
      console.log('Usage: publish.ts [--from DIR] [--out DIR] [--sources DIR] [--no-run]');
      process.exit(0);
    } else throw new Error(`publish: unknown argument ${a} (try --help)`);
  }
  return args;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const report = buildSite({ root: ROOT, ...args });
  for (const p of report.pages) {
    console.log(`  ${p.file.padEnd(44)} ${String(p.charts).padStart(2)} chart${p.charts === 1 ? ' ' : 's'}  (${p.backend ?? 'device not recorded'})`);
  }
  console.log(`Published ${report.pages.length} page(s) in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
  console.log(`Site: ${report.index}`);
}

try {
  main();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
