/**
 * `npm run data:fetch`: download the real Fashion-MNIST (four files from the official URLs,
 * each checked against its published MD5) into the data cache (`data/fashion-mnist/`, or
 * `$GPULAB_DATA_DIR/fashion-mnist`). Already-cached files with the right checksum are kept.
 *
 * Offline, it says so, leaves no partial file behind, and exits with status 1; the notebooks
 * then keep using the generated stand-in. `--stand-in` also (re)generates the stand-in cache.
 */
import { data } from '../../lib';

async function main(): Promise<number> {
  const dir = data.defaultFashionMnistDir();
  console.log(`Fashion-MNIST → ${dir}`);
  try {
    await data.downloadFashionMnist({ dir, log: (l) => console.log(`  ${l}`) });
  } catch (err) {
    console.error(`\n${(err as Error).message}\n`);
    console.error(
      'Could not fetch the real Fashion-MNIST: this machine looks offline, or the hosts are blocked.\n' +
        'Nothing partial was left in the cache. The notebooks keep running on the generated stand-in\n' +
        '(and say so). To install the data by hand, copy the four files\n' +
        `  ${data.FASHION_MNIST_FILES.map((f) => f.name).join('\n  ')}\n` +
        `from ${data.FASHION_MNIST_MIRRORS[0]} into ${dir}.`,
    );
    if (process.argv.includes('--stand-in')) console.log(`Stand-in cached in ${data.ensureStandIn()}`);
    return 1;
  }
  const ds = await data.loadFashionMnist({ dir, download: false });
  console.log(`OK: ${ds.label}, ${ds.train.count} train + ${ds.test.count} test images of ${ds.train.height}×${ds.train.width}.`);
  if (process.argv.includes('--stand-in')) console.log(`Stand-in cached in ${data.ensureStandIn()}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
