/**
 * The oneDNN kernels on the wasm backend against the CPU backend (values
 * and gradients), their primitive cache, and leaks. Skipped, with the
 * reason, where no supported libdnnl loads (`apt-get install libdnnl2`).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { assertCloseRelative, onCpuAndWasm, seededValues } from "./fixtures_kernels.ts";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmTrainingKernels } from "../lib/kernels/wasm.ts";
import {
  describeOneDnn,
  openOneDnn,
  unsupportedVersionReason,
} from "../lib/kernels/onednn/library.ts";
import { FilterCopies } from "../lib/kernels/onednn/filter_copies.ts";
import {
  ConvBackwardData,
  ConvBackwardWeights,
  ConvForward,
  convGeometry,
  type FilterLayout,
  preferredLayout,
} from "../lib/kernels/onednn/conv.ts";
import {
  oneDnnKernelState,
  registerOneDnnKernels,
  RELU_GRAD,
  unregisterOneDnnKernels,
} from "../lib/kernels/onednn/kernels.ts";

registerWasmTrainingKernels();
await tf.setBackend("wasm");

let unavailable: string | null = null;
try {
  registerOneDnnKernels(openOneDnn());
} catch (e) {
  unavailable = (e as Error).message;
  console.warn(`skipping oneDNN kernel tests: ${unavailable}`);
}
const ignore = unavailable !== null;

type Shape4 = [number, number, number, number];
type Pad = "same" | "valid" | number;

const sizeOf = tf.util.sizeFromShape;

/** onednn against cpu, relative to the largest magnitude (plus a floor for all-zero outputs). */
function assertClose(cpu: Float32Array[], got: Float32Array[], what: string, tol = 2e-5) {
  assertCloseRelative(cpu, got, what, tol, "onednn");
}

/**
 * The adjoint of 'same'-padded average pooling whose border windows average
 * only the cells inside the image, for dy = 1, 2, 3, ... in order.
 */
function avgPoolGradReference(shape: Shape4, size: number, stride: number): Float32Array {
  const [n, h, w, c] = shape;
  const info = tf.backend_util.computePool2DInfo(shape, size, stride, 1, "same");
  const dx = new Float32Array(sizeOf(shape));
  let k = 1;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < info.outHeight; oy++) {
      for (let ox = 0; ox < info.outWidth; ox++) {
        const y0 = Math.max(0, oy * stride - info.padInfo.top);
        const y1 = Math.min(h, oy * stride - info.padInfo.top + size);
        const x0 = Math.max(0, ox * stride - info.padInfo.left);
        const x1 = Math.min(w, ox * stride - info.padInfo.left + size);
        const count = (y1 - y0) * (x1 - x0);
        for (let ch = 0; ch < c; ch++, k++) {
          for (let y = y0; y < y1; y++) {
            for (let x = x0; x < x1; x++) dx[((b * h + y) * w + x) * c + ch] += k / count;
          }
        }
      }
    }
  }
  return dx;
}

interface ConvCase {
  x: Shape4;
  filter: Shape4;
  strides: number | [number, number];
  pad: Pad;
}

// 1x1, 3x3, 7x7; strides 1 and 2; same and valid; non-square inputs; batch 1
// and 2; uneven and explicit padding; channel counts the blocked layouts
// pad (not multiples of 8 or 16) and ones they fill.
const CONV_CASES: ConvCase[] = [];
for (const [kh, kw] of [[1, 1], [3, 3], [7, 7]]) {
  for (const strides of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      CONV_CASES.push({ x: [2, 11, 9, 3], filter: [kh, kw, 3, 5], strides, pad });
      CONV_CASES.push({ x: [1, 12, 10, 16], filter: [kh, kw, 16, 32], strides, pad });
    }
  }
}
CONV_CASES.push(
  { x: [3, 8, 6, 4], filter: [3, 3, 4, 2], strides: [2, 1], pad: "same" },
  { x: [2, 7, 9, 3], filter: [2, 4, 3, 5], strides: 1, pad: "same" },
  { x: [2, 8, 9, 2], filter: [2, 3, 2, 3], strides: 2, pad: 1 },
  { x: [2, 2, 3, 64], filter: [3, 3, 64, 128], strides: 1, pad: "same" },
  { x: [1, 4, 4, 32], filter: [3, 3, 32, 64], strides: 2, pad: "same" },
  // Dead taps (lib/kernels/onednn/cropped_filter.ts): only the centre of a 1x1 map (a view of
  // the filter), one row of taps (a view), one column (gathered), a 2x2 corner of a strided
  // filter (gathered), and a 7x7 stem on a map smaller than its filter.
  { x: [2, 1, 1, 32], filter: [3, 3, 32, 64], strides: 1, pad: "same" },
  { x: [2, 1, 4, 16], filter: [3, 3, 16, 16], strides: 1, pad: "same" },
  { x: [2, 5, 1, 16], filter: [3, 3, 16, 32], strides: 1, pad: "same" },
  { x: [2, 2, 2, 16], filter: [3, 3, 16, 16], strides: 2, pad: 1 },
  { x: [1, 3, 2, 3], filter: [7, 7, 3, 8], strides: 2, pad: 3 },
  // No live tap at all (the stride steps over the only column): not cropped, all zeros.
  { x: [2, 3, 1, 4], filter: [1, 1, 4, 8], strides: 3, pad: 1 },
);

const label = (c: ConvCase) => `x ${c.x} filter ${c.filter} strides ${c.strides} pad ${c.pad}`;

Deno.test({
  name: "oneDNN Conv2D and both its gradients equal the CPU backend",
  ignore,
  fn: async () => {
    for (const [i, c] of CONV_CASES.entries()) {
      const xv = seededValues(sizeOf(c.x), 2 * i + 1);
      const fv = seededValues(sizeOf(c.filter), 2 * i + 2);
      const [cpu, got] = await onCpuAndWasm(() => {
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, c.filter);
        const y = tf.conv2d(x, f, c.strides, c.pad);
        // A weighted sum makes every dy distinct.
        const weights = tf.tensor(seededValues(y.size, 7 * i + 3), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), weights))
        )([x, f]);
        return [y, dx, df];
      });
      assertClose(cpu, got, `conv2d, dx, dW: ${label(c)}`);
    }
    const state = oneDnnKernelState();
    assert.ok(state.primitives > 0, "the oneDNN kernels ran");
    // The five dead-tap cases ran cropped (the all-dead one and the 3x3 on 2x3 maps did not).
    assert.equal(state.croppedGeometries, 5, "geometries run cropped to their live taps");
  },
});

Deno.test({
  name: "oneDNN conv reuses a reordered filter only for the same data: new weights are never stale",
  ignore,
  fn: () => {
    // 32 -> 64 channels: oneDNN picks a blocked filter layout, so the reorder is cached.
    const x = tf.tensor4d(seededValues(2 * 6 * 5 * 32, 1), [2, 6, 5, 32]);
    const w = tf.variable(tf.tensor4d(seededValues(3 * 3 * 32 * 64, 2), [3, 3, 32, 64]));
    const conv = () => tf.tidy(() => tf.conv2d(x, w as tf.Tensor4D, 1, "same").dataSync());
    const dx = () =>
      tf.tidy(() =>
        tf.grad((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, w as tf.Tensor4D, 1, "same")))(
          x,
        ).dataSync()
      );
    const [first, firstDx] = [conv(), dx()];
    assert.deepEqual(conv(), first, "same filter, same result");
    tf.tidy(() => w.assign(tf.mul(w, 2)));
    const [second, secondDx] = [conv(), dx()];
    for (let i = 0; i < first.length; i += 97) {
      assert.ok(
        Math.abs(second[i] - 2 * first[i]) <= 1e-4 * Math.max(1, Math.abs(first[i])),
        `y[${i}]`,
      );
    }
    for (let i = 0; i < firstDx.length; i += 97) {
      assert.ok(
        Math.abs(secondDx[i] - 2 * firstDx[i]) <= 1e-4 * Math.max(1, Math.abs(firstDx[i])),
        `dx[${i}]`,
      );
    }
    tf.dispose([x, w]);
  },
});

Deno.test({
  name: "oneDNN conv gives the same numbers with the filter blocked (reordered) or plain hwio",
  ignore,
  fn: () => {
    const dnnl = openOneDnn();
    // The ResNet stem (3 input channels, which the blocked backward-data
    // pads to 16), a deep layer on 2x2 pixels, and an ordinary 3x3 layer.
    const cases: ConvCase[] = [
      { x: [2, 22, 22, 3], filter: [7, 7, 3, 16], strides: 2, pad: 0 },
      { x: [2, 2, 2, 64], filter: [3, 3, 64, 64], strides: 1, pad: "same" },
      { x: [2, 9, 8, 32], filter: [3, 3, 32, 48], strides: 2, pad: "same" },
    ];
    const noBlockedCandidate = new Set<string>();
    for (const [i, c] of cases.entries()) {
      const g = convGeometry(c.x, c.filter, c.strides, c.pad, "NHWC", 1, undefined)!;
      const yShape = [g.batch, g.outHeight, g.outWidth, g.outChannels];
      const x = seededValues(sizeOf(c.x), 3 * i + 1);
      const w = seededValues(sizeOf(c.filter), 3 * i + 2);
      const dy = seededValues(sizeOf(yShape), 3 * i + 3);
      const run = (layout: FilterLayout) => {
        const prims = [
          new ConvForward(dnnl, g, false, false, layout),
          new ConvBackwardData(dnnl, g, layout),
          new ConvBackwardWeights(dnnl, g, layout),
        ] as const;
        try {
          for (const p of prims) {
            // Where oneDNN offers no blocked layout (its gemm on hwio: the
            // stem's backward-data on AVX2, every backward pass on SSE4.1),
            // the filter is read in place whatever was asked.
            const expected = p.blockedPadding === null ? "plain" : layout;
            if (p.blockedPadding === null) {
              noBlockedCandidate.add(`${label(c)}: ${p.implementation}`);
            }
            assert.equal(p.filterLayout, expected, `${label(c)}: ${p.implementation}`);
            assert.doesNotMatch(p.implementation, /(^|:)ref(:|$)/, label(c));
          }
          const [y, dx, dw] = [yShape, c.x, c.filter].map((s) => new Float32Array(sizeOf(s)));
          prims[0].run(x, w, null, y);
          prims[1].run(dy, w, dx);
          prims[2].run(x, dy, dw);
          return [y, dx, dw];
        } finally {
          for (const p of prims) p.destroy();
        }
      };
      assertClose(run("blocked"), run("plain"), `plain against blocked: ${label(c)}`);
    }
    console.log(
      `  ${describeOneDnn(dnnl)} on ${dnnl.isa.family}: ${noBlockedCandidate.size} direction(s) ` +
        `with no blocked layout offered${
          noBlockedCandidate.size ? ` (${[...noBlockedCandidate].join("; ")})` : ""
        }`,
    );
  },
});

Deno.test({
  name: "oneDNN conv reads the filter in place (hwio) only where the blocked layout pads it",
  ignore,
  fn: () => {
    assert.equal(preferredLayout({ padding: 16 / 3 }), "plain");
    assert.equal(preferredLayout({ padding: 8 / 3 }), "plain");
    assert.equal(preferredLayout({ padding: 1 }), "blocked");
    assert.equal(preferredLayout({ padding: 1.5 }), "blocked");
    const dnnl = openOneDnn();
    // The ResNet stem: a blocked backward-data pads its 3 input channels to
    // a block of 8 (AVX2) or 16 (AVX-512), or oneDNN runs it on gemm (hwio).
    const stem = convGeometry([2, 38, 38, 3], [7, 7, 3, 64], 2, 0, "NHWC", 1, undefined)!;
    const layer = convGeometry([2, 8, 8, 64], [3, 3, 64, 64], 1, "same", "NHWC", 1, undefined)!;
    const prims = {
      "stem backward-data": new ConvBackwardData(dnnl, stem),
      "stem forward": new ConvForward(dnnl, stem, false, false),
      "stem backward-weights": new ConvBackwardWeights(dnnl, stem),
      "layer backward-data": new ConvBackwardData(dnnl, layer),
      "layer forward": new ConvForward(dnnl, layer, false, false),
      "layer backward-weights": new ConvBackwardWeights(dnnl, layer),
    };
    try {
      const branches: string[] = [];
      for (const [name, p] of Object.entries(prims)) {
        const why = `${name}: ${p.implementation}, blocked padding ${p.blockedPadding}`;
        assert.doesNotMatch(p.implementation, /(^|:)ref(:|$)/, why);
        if (p.blockedPadding === null) {
          assert.equal(p.filterLayout, "plain", why);
          branches.push(`${name} no blocked layout offered`);
        } else {
          assert.equal(p.filterLayout, preferredLayout({ padding: p.blockedPadding }), why);
          branches.push(`${name} padding ${p.blockedPadding.toFixed(2)} -> ${p.filterLayout}`);
        }
      }
      // On every instruction set the stem's input gradient reads hwio in place.
      assert.equal(prims["stem backward-data"].filterLayout, "plain");
      console.log(`  ${dnnl.isa.family}: ${branches.join("; ")}`);
    } finally {
      for (const p of Object.values(prims)) p.destroy();
    }
  },
});

Deno.test({
  name: "backward-data reorders from the forward's copy of the same filter data only",
  ignore,
  fn: () => {
    const dnnl = openOneDnn();
    const copies = new FilterCopies();
    const g = convGeometry([2, 6, 5, 32], [3, 3, 32, 64], 1, "same", "NHWC", 1, undefined)!;
    const forward = new ConvForward(dnnl, g, false, false, undefined, copies);
    const shared = new ConvBackwardData(dnnl, g, undefined, copies);
    const alone = new ConvBackwardData(dnnl, g);
    try {
      const x = seededValues(2 * 6 * 5 * 32, 1);
      const dy = seededValues(2 * 6 * 5 * 64, 2);
      const y = new Float32Array(dy.length);
      const dx = () => new Float32Array(x.length);
      const [w1, w2] = [seededValues(3 * 3 * 32 * 64, 3), seededValues(3 * 3 * 32 * 64, 4)];
      const [id1, id2] = [{}, {}];
      forward.run(x, w1, null, y, id1);
      const heldAfterForward = copies.bytes.held;
      // The copy is kept only where backward-data runs on a blocked layout
      // (not where oneDNN runs it on gemm over hwio, as on SSE4.1).
      const sharing = shared.filterLayout === "blocked";
      console.log(
        `  ${dnnl.isa.family}: backward-data ${shared.implementation}, copies ${sharing}`,
      );
      assert.equal(heldAfterForward > 0, sharing, "the forward kept its blocked filter");
      const [got, want] = [dx(), dx()];
      shared.run(dy, w1, got, id1);
      alone.run(dy, w1, want);
      assert.deepEqual(got, want, "from the copy as from hwio");
      assert.equal(copies.bytes.held, 0, "backward-data released the copy (or held none)");
      // New filter data (as after an optimizer step), and one never seen by the forward.
      forward.run(x, w2, null, y, id2);
      const [got2, want2, got3, want3] = [dx(), dx(), dx(), dx()];
      shared.run(dy, w2, got2, id2);
      alone.run(dy, w2, want2);
      assert.deepEqual(got2, want2, "the new filter's copy, not the old one's");
      assert.notDeepEqual(got2, got, "the new filter changed dx");
      shared.run(dy, w1, got3, {});
      alone.run(dy, w1, want3);
      assert.deepEqual(got3, want3, "without a copy, from hwio");
    } finally {
      for (const p of [forward, shared, alone]) p.destroy();
    }
  },
});

Deno.test({
  name:
    "each filter's blocked copy lives as long as its filter, also across layers of one geometry",
  ignore,
  fn: () => {
    // Two layers of the same geometry share one forward primitive; each
    // keeps its own copy (inference reorders each filter once), and
    // freeing a filter frees its copy.
    const x = tf.tensor4d(seededValues(2 * 4 * 4 * 64, 1), [2, 4, 4, 64]);
    const filters = [2, 3].map((seed) =>
      tf.tensor4d(seededValues(3 * 3 * 64 * 64, seed), [3, 3, 64, 64])
    );
    const before = oneDnnKernelState().filterCopyBytes;
    const conv = (f: tf.Tensor4D) => tf.tidy(() => tf.conv2d(x, f, 1, "same").dataSync());
    const first = conv(filters[0]);
    const one = oneDnnKernelState().filterCopyBytes - before;
    conv(filters[1]);
    const again = conv(filters[0]);
    assert.deepEqual(again, first, "the first filter's copy was not overwritten by the second's");
    const two = oneDnnKernelState().filterCopyBytes - before;
    console.log(`  ${openOneDnn().isa.family}: one filter's copy ${one} bytes, two ${two}`);
    assert.equal(two, 2 * one, "each filter keeps its own copy");
    filters[0].dispose();
    assert.equal(oneDnnKernelState().filterCopyBytes - before, one, "freed with its filter");
    filters[1].dispose();
    assert.equal(oneDnnKernelState().filterCopyBytes, before);
    x.dispose();
  },
});

Deno.test("filter copies stay within their capacity and recycle their buffers", () => {
  const copies = new FilterCopies(1000);
  const md = new Uint8Array(8);
  const ids = [{}, {}, {}];
  for (const [i, id] of ids.entries()) copies.put(id, md, 400, (out) => out.fill(i + 1));
  assert.equal(copies.get(ids[0]), undefined, "the least recently used went");
  assert.equal(copies.get(ids[2])!.data[0], 3);
  assert.deepEqual(copies.bytes, { held: 800, spare: 400 });
  copies.drop(ids[1]);
  const reused = copies.put({}, md, 400, () => {});
  assert.deepEqual(copies.bytes, { held: 800, spare: 400 }, "a spare buffer was reused");
  assert.equal(reused.byteLength, 400);
  copies.clear();
  assert.deepEqual(copies.bytes, { held: 0, spare: 0 });
});

Deno.test({
  name: "oneDNN FusedConv2D (bias, relu) and its gradients equal the CPU backend",
  ignore,
  fn: async () => {
    const cases: ConvCase[] = [
      { x: [2, 5, 4, 3], filter: [3, 3, 3, 8], strides: 1, pad: "same" },
      { x: [1, 9, 6, 8], filter: [1, 1, 8, 16], strides: 2, pad: "valid" },
    ];
    for (const [i, c] of cases.entries()) {
      for (const activation of ["relu", "linear"] as const) {
        const xv = seededValues(sizeOf(c.x), i + 1);
        const fv = seededValues(sizeOf(c.filter), i + 2);
        const bv = seededValues(c.filter[3], i + 3);
        const [cpu, got] = await onCpuAndWasm(() => {
          const run = (x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
            tf.fused.conv2d({
              x: x as tf.Tensor4D,
              filter: f as tf.Tensor4D,
              bias: b,
              activation,
              strides: c.strides,
              pad: c.pad,
            });
          const args = [tf.tensor4d(xv, c.x), tf.tensor4d(fv, c.filter), tf.tensor1d(bv)];
          const y = run(args[0], args[1], args[2]);
          const grads = tf.grads((x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.square(run(x, f, b)))
          )(args);
          return [y, ...grads];
        });
        assertClose(cpu, got, `fused ${activation} ${label(c)}`);
      }
    }
  },
});

Deno.test({
  name: "oneDNN MaxPool, AvgPool and their gradients equal the CPU backend, ties included",
  ignore,
  fn: async () => {
    const cases: { x: Shape4; size: number; strides: number; pad: Pad }[] = [
      { x: [2, 9, 7, 3], size: 3, strides: 2, pad: "valid" },
      { x: [2, 9, 7, 3], size: 3, strides: 2, pad: "same" },
      { x: [1, 6, 8, 2], size: 2, strides: 2, pad: "valid" },
      { x: [2, 5, 5, 16], size: 3, strides: 1, pad: "same" },
      { x: [1, 16, 16, 64], size: 3, strides: 2, pad: "same" },
    ];
    for (const [i, c] of cases.entries()) {
      // Rounded to a few levels (after a ReLU, as in ResNet's stem), so many windows tie.
      const xv = seededValues(sizeOf(c.x), i + 1).map((v) => Math.max(0, Math.round(v * 2)));
      for (const kind of ["max", "avg"] as const) {
        const pool = (x: tf.Tensor) =>
          kind === "max"
            ? tf.maxPool(x as tf.Tensor4D, c.size, c.strides, c.pad)
            : tf.avgPool(x as tf.Tensor4D, c.size, c.strides, c.pad);
        const [cpu, got] = await onCpuAndWasm(() => {
          const x = tf.tensor4d(xv, c.x);
          const y = pool(x);
          const dx = tf.grad((a: tf.Tensor) => {
            const p = pool(a);
            return tf.sum(tf.mul(p, tf.range(1, p.size + 1).reshape(p.shape)));
          })(x);
          return [y, dx];
        });
        if (kind === "avg" && c.pad === "same") {
          // TF.js' CPU AvgPoolGrad divides by the whole window even where it
          // hangs over the border, unlike its own forward pass and TensorFlow;
          // oneDNN's gradient is the forward's true adjoint.
          cpu[1] = avgPoolGradReference(c.x, c.size, c.strides);
        }
        assertClose(cpu, got, `${kind}Pool ${JSON.stringify(c)}`);
      }
    }
  },
});

Deno.test({
  name:
    "oneDNN inference batch norm (FusedBatchNorm) equals the CPU backend; other shapes fall back",
  ignore,
  fn: async () => {
    for (const [i, shape] of ([[2, 5, 3, 4], [1, 1, 1, 64], [3, 4, 4, 17]] as Shape4[]).entries()) {
      const c = shape[3];
      const [cpu, got] = await onCpuAndWasm(() => {
        const x = tf.tensor4d(seededValues(sizeOf(shape), i + 1), shape);
        const mean = tf.tensor1d(seededValues(c, i + 2));
        const variance = tf.tensor1d(seededValues(c, i + 3).map((v) => v * v + 0.1));
        const beta = tf.tensor1d(seededValues(c, i + 4));
        const gamma = tf.tensor1d(seededValues(c, i + 5));
        return [
          tf.batchNorm(x, mean, variance, beta, gamma, 1e-3),
          // No offset or scale: the wasm kernel it replaces handles that.
          tf.batchNorm(x, mean, variance, undefined, undefined, 1e-3),
        ];
      });
      assertClose(cpu, got, `batchNorm ${shape}`);
    }
  },
});

Deno.test({
  name: "the ReLU gradient runs as one oneDNN pass and equals the CPU backend, zeros included",
  ignore,
  fn: async () => {
    const calls: number[] = [];
    const kernel = tf.getKernel(RELU_GRAD, "wasm")!;
    tf.unregisterKernel(RELU_GRAD, "wasm");
    tf.registerKernel({
      ...kernel,
      kernelFunc: (args) => {
        calls.push(tf.util.sizeFromShape((args.inputs.x as tf.TensorInfo).shape));
        return kernel.kernelFunc(args);
      },
    });
    try {
      for (const [i, shape] of ([[2, 5, 3, 4], [7], [1, 33, 3]] as number[][]).entries()) {
        // Rounded, so many inputs are exactly 0 (where both sides give 0).
        const xv = seededValues(sizeOf(shape), i + 1).map((v) => Math.round(v * 3));
        const dyv = seededValues(sizeOf(shape), i + 7);
        const [cpu, got] = await onCpuAndWasm(() =>
          tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), tf.tensor(dyv, shape))))(
            tf.tensor(xv, shape),
          )
        );
        assertClose(cpu, got, `relu grad ${shape}`, 0);
      }
    } finally {
      tf.unregisterKernel(RELU_GRAD, "wasm");
      tf.registerKernel(kernel);
    }
    assert.deepEqual(calls, [120, 7, 99]);
  },
});

Deno.test({
  name: "oneDNN kernels leak no tensors, heap buffers or primitives over many steps",
  ignore,
  fn: () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor4d(seededValues(2 * 16 * 16 * 8, 1), [2, 16, 16, 8]);
    const f = tf.variable(tf.tensor4d(seededValues(3 * 3 * 8 * 16, 2), [3, 3, 8, 16]));
    const step = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const y = tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"));
          return tf.sum(tf.maxPool(y, 3, 2, "same"));
        })([x, f]);
        f.assign(tf.sub(f, tf.mul(g[1], 1e-3)));
      });
    step();
    const before = [tf.memory().numTensors, backend.numDataIds(), oneDnnKernelState().primitives];
    const rssBefore = Deno.memoryUsage().rss;
    for (let i = 0; i < 300; i++) step();
    const after = [tf.memory().numTensors, backend.numDataIds(), oneDnnKernelState().primitives];
    assert.deepEqual(after, before, "tensors, heap buffers, cached primitives");
    // Native memory: 300 steps that each leaked even one activation would add megabytes.
    const grown = (Deno.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grown < 48, `RSS grew ${grown.toFixed(1)} MiB over 300 steps`);
    tf.dispose([x, f]);
  },
});

Deno.test({
  name: "unregistering puts the plain wasm kernels back and frees the primitives",
  ignore,
  fn: () => {
    unregisterOneDnnKernels();
    assert.deepEqual(oneDnnKernelState(), {
      registered: false,
      primitives: 0,
      filterCopyBytes: 0,
      croppedGeometries: 0,
    });
    const y = tf.tidy(() =>
      tf.conv2d(
        tf.ones([1, 4, 4, 2]) as tf.Tensor4D,
        tf.ones([3, 3, 2, 2]) as tf.Tensor4D,
        1,
        "same",
      )
    );
    assert.equal(y.dataSync()[(1 * 4 + 1) * 2], 18); // an inner pixel: 3 x 3 x 2 ones
    y.dispose();
    assert.equal(oneDnnKernelState().primitives, 0, "no primitive made while unregistered");
    // TF.js' own ReLU gradient is back (it needs no kernel of ours).
    const g = tf.tidy(() =>
      Array.from(tf.grad((x) => tf.sum(tf.relu(x)))(tf.tensor1d([-1, 0, 2])).dataSync())
    );
    assert.deepEqual(g, [0, 0, 1]);
    assert.equal(tf.getKernel(RELU_GRAD, "wasm"), undefined);
    registerOneDnnKernels(openOneDnn());
    assert.equal(oneDnnKernelState().registered, true);
  },
});

Deno.test("oneDNN 2.3-2.x and 3.1-3.x are accepted, other versions refused with a reason", () => {
  assert.equal(unsupportedVersionReason({ major: 2, minor: 6, patch: 3 }), null);
  assert.equal(unsupportedVersionReason({ major: 2, minor: 3, patch: 0 }), null);
  assert.equal(unsupportedVersionReason({ major: 3, minor: 1, patch: 1 }), null);
  assert.equal(unsupportedVersionReason({ major: 3, minor: 7, patch: 0 }), null);
  assert.match(unsupportedVersionReason({ major: 3, minor: 0, patch: 0 })!, /too old/);
  assert.match(unsupportedVersionReason({ major: 4, minor: 0, patch: 0 })!, /newer than/);
  assert.match(unsupportedVersionReason({ major: 1, minor: 8, patch: 0 })!, /too old/);
  assert.match(unsupportedVersionReason({ major: 2, minor: 1, patch: 0 })!, /too old/);
});

Deno.test({
  name: "a ResNet-34 training step with the oneDNN kernels matches the plain-wasm step",
  ignore,
  fn: async () => {
    const { resnet34 } = await import("../lib/model/resnet.ts");
    const { computeGradients, trainableVariables } = await import("../lib/train/step.ts");
    const { categoricalFocalLoss } = await import("../lib/focal_loss.ts");
    const { sgdNesterov } = await import("../lib/train/optimizers.ts");
    // Batch 8: with fewer images the deep batch norms (1x1 pixels) amplify rounding.
    const [batch, size] = [8, 32];
    const step = async () => {
      // Both stems: the ImageNet one has the 7x7/2 conv and the max-pool.
      const model = resnet34({ inputSize: size, outputs: 5, width: 0.25, seed: 3, dropout: 0 });
      const vars = trainableVariables(model);
      const x = tf.tensor4d(
        seededValues(batch * size * size * 3, 5).map((v) => 127.5 + 127.5 * v),
        [
          batch,
          size,
          size,
          3,
        ],
      );
      const y = tf.oneHot(tf.tensor1d([1, 3, 0, 2, 4, 1, 1, 0], "int32"), 5);
      const g = await computeGradients(model, vars, categoricalFocalLoss(), x, y, 0);
      const grads = g.grads.map((t) => Float32Array.from(t.dataSync()));
      const opt = sgdNesterov(vars);
      opt.apply(g.grads, 0.1);
      const weights = [...model.trainableWeights, ...model.nonTrainableWeights].map((w) =>
        Float32Array.from(w.read().dataSync())
      );
      tf.dispose([x, y, ...g.grads]);
      opt.dispose();
      model.dispose();
      return { loss: g.loss, grads, weights };
    };
    const native = await step();
    unregisterOneDnnKernels();
    const plain = await step();
    registerOneDnnKernels(openOneDnn());
    assert.ok(
      Math.abs(native.loss - plain.loss) <= 1e-4 * Math.abs(plain.loss),
      `loss: oneDNN ${native.loss}, plain wasm ${plain.loss}`,
    );
    assertClose(plain.grads, native.grads, "gradients", 5e-4);
    // Weights after the update, and the batch-norm moving statistics.
    assertClose(plain.weights, native.weights, "weights after the step", 2e-4);
  },
});
