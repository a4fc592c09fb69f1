/**
 * The one kernel that keeps convnets from training on the wasm backend.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 registers `Conv2D` and `Conv2DBackpropInput` but not
 * `Conv2DBackpropFilter`, so `model.fit` on any model with a `conv2d` layer fails with
 * "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'". This module registers a
 * replacement built from kernels wasm does have: the filter gradient is itself a convolution
 * (input and batch axes swapped, `dy` as the filter, dilation = stride), so it runs on wasm's
 * fast XNNPACK Conv2D.
 *
 * Importing `gpulab` registers it (only when no `Conv2DBackpropFilter` is registered for wasm,
 * so a future tfjs release or another module's kernel wins).
 */
import * as tf from '@tensorflow/tfjs';

/** The kernel name tfjs dispatches the filter gradient of `conv2d` to. */
export const KERNEL_NAME = 'Conv2DBackpropFilter';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/**
 * The gradient of a 2-D convolution with respect to its filter, computed as one forward
 * convolution (what the wasm kernel runs; usable on any backend, e.g. to check it against the
 * built-in kernel). With the batch and channel axes swapped, the filter gradient
 * `dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·s+kh, ow·s+kw, ci] · dy[b,oh,ow,co]` is a 'valid'
 * convolution of the padded input (`[ci, H, W, batch]`) with `dy` as the filter
 * (`[outH, outW, batch, co]`) at dilation = the forward stride. NHWC only, dilation 1
 * (tfjs's conv2d gradient requires dilation 1 too).
 *
 * @param x input `[batch, inH, inW, inC]`
 * @param dy output gradient `[batch, outH, outW, outC]`
 * @param filterShape `[kH, kW, inC, outC]`
 */
export function conv2DBackpropFilterViaConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const [kH, kW, inC, outC] = filterShape;
  const { batchSize, outHeight, outWidth, strideHeight, strideWidth } = info;
  if (dy.shape[0] !== batchSize || dy.shape[1] !== outHeight || dy.shape[2] !== outWidth || dy.shape[3] !== outC) {
    throw new Error(`conv2DBackpropFilterViaConv: dy shape [${dy.shape}] does not match the convolution output [${batchSize},${outHeight},${outWidth},${outC}]`);
  }
  return tf.tidy(() => {
    const { top, bottom, left, right } = info.padInfo;
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const xT = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D; // [inC, H, W, batch]
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [outH, outW, batch, outC]
    const full = tf.conv2d(xT, f, 1, 'valid', 'NHWC', [strideHeight, strideWidth]); // [inC, ≥kH, ≥kW, outC]
    const cut = full.shape[1] === kH && full.shape[2] === kW ? full : tf.slice(full, [0, 0, 0, 0], [inC, kH, kW, outC]);
    return tf.transpose(cut, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * Register {@link conv2DBackpropFilterViaConv} as wasm's `Conv2DBackpropFilter` kernel.
 * Returns true when it registered it, false when wasm already had one (nothing changed).
 */
export function registerWasmConv2DBackpropFilter(): boolean {
  if (tf.getKernel(KERNEL_NAME, 'wasm')) return false;
  tf.registerKernel({
    kernelName: KERNEL_NAME,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = attrs as unknown as {
        strides: number | [number, number];
        pad: Pad;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
        filterShape: [number, number, number, number];
      };
      if (a.dataFormat && a.dataFormat !== 'NHWC') {
        throw new Error(`${KERNEL_NAME} (gpulab wasm kernel): only NHWC is supported, got ${a.dataFormat}`);
      }
      // Returning a Tensor (not a bare TensorInfo) is accepted by the engine as the output.
      return conv2DBackpropFilterViaConv(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode) as unknown as tf.TensorInfo;
    },
  });
  return true;
}

registerWasmConv2DBackpropFilter();
