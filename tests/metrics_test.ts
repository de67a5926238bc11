import assert from "node:assert/strict";
import { classificationMetrics, columnRmse, rmse } from "../lib/metrics.ts";

const close = (a: number, b: number, eps = 1e-12) =>
  assert.ok(Math.abs(a - b) <= eps, `${a} is not ${b}`);

// Four classes: `a` mostly right, `b` has images but is never predicted,
// `c` is predicted once but has no images, `d` has neither.
const CLASSES = ["a", "b", "c", "d"];
const PROBS = [
  [0.7, 0.2, 0.1, 0], // a -> a
  [0.6, 0.3, 0.1, 0], // a -> a
  [0.2, 0.1, 0.7, 0], // a -> c (a second: top-2)
  [0.5, 0.4, 0.1, 0], // b -> a (b second: top-2)
  [0.8, 0.05, 0.15, 0], // b -> a (b third)
];
const LABELS = [0, 0, 0, 1, 1];

Deno.test("classificationMetrics on a hand-made case: counts, per class, averages", () => {
  const m = classificationMetrics(PROBS.flat(), LABELS, CLASSES);
  assert.equal(m.n, 5);
  assert.deepEqual(m.confusion, [[2, 0, 1, 0], [2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
  close(m.accuracy, 2 / 5);
  const [a, b, c, d] = m.perClass;
  // a: 2 of 3 found, 2 of 4 predictions right.
  close(a.precision, 0.5);
  close(a.recall!, 2 / 3);
  close(a.f1, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3));
  assert.equal(a.support, 3);
  assert.equal(a.predicted, 4);
  // b: never predicted: precision 0 (not NaN), recall 0.
  assert.deepEqual([b.precision, b.recall, b.f1, b.support, b.predicted], [0, 0, 0, 2, 0]);
  // c: no images: recall undefined (null); its one prediction is wrong.
  assert.deepEqual([c.precision, c.recall, c.f1, c.support, c.predicted], [0, null, 0, 0, 1]);
  assert.deepEqual([d.precision, d.recall, d.f1, d.support, d.predicted], [0, null, 0, 0, 0]);
  // Balanced accuracy: mean recall over a and b only (c and d have no images).
  close(m.balancedAccuracy, (2 / 3 + 0) / 2);
  // Macro-F1: over a, b and c (c was predicted); d, absent from both, is left out.
  close(m.macroF1, (a.f1 + 0 + 0) / 3);
  close(m.top2Accuracy, 4 / 5);
  close(
    m.logLoss,
    -(Math.log(0.7) + Math.log(0.6) + Math.log(0.2) + Math.log(0.4) + Math.log(0.05)) / 5,
  );
  // ECE, 15 bins: {0.7 right, 0.7 wrong}, {0.6 right}, {0.5 wrong}, {0.8 wrong}.
  close(m.ece, (Math.abs(1 - 1.4) + Math.abs(1 - 0.6) + 0.5 + 0.8) / 5);
});

Deno.test("ECE uses the bins it is given and puts a probability of 1 in the last bin", () => {
  // All right at confidence 1: perfectly calibrated.
  const sure = classificationMetrics([1, 0, 0, 1], [0, 1], ["x", "y"]);
  assert.equal(sure.ece, 0);
  assert.equal(sure.accuracy, 1);
  // One bin: ECE is |accuracy - mean confidence| = |0.5 - 0.75|.
  const one = classificationMetrics([0.9, 0.1, 0.6, 0.4], [0, 1], ["x", "y"], { eceBins: 1 });
  close(one.ece, 0.25);
  // Two bins hold both in [0.5, 1); four bins separate them: (|1 - 0.9| + |0 - 0.6|) / 2.
  const two = classificationMetrics([0.9, 0.1, 0.6, 0.4], [0, 1], ["x", "y"], { eceBins: 2 });
  close(two.ece, 0.25);
  const four = classificationMetrics([0.9, 0.1, 0.6, 0.4], [0, 1], ["x", "y"], { eceBins: 4 });
  close(four.ece, (0.1 + 0.6) / 2);
});

Deno.test("top-2: a tie with the true class does not push it out; two higher ones do", () => {
  const classes = ["x", "y", "z"];
  // True z ties y below x: only one class is strictly higher.
  assert.equal(classificationMetrics([0.5, 0.25, 0.25], [2], classes).top2Accuracy, 1);
  // True z below a tie of x and y: two are higher.
  assert.equal(classificationMetrics([0.4, 0.4, 0.2], [2], classes).top2Accuracy, 0);
  // Two classes: the true one is always among the top two.
  assert.equal(classificationMetrics([0.9, 0.1], [1], ["x", "y"]).top2Accuracy, 1);
});

Deno.test("classificationMetrics refuses mismatched sizes and labels out of range", () => {
  assert.throws(() => classificationMetrics([0.5, 0.5], [0, 1], ["x", "y"]), /2 probabilities/);
  assert.throws(() => classificationMetrics([0.5, 0.5], [2], ["x", "y"]), /label 2 of row 0/);
  const empty = classificationMetrics([], [], ["x", "y"]);
  assert.deepEqual([empty.accuracy, empty.ece, empty.macroF1], [0, 0, 0]);
});

Deno.test("rmse and columnRmse on hand-made values", () => {
  close(rmse([0, 0, 0, 0], [1, 1, 1, 1]), 1);
  close(rmse([0.5, 0.25], [0.5, 0.75]), Math.sqrt(0.25 / 2));
  assert.throws(() => rmse([1], [1, 2]), /1 predictions for 2 targets/);
  // Two rows of width 3; columns 0 and 2 differ by 1 and 3 in row 0, 0 and 0 in row 1.
  const pred = [1, 9, 3, 0, 0, 0];
  const truth = [0, 0, 0, 0, 5, 0];
  close(columnRmse(pred, truth, 3, [0, 2]), Math.sqrt((1 + 9) / 4));
  close(columnRmse(pred, truth, 3, [1]), Math.sqrt((81 + 25) / 2));
  assert.throws(() => columnRmse(pred, truth, 3, [3]), /not all within 0..2/);
});
