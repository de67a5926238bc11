/**
 * The geometry of a 2-D convolution as TF.js computes it, shared by the
 * WebAssembly kernels and the oneDNN ones so both read the same sizes and
 * pads.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Convolution geometry, NHWC, dilation 1; pads may be asymmetric. Sizes in elements. */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

/**
 * The geometry of an NHWC convolution of `xShape` ([N, H, W, C]) with
 * `filterShape` ([kh, kw, in, out]) at dilation 1, from TF.js's own
 * `computeConv2DInfo` (so 'same', 'valid' and explicit pads, and the
 * rounding modes, are resolved exactly as TF.js resolves them).
 */
export function nhwcConvGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: tf.Conv2DAttrs["pad"],
  dimRoundingMode: "floor" | "round" | "ceil" | undefined,
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    padBottom: info.padInfo.bottom,
    padRight: info.padInfo.right,
  };
}
