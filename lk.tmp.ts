import { tf, data, transfer, setup } from './lib/dist';
(async () => {
  await setup();
  const ds = await data.loadFashionMnist({ download: false });
  const dir = transfer.defaultSourceBaseDir('generated-stand-in');
  const test = transfer.relabel(data.subset(ds.test, 100, { seed: 3, classes: [...transfer.TARGET_CLASSES] }), transfer.TARGET_CLASSES);
  const train = transfer.relabel(data.subset(ds.train, 64, { seed: 4, classes: [...transfer.TARGET_CLASSES] }), transfer.TARGET_CLASSES);
  for (const method of ['frozen', 'fine-tune', 'scratch'] as const) {
    const n0 = tf.memory().numTensors;
    try { await transfer.trainOnTarget({ method, baseDir: dir, train, test, numClasses: 5, epochs: 1 }); console.log(method, 'leak', tf.memory().numTensors - n0); } catch (e) { console.log('ERR', (e as Error).message.slice(0, 200)); }
  }
})();
