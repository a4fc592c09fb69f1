import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { listBackends, useBackend } from '../../lib/backends';
import * as precision from '../../lib/precision';
import { inCi } from '../../scripts/setup/test-deps';

const {
  float32ToFloat16Bits: h, float16BitsToNumber: h2n, float32ToBfloat16Bits: b, bfloat16BitsToNumber: b2n, roundToFormat,
} = precision;

test('float16 rounding against known bit patterns', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800],
    [0.1, 0x2e66], [1 / 3, 0x3555], [Math.PI, 0x4248],
    [65504, 0x7bff], // max finite
    [65519, 0x7bff], // below the rounding midpoint: still max
    [65520, 0x7c00], // midpoint: ties to even → overflows to +inf
    [1e6, 0x7c00], [-1e6, 0xfc00],
    [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [1 + 2 ** -11, 0x3c00], // tie → even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even (1 + 2^-9)
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // 1023.5 subnormal units: tie → even 1024 = smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half the smallest subnormal: tie → even (0)
    [3 * 2 ** -26, 0x0002 >> 1], // 0.75 units → 1 unit
    [3 * 2 ** -25, 0x0002], // 1.5 units: tie → even (2)
    [5 * 2 ** -25, 0x0002], // 2.5 units: tie → even (2)
    [1e-8, 0x0000], [-1e-8, 0x8000], // underflow keeps the sign
    [6e-5, 0x03ef], // a subnormal
  ];
  for (const [x, bits] of cases) assert.equal(h(x), bits, `float16(${x}) = 0x${h(x).toString(16)}, expected 0x${bits.toString(16)}`);
  assert.equal(h(NaN) & 0x7c00, 0x7c00);
  assert.ok(h(NaN) & 0x3ff, 'NaN keeps a non-zero mantissa');
  assert.ok(Number.isNaN(h2n(h(NaN))));
  assert.equal(h2n(0x7bff), 65504);
  assert.equal(h2n(0x0001), 2 ** -24);
  assert.equal(h2n(0x03ff), 1023 * 2 ** -24);
  assert.equal(h2n(0xfc00), -Infinity);
  assert.ok(Object.is(h2n(0x8000), -0));
});

test('every float16 bit pattern survives decode → encode', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const v = h2n(bits);
    if (Number.isNaN(v)) continue;
    assert.equal(h(v), bits, `0x${bits.toString(16)}`);
  }
});

test('bfloat16 rounding against known bit patterns', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3f80], [-1, 0xbf80], [Math.PI, 0x4049],
    [1 + 2 ** -8, 0x3f80], // tie → even
    [1 + 3 * 2 ** -8, 0x3f82], // tie → even (up)
    [65504, 0x4780], // float16's max rounds to 65536 in bfloat16
    [1e30, 0x714a],
    [Infinity, 0x7f80], [-Infinity, 0xff80],
    [3.4028234663852886e38, 0x7f80], // float32 max rounds up past bfloat16's max: inf
    [3.3895313892515355e38, 0x7f7f], // bfloat16 max
    [2 ** -126, 0x0080], [2 ** -133, 0x0001], // smallest normal, smallest bfloat16 subnormal
    [1e-40, 0x0001], // float32 subnormal, rounded on bfloat16's grid
  ];
  for (const [x, bits] of cases) assert.equal(b(x), bits, `bfloat16(${x}) = 0x${b(x).toString(16)}, expected 0x${bits.toString(16)}`);
  assert.ok(Number.isNaN(b2n(b(NaN))));
  assert.equal(b2n(0x4049), 3.140625);
  const dec = precision.decodeBfloat16(precision.encodeBfloat16([1, Math.PI, -2.5]));
  assert.deepEqual([...dec], [1, 3.140625, -2.5]);
});

test('roundToFormat: relative error within half an epsilon in the normal range', () => {
  for (const fmt of ['float16', 'bfloat16'] as const) {
    const eps = precision.FORMATS[fmt].epsilon;
    for (let i = 0; i < 2000; i++) {
      const x = (Math.random() - 0.5) * 2 ** (Math.random() * 24 - 12);
      if (Math.abs(x) < precision.FORMATS[fmt].minNormal) continue;
      const r = roundToFormat(x, fmt);
      assert.ok(Math.abs(r - x) <= (Math.abs(x) * eps) / 2 + 1e-300, `${fmt}(${x}) = ${r}`);
    }
  }
  assert.throws(() => roundToFormat(1, 'float8' as precision.FloatFormat), /unknown format 'float8'/);
});

/** Interesting float32 values: every edge case, then random values across the whole range. */
function probeValues(): Float32Array {
  const edge = [
    0, -0, 1, -1, 0.1, 65504, 65519, 65520, 65536, 1e6, -1e6, Infinity, -Infinity, NaN,
    2 ** -14, 2 ** -14 - 2 ** -25, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 5 * 2 ** -25, 1e-8, 6e-5, -6e-5,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 2, 4, 8, 1024, 2047.5, 2 ** -126, 2 ** -120,
    3.4028234663852886e38, 3.3895313892515355e38, 1e38, -1e38,
  ];
  const out = new Float32Array(edge.length + 4000);
  out.set(edge);
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = edge.length; i < out.length; i++) out[i] = (rnd() < 0.5 ? -1 : 1) * 2 ** (rnd() * 60 - 40) * (1 + rnd());
  return out;
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`roundTensor matches the exact host rounding element for element (${backend})`, async () => {
    await useBackend(backend);
    const values = probeValues();
    for (const fmt of ['float16', 'bfloat16'] as const) {
      const x = tf.tensor1d(values);
      const r = precision.roundTensor(x, fmt);
      const got = r.dataSync();
      tf.dispose([x, r]);
      for (let i = 0; i < values.length; i++) {
        const want = roundToFormat(values[i], fmt);
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]), `${fmt} NaN at ${i}`);
        else assert.ok(Object.is(got[i], want) || (got[i] === want && want !== 0), `${backend} ${fmt}(${values[i]}) = ${got[i]}, expected ${want}`);
      }
    }
    const c = tf.tensor1d([1.5]);
    const same = precision.roundTensor(c, 'float32');
    assert.equal(same.dataSync()[0], 1.5);
    tf.dispose([c, same]);
    assert.throws(() => precision.roundTensor(tf.tensor1d([1], 'int32'), 'float16'), /expected a float32 tensor/);
  });
}

test('cast: rounded forward, rounded (or identity) gradient, no tensor leak', async () => {
  await useBackend('cpu');
  const before = tf.memory().numTensors;
  const x = tf.tensor1d([1 + 2 ** -12, 3]);
  const small = tf.tensor1d([1e-8, 1e-3]);
  // forward value
  const y = precision.cast(x, 'float16');
  assert.deepEqual([...y.dataSync()], [1, 3]);
  // gradient of sum(cast(x) * small): dy = small, rounded to float16 → 1e-8 underflows to 0
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(precision.cast(v, 'float16'), small)))(x);
  const gv = g.dataSync();
  assert.equal(gv[0], 0, '1e-8 underflows in float16');
  assert.equal(gv[1], roundToFormat(1e-3, 'float16'));
  const gi = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(precision.cast(v, 'float16', { gradient: 'identity' }), small)))(x);
  assert.ok(Math.abs(gi.dataSync()[0] - 1e-8) < 1e-15, 'identity gradient keeps 1e-8');
  const gb = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(precision.cast(v, 'bfloat16'), small)))(x);
  assert.ok(gb.dataSync()[0] > 0, 'bfloat16 has float32 range: 1e-8 survives');
  assert.equal(precision.cast(x, 'float32'), x, 'float32 cast is the identity');
  tf.dispose([x, small, y, g, gi, gb]);
  assert.equal(tf.memory().numTensors, before);
});

test('policy mirrors the Keras names and flags loss scaling for float16 only', () => {
  assert.equal(precision.policy('mixed_float16').compute, 'float16');
  assert.equal(precision.policy('mixed_bfloat16').compute, 'bfloat16');
  assert.equal(precision.policy('float32').compute, 'float32');
  assert.equal(precision.policy('mixed_float16').needsLossScaling, true);
  assert.equal(precision.policy('mixed_bfloat16').needsLossScaling, false);
  assert.throws(() => precision.policy('mixed_float8' as 'float32'), /unknown policy/);
});

test('underflowFraction counts values that become zero', () => {
  const x = tf.tensor1d([1e-9, 1e-8, 1e-3, 0, 1]);
  assert.ok(Math.abs(precision.underflowFraction(x, 'float16') - 2 / 5) < 1e-6);
  assert.equal(precision.underflowFraction(x, 'bfloat16'), 0);
  x.dispose();
});

test('loss-scale state machine: skip and back off on inf/NaN, grow after N good steps, clamp', () => {
  const cfg = { initialScale: 8, growthInterval: 3, growthFactor: 2, backoffFactor: 0.5, minScale: 2, maxScale: 32 };
  let s = precision.initialLossScaleState(cfg);
  assert.deepEqual(s, { scale: 8, goodSteps: 0, appliedSteps: 0, skippedSteps: 0 });
  const events: string[] = [];
  const run = (finite: boolean) => {
    const r = precision.nextLossScaleState(s, finite, cfg);
    s = r.state;
    events.push(`${r.event}:${s.scale}`);
  };
  run(true); run(true); run(true); // grows on the 3rd good step
  run(true); run(false); // a bad step resets the good-step counter and halves
  run(true); run(true); run(true); // grows again
  run(true); run(true); run(true); // grows to 32 (max)
  run(true); run(true); run(true); // capped at 32
  run(false); run(false); run(false); run(false); // floored at 2
  assert.deepEqual(events, [
    'applied:8', 'applied:8', 'grew:16',
    'applied:16', 'skipped:8',
    'applied:8', 'applied:8', 'grew:16',
    'applied:16', 'applied:16', 'grew:32',
    'applied:32', 'applied:32', 'grew:32',
    'skipped:16', 'skipped:8', 'skipped:4', 'skipped:2',
  ]);
  assert.equal(s.skippedSteps, 5);
  assert.equal(s.appliedSteps, 13);
  const fixed = precision.nextLossScaleState({ scale: 4, goodSteps: 0, appliedSteps: 0, skippedSteps: 0 }, false, { initialScale: 4, dynamic: false });
  assert.equal(fixed.state.scale, 4, 'static scaling never changes the scale');
  assert.equal(fixed.event, 'skipped');
  assert.throws(() => precision.initialLossScaleState({ backoffFactor: 2 }), /backoffFactor/);
  assert.throws(() => precision.initialLossScaleState({ initialScale: 0 }), /initialScale/);
  assert.equal(precision.initialLossScaleState().scale, 2 ** 15, 'Keras default');
});

test('DynamicLossScaler.minimize: overflow is skipped and backed off, then the step applies unscaled', async () => {
  await useBackend('cpu');
  const w = tf.variable(tf.tensor1d([1, 2]), true, 'w_overflow');
  const opt = tf.train.sgd(1);
  const scaler = new precision.DynamicLossScaler({ initialScale: 2 ** 15, growthInterval: 2 });
  const before = tf.memory().numTensors;
  // d(loss)/d(cast output) = 4 × scale, rounded to float16: 4·2^15 and 4·2^14 overflow (≥ 65520)
  const lossFn = () => tf.mul(tf.sum(precision.cast(w, 'float16')), 4) as tf.Scalar;
  const r1 = await scaler.minimize(opt, lossFn);
  const r2 = await scaler.minimize(opt, lossFn);
  assert.deepEqual([r1.event, r1.finite, r1.scale], ['skipped', false, 2 ** 15]);
  assert.deepEqual([r2.event, r2.finite, r2.scale], ['skipped', false, 2 ** 14]);
  assert.deepEqual([...w.dataSync()], [1, 2], 'skipped steps leave the weights alone');
  const r3 = await scaler.minimize(opt, lossFn);
  assert.deepEqual([r3.event, r3.finite, r3.scale], ['applied', true, 2 ** 13]);
  assert.equal(r3.loss, 12);
  assert.deepEqual([...w.dataSync()], [-3, -2], 'the applied gradient is unscaled (4 per element, lr 1)');
  const r4 = await scaler.minimize(opt, lossFn);
  assert.equal(r4.event, 'grew');
  assert.equal(scaler.scale, 2 ** 14);
  assert.deepEqual(scaler.history.map((x) => x.event), ['skipped', 'skipped', 'applied', 'grew']);
  assert.equal(tf.memory().numTensors, before, 'minimize disposes everything it made');
  w.dispose();
  opt.dispose();
});

test('loss scaling rescues a gradient that underflows in float16', async () => {
  await useBackend('cpu');
  const tiny = 1e-8;
  const grads: number[] = [];
  for (const initialScale of [1, 2 ** 15]) {
    const w = tf.variable(tf.tensor1d([0]), true, `w_under_${initialScale}`);
    const opt = tf.train.sgd(1);
    const scaler = new precision.DynamicLossScaler({ initialScale, dynamic: false });
    await scaler.minimize(opt, () => tf.mul(tf.sum(precision.cast(w, 'float16')), tiny) as tf.Scalar);
    grads.push(0 - w.dataSync()[0]);
    w.dispose();
    opt.dispose();
  }
  assert.equal(grads[0], 0, 'without scaling the float16 gradient is zero');
  assert.ok(Math.abs(grads[1] - tiny) / tiny < 1e-3, `with scale 2^15 the update is ≈1e-8, got ${grads[1]}`);
});

test('quantizeUint8 round trip error is at most scale/2; constants and bad values', () => {
  const values = new Float32Array(5000);
  for (let i = 0; i < values.length; i++) values[i] = Math.fround(Math.sin(i) * 0.3 + (i % 7) * 0.01);
  const q = precision.quantizeUint8(values);
  const back = precision.dequantizeUint8(q.bytes, q);
  let maxErr = 0;
  for (let i = 0; i < values.length; i++) maxErr = Math.max(maxErr, Math.abs(back[i] - values[i]));
  assert.ok(maxErr <= q.scale / 2 * (1 + 1e-5), `max error ${maxErr} > scale/2 = ${q.scale / 2}`);
  assert.ok(maxErr > q.scale / 4, 'the bound is tight enough to mean something');
  assert.equal(q.bytes[values.indexOf(Math.min(...values))], 0);
  assert.equal(q.bytes[values.indexOf(Math.max(...values))], 255);
  const c = precision.quantizeUint8([0.25, 0.25]);
  assert.deepEqual([...precision.dequantizeUint8(c.bytes, c)], [0.25, 0.25]);
  assert.throws(() => precision.quantizeUint8([1, NaN], 'dense/kernel'), /dense\/kernel has a non-finite value \(NaN\) at index 1/);
});


test('precisionMemoryBudget: float16 halves activations; mixed keeps float32 master weights', () => {
  const rows = precision.precisionMemoryBudget({ parameters: 1000, activationsPerExample: 50, batchSize: 10, optimizerSlots: 1 });
  const [f32, mixed, f16] = rows;
  assert.deepEqual([f32.weights, f32.gradients, f32.optimizer, f32.activations], [4000, 4000, 4000, 2000]);
  assert.deepEqual([mixed.weights, mixed.gradients, mixed.optimizer, mixed.activations], [6000, 4000, 4000, 1000]);
  assert.equal(f16.total, f32.total / 2);
  assert.ok(mixed.trafficPerStep < f32.trafficPerStep);
  for (const r of rows) assert.equal(r.total, r.weights + r.gradients + r.optimizer + r.activations);
});

test('roundTensor agrees with the host conversion on the native backend too, where denormals are flushed to zero (0 stayed NaN in bfloat16 there)', async (t) => {
  const native = (await listBackends()).find((b) => b.name === 'tensorflow');
  if (!native?.available) {
    if (inCi()) assert.fail(`the native tensorflow backend must load in CI: ${native?.reason}`);
    t.skip(`native tensorflow backend not available: ${native?.reason}`);
    return;
  }
  await useBackend('tensorflow');
  try {
    // float32 normals only: a flush-to-zero backend cannot hold float32 subnormals at all
    const vals = [0, -0, 1, -1, 1e-3, 3.14159, 65504, 70000, 1e-8, 1e-30, 1.5e-38, 1e38, 3e38, 1.0009765625, NaN, Infinity, -Infinity];
    for (const format of ['float16', 'bfloat16'] as const) {
      const x = tf.tensor1d(vals);
      const r = precision.roundTensor(x, format);
      const got = Array.from(await r.data());
      tf.dispose([x, r]);
      vals.forEach((v, i) => assert.ok(Object.is(got[i], precision.roundToFormat(v, format)), `${format}(${v}) on tensorflow: got ${got[i]}, want ${precision.roundToFormat(v, format)}`));
    }
  } finally {
    await useBackend('wasm');
  }
});
