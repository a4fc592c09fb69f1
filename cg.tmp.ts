import * as tf from '@tensorflow/tfjs';
import { useBackend } from './lib/device';
import { conv2DBackpropFilterByMatMul } from './lib/wasm-conv-grad';
function viaConv(x: tf.Tensor4D, dy: tf.Tensor4D, fs: [number, number, number, number], s: number, pad: 'same' | 'valid') {
  const info = tf.backend_util.computeConv2DInfo(x.shape, fs, s, 1, pad, undefined, false, 'channelsLast');
  return tf.tidy(() => {
    const { top, bottom, left, right } = info.padInfo;
    const xp = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]);
    const xT = tf.transpose(xp, [3, 1, 2, 0]);          // [ci, H, W, B]
    const f = tf.transpose(dy, [1, 2, 0, 3]);            // [OH, OW, B, co]
    let out = tf.conv2d(xT as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid', 'NHWC', s); // [ci, KH', KW', co]
    out = tf.slice(out, [0, 0, 0, 0], [fs[2], fs[0], fs[1], fs[3]]);
    return tf.transpose(out, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}
(async () => {
  await useBackend('wasm');
  for (const [xs, fsz, s, pad] of [[[64, 28, 28, 1], [3, 3, 1, 16], 1, 'same'], [[64, 14, 14, 16], [3, 3, 16, 32], 1, 'same'], [[8, 9, 9, 3], [3, 3, 3, 4], 2, 'valid']] as const) {
    const x = tf.randomNormal(xs as any) as tf.Tensor4D;
    const y = tf.conv2d(x, tf.zeros(fsz as any) as tf.Tensor4D, s, pad);
    const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
    const a = conv2DBackpropFilterByMatMul(x, dy, fsz as any, s, pad);
    const b = viaConv(x, dy, fsz as any, s, pad);
    const diff = tf.abs(tf.sub(a, b)).max().dataSync()[0];
    let t = performance.now(); for (let i = 0; i < 5; i++) { const r = conv2DBackpropFilterByMatMul(x, dy, fsz as any, s, pad); r.dataSync(); r.dispose(); } const ta = (performance.now() - t) / 5;
    t = performance.now(); for (let i = 0; i < 5; i++) { const r = viaConv(x, dy, fsz as any, s, pad); r.dataSync(); r.dispose(); } const tb = (performance.now() - t) / 5;
    console.log(JSON.stringify(xs), 'diff', diff, 'matmul ms', ta.toFixed(1), 'conv ms', tb.toFixed(1));
  }
})();
