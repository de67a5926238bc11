import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { assertCloseRelative, onCpuAndWasm, seededValues } from "./fixtures_kernels.ts";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmTrainingKernels } from "../lib/kernels/wasm.ts";

registerWasmTrainingKernels();
registerWasmTrainingKernels(); // idempotent: the second call must change nothing
await tf.setBackend("wasm");

type Shape4 = [number, number, number, number];
type Pad = "same" | "valid" | number;

const sizeOf = tf.util.sizeFromShape;

/** wasm against cpu, relative to the largest magnitude (plus a floor for all-zero outputs). */
function assertClose(cpu: Float32Array[], got: Float32Array[], what: string, tol = 2e-5) {
  assertCloseRelative(cpu, got, what, tol, "wasm");
}

/** Engine tensors and wasm heap buffers, to catch leaks in and outside the engine. */
function liveCounts(): [number, number] {
  const backend = tf.backend() as unknown as { numDataIds(): number };
  return [tf.memory().numTensors, backend.numDataIds()];
}

interface ConvCase {
  x: Shape4;
  filter: Shape4;
  strides: number | [number, number];
  pad: Pad;
}

// Every filter size, stride and padding the ResNet-34 uses, on non-square
// inputs, batch > 1, in/out channels differing; plus deep-layer shapes
// (more output channels than output pixels) that take the GEMM routes.
const CONV_CASES: ConvCase[] = [];
for (const [kh, kw] of [[1, 1], [3, 3], [7, 7]]) {
  for (const strides of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      CONV_CASES.push({ x: [2, 11, 9, 3], filter: [kh, kw, 3, 5], strides, pad });
    }
  }
}
CONV_CASES.push(
  { x: [3, 8, 6, 4], filter: [3, 3, 4, 2], strides: [2, 1], pad: "same" },
  { x: [2, 7, 9, 3], filter: [2, 4, 3, 5], strides: 1, pad: "same" }, // uneven padding
  { x: [2, 8, 9, 2], filter: [2, 3, 2, 3], strides: 2, pad: 1 },
  { x: [2, 2, 3, 6], filter: [3, 3, 6, 40], strides: 1, pad: "same" },
  { x: [2, 4, 4, 8], filter: [3, 3, 8, 24], strides: 2, pad: "same" },
  { x: [2, 3, 2, 16], filter: [1, 1, 16, 12], strides: 1, pad: "valid" },
);

const label = (c: ConvCase) => `x ${c.x} filter ${c.filter} strides ${c.strides} pad ${c.pad}`;

Deno.test("registration adds Conv2DBackpropFilter to wasm, and a second call is a no-op", () => {
  const before = tf.getKernel("Conv2DBackpropFilter", "wasm");
  assert.ok(before, "Conv2DBackpropFilter registered for wasm");
  registerWasmTrainingKernels();
  assert.equal(tf.getKernel("Conv2DBackpropFilter", "wasm")?.kernelFunc, before.kernelFunc);
  for (const k of ["Conv2DBackpropInput", "MaxPoolGrad", "Tile", "Sum", "Mean", "Identity"]) {
    assert.ok(tf.getKernel(k, "wasm"), k);
  }
});

Deno.test("Conv2DBackpropFilter on wasm equals the CPU backend", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
    const xv = seededValues(sizeOf(c.x), 2 * i + 1);
    const dyv = seededValues(sizeOf(outShape), 2 * i + 2);
    const [cpu, wasm] = await onCpuAndWasm(() =>
      tf.engine().runKernel("Conv2DBackpropFilter", {
        x: tf.tensor4d(xv, c.x),
        dy: tf.tensor4d(dyv, outShape),
      }, { strides: c.strides, pad: c.pad, dataFormat: "NHWC", filterShape: c.filter }) as tf.Tensor
    );
    assertClose(cpu, wasm, `dW ${label(c)}`);
  }
});

Deno.test("Conv2DBackpropInput on wasm equals the CPU backend", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
    const fv = seededValues(sizeOf(c.filter), 3 * i + 1);
    const dyv = seededValues(sizeOf(outShape), 3 * i + 2);
    const [cpu, wasm] = await onCpuAndWasm(() =>
      tf.engine().runKernel("Conv2DBackpropInput", {
        dy: tf.tensor4d(dyv, outShape),
        filter: tf.tensor4d(fv, c.filter),
      }, { strides: c.strides, pad: c.pad, dataFormat: "NHWC", inputShape: c.x }) as tf.Tensor
    );
    assertClose(cpu, wasm, `dx ${label(c)}`);
  }
});

Deno.test("forward Conv2D on wasm equals the CPU backend, for new and reused filters", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const xv = seededValues(sizeOf(c.x), 5 * i + 1);
    const fv = seededValues(sizeOf(c.filter), 5 * i + 2);
    // The second use of the same filter takes the other route on wasm.
    const [cpu, wasm] = await onCpuAndWasm(() => {
      const x = tf.tensor4d(xv, c.x);
      const f = tf.tensor4d(fv, c.filter);
      return [tf.conv2d(x, f, c.strides, c.pad), tf.conv2d(x, f, c.strides, c.pad)];
    });
    assertClose(cpu, wasm, `conv2d ${label(c)}`);
  }
});

Deno.test("fused conv2d with bias and relu still goes through on wasm", async () => {
  const x = seededValues(2 * 5 * 4 * 3, 1);
  const f = seededValues(3 * 3 * 3 * 8, 2);
  const b = seededValues(8, 3);
  const [cpu, wasm] = await onCpuAndWasm(() =>
    tf.fused.conv2d({
      x: tf.tensor4d(x, [2, 5, 4, 3]),
      filter: tf.tensor4d(f, [3, 3, 3, 8]),
      bias: tf.tensor1d(b),
      activation: "relu",
      strides: 1,
      pad: "same",
    })
  );
  assertClose(cpu, wasm, "fused conv2d");
});

Deno.test("MaxPoolGrad on wasm equals the CPU backend, ties included", async () => {
  const cases: { x: Shape4; size: number; strides: number; pad: Pad }[] = [
    { x: [2, 9, 7, 3], size: 3, strides: 2, pad: "valid" },
    { x: [2, 9, 7, 3], size: 3, strides: 2, pad: "same" },
    { x: [1, 6, 8, 2], size: 2, strides: 2, pad: "valid" },
    { x: [2, 5, 5, 4], size: 3, strides: 1, pad: "same" },
  ];
  for (const [i, c] of cases.entries()) {
    // Rounded to a few levels, so many windows hold equal maxima.
    const xv = seededValues(sizeOf(c.x), i + 1).map((v) => Math.max(0, Math.round(v * 2)));
    const [cpu, wasm] = await onCpuAndWasm(() =>
      tf.grad((x: tf.Tensor) => {
        const y = tf.maxPool(x as tf.Tensor4D, c.size, c.strides, c.pad);
        return tf.sum(tf.mul(y, tf.range(1, y.size + 1).reshape(y.shape)));
      })(tf.tensor4d(xv, c.x))
    );
    assertClose(cpu, wasm, `maxPoolGrad ${JSON.stringify(c)}`);
  }
});

Deno.test("Sum and Mean on wasm equal the CPU backend over any axes", async () => {
  const shape: Shape4 = [3, 4, 5, 6];
  const xv = seededValues(sizeOf(shape), 11);
  const axesList: (number | number[])[] = [[0, 1, 2], [0], [0, 1], -1, [1, 2], [0, 3], [
    0,
    1,
    2,
    3,
  ]];
  for (const axes of axesList) {
    for (const keepDims of [false, true]) {
      const [cpu, wasm] = await onCpuAndWasm(() => {
        const x = tf.tensor4d(xv, shape);
        return [tf.sum(x, axes, keepDims), tf.mean(x, axes, keepDims)];
      });
      assertClose(cpu, wasm, `sum/mean axes ${axes} keepDims ${keepDims}`, 1e-5);
      await tf.setBackend("wasm");
      const x = tf.tensor4d(xv, shape);
      const s = tf.sum(x, axes, keepDims);
      const expected = tf.backend_util.computeOutAndReduceShapes(
        shape,
        tf.util.parseAxisParam(axes, shape),
      )[0];
      const expectedShape = keepDims
        ? tf.backend_util.expandShapeToKeepDim(expected, tf.util.parseAxisParam(axes, shape))
        : expected;
      assert.deepEqual(s.shape, expectedShape, `shape for axes ${axes} keepDims ${keepDims}`);
      tf.dispose([x, s]);
    }
  }
  const ints = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32");
  const intSum = tf.sum(ints, 0);
  assert.equal(intSum.dtype, "int32");
  assert.deepEqual(Array.from(intSum.dataSync()), [9, 12]);
  tf.dispose([ints, intSum]);
});

Deno.test("Tile on wasm equals the CPU backend for every dtype", async () => {
  const cases: [number[], number[]][] = [
    [[1, 1, 1, 4], [2, 3, 2, 1]],
    [[2, 3], [3, 2]],
    [[3], [4]],
    [[2, 1, 3], [1, 5, 2]],
  ];
  for (const [shape, reps] of cases) {
    const xv = seededValues(sizeOf(shape), shape.length);
    const [cpu, wasm] = await onCpuAndWasm(() => tf.tile(tf.tensor(xv, shape), reps));
    assertClose(cpu, wasm, `tile ${shape} x ${reps}`, 0);
  }
  const ints = tf.tile(tf.tensor1d([1, 2], "int32"), [3]);
  assert.equal(ints.dtype, "int32");
  assert.deepEqual(Array.from(ints.dataSync()), [1, 2, 1, 2, 1, 2]);
  const bools = tf.tile(tf.tensor2d([true, false], [1, 2], "bool"), [2, 2]);
  assert.deepEqual(Array.from(bools.dataSync()), [1, 0, 1, 0, 1, 0, 1, 0]);
  tf.dispose([ints, bools]);
});

Deno.test("PadV2 on wasm equals the CPU backend for any rank, axes, value and dtype", async () => {
  const cases: [number[], [number, number][], number][] = [
    [[2, 6, 5, 3], [[0, 0], [3, 3], [3, 3], [0, 0]], 0], // ResNet's stem
    [[2, 4, 4, 40], [[0, 0], [1, 1], [1, 1], [0, 0]], 0], // long rows: block copies
    [[2, 3, 4], [[1, 0], [0, 2], [1, 1]], -1.5], // the last axis padded too
    [[5], [[2, 3]], 7],
    [[2, 3], [[0, 0], [0, 0]], 1], // nothing to pad
    [[1, 2, 1, 2, 3], [[0, 1], [1, 0], [0, 0], [2, 1], [0, 0]], 0.25],
    [[2, 0, 3], [[1, 1], [1, 1], [0, 0]], 3], // empty input, padded output
  ];
  for (const [shape, paddings, value] of cases) {
    const xv = seededValues(sizeOf(shape), shape.length);
    const [cpu, wasm] = await onCpuAndWasm(() => tf.pad(tf.tensor(xv, shape), paddings, value));
    assertClose(cpu, wasm, `pad ${shape} by ${JSON.stringify(paddings)} with ${value}`, 0);
  }
  const ints = tf.pad(tf.tensor2d([1, 2, 3, 4], [2, 2], "int32"), [[1, 0], [0, 1]], 9);
  assert.equal(ints.dtype, "int32");
  assert.deepEqual(Array.from(ints.dataSync()), [9, 9, 9, 1, 2, 9, 3, 4, 9]);
  ints.dispose();
});

Deno.test("Slice on wasm equals the CPU backend for any rank, axes and dtype", async () => {
  const cases: [number[], number[], number[]][] = [
    [[2, 8, 8, 40], [0, 1, 1, 0], [2, 6, 6, 40]], // a zero padding's gradient: long runs
    [[2, 5, 4, 3], [1, 1, 0, 1], [1, 3, 4, 2]], // the last axis cut too
    [[3, 4], [1, 0], [2, 4]], // whole rows: one run
    [[7], [2], [-1]], // to the end
    [[2, 3, 1, 2, 3], [0, 1, 0, 1, 0], [2, 2, 1, 1, 3]],
    [[2, 3], [0, 1], [2, 0]], // empty
  ];
  for (const [shape, begin, size] of cases) {
    const xv = seededValues(sizeOf(shape), shape.length);
    const [cpu, wasm] = await onCpuAndWasm(() => tf.slice(tf.tensor(xv, shape), begin, size));
    assertClose(cpu, wasm, `slice ${shape} at ${begin} size ${size}`, 0);
  }
  const ints = tf.slice(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], "int32"), [0, 1], [2, 2]);
  assert.equal(ints.dtype, "int32");
  assert.deepEqual(Array.from(ints.dataSync()), [2, 3, 5, 6]);
  ints.dispose();
});

Deno.test("Identity on wasm shares data safely: a clone outlives its source", () => {
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const y = tf.clone(x);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  y.dispose();
});

/** A tiny net with each layer kind the ResNet-34 training step uses. */
function tinyNet(): tf.LayersModel {
  const input = tf.input({ shape: [12, 10, 3] });
  const conv = (filters: number, kernelSize: number, strides: number, padding: "same" | "valid") =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding, useBias: false });
  const bn = () => tf.layers.batchNormalization({ axis: 3, momentum: 0.9, epsilon: 1e-5 });
  let x = tf.layers.zeroPadding2d({ padding: 3 }).apply(input) as tf.SymbolicTensor;
  x = conv(6, 7, 2, "valid").apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU().apply(bn().apply(x)) as tf.SymbolicTensor;
  x = tf.layers.zeroPadding2d({ padding: 1 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }).apply(x) as tf.SymbolicTensor;
  const shortcut = bn().apply(conv(8, 1, 2, "valid").apply(x)) as tf.SymbolicTensor;
  let y = tf.layers.reLU().apply(bn().apply(conv(8, 3, 2, "same").apply(x))) as tf.SymbolicTensor;
  y = bn().apply(conv(8, 3, 1, "same").apply(y)) as tf.SymbolicTensor;
  x = tf.layers.reLU().apply(tf.layers.add().apply([shortcut, y])) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, activation: "softmax" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

Deno.test("a tiny conv net's gradients are equal on cpu and wasm, with no leak", async () => {
  await tf.setBackend("cpu");
  const reference = tinyNet();
  const weights = reference.getWeights().map((w) => ({ shape: w.shape, data: w.dataSync() }));
  reference.dispose();
  const xv = seededValues(3 * 12 * 10 * 3, 99);
  const labels = [0, 3, 1];
  const results: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    const model = tinyNet();
    model.setWeights(weights.map((w) => tf.tensor(w.data, w.shape)));
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.tensor4d(xv, [3, 12, 10, 3]);
    const y = tf.oneHot(tf.tensor1d(labels, "int32"), 4);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => {
        const p = model.apply(x, { training: true }) as tf.Tensor;
        return tf.mean(tf.metrics.categoricalCrossentropy(y, p)) as tf.Scalar;
      }, vars);
      const out = [value, ...vars.map((v) => grads[v.name])];
      const data = out.map((t) => Float32Array.from(t.dataSync()));
      tf.dispose(out);
      return data;
    };
    results.push(step());
    // Steady state: another step leaves no engine tensor nor wasm buffer behind.
    const before = liveCounts();
    step();
    assert.deepEqual(liveCounts(), before, `${backend}: live tensors and buffers after a step`);
    tf.dispose([x, y]);
    model.dispose();
  }
  await tf.setBackend("wasm");
  assert.ok(results[0].length > 10, "loss and every trainable variable's gradient");
  assertClose(results[0], results[1], "tiny net loss and gradients", 1e-4);
});

Deno.test("the registered kernels leave no tensor or wasm buffer behind", () => {
  const x = tf.tensor4d(seededValues(2 * 8 * 6 * 4, 5), [2, 8, 6, 4]);
  const filters = [
    tf.tensor4d(seededValues(3 * 3 * 4 * 5, 6), [3, 3, 4, 5]),
    tf.tensor4d(seededValues(3 * 3 * 4 * 96, 7), [3, 3, 4, 96]),
  ];
  const before = liveCounts();
  for (const f of filters) {
    for (const strides of [1, 2]) {
      const [dx, dW] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, "same"))
      )([x, f]);
      tf.dispose([dx, dW]);
    }
  }
  tf.tidy(() => {
    tf.tile(x, [1, 2, 1, 1]);
    tf.sum(x, [0, 1, 2]);
    tf.mean(x, [0, 1, 2]);
    tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 3, 2, "same")))(x);
  });
  assert.deepEqual(liveCounts(), before);
  tf.dispose([x, ...filters]);
});
