/**
 * The custom-gradient batch norm against TF.js' own (autodiff of
 * tf.moments + tf.batchNorm, and tfjs-layers' BatchNormalization), on the
 * cpu backend (closed-form gradient) and on wasm with oneDNN where it loads.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { seededValues } from "./fixtures_kernels.ts";
import { setupBackend } from "../lib/backend.ts";
import {
  batchNormalization,
  batchNormTraining,
  updateMovingAverage,
} from "../lib/model/batch_norm.ts";

const info = await setupBackend({ requested: "wasm" });
const backends = ["cpu", "wasm"];

function assertClose(want: Float32Array, got: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(got.length, want.length, what);
  let scale = 1e-6;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(want[i] - got[i]) / scale;
    assert.ok(err <= tol, `${what} [${i}]: want ${want[i]} got ${got[i]} (rel ${err})`);
  }
}

const SHAPES: [number, number, number, number][] = [[2, 5, 3, 4], [1, 4, 4, 16], [3, 2, 7, 8]];

for (const backend of backends) {
  Deno.test(`batch norm on ${backend}${backend === "wasm" ? ` (${info.kernels})` : ""}: values and gradients match TF.js autodiff`, async () => {
    await tf.setBackend(backend);
    for (const [k, shape] of SHAPES.entries()) {
      const c = shape[3];
      const x = tf.tensor4d(
        seededValues(tf.util.sizeFromShape(shape), k + 1).map((v) => 3 * v + 1),
        shape,
      );
      const gamma = tf.tensor1d(seededValues(c, k + 2).map((v) => v + 1.5));
      const beta = tf.tensor1d(seededValues(c, k + 3));
      const weights = tf.tensor(seededValues(x.size, k + 4), shape);
      const eps = 1e-5;
      const reference = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const m = tf.moments(a, [0, 1, 2]);
        return tf.sum(tf.mul(tf.batchNorm(a, m.mean, m.variance, b, g, eps), weights));
      })([x, gamma, beta]);
      const ours = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const r = batchNormTraining(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, eps);
        tf.dispose([r.mean, r.variance]);
        return tf.sum(tf.mul(r.y, weights));
      })([x, gamma, beta]);
      ["dx", "dgamma", "dbeta"].forEach((what, i) =>
        assertClose(
          reference[i].dataSync() as Float32Array,
          ours[i].dataSync() as Float32Array,
          `${what} ${shape}`,
        )
      );
      const m = tf.moments(x, [0, 1, 2]);
      const r = batchNormTraining(x, gamma, beta, eps);
      const y = tf.batchNorm(x, m.mean, m.variance, beta, gamma, eps);
      assertClose(y.dataSync() as Float32Array, r.y.dataSync() as Float32Array, `y ${shape}`);
      assertClose(
        m.mean.dataSync() as Float32Array,
        r.mean.dataSync() as Float32Array,
        `mean ${shape}`,
      );
      assertClose(
        m.variance.dataSync() as Float32Array,
        r.variance.dataSync() as Float32Array,
        `variance ${shape}`,
      );
      tf.dispose([
        x,
        gamma,
        beta,
        weights,
        ...reference,
        ...ours,
        m.mean,
        m.variance,
        y,
        r.y,
        r.mean,
        r.variance,
      ]);
    }
  });

  Deno.test(`moving averages on ${backend}: one pass, to the bit as tfjs-layers' ops`, async () => {
    await tf.setBackend(backend);
    const layer = tf.layers.batchNormalization({ axis: 3 });
    layer.build([1, 1, 1, 37]);
    const [, , movingMean] = layer.weights;
    movingMean.write(tf.tensor1d(seededValues(37, 3)));
    const value = tf.tensor1d(seededValues(37, 4).map((v) => v * 10));
    const old = movingMean.read().clone();
    const expected = tf.tidy(() => tf.sub(old, tf.mul(tf.sub(old, value), 1 - 0.99)).dataSync());
    const tensors = tf.memory().numTensors;
    updateMovingAverage(movingMean, value, 0.99);
    assert.equal(tf.memory().numTensors, tensors, "no tensor leaked");
    assert.deepEqual(movingMean.read().dataSync(), expected);
    assert.deepEqual(old.dataSync(), Float32Array.from(seededValues(37, 3)), "old value untouched");
    tf.dispose([value, old, ...layer.weights.map((w) => w.read())]);
  });

  Deno.test(`batch norm layer on ${backend}: same outputs as tfjs-layers', torch's moving variance, same config`, async () => {
    await tf.setBackend(backend);
    const args = { axis: 3, momentum: 0.9, epsilon: 1e-5 };
    const ours = batchNormalization(args);
    const theirs = tf.layers.batchNormalization(args);
    const shape: [number, number, number, number] = [2, 3, 5, 6];
    ours.build(shape);
    theirs.build(shape);
    theirs.setWeights(
      ours.getWeights().map((w, i) => tf.add(w, seededValues(w.size, i).map((v) => v * 0.1)[0])),
    );
    ours.setWeights(theirs.getWeights());
    // The moving variance follows the unbiased batch variance, as torch's BatchNorm2d does
    // (tfjs-layers' follows the biased one): the expected value, step by step.
    const movingVariance = Float64Array.from(theirs.getWeights()[3].dataSync());
    const count = shape[0] * shape[1] * shape[2];
    const tensors = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      const x = tf.tensor4d(seededValues(180, step + 7), shape);
      const a = ours.apply(x, { training: true }) as tf.Tensor;
      const b = theirs.apply(x, { training: true }) as tf.Tensor;
      assertClose(
        b.dataSync() as Float32Array,
        a.dataSync() as Float32Array,
        `training output ${step}`,
      );
      const biased = tf.tidy(() => tf.moments(x, [0, 1, 2]).variance.dataSync());
      biased.forEach((v, c) =>
        movingVariance[c] -= (movingVariance[c] - v * count / (count - 1)) * (1 - args.momentum)
      );
      tf.dispose([x, a, b]);
    }
    assert.equal(tf.memory().numTensors, tensors, "no tensor leaked");
    ours.getWeights().forEach((w, i) =>
      assertClose(
        i === 3
          ? Float32Array.from(movingVariance)
          : theirs.getWeights()[i].dataSync() as Float32Array,
        w.dataSync() as Float32Array,
        `weight ${i}`,
      )
    );
    assert.deepEqual(ours.getConfig(), { ...theirs.getConfig(), name: ours.name });
    assert.equal(ours.getClassName(), "BatchNormalization");
  });
}
