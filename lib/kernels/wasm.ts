/**
 * Training kernels for the TensorFlow.js WebAssembly backend.
 *
 * `@tensorflow/tfjs-backend-wasm` 4.22 cannot train a conv net: it has no
 * `Conv2DBackpropFilter`. Several kernels a training step leans on are also
 * far slower there than the math needs: `Conv2DBackpropInput` and
 * `MaxPoolGrad` are scalar loops, `Tile` computes an index per element,
 * `Sum`/`Mean` over the batch axes transpose the whole tensor first,
 * `Identity` copies, `PadV2` walks element by element, `Slice` copies
 * one pixel at a time, and a forward
 * `Conv2D` on weights it has not seen repacks them, which in deep layers
 * costs more than the convolution.
 *
 * This module registers replacements built from the backend's one fast
 * primitive, XNNPACK's GEMM (2-D `BatchMatMul`, and `Conv2D` where it wins),
 * with plain JavaScript loops over the wasm heap for the data movement
 * (im2col, its adjoint, transposes), which cost memory passes, not flops.
 * Every GEMM is arranged so that the operand XNNPACK packs (its `b`) is the
 * small one: activations in deep layers, never a large weight tensor.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type ConvGeometry, nhwcConvGeometry } from "./conv_geometry.ts";

type Info = tf.TensorInfo;
type KernelArgs = Parameters<tf.KernelFunc>[0];
type Pad = tf.Conv2DBackpropInputAttrs["pad"];
type Heap = Float32Array | Int32Array | Uint8Array;

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  typedArrayFromHeap(info: Info): Heap;
}

function backendOf(args: KernelArgs): WasmBackend {
  return args.backend as unknown as WasmBackend;
}

function f32(backend: WasmBackend, info: Info): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

function geometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: Pad,
  dataFormat: string,
  dimRoundingMode: "floor" | "round" | "ceil" | undefined,
  kernel: string,
): ConvGeometry {
  if (dataFormat !== "NHWC") {
    throw new Error(`${kernel} on wasm supports dataFormat NHWC only, got ${dataFormat}`);
  }
  return nhwcConvGeometry(xShape, filterShape, strides, pad, dimRoundingMode);
}

/** The same data seen under another shape (no copy, no reference taken). */
function view(info: Info, shape: number[]): Info {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Calls a wasm kernel directly: no engine bookkeeping, the caller frees what it gets. */
function runWasm(
  backend: WasmBackend,
  kernel: tf.KernelFunc,
  inputs: Record<string, Info | null | undefined>,
  attrs: Record<string, unknown>,
): Info {
  return kernel({ inputs, backend, attrs } as never) as Info;
}

/**
 * `a [m, k] x b [k, n]` on XNNPACK. The backend packs `b` and caches the
 * packing under `b`'s data id, so `b` should be small and, unless it is a
 * tensor that keeps one meaning for its lifetime, freshly made.
 */
function matMul(backend: WasmBackend, a: Info, b: Info): Info {
  return runWasm(backend, shipped("BatchMatMul"), { a, b }, {
    transposeA: false,
    transposeB: false,
  });
}

// ---------------------------------------------------------------------------
// Data movement on the heap.

/** Row-major `[rows, cols]` -> `[cols, rows]`. */
function transpose2d(src: Float32Array, rows: number, cols: number, out: Float32Array): void {
  transposePadded(src, rows, cols, 0, out);
}

/**
 * For filter tap `(i, j)`: the offset, within one channel plane `[n][y][x]`
 * of the input, that each output position `(n, oy, ox)` reads, or `pad`
 * where the tap falls outside the image.
 */
function tapOffsets(g: ConvGeometry, i: number, j: number, pad: number, out: Int32Array): void {
  const { batch, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo } = g;
  let p = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < ho; oy++) {
      const iy = oy * g.strideHeight + i - g.padTop;
      const rowInside = iy >= 0 && iy < h;
      for (let ox = 0; ox < wo; ox++) {
        const ix = ox * g.strideWidth + j - g.padLeft;
        out[p++] = rowInside && ix >= 0 && ix < w ? (n * h + iy) * w + ix : pad;
      }
    }
  }
}

/**
 * Writes the transposed im2col matrix `[kh*kw*ci, n*ho*wo]`: row
 * `(i, j, c)`, column `(n, oy, ox)` holds
 * `x[n, oy*sh + i - padTop, ox*sw + j - padLeft, c]`, zero outside the
 * image. Reads `x` channel-major, each channel plane followed by one zero
 * (`xT[c][n*h*w + 1]`) that padding taps read: a branch-free gather.
 */
function im2colTransposed(xT: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const c = g.inChannels;
  const plane = g.batch * g.inHeight * g.inWidth + 1;
  const cols = g.batch * g.outHeight * g.outWidth;
  const offsets = new Int32Array(cols);
  for (let i = 0; i < g.filterHeight; i++) {
    for (let j = 0; j < g.filterWidth; j++) {
      tapOffsets(g, i, j, plane - 1, offsets);
      for (let ci = 0; ci < c; ci++) {
        const o = ((i * g.filterWidth + j) * c + ci) * cols;
        const base = ci * plane;
        for (let p = 0; p < cols; p++) out[o + p] = xT[base + offsets[p]];
      }
    }
  }
}

/**
 * The adjoint of {@linkcode im2colTransposed}: adds each entry of the
 * transposed column matrix back into the pixel it was read from, into
 * `dxT[c][n*h*w + 1]` (the extra slot per plane collects the padding).
 */
function col2imTransposed(colsT: Float32Array, g: ConvGeometry, dxT: Float32Array): void {
  const c = g.inChannels;
  const plane = g.batch * g.inHeight * g.inWidth + 1;
  const cols = g.batch * g.outHeight * g.outWidth;
  const offsets = new Int32Array(cols);
  dxT.fill(0);
  for (let i = 0; i < g.filterHeight; i++) {
    for (let j = 0; j < g.filterWidth; j++) {
      tapOffsets(g, i, j, plane - 1, offsets);
      for (let ci = 0; ci < c; ci++) {
        const o = ((i * g.filterWidth + j) * c + ci) * cols;
        const base = ci * plane;
        for (let p = 0; p < cols; p++) dxT[base + offsets[p]] += colsT[o + p];
      }
    }
  }
}

/**
 * Row-major `[rows, cols]` -> `[cols, rows + pad]`: each output row is
 * followed by `pad` zeros (the padded channel planes above).
 */
function transposePadded(
  src: Float32Array,
  rows: number,
  cols: number,
  pad: number,
  out: Float32Array,
): void {
  const block = 32;
  const stride = rows + pad;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let c0 = 0; c0 < cols; c0 += block) {
      const c1 = Math.min(cols, c0 + block);
      for (let c = c0; c < c1; c++) {
        let s = r0 * cols + c;
        let d = c * stride + r0;
        for (let r = r0; r < r1; r++) {
          out[d++] = src[s];
          s += cols;
        }
      }
    }
  }
  if (pad > 0) { for (let c = 0; c < cols; c++) out.fill(0, c * stride + rows, (c + 1) * stride); }
}

/** `[rows, cols + 1]` (last column ignored) -> `[cols, rows]`. */
function transposeRowsOfPadded(
  src: Float32Array,
  rows: number,
  cols: number,
  out: Float32Array,
): void {
  const block = 32;
  const stride = cols + 1;
  for (let c0 = 0; c0 < cols; c0 += block) {
    const c1 = Math.min(cols, c0 + block);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const r1 = Math.min(rows, r0 + block);
      for (let r = r0; r < r1; r++) {
        let s = r * stride + c0;
        let d = c0 * rows + r;
        for (let c = c0; c < c1; c++) {
          out[d] = src[s++];
          d += rows;
        }
      }
    }
  }
}

/** `[kh, kw, ci, co]` -> `[kh, kw, co, ci]`, spatially reversed: the filter of the input gradient. */
function flipTransposeFilter(f: Float32Array, g: ConvGeometry, out: Float32Array): void {
  const taps = g.filterHeight * g.filterWidth;
  const plane = g.inChannels * g.outChannels;
  for (let t = 0; t < taps; t++) {
    transpose2d(
      f.subarray((taps - 1 - t) * plane, (taps - t) * plane),
      g.inChannels,
      g.outChannels,
      out.subarray(t * plane, (t + 1) * plane),
    );
  }
}

// ---------------------------------------------------------------------------
// Convolutions.

/** The column matrix of `x`, transposed: `[kh*kw*ci, n*ho*wo]`. Caller frees. */
function columnsTransposed(backend: WasmBackend, x: Info, g: ConvGeometry): Info {
  const pixels = g.batch * g.inHeight * g.inWidth;
  const rows = g.filterHeight * g.filterWidth * g.inChannels;
  const xT = backend.makeOutput([g.inChannels, pixels + 1], "float32");
  const colsT = backend.makeOutput([rows, g.batch * g.outHeight * g.outWidth], "float32");
  const xTData = f32(backend, xT);
  transposePadded(f32(backend, x), pixels, g.inChannels, 1, xTData);
  im2colTransposed(xTData, g, f32(backend, colsT));
  backend.disposeData(xT.dataId);
  return colsT;
}

/**
 * y^T = W^T im2col(x)^T: the forward convolution as one GEMM whose packed
 * operand is the column matrix, small in deep layers where the weights are
 * large and XNNPACK's `Conv2D` would repack them on every new filter.
 */
function conv2DByGemm(backend: WasmBackend, x: Info, filter: Info, g: ConvGeometry): Info {
  const rows = g.filterHeight * g.filterWidth * g.inChannels;
  const co = g.outChannels;
  const cols = g.batch * g.outHeight * g.outWidth;
  const colsT = columnsTransposed(backend, x, g);
  const wT = backend.makeOutput([co, rows], "float32");
  transpose2d(f32(backend, filter), rows, co, f32(backend, wT));
  const yT = matMul(backend, wT, colsT);
  backend.disposeData(wT.dataId);
  backend.disposeData(colsT.dataId);
  const y = backend.makeOutput([g.batch, g.outHeight, g.outWidth, co], "float32");
  transpose2d(f32(backend, yT), co, cols, f32(backend, y));
  backend.disposeData(yT.dataId);
  return y;
}

/**
 * Filters the forward convolution has already run with: XNNPACK holds their
 * packed weights, so running them through `Conv2D` again is the fast path
 * (inference). A filter seen for the first time (every training step, as the
 * optimizer makes new weights) takes {@linkcode conv2DByGemm} when its
 * weights outweigh the activations.
 */
const seenFilters = new WeakSet<object>();

/** Use the GEMM route forward when output channels are at least this share of output pixels. */
const FORWARD_GEMM_MIN_CHANNELS_PER_PIXEL = 2;

function conv2DForward(args: KernelArgs, kernelName: "Conv2D" | "FusedConv2D"): Info {
  const backend = backendOf(args);
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info>;
  const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
  const plain = bias == null && preluActivationWeights == null &&
    (attrs.activation === undefined || attrs.activation === "linear") &&
    attrs.dataFormat === "NHWC" && tf.backend_util.tupleValuesAreOne(attrs.dilations ?? 1) &&
    x.dtype === "float32" && filter.dtype === "float32";
  const seen = seenFilters.has(filter.dataId);
  if (plain && !seen) {
    seenFilters.add(filter.dataId);
    const g = geometry(
      x.shape,
      filter.shape,
      attrs.strides,
      attrs.pad,
      attrs.dataFormat,
      attrs.dimRoundingMode,
      kernelName,
    );
    const pixels = g.batch * g.outHeight * g.outWidth;
    if (g.outChannels >= FORWARD_GEMM_MIN_CHANNELS_PER_PIXEL * pixels) {
      return conv2DByGemm(backend, x, filter, g);
    }
  }
  return shipped(kernelName)(args) as Info;
}

/**
 * dW = im2col(x)^T dy as one GEMM: the transposed column matrix is streamed
 * and dy, the packed operand, is never larger than the activations.
 */
function conv2DBackpropFilter(args: KernelArgs): Info {
  const backend = backendOf(args);
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const g = geometry(
    x.shape,
    attrs.filterShape,
    attrs.strides,
    attrs.pad,
    attrs.dataFormat,
    attrs.dimRoundingMode,
    "Conv2DBackpropFilter",
  );
  const cols = g.batch * g.outHeight * g.outWidth;
  const colsT = columnsTransposed(backend, x, g);
  // A private copy of dy: XNNPACK caches its packing of `b` by data id, and
  // dy's id belongs to the caller, who might view it under another shape.
  const dyCopy = backend.makeOutput([cols, g.outChannels], "float32");
  f32(backend, dyCopy).set(f32(backend, dy));
  const dw = matMul(backend, colsT, dyCopy);
  backend.disposeData(colsT.dataId);
  backend.disposeData(dyCopy.dataId);
  return view(dw, [...attrs.filterShape]);
}

/** Take the convolution route for dx when the column matrix is at least this many times the filter. */
const INPUT_GRAD_CONV_MIN_COLUMNS_PER_WEIGHT = 4;

/**
 * dx by one of two routes. Stride 1 with padding below the filter size, in
 * shallow layers: a forward XNNPACK convolution of dy with the flipped,
 * transposed filter. Otherwise (strided, or deep layers where packing the
 * filter would cost more than the convolution): the GEMM `W dy^T`, whose
 * packed operand is dy, scattered back into place with col2im.
 */
function conv2DBackpropInput(args: KernelArgs): Info {
  const backend = backendOf(args);
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const g = geometry(
    attrs.inputShape,
    filter.shape,
    attrs.strides,
    attrs.pad,
    attrs.dataFormat,
    attrs.dimRoundingMode,
    "Conv2DBackpropInput",
  );
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = g;
  const cols = g.batch * g.outHeight * g.outWidth;
  const asConv = g.strideHeight === 1 && g.strideWidth === 1 &&
    Math.max(g.padTop, g.padBottom) < kh && Math.max(g.padLeft, g.padRight) < kw &&
    cols * kh * kw * ci >= INPUT_GRAD_CONV_MIN_COLUMNS_PER_WEIGHT * kh * kw * ci * co;
  if (asConv) {
    const flipped = backend.makeOutput([kh, kw, co, ci], "float32");
    flipTransposeFilter(f32(backend, filter), g, f32(backend, flipped));
    const dx = runWasm(backend, shipped("Conv2D"), { x: dy, filter: flipped }, {
      strides: 1,
      dilations: 1,
      dataFormat: "NHWC",
      pad: [[0, 0], [kh - 1 - g.padTop, kh - 1 - g.padBottom], [
        kw - 1 - g.padLeft,
        kw - 1 - g.padRight,
      ], [0, 0]],
    });
    backend.disposeData(flipped.dataId);
    return dx;
  }
  const dyT = backend.makeOutput([co, cols], "float32");
  transpose2d(f32(backend, dy), cols, co, f32(backend, dyT));
  const colsT = matMul(backend, view(filter, [kh * kw * ci, co]), dyT);
  backend.disposeData(dyT.dataId);
  const pixels = g.batch * g.inHeight * g.inWidth;
  const dxT = backend.makeOutput([ci, pixels + 1], "float32");
  const dx = backend.makeOutput([...attrs.inputShape], "float32");
  const dxTData = f32(backend, dxT);
  col2imTransposed(f32(backend, colsT), g, dxTData);
  transposeRowsOfPadded(dxTData, ci, pixels, f32(backend, dx));
  backend.disposeData(colsT.dataId);
  backend.disposeData(dxT.dataId);
  return dx;
}

// ---------------------------------------------------------------------------
// Pooling, reductions, tiling, identity.

/**
 * Routes each dy to the first maximum of its window (rows, then columns,
 * strict `>`), as the CPU backend and TensorFlow do.
 */
function maxPoolGrad(args: KernelArgs): Info {
  const backend = backendOf(args);
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dx = backend.makeOutput([...input.shape], "float32");
  const x = f32(backend, input);
  const g = f32(backend, dy);
  const out = f32(backend, dx);
  out.fill(0);
  // Per window, scan pixels in order with the channels innermost (along memory).
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  let o = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < ho; oy++) {
      const y0 = oy * sh - top;
      const yLo = Math.max(0, y0);
      const yHi = Math.min(h, y0 + fh);
      for (let ox = 0; ox < wo; ox++) {
        const x0 = ox * sw - left;
        const xLo = Math.max(0, x0);
        const xHi = Math.min(w, x0 + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let iy = yLo; iy < yHi; iy++) {
          for (let ix = xLo; ix < xHi; ix++) {
            const base = ((n * h + iy) * w + ix) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                at[ch] = base + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < c; ch++, o++) if (at[ch] >= 0) out[at[ch]] += g[o];
      }
    }
  }
  return dx;
}

/**
 * Sum or mean over the leading axes (a batch-norm reduction over N, H, W of
 * NHWC), one pass down the rows; other reductions go to the shipped kernel.
 */
function leadingAxesReduction(args: KernelArgs, kernelName: "Sum" | "Mean"): Info {
  const { x } = args.inputs as { x: Info };
  const attrs = args.attrs as unknown as tf.SumAttrs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  if (!leading || x.dtype !== "float32") return shipped(kernelName)(args) as Info;
  const backend = backendOf(args);
  const kept = x.shape.slice(axes.length);
  const width = kept.reduce((a, b) => a * b, 1);
  const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
  const outShape = attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept;
  const out = backend.makeOutput(outShape, "float32");
  const src = f32(backend, x);
  const acc = new Float64Array(width);
  for (let r = 0, p = 0; r < rows; r++) {
    for (let k = 0; k < width; k++) acc[k] += src[p++];
  }
  const scale = kernelName === "Mean" ? 1 / rows : 1;
  const dst = f32(backend, out);
  for (let k = 0; k < width; k++) dst[k] = acc[k] * scale;
  return out;
}

/**
 * Tiles `x` into `out` (both row-major): each block is written once and then
 * replicated with doubling `copyWithin` (memmove).
 */
function tileInto(x: Heap, shape: readonly number[], reps: readonly number[], out: Heap): void {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  const outStrides = new Array<number>(rank);
  for (let d = rank - 1, inStride = 1, outStride = 1; d >= 0; d--) {
    inStrides[d] = inStride;
    outStrides[d] = outStride;
    inStride *= shape[d];
    outStride *= shape[d] * reps[d];
  }
  const fill = (d: number, inOff: number, outOff: number): void => {
    const block = shape[d] * outStrides[d];
    if (d === rank - 1) {
      out.set(x.subarray(inOff, inOff + shape[d]), outOff);
    } else {
      for (let i = 0; i < shape[d]; i++) {
        fill(d + 1, inOff + i * inStrides[d], outOff + i * outStrides[d]);
      }
    }
    const total = block * reps[d];
    for (let done = block; done < total;) {
      const n = Math.min(done, total - done);
      out.copyWithin(outOff + done, outOff, outOff + n);
      done += n;
    }
  };
  if (rank === 0) out.set(x);
  else if (out.length > 0) fill(0, 0, 0);
}

function tile(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  if (x.dtype === "string") return shipped("Tile")(args) as Info;
  const backend = backendOf(args);
  const reps = (args.attrs as unknown as tf.TileAttrs).reps;
  const out = backend.makeOutput(x.shape.map((s, i) => s * reps[i]), x.dtype);
  tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
  return out;
}

/**
 * Identity shares the data and takes a reference, as `Reshape` already does
 * on this backend and `Identity` does on the CPU backend; the shipped kernel
 * copies, and the engine clones every tensor a gradient saves.
 */
function identity(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  if (x.dtype === "string") return shipped("Identity")(args) as Info;
  backendOf(args).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

// ---------------------------------------------------------------------------
// Padding and slicing.

/**
 * Copies a box of `extent` elements per axis from `src` (of `srcShape`,
 * starting at `srcStart`) into `dst` (of `dstShape`, at `dstStart`). The
 * trailing axes that both sides take whole form one contiguous run, so an
 * NHWC box that differs in H and W copies one `W*C` row per `(n, h)`.
 */
function copyBox(
  src: Heap,
  srcShape: readonly number[],
  srcStart: readonly number[],
  dst: Heap,
  dstShape: readonly number[],
  dstStart: readonly number[],
  extent: readonly number[],
): void {
  const whole = (j: number) =>
    srcStart[j] === 0 && dstStart[j] === 0 && extent[j] === srcShape[j] &&
    extent[j] === dstShape[j];
  // Axis k is the innermost one not taken whole; everything after it is one run.
  let k = extent.length - 1;
  while (k > 0 && whole(k)) k--;
  const unit = tf.util.sizeFromShape(extent.slice(k + 1));
  const run = extent[k] * unit;
  const strides = (shape: readonly number[]) =>
    shape.map((_, j) => tf.util.sizeFromShape(shape.slice(j + 1)));
  const [srcStrides, dstStrides] = [strides(srcShape), strides(dstShape)];
  const rows = tf.util.sizeFromShape(extent.slice(0, k));
  const index = new Array<number>(k).fill(0);
  for (let r = 0; r < rows; r++) {
    let from = srcStart[k] * unit;
    let to = dstStart[k] * unit;
    for (let j = 0; j < k; j++) {
      from += (srcStart[j] + index[j]) * srcStrides[j];
      to += (dstStart[j] + index[j]) * dstStrides[j];
    }
    if (run >= 32) dst.set(src.subarray(from, from + run), to);
    else for (let e = 0; e < run; e++) dst[to + e] = src[from + e];
    for (let j = k - 1; j >= 0 && ++index[j] === extent[j]; j--) index[j] = 0;
  }
}

/**
 * `PadV2` (constant padding) by {@linkcode copyBox}, where the shipped
 * kernel walks element by element (ResNet's two zero paddings: 3.7 ms of a
 * 64 px batch).
 */
function padV2(args: KernelArgs): Info {
  const backend = backendOf(args);
  const { x } = args.inputs as { x: Info };
  const { paddings, constantValue } = args.attrs as unknown as tf.PadV2Attrs;
  if (x.shape.length === 0 || !["float32", "int32", "bool"].includes(x.dtype)) {
    return shipped("PadV2")(args) as Info;
  }
  const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const dst = backend.typedArrayFromHeap(out);
  dst.fill(constantValue);
  if (tf.util.sizeFromShape(x.shape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const before = paddings.map(([b]) => b);
  copyBox(src, x.shape, x.shape.map(() => 0), dst, outShape, before, x.shape);
  return out;
}

/**
 * `Slice` by {@linkcode copyBox}, where the shipped kernel copies one
 * `C`-long piece per pixel (cutting the border off an NHWC tensor: the
 * gradient of a zero padding).
 */
function slice(args: KernelArgs): Info {
  const backend = backendOf(args);
  const { x } = args.inputs as { x: Info };
  const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
  if (x.dtype === "string" || x.shape.length === 0) return shipped("Slice")(args) as Info;
  const [start, extent] = tf.slice_util.parseSliceParams(x, begin, size);
  const out = backend.makeOutput(extent, x.dtype);
  if (tf.util.sizeFromShape(extent) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  copyBox(src, x.shape, start, dst, extent, extent.map(() => 0), extent);
  return out;
}

// ---------------------------------------------------------------------------
// Registration.

/** The wasm kernels as the package shipped them, kept before any are replaced. */
const shippedKernels = new Map<string, tf.KernelFunc>();

function shipped(name: string): tf.KernelFunc {
  const kernel = shippedKernels.get(name) ?? tf.getKernel(name, "wasm")?.kernelFunc;
  if (!kernel) throw new Error(`wasm kernel '${name}' is not registered`);
  return kernel;
}

const KERNELS: Record<string, tf.KernelFunc> = {
  Conv2D: (args) => conv2DForward(args, "Conv2D"),
  FusedConv2D: (args) => conv2DForward(args, "FusedConv2D"),
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  MaxPoolGrad: maxPoolGrad,
  Sum: (args) => leadingAxesReduction(args, "Sum"),
  Mean: (args) => leadingAxesReduction(args, "Mean"),
  Tile: tile,
  Identity: identity,
  PadV2: padV2,
  Slice: slice,
};

/** Kernels whose shipped version ours falls back to, so they must exist first. */
const NEEDS_SHIPPED = [
  "Conv2D",
  "FusedConv2D",
  "BatchMatMul",
  "Sum",
  "Mean",
  "Tile",
  "Identity",
  "PadV2",
  "Slice",
];

/**
 * Registers, for the `wasm` backend, the kernels that training a conv net
 * needs and tfjs-backend-wasm 4.22 lacks (`Conv2DBackpropFilter`) or runs
 * far slower than the math needs (`Conv2DBackpropInput`, `MaxPoolGrad`,
 * forward `Conv2D`/`FusedConv2D` on new weights, `Tile`, batch-axis
 * `Sum`/`Mean`, `Identity`, `PadV2`, `Slice`). Call after importing
 * `@tensorflow/tfjs-backend-wasm`; calling again is a no-op. Results match
 * the CPU backend to float32 rounding.
 */
export function registerWasmTrainingKernels(): void {
  for (const name of NEEDS_SHIPPED) {
    if (shippedKernels.has(name)) continue;
    const kernel = tf.getKernel(name, "wasm");
    if (!kernel) {
      throw new Error(
        `wasm kernel '${name}' is not registered: import "@tensorflow/tfjs-backend-wasm" first`,
      );
    }
    shippedKernels.set(name, kernel.kernelFunc);
  }
  for (const [kernelName, kernelFunc] of Object.entries(KERNELS)) {
    const current = tf.getKernel(kernelName, "wasm");
    if (current?.kernelFunc === kernelFunc) continue;
    // Replacing a shipped kernel: unregister first, or tfjs warns. The
    // shipped setupFunc (cwrap of the C++ entry) stays registered with it,
    // as our fallbacks call the shipped kernelFunc.
    if (current) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc,
      setupFunc: current?.setupFunc,
      disposeFunc: current?.disposeFunc,
    });
  }
}
