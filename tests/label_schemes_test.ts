import assert from "node:assert/strict";
import {
  detectFlipPairs,
  getLabelScheme,
  GZ5_CLASSES,
  gz5Matches,
  LABEL_SCHEMES,
} from "../lib/data/label_schemes.ts";
import { checkTree, NUM_VOTES, voteIndex } from "../lib/data/schema.ts";
import { gzVotes, type VoteKind } from "./fixtures_images.ts";

const row = (votes: Float64Array) => ({ id: "1", votes });

Deno.test("gz5: each class from tree-consistent fractions, rows matching none left out", () => {
  const gz5 = getLabelScheme("gz5");
  assert.deepEqual(gz5.classNames, [...GZ5_CLASSES]);
  assert.equal(gz5.kind, "classes");
  const kinds: VoteKind[] = ["round", "in_between", "cigar", "edge_on", "spiral"];
  for (const [k, kind] of kinds.entries()) {
    const v = gzVotes(kind, 0.5);
    assert.deepEqual(checkTree(v), [], `${kind} fixture obeys the tree`);
    assert.equal(gz5.target(row(v)), k, kind);
    assert.equal(gz5.leftOutReason(row(v)), null);
  }
  const none = gzVotes("none");
  assert.equal(gz5.target(row(none)), null);
  assert.equal(gz5.leftOutReason(row(none)), "gz5: matches no class");
});

Deno.test("gz5: thresholds are inclusive and exact", () => {
  const gz5 = getLabelScheme("gz5");
  const v = new Float64Array(NUM_VOTES);
  v[voteIndex("Class1.2")] = 0.430;
  v[voteIndex("Class2.1")] = 0.602;
  assert.equal(gz5.target(row(v)), GZ5_CLASSES.indexOf("edge_on"));
  v[voteIndex("Class2.1")] = 0.6019;
  assert.equal(gz5.target(row(v)), null);
  const s = new Float64Array(NUM_VOTES);
  s[voteIndex("Class1.2")] = 0.9;
  s[voteIndex("Class2.2")] = 0.715;
  s[voteIndex("Class4.1")] = 0.619;
  assert.equal(gz5.target(row(s)), GZ5_CLASSES.indexOf("spiral"));
  s[voteIndex("Class4.1")] = 0.6189;
  assert.equal(gz5.target(row(s)), null);
  const r = new Float64Array(NUM_VOTES);
  r[voteIndex("Class1.1")] = 0.469;
  r[voteIndex("Class7.3")] = 0.5;
  assert.equal(gz5.target(row(r)), GZ5_CLASSES.indexOf("cigar"));
  r[voteIndex("Class1.1")] = 0.4689;
  assert.equal(gz5.target(row(r)), null);
});

Deno.test("gz5: a row matching two classes is left out as ambiguous", () => {
  const gz5 = getLabelScheme("gz5");
  const v = new Float64Array(NUM_VOTES);
  v[voteIndex("Class1.1")] = 1;
  v[voteIndex("Class7.1")] = 0.5;
  v[voteIndex("Class7.2")] = 0.5;
  assert.deepEqual(gz5Matches(v), [0, 1]);
  assert.equal(gz5.target(row(v)), null);
  assert.equal(gz5.leftOutReason(row(v)), "gz5: ambiguous (round and in_between)");
});

Deno.test("q1: argmax of Class1.1-1.3, ties to the lower index, keeps every row", () => {
  const q1 = getLabelScheme("q1");
  assert.deepEqual(q1.classNames, ["smooth", "features_or_disk", "star_or_artifact"]);
  assert.equal(q1.target(row(gzVotes("round"))), 0);
  assert.equal(q1.target(row(gzVotes("spiral"))), 1);
  const star = new Float64Array(NUM_VOTES);
  star[voteIndex("Class1.3")] = 0.6;
  star[voteIndex("Class1.1")] = 0.4;
  assert.equal(q1.target(row(star)), 2);
  const tie = new Float64Array(NUM_VOTES);
  tie[voteIndex("Class1.2")] = 0.5;
  tie[voteIndex("Class1.3")] = 0.5;
  assert.equal(q1.target(row(tie)), 1);
  assert.equal(q1.target(row(new Float64Array(NUM_VOTES))), 0);
});

Deno.test("votes: 37 regression targets; schemes reading fractions reject rows without", () => {
  const votes = getLabelScheme("votes");
  assert.equal(votes.kind, "votes");
  assert.equal(votes.classNames.length, NUM_VOTES);
  assert.equal(votes.target(row(gzVotes("none"))), 0);
  for (const name of ["gz5", "q1", "votes"]) {
    assert.throws(
      () => getLabelScheme(name).target({ id: "42" }),
      /needs the 37 vote fractions of id 42/,
    );
  }
});

Deno.test("csv: classes sorted by name, unknown labels left out, flip pairs found", () => {
  const gz1 = [
    "unknown",
    "spiral_cw",
    "elliptical",
    "merger",
    "spiral_acw",
    "edge_on",
    "spiral_cw",
  ];
  const s = getLabelScheme("csv", gz1);
  assert.deepEqual(s.classNames, [
    "edge_on",
    "elliptical",
    "merger",
    "spiral_acw",
    "spiral_cw",
    "unknown",
  ]);
  assert.deepEqual(s.flipPairs, [[3, 4]]);
  assert.equal(s.target({ id: "a", label: "merger" }), 2);
  assert.equal(s.target({ id: "a", label: "lens" }), null);
  assert.equal(s.leftOutReason({ id: "a", label: "lens" }), "csv: unknown class 'lens'");
  const kaggle = getLabelScheme("csv", ["spiral", "non_spiral"]);
  assert.deepEqual(kaggle.classNames, ["non_spiral", "spiral"]);
  assert.deepEqual(kaggle.flipPairs, []);
  assert.throws(() => getLabelScheme("csv"), /needs the class labels/);
});

Deno.test("detectFlipPairs: cw/acw/ccw and clockwise/anticlockwise tokens, case-insensitive", () => {
  assert.deepEqual(detectFlipPairs(["S_clockwise", "S_anticlockwise", "E"]), [[0, 1]]);
  assert.deepEqual(detectFlipPairs(["arms-CW", "x", "arms-ACW"]), [[0, 2]]);
  assert.deepEqual(detectFlipPairs(["cw", "ccw"]), [[0, 1]]);
  // A token inside a word is not a winding sense.
  assert.deepEqual(detectFlipPairs(["cwx", "acwx", "screw", "scraw"]), []);
});

Deno.test("registry: every scheme listed and unknown names rejected", () => {
  assert.deepEqual(Object.keys(LABEL_SCHEMES).sort(), ["csv", "gz5", "q1", "votes"]);
  assert.throws(
    () => getLabelScheme("gz10"),
    /unknown label scheme 'gz10': use one of gz5, q1, votes, csv/,
  );
});
