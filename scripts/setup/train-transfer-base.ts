/**
 * Train the small convnet base that notebook 06 transfers, on the SOURCE task (Fashion-MNIST
 * classes 0–4, or the generated stand-in when the real data is absent), and save it under
 * data/models/ (model.json + one weight shard, with where it came from in its metadata).
 *
 *   npm run transfer:base                       # defaults: 15,000 examples, 3 epochs
 *   npm run transfer:base -- --examples 30000 --epochs 5 --force
 *
 * Options: --examples N, --epochs N, --batch N, --seed N, --dir PATH, --force (retrain even if saved).
 */
import { experiments, data, nb, setup } from '../../lib';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intArg(name: string): number | undefined {
  const v = arg(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  await setup();
  const ds = await data.loadFashionMnist();
  if (ds.source !== 'fashion-mnist') console.log(`NOTICE: ${nb.standInNotice(ds)}`);
  const r = await experiments.transferSource.ensureSourceBase({
    ds,
    dir: arg('dir'),
    trainExamples: intArg('examples'),
    epochs: intArg('epochs'),
    batchSize: intArg('batch'),
    seed: intArg('seed'),
    force: process.argv.includes('--force'),
    log: (line) => console.log(line),
  });
  console.log(r.trainedNow ? `trained and saved: ${r.dir}` : `already there (use --force to retrain): ${r.dir}`);
  console.log(JSON.stringify(r.metadata, null, 2));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
