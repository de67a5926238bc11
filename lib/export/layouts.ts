/**
 * Weight layouts: TF/Keras stores a convolution kernel as HWIO and a Dense
 * kernel as [in, out]; ONNX's Conv and PyTorch take OIHW, and PyTorch's
 * Linear [out, in].
 *
 * @module
 */

/** HWIO (TF) to OIHW (ONNX, PyTorch). */
export function hwioToOihw(data: Float32Array, [h, w, i, o]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < i; c++) {
        for (let k = 0; k < o; k++) {
          out[((k * i + c) * h + y) * w + x] = data[((y * w + x) * i + c) * o + k];
        }
      }
    }
  }
  return out;
}

/** [in, out] (Keras Dense kernel) to [out, in] (PyTorch Linear weight). */
export function transpose2d(data: Float32Array, [rows, cols]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}
