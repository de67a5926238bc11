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

/**
 * The block of filter taps a convolution can multiply with input pixels:
 * rows `top .. top + height - 1`, columns `left .. left + width - 1`. The
 * taps outside it meet only the zero padding at every output pixel (a 3x3
 * "same" convolution of a 1x1 map uses only its centre; ResNet-34's last
 * stage at 32 px runs on 1x1 maps), so dropping them changes no sum.
 *
 * Tap `k` of a row meets input row `o * stride - padTop + k` for output
 * rows `o = 0 .. outHeight - 1`; it can meet a real row (0 .. inHeight - 1)
 * only if `padTop - (outHeight - 1) * stride <= k <= inHeight - 1 + padTop`.
 * With strides above 1 a tap inside the block may still meet only padding;
 * the block is the hull, which is all that cropping needs. A height or
 * width of 0 means no tap meets any pixel (a stride that steps over the
 * whole input): every output is then the bias alone, and there is no
 * smaller convolution to run.
 */
export interface LiveTaps {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** The {@linkcode LiveTaps} of `g`. */
export function liveTaps(g: ConvGeometry): LiveTaps {
  const span = (filter: number, pad: number, input: number, output: number, stride: number) => {
    const first = Math.max(0, pad - (output - 1) * stride);
    const last = Math.min(filter - 1, input - 1 + pad);
    return [first, Math.max(0, last - first + 1)];
  };
  const [top, height] = span(g.filterHeight, g.padTop, g.inHeight, g.outHeight, g.strideHeight);
  const [left, width] = span(g.filterWidth, g.padLeft, g.inWidth, g.outWidth, g.strideWidth);
  return { top, left, height, width };
}

/**
 * `g` with its filter cropped to `taps` and the padding the dropped taps
 * faced removed: the same output size, every output the same sum without
 * its zero terms. The pads stay non-negative: a dropped leading tap faced
 * only leading padding, a dropped trailing one only trailing padding.
 */
export function cropTaps(g: ConvGeometry, taps: LiveTaps): ConvGeometry {
  return {
    ...g,
    filterHeight: taps.height,
    filterWidth: taps.width,
    padTop: g.padTop - taps.top,
    padBottom: g.padBottom - (g.filterHeight - taps.top - taps.height),
    padLeft: g.padLeft - taps.left,
    padRight: g.padRight - (g.filterWidth - taps.left - taps.width),
  };
}

/** Whether `taps` is the whole filter of `g` (nothing to crop). */
export function allTapsLive(g: ConvGeometry, taps: LiveTaps): boolean {
  return taps.height === g.filterHeight && taps.width === g.filterWidth;
}
