import assert from "node:assert/strict";
import {
  bootstrapIntervals,
  classStatistics,
  pairedIntervals,
  quantile,
  rmseStatistic,
} from "../lib/metrics/bootstrap.ts";
import { classificationMetrics, rmse } from "../lib/metrics.ts";
import { compareScored, headlineIntervals, type ScoredImages } from "../lib/evaluate/compare.ts";
import { mulberry32 } from "../lib/random.ts";
import { NUM_VOTES } from "../lib/data/schema.ts";

/** n images of 37 fractions, and predictions off by noise of size `noise`. */
function votesFixture(n: number, noise: number, seed: number, truthSeed = 99) {
  const t = mulberry32(truthSeed);
  const r = mulberry32(seed);
  const truth = Float32Array.from({ length: n * NUM_VOTES }, () => t());
  const pred = truth.map((v) => v + (r() * 2 - 1) * noise);
  return { truth, pred };
}

/** Classes with a given share of wrong predictions. */
function classFixture(n: number, c: number, wrong: number, seed: number) {
  const r = mulberry32(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % c);
  const predicted = labels.map((y) => r() < wrong ? (y + 1 + Math.floor(r() * (c - 1))) % c : y);
  return { labels, predicted };
}

function scored(
  v: { pred: Float32Array; truth: Float32Array },
  k: { labels: Int32Array; predicted: Int32Array },
): ScoredImages {
  return {
    kind: "votes",
    classes: ["smooth", "features_or_disk", "star_or_artifact"],
    ids: Array.from({ length: k.labels.length }, (_, i) => `g${i}`),
    predicted: k.predicted,
    labels: k.labels,
    votes: v,
  };
}

Deno.test("quantile interpolates between order statistics (numpy's default)", () => {
  assert.equal(quantile([1, 2, 3, 4], 0), 1);
  assert.equal(quantile([1, 2, 3, 4], 1), 4);
  assert.ok(Math.abs(quantile([1, 2, 3, 4], 0.5) - 2.5) < 1e-12);
  assert.ok(Math.abs(quantile([0, 10], 0.025) - 0.25) < 1e-12);
});

Deno.test("the statistics on all images equal lib/metrics.ts", () => {
  const v = votesFixture(50, 0.2, 1);
  const all = new Uint32Array(50).map((_, i) => i);
  assert.ok(
    Math.abs(rmseStatistic(v.pred, v.truth, NUM_VOTES)(all) - rmse(v.pred, v.truth)) < 1e-9,
  );
  const k = classFixture(60, 4, 0.4, 2);
  // One-hot probabilities of the predicted class give the same argmax.
  const probs = new Float32Array(60 * 4);
  k.predicted.forEach((p, i) => probs[i * 4 + p] = 1);
  const m = classificationMetrics(probs, k.labels, ["a", "b", "c", "d"]);
  const s = classStatistics(k.predicted, k.labels, 4);
  const all60 = new Uint32Array(60).map((_, i) => i);
  assert.ok(Math.abs(s.accuracy(all60) - m.accuracy) < 1e-12);
  assert.ok(Math.abs(s.balancedAccuracy(all60) - m.balancedAccuracy) < 1e-12);
  assert.ok(Math.abs(s.macroF1(all60) - m.macroF1) < 1e-12);
});

Deno.test("bootstrap intervals: seeded, reproducible, and contain the point estimate", () => {
  const v = votesFixture(200, 0.3, 3);
  const k = classFixture(200, 3, 0.3, 4);
  const s = scored(v, k);
  const a = headlineIntervals(s, { seed: 7, resamples: 500 });
  const b = headlineIntervals(s, { seed: 7, resamples: 500 });
  const c = headlineIntervals(s, { seed: 8, resamples: 500 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.rmse, c.rmse);
  for (const [name, i] of Object.entries(a)) {
    assert.ok(i.lo <= i.estimate && i.estimate <= i.hi, `${name}: ${JSON.stringify(i)}`);
    assert.ok(i.hi > i.lo, `${name} has a zero-width interval on varied data`);
    assert.equal(i.n, 200);
    assert.equal(i.level, 0.95);
  }
  assert.ok(Math.abs(a.rmse!.estimate - rmse(v.pred, v.truth)) < 1e-9);
  // A larger sample gives a narrower interval (about 1 / sqrt(n)).
  const big = headlineIntervals(scored(votesFixture(3200, 0.3, 3), classFixture(3200, 3, 0.3, 4)), {
    resamples: 500,
  });
  const width = (i: { lo: number; hi: number }) => i.hi - i.lo;
  assert.ok(width(big.rmse!) < width(a.rmse!) / 2.5, `${width(big.rmse!)} vs ${width(a.rmse!)}`);
  assert.ok(width(big.accuracy!) < width(a.accuracy!) / 2.5);
});

Deno.test("a 95 % interval covers the true accuracy about 95 % of the time", () => {
  // 200 samples of 150 images from a classifier that is right with probability 0.7.
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const k = classFixture(150, 2, 0.3, 1000 + t);
    const i = bootstrapIntervals(150, { acc: classStatistics(k.predicted, k.labels, 2).accuracy }, {
      resamples: 400,
      seed: t,
    }).acc;
    if (i.lo <= 0.7 && 0.7 <= i.hi) covered++;
  }
  assert.ok(covered >= 0.89 * trials && covered <= trials, `covered ${covered}/${trials}`);
});

Deno.test("paired comparison: a known difference is detected, identical runs give 0 with zero width", () => {
  const truthSeed = 5;
  const good = votesFixture(300, 0.1, 11, truthSeed);
  const bad = votesFixture(300, 0.2, 12, truthSeed);
  const kGood = classFixture(300, 3, 0.1, 13);
  const kBad = classFixture(300, 3, 0.4, 14);
  const c = compareScored(scored(good, kGood), scored(bad, kBad), { resamples: 500 });
  assert.equal(c.n, 300);
  const d = c.metrics.rmse!;
  assert.ok(d.difference.hi < 0, `rmse difference ${JSON.stringify(d.difference)}`);
  assert.equal(d.verdict, "a better");
  assert.ok(Math.abs(d.difference.estimate - (d.a - d.b)) < 1e-12);
  assert.ok(c.metrics.accuracy!.difference.lo > 0);
  assert.equal(c.metrics.accuracy!.verdict, "a better");
  assert.equal(
    compareScored(scored(bad, kBad), scored(good, kGood)).metrics.rmse!.verdict,
    "b better",
  );

  const same = compareScored(scored(good, kGood), scored(good, kGood), { resamples: 200 });
  for (const [name, m] of Object.entries(same.metrics)) {
    assert.equal(m.difference.estimate, 0, name);
    assert.equal(m.difference.lo, 0, name);
    assert.equal(m.difference.hi, 0, name);
    assert.equal(m.verdict, "no clear difference");
  }
});

Deno.test("paired comparison matches images by id, in any order, and names what only one side has", () => {
  const v = votesFixture(40, 0.2, 21);
  const w = votesFixture(40, 0.3, 22, 99);
  const k = classFixture(40, 3, 0.3, 23);
  const a = scored(v, k);
  const b = scored(w, k);
  // b in reverse order, without its first image.
  const order = Array.from({ length: 39 }, (_, i) => 39 - i);
  const pick = (x: Float32Array) => {
    const out = new Float32Array(order.length * NUM_VOTES);
    order.forEach((r, i) => out.set(x.subarray(r * NUM_VOTES, (r + 1) * NUM_VOTES), i * NUM_VOTES));
    return out;
  };
  const reversed: ScoredImages = {
    ...b,
    ids: order.map((r) => b.ids[r]),
    predicted: Int32Array.from(order, (r) => b.predicted[r]),
    labels: Int32Array.from(order, (r) => b.labels[r]),
    votes: { pred: pick(b.votes!.pred), truth: pick(b.votes!.truth) },
  };
  const c = compareScored(a, reversed, { resamples: 100 });
  assert.equal(c.n, 39);
  assert.equal(c.onlyA, 1);
  assert.equal(c.onlyB, 0);
  const sub = (x: Float32Array) => x.slice(NUM_VOTES);
  assert.ok(Math.abs(c.metrics.rmse!.a - rmse(sub(v.pred), sub(v.truth))) < 1e-9);
  assert.ok(Math.abs(c.metrics.rmse!.b - rmse(sub(w.pred), sub(w.truth))) < 1e-9);
  assert.throws(
    () => compareScored(a, { ...b, kind: "classes", votes: null, classes: ["x", "y", "z"] }),
    /cannot compare a votes run .* with a classes run/,
  );
});

Deno.test("paired intervals of a - b are the intervals of the difference statistic", () => {
  const v = votesFixture(80, 0.2, 31);
  const w = votesFixture(80, 0.25, 32, 99);
  const sa = { rmse: rmseStatistic(v.pred, v.truth, NUM_VOTES) };
  const sb = { rmse: rmseStatistic(w.pred, w.truth, NUM_VOTES) };
  const p = pairedIntervals(80, sa, sb, { resamples: 300, seed: 4 });
  const d = bootstrapIntervals(80, { rmse: (i: Uint32Array) => sa.rmse(i) - sb.rmse(i) }, {
    resamples: 300,
    seed: 4,
  });
  assert.deepEqual(p, d);
  assert.throws(() => bootstrapIntervals(0, sa), /needs images/);
  assert.throws(() => bootstrapIntervals(5, sa, { level: 1 }), /level/);
});
