/**
 * Write Fashion-MNIST (or the generated stand-in when the real data is not cached) as a
 * class-per-folder PNG tree, the input `imageDirectory.flowFromDirectory` streams:
 *
 *   node --import tsx scripts/setup/write-image-tree.ts [--split train|test] [--limit N] [--out DIR]
 *
 * Default folder: `<data dir>/fashion-mnist-png/<source>/<split>-<count>`. A complete tree is
 * reused; an interrupted one is rewritten. Every PNG is written atomically.
 */
import { data, imageDirectory, nb } from '../../lib';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const split = (arg('split') ?? 'train') as 'train' | 'test';
  if (split !== 'train' && split !== 'test') throw new Error(`--split must be train or test, got '${split}'`);
  const limitArg = arg('limit');
  const limit = limitArg === undefined ? undefined : Number(limitArg);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new Error(`--limit must be a positive integer, got '${limitArg}'`);
  const ds = await data.loadFashionMnist();
  if (ds.source === 'generated-stand-in') console.log(`NOTICE: ${nb.standInNotice(ds)}`);
  const t0 = performance.now();
  const info = await imageDirectory.writeFashionMnistTree({ ds, split, limit, dir: arg('out') });
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${info.reused ? 'Reused' : 'Wrote'} ${info.count} PNGs (${(info.bytes / 1e6).toFixed(1)} MB, ${info.label}) in ${info.classDirs.length} class folders under ${info.dir}` +
      (info.reused ? '' : ` in ${secs.toFixed(1)} s`),
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
