/**
 * TensorFlow's `same` padding, which ONNX and PyTorch spell differently.
 *
 * TF pads a total of `max((ceil(in / stride) - 1) * stride + span - in, 0)`
 * (span = `(kernel - 1) * dilation + 1`) and puts the odd pixel at the end:
 * `floor(total / 2)` before, the rest after (tf.nn.convolution's docs;
 * TF.js `computeConv2DInfo`). A 3x3 stride-2 convolution over an even side
 * therefore pads 0 before and 1 after, where PyTorch's `padding=1` pads 1
 * on both sides and reads a window one pixel earlier. Written out as
 * explicit pads, the exported graphs compute TF's numbers.
 *
 * @module
 */

/** [before, after] padding of one spatial axis under TF's `same` rule. */
export function samePadding(
  size: number,
  kernel: number,
  stride: number,
  dilation = 1,
): [number, number] {
  const span = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * ONNX `pads` ([top, left, bottom, right]) of a 2-D window op over an
 * `height` x `width` input: TF's `same` rule, or none for `valid`.
 */
export function onnxPads(
  padding: "same" | "valid",
  [height, width]: readonly [number, number],
  [kh, kw]: readonly [number, number],
  [sh, sw]: readonly [number, number],
  [dh, dw]: readonly [number, number] = [1, 1],
): [number, number, number, number] {
  if (padding === "valid") return [0, 0, 0, 0];
  const [top, bottom] = samePadding(height, kh, sh, dh);
  const [left, right] = samePadding(width, kw, sw, dw);
  return [top, left, bottom, right];
}
