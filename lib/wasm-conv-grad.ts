/**
 * The one kernel that keeps convnets from training on the wasm backend.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 registers `Conv2D` and `Conv2DBackpropInput` but not
 * `Conv2DBackpropFilter`, so `model.fit` on any model with a `conv2d` layer fails with
 * "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'". This module registers a
 * replacement built from kernels wasm does have: for each filter tap (kh, kw), a strided slice
 * of the (padded) input times the output gradient, as one untransposed matMul
 * (`dW[kh,kw] = xsᵀ · dy`, with `xsᵀ` transposed explicitly because wasm's transposed matMul is
 * a slow scalar loop).
 *
 * Importing `gpulab` registers it (only when no `Conv2DBackpropFilter` is registered for wasm,
 * so a future tfjs release or another module's kernel wins).
 */
import * as tf from '@tensorflow/tfjs';

/** The kernel name tfjs dispatches the filter gradient of `conv2d` to. */
export const KERNEL_NAME = 'Conv2DBackpropFilter';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/**
 * The gradient of a 2-D convolution with respect to its filter, computed from strided slices
 * and matMuls (what the wasm kernel runs; usable on any backend, e.g. to check it against the
 * built-in kernel). NHWC only, dilation 1 (tfjs's conv2d gradient requires dilation 1 too).
 *
 * @param x input `[batch, inH, inW, inC]`
 * @param dy output gradient `[batch, outH, outW, outC]`
 * @param filterShape `[kH, kW, inC, outC]`
 */
export function conv2DBackpropFilterByMatMul(
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
  if (dy.shape[1] !== outHeight || dy.shape[2] !== outWidth || dy.shape[3] !== outC) {
    throw new Error(`conv2DBackpropFilterByMatMul: dy shape [${dy.shape}] does not match the convolution output [${batchSize},${outHeight},${outWidth},${outC}]`);
  }
  return tf.tidy(() => {
    const { top, bottom, left, right } = info.padInfo;
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const n = batchSize * outHeight * outWidth;
    const dy2 = tf.reshape(dy, [n, outC]);
    const taps: tf.Tensor2D[] = [];
    for (let kh = 0; kh < kH; kh++) {
      for (let kw = 0; kw < kW; kw++) {
        const xs = tf.stridedSlice(
          xp,
          [0, kh, kw, 0],
          [batchSize, kh + (outHeight - 1) * strideHeight + 1, kw + (outWidth - 1) * strideWidth + 1, inC],
          [1, strideHeight, strideWidth, 1],
        );
        taps.push(tf.matMul(tf.transpose(tf.reshape(xs, [n, inC])), dy2));
      }
    }
    return tf.reshape(tf.stack(taps), filterShape) as tf.Tensor4D;
  });
}

/**
 * Register {@link conv2DBackpropFilterByMatMul} as wasm's `Conv2DBackpropFilter` kernel.
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
      return conv2DBackpropFilterByMatMul(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode) as unknown as tf.TensorInfo;
    },
  });
  return true;
}

registerWasmConv2DBackpropFilter();
