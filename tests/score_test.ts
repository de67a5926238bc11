import assert from "node:assert/strict";
import { NUM_VOTES, QUESTIONS } from "../lib/data/schema.ts";
import { q1FractionScore, scoreOutputs, voteScores } from "../lib/evaluate/score.ts";
import { classificationMetrics, rmse } from "../lib/metrics.ts";

Deno.test("scoreOutputs: class probabilities and vote fractions, each only when given", () => {
  const probs = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4];
  const labels = [0, 1, 1];
  const classes = ["a", "b"];
  const both = scoreOutputs({
    classes: { probs, labels, classes },
    votes: {
      pred: new Float32Array(2 * NUM_VOTES).fill(0.5),
      truth: new Float32Array(2 * NUM_VOTES).fill(0.25),
    },
  });
  assert.deepEqual(both.classification, classificationMetrics(probs, labels, classes));
  assert.equal(both.classification!.accuracy, 2 / 3);
  assert.ok(Math.abs(both.votes!.rmse - 0.25) < 1e-7);
  assert.equal(both.votes!.perQuestion.length, QUESTIONS.length);
  for (const q of both.votes!.perQuestion) {
    assert.ok(Math.abs(q.rmse - 0.25) < 1e-7, `Q${q.question}`);
  }
  assert.equal(scoreOutputs({ classes: { probs, labels, classes } }).votes, null);
  assert.equal(scoreOutputs({}).classification, null);
});

Deno.test("voteScores: the overall RMSE is the competition's, per question over its columns", () => {
  const pred = new Float32Array(NUM_VOTES);
  const truth = new Float32Array(NUM_VOTES);
  truth[0] = 0.6; // Class1.1 only: question 1 is off, the others exact.
  const s = voteScores(pred, truth);
  assert.ok(Math.abs(s.rmse - rmse(pred, truth)) < 1e-12);
  assert.ok(Math.abs(s.perQuestion[0].rmse - Math.sqrt(0.36 / 3)) < 1e-6);
  assert.ok(s.perQuestion.slice(1).every((q) => q.rmse === 0));
});

Deno.test("q1FractionScore: class probabilities summed per Q1 answer against the fractions; null without any", () => {
  const votes = new Float32Array(NUM_VOTES);
  votes[0] = 0.75; // smooth
  votes[1] = 0.25; // features or disk
  const s = q1FractionScore([0.5, 0.25, 0.25], votes, ["round", "cigar", "spiral"], [0, 0, 1])!;
  assert.equal(s.n, 1);
  assert.deepEqual(s.groups, { smooth: ["round", "cigar"], features_or_disk: ["spiral"] });
  assert.equal(s.rmse, 0);
  assert.equal(
    q1FractionScore([1, 0], new Float32Array(NUM_VOTES), ["round", "spiral"], [0, 1]),
    null,
  );
});
