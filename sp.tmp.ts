import { tf, data, complexity, setup } from './lib/dist';
(async () => {
  await setup();
  const ds = await data.loadFashionMnist({ download: false });
  const train = data.subset(ds.train, 1000, { seed: 1 });
  const test = data.subset(ds.test, 1000, { seed: 2 });
  for (const spec of [{ kind: 'mlp', width: 32, depth: 1 }, { kind: 'mlp', width: 512, depth: 3 }, { kind: 'convnet', width: 8, depth: 1 }, { kind: 'convnet', width: 16, depth: 2 }, { kind: 'convnet', width: 32, depth: 2 }, { kind: 'convnet', width: 16, depth: 3 }] as const) {
    const t = Date.now();
    const m = await complexity.measureArchitecture(spec, train, test, { epochs: 2 });
    console.log(JSON.stringify(m), Date.now() - t);
  }
})();
