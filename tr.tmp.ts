import { tf, data, transfer, setup } from './lib/dist';
(async () => {
  await setup();
  const ds = await data.loadFashionMnist({ download: false });
  const base = await transfer.ensureSourceBase({ ds });
  console.log(base.dir, base.trainedNow);
  const test = transfer.relabel(data.subset(ds.test, 1000, { seed: 3, classes: [...transfer.TARGET_CLASSES] }), transfer.TARGET_CLASSES);
  for (const n of [100, 400]) {
    const train = transfer.relabel(data.subset(ds.train, n, { seed: 4, classes: [...transfer.TARGET_CLASSES] }), transfer.TARGET_CLASSES);
    const epochs = Math.max(3, Math.ceil(60 / Math.ceil(n / 32)));
    for (const method of ['frozen', 'fine-tune', 'scratch'] as const) {
      const before = tf.memory().numTensors;
      const r = await transfer.trainOnTarget({ method, baseDir: base.dir, train, test, numClasses: 5, epochs });
      console.log(JSON.stringify(r), 'leak', tf.memory().numTensors - before);
    }
  }
})();
