import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  balancedAlpha,
  binaryFocalLoss,
  categoricalFocalLoss,
  type LossFn,
} from "../lib/focal_loss.ts";

await tf.setBackend("cpu");

const yTrue = () => tf.tensor2d([[0, 1, 0], [0, 0, 1]]);
const yPred = () => tf.tensor2d([[0.05, 0.95, 0], [0.1, 0.8, 0.1]]);

function close(actual: number, expected: number, rel = 1e-5) {
  assert.ok(
    Math.abs(actual - expected) <= rel * Math.abs(expected),
    `${actual} is not within ${rel} of ${expected}`,
  );
}

Deno.test("categorical focal loss matches Keras' reference value", () => {
  const loss = categoricalFocalLoss()(yTrue(), yPred());
  close(loss.dataSync()[0], 0.23315276);
  // Per sample, through batches of one.
  const first = categoricalFocalLoss()(tf.tensor2d([[0, 1, 0]]), tf.tensor2d([[0.05, 0.95, 0]]));
  const second = categoricalFocalLoss()(tf.tensor2d([[0, 0, 1]]), tf.tensor2d([[0.1, 0.8, 0.1]]));
  close(first.dataSync()[0], 3.2058e-5, 1e-4);
  close(second.dataSync()[0], 0.46627348);
});

Deno.test("binary focal loss matches the reference notebook's value", () => {
  const loss = binaryFocalLoss({ alpha: 0.25, gamma: 2, epsilon: 1e-7 })(yTrue(), yPred());
  close(loss.dataSync()[0], 0.20662035);
});

Deno.test("gamma 0 reduces to alpha-weighted cross-entropy", () => {
  const ce = -(Math.log(0.95) + Math.log(0.1)) / 2;
  close(categoricalFocalLoss({ gamma: 0, alpha: 1 })(yTrue(), yPred()).dataSync()[0], ce);
  close(categoricalFocalLoss({ gamma: 0, alpha: 0.5 })(yTrue(), yPred()).dataSync()[0], ce * 0.5);
  // Binary: alpha-weighted BCE over the six elements.
  const y = [0, 1, 0, 0, 0, 1], p = [0.05, 0.95, 1e-7, 0.1, 0.8, 0.1];
  const bce =
    y.reduce((s, t, i) => s + (t ? -0.25 * Math.log(p[i]) : -0.75 * Math.log(1 - p[i])), 0) / 6;
  close(binaryFocalLoss({ gamma: 0 })(yTrue(), yPred()).dataSync()[0], bce);
});

Deno.test("focal loss is below cross-entropy for easy examples (it focuses on hard ones)", () => {
  const easy = tf.tensor2d([[0.01, 0.98, 0.01]]);
  const t = tf.tensor2d([[0, 1, 0]]);
  const focal = categoricalFocalLoss({ alpha: 1 })(t, easy).dataSync()[0];
  const ce = categoricalFocalLoss({ alpha: 1, gamma: 0 })(t, easy).dataSync()[0];
  assert.ok(focal < ce / 100, `${focal} vs ${ce}`);
});

Deno.test("per-class alpha weights each class's term", () => {
  const alpha = [1, 2, 3];
  const loss = categoricalFocalLoss({ alpha })(yTrue(), yPred()).dataSync()[0];
  const perSample = [3.2058e-5 / 0.25 * 2, 0.46627348 / 0.25 * 3];
  close(loss, (perSample[0] + perSample[1]) / 2, 1e-4);
  assert.throws(() => categoricalFocalLoss({ alpha: [1, 2] })(yTrue(), yPred()), /2 weights for 3/);
});

Deno.test("fromLogits and label smoothing follow Keras' semantics", () => {
  const logits = tf.tensor2d([[1, 2, 0.5], [0, -1, 3]]);
  const fromLogits = categoricalFocalLoss({ fromLogits: true })(yTrue(), logits).dataSync()[0];
  const viaSoftmax = categoricalFocalLoss()(yTrue(), tf.softmax(logits)).dataSync()[0];
  close(fromLogits, viaSoftmax);
  const smoothed = categoricalFocalLoss({ labelSmoothing: 0.3 })(yTrue(), yPred()).dataSync()[0];
  const manual = categoricalFocalLoss()(
    tf.tensor2d([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
    yPred(),
  ).dataSync()[0];
  close(smoothed, manual);
});

Deno.test("gradients are finite at p = 0 and p = 1", () => {
  const cases: [string, LossFn][] = [
    ["categorical", categoricalFocalLoss()],
    ["binary", binaryFocalLoss()],
  ];
  for (const [name, fn] of cases) {
    const g = tf.grad((p: tf.Tensor) => fn(tf.tensor2d([[0, 1], [1, 0]]), p))(
      tf.tensor2d([[0, 1], [0, 1]]),
    );
    for (const v of g.dataSync()) assert.ok(Number.isFinite(v), `${name}: ${v}`);
  }
});

Deno.test("a tiny model trains with each loss and its loss falls", async () => {
  const x = tf.randomNormal([64, 4], 0, 1, "float32", 1);
  const labels = tf.argMax(
    tf.matMul(x, tf.tensor2d([[1, -1, 0], [0, 1, -1], [1, 0, 1], [-1, 1, 0]])),
    1,
  );
  const y = tf.oneHot(labels, 3);
  const losses: [string, LossFn][] = [
    ["categorical focal", categoricalFocalLoss()],
    ["categorical focal, balanced alpha", categoricalFocalLoss({ alpha: [0.5, 1, 1.5] })],
    ["binary focal", binaryFocalLoss()],
  ];
  for (const [name, loss] of losses) {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          inputShape: [4],
          units: 8,
          activation: "relu",
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        tf.layers.dense({
          units: 3,
          activation: "softmax",
          kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.05), loss });
    const h = await model.fit(x, y, { epochs: 20, batchSize: 16, shuffle: false, verbose: 0 });
    const l = h.history.loss as number[];
    assert.ok(l[l.length - 1] < 0.5 * l[0], `${name}: ${l[0]} -> ${l[l.length - 1]}`);
    model.dispose();
  }
});

Deno.test("balancedAlpha with power 0.5 (sqrt-balanced) weights by the inverse square root of frequency, mean 1", () => {
  const a = balancedAlpha([100, 25, 1], 0.5);
  assert.ok(Math.abs(a.reduce((x, y) => x + y, 0) / 3 - 1) < 1e-12, `mean of ${a}`);
  // Square roots of the inverse frequencies 1 : 4 : 100 are 1 : 2 : 10.
  assert.ok(Math.abs(a[1] / a[0] - 2) < 1e-12 && Math.abs(a[2] / a[0] - 10) < 1e-12, `${a}`);
  assert.deepEqual(balancedAlpha([4, 0, 1], 0.5)[1], 0, "an absent class gets no weight");
});

Deno.test("balancedAlpha weights rare classes up, with mean 1", () => {
  const a = balancedAlpha([90, 9, 1]);
  assert.ok(a[2] > a[1] && a[1] > a[0]);
  close(a.reduce((s, v) => s + v, 0) / 3, 1);
  close(a[2] / a[0], 90);
  assert.throws(() => balancedAlpha([0, 0]), /no examples/);
});
