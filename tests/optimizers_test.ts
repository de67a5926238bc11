import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { seededValues } from "./fixtures_kernels.ts";
import { setupBackend } from "../lib/backend.ts";
import { adam, type Optimizer, sgdNesterov } from "../lib/train/optimizers.ts";
import { tensorStorage } from "../lib/train/tensor_storage.ts";

await setupBackend({ requested: "wasm" });

const SHAPES = [[3, 3, 4, 5], [5], [7, 2]];

/** Weights after `steps` updates of `make`'s optimizer on seeded gradients, and its state. */
function run(make: (vars: tf.Variable[]) => Optimizer, steps: number) {
  const vars = SHAPES.map((s, i) =>
    tf.tidy(() => tf.variable(tf.tensor(seededValues(tf.util.sizeFromShape(s), i + 1), s)))
  );
  const opt = make(vars);
  for (let t = 0; t < steps; t++) {
    const grads = SHAPES.map((s, i) =>
      tf.tensor(seededValues(tf.util.sizeFromShape(s), 10 * t + i), s)
    );
    opt.apply(grads, 0.01 * (t + 1));
    tf.dispose(grads);
  }
  const out = { weights: vars.map((v) => Float32Array.from(v.dataSync())), state: opt.getState() };
  opt.dispose();
  tf.dispose(vars);
  return out;
}

function assertClose(a: Float32Array[], b: Float32Array[], what: string, tol = 1e-5): void {
  a.forEach((x, k) => {
    for (let i = 0; i < x.length; i++) {
      assert.ok(
        Math.abs(x[i] - b[k][i]) <= tol * Math.max(1, Math.abs(x[i])),
        `${what} [${k}][${i}]: ${x[i]} vs ${b[k][i]}`,
      );
    }
  });
}

for (const backend of ["wasm", "cpu"]) {
  for (const [name, make] of [["adam", adam], ["sgd", sgdNesterov]] as const) {
    Deno.test(`${name} on ${backend}: the one-pass update matches the TF.js-ops update`, async () => {
      await tf.setBackend(backend);
      assert.ok(tensorStorage(), `${backend} gives direct storage`);
      // wasm updates with the SIMD kernels (lib/kernels/optimizer_simd.ts), cpu in JavaScript.
      assert.equal(tensorStorage()!.kernels !== null, backend === "wasm");
      const tensors = tf.memory().numTensors;
      const fused = run((v) => make(v, { fused: true }), 5);
      const ops = run((v) => make(v, { fused: false }), 5);
      assertClose(fused.weights, ops.weights, "weights");
      assertClose(fused.state, ops.state, "state");
      assert.equal(tf.memory().numTensors, tensors, "no tensor leaked");
      // The same updates again give the same bits (what bit-exact resume relies on).
      assert.deepEqual(run((v) => make(v, { fused: true }), 5), fused);
    });
  }

  Deno.test(`${backend}: a tensor sharing a weight's or slot's data keeps its values`, async () => {
    await tf.setBackend(backend);
    const w = tf.variable(tf.tensor1d([1, 2, 3]));
    const opt = adam([w]);
    // clone() runs Identity, which shares the data on both backends.
    const before = w.clone();
    opt.apply([tf.tensor1d([1, 1, 1])], 0.1);
    assert.deepEqual(Array.from(before.dataSync()), [1, 2, 3]);
    assert.ok(w.dataSync()[0] < 1);
    // A variable whose data is shared is copied before an in-place write.
    const storage = tensorStorage()!;
    const v = tf.variable(tf.tensor1d([5, 6]));
    const alias = v.clone();
    storage.exclusive(v);
    storage.view(v)[0] = 0;
    assert.deepEqual(Array.from(alias.dataSync()), [5, 6]);
    assert.deepEqual(Array.from(v.dataSync()), [0, 6]);
    tf.dispose([w, before, v, alias]);
    opt.dispose();
  });
}
