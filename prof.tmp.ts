import { tf, complexity, setup } from './lib/dist';
(async () => {
  await setup();
  for (const spec of [{ kind: 'convnet', width: 16, depth: 2 }, { kind: 'mlp', width: 512, depth: 3 }] as const) {
    const m = complexity.buildArchitecture(spec);
    const opt = tf.train.adam();
    const x = tf.randomNormal([64, 28, 28, 1]); const y = tf.oneHot(tf.zeros([64], 'int32') as tf.Tensor1D, 10);
    const step = () => opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.predict(x) as tf.Tensor), false);
    step(); step();
    const t0 = performance.now(); for (let i = 0; i < 3; i++) step(); console.log(spec.kind, 'step ms', ((performance.now() - t0) / 3).toFixed(1));
    tf.env().set('DEBUG', false);
    const info = await tf.profile(() => { step(); });
    const by: Record<string, number> = {};
    for (const k of info.kernels) by[k.name] = (by[k.name] ?? 0) + (k.kernelTimeMs as number);
    console.log(Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k}:${v.toFixed(1)}`).join(' '));
  }
})();
