import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { seededValues } from "./fixtures_kernels.ts";
import { setupBackend } from "../lib/backend.ts";
import { conv2d } from "../lib/model/conv2d.ts";

await setupBackend({ requested: "wasm" });

/** input -> conv (the layer under test) -> conv -> sum, with seeded weights. */
function twoConvs(make: typeof conv2d, useBias: boolean) {
  const input = tf.input({ shape: [6, 5, 3] });
  const first = make({ filters: 4, kernelSize: 3, strides: 2, padding: "same", useBias });
  const second = make({ filters: 2, kernelSize: 1, padding: "valid", useBias });
  const model = tf.model({
    inputs: input,
    outputs: second.apply(first.apply(input)) as tf.SymbolicTensor,
  });
  model.weights.forEach((w, i) => {
    const shape = w.shape as number[];
    w.write(tf.tensor(seededValues(tf.util.sizeFromShape(shape), i + 1), shape));
  });
  return model;
}

function gradients(model: tf.LayersModel, x: tf.Tensor) {
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(
    () => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    vars,
  );
  const out = {
    loss: value.dataSync()[0],
    grads: vars.map((v) => Array.from(grads[v.name].dataSync())),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

for (const useBias of [false, true]) {
  Deno.test(`conv2d (bias ${useBias}): training gradients equal tfjs-layers' Conv2D's`, () => {
    const x = tf.tensor4d(seededValues(2 * 6 * 5 * 3, 9), [2, 6, 5, 3]);
    const ours = gradients(twoConvs(conv2d, useBias), x);
    const theirs = gradients(twoConvs(tf.layers.conv2d, useBias), x);
    assert.ok(Math.abs(ours.loss - theirs.loss) <= 1e-5 * Math.abs(theirs.loss));
    ours.grads.forEach((g, i) =>
      g.forEach((v, k) =>
        assert.ok(
          Math.abs(v - theirs.grads[i][k]) <= 1e-4 * Math.max(1, Math.abs(v)),
          `grad ${i}[${k}]`,
        )
      )
    );
    x.dispose();
  });
}

Deno.test("conv2d: a training step computes no input gradient for the first convolution", () => {
  const model = twoConvs(conv2d, false);
  const x = tf.tensor4d(seededValues(2 * 6 * 5 * 3, 9), [2, 6, 5, 3]);
  const channels: number[] = [];
  const kernel = tf.getKernel("Conv2DBackpropInput", "wasm")!;
  tf.unregisterKernel("Conv2DBackpropInput", "wasm");
  tf.registerKernel({
    ...kernel,
    kernelFunc: (args) => {
      channels.push((args.attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape[3]);
      return kernel.kernelFunc(args);
    },
  });
  try {
    gradients(model, x);
  } finally {
    tf.unregisterKernel("Conv2DBackpropInput", "wasm");
    tf.registerKernel(kernel);
  }
  assert.deepEqual(channels, [4], "only the second convolution's input gradient");
  x.dispose();
});

Deno.test("conv2d: saved as a plain Conv2D; inference is the base layer's", () => {
  const layer = conv2d({ filters: 2, kernelSize: 3 });
  assert.equal(layer.getClassName(), "Conv2D");
  const config = layer.getConfig();
  assert.deepEqual(
    config,
    tf.layers.conv2d({ filters: 2, kernelSize: 3, name: layer.name }).getConfig(),
  );
});
