/**
 * The one scorer of a model's outputs on a labelled split, shared by
 * training's validation (lib/train/trainer.ts) and `evaluate`: the
 * classification metrics of lib/metrics.ts on class probabilities, the
 * competition's RMSE over the 37 vote fractions (overall and per question),
 * and, for class models on data with fractions, the RMSE of their
 * probabilities against the volunteers' question-1 fractions.
 *
 * @module
 */
import { Q1_CLASSES } from "../data/label_schemes.ts";
import { NUM_VOTES, QUESTIONS, questionSlice, voteIndex } from "../data/schema.ts";
import { type ClassificationMetrics, classificationMetrics, columnRmse, rmse } from "../metrics.ts";

/** Class probabilities (n x classes, row-major) and the true class of each row. */
export interface ClassOutputs {
  probs: ArrayLike<number>;
  labels: ArrayLike<number>;
  classes: readonly string[];
}

/** Predicted and true vote fractions, n x 37, row-major. */
export interface VoteOutputs {
  pred: ArrayLike<number>;
  truth: ArrayLike<number>;
}

/** The competition's score of vote fractions: RMSE over all 37, and per question. */
export interface VoteScores {
  rmse: number;
  perQuestion: { question: number; text: string; rmse: number }[];
}

/** What {@linkcode scoreOutputs} found: each part null when its outputs were not given. */
export interface SplitScores {
  classification: ClassificationMetrics | null;
  votes: VoteScores | null;
}

/**
 * Scores class probabilities against labels and/or vote fractions against
 * the volunteers'; either may be left out (validation of a votes run scores
 * only the fractions, of a class run only the classes).
 */
export function scoreOutputs(o: { classes?: ClassOutputs; votes?: VoteOutputs }): SplitScores {
  return {
    classification: o.classes
      ? classificationMetrics(o.classes.probs, o.classes.labels, o.classes.classes)
      : null,
    votes: o.votes ? voteScores(o.votes.pred, o.votes.truth) : null,
  };
}

/** RMSE over the 37 fractions and per Galaxy Zoo question. */
export function voteScores(pred: ArrayLike<number>, truth: ArrayLike<number>): VoteScores {
  return {
    rmse: rmse(pred, truth),
    perQuestion: QUESTIONS.map((q) => {
      const [a, z] = questionSlice(q);
      const cols = Array.from({ length: z - a }, (_, k) => a + k);
      return { question: q.id, text: q.text, rmse: columnRmse(pred, truth, NUM_VOTES, cols) };
    }),
  };
}

/** Which Q1 answer (0 smooth, 1 features or disk, 2 star or artifact) each known class belongs to. */
const Q1_GROUP_OF: Readonly<Record<string, number>> = {
  smooth: 0,
  round: 0,
  in_between: 0,
  cigar: 0,
  features_or_disk: 1,
  edge_on: 1,
  spiral: 1,
  star_or_artifact: 2,
};

/** Q1 answer of every class, or null when some class has none. */
export function q1Groups(classes: readonly string[]): number[] | null {
  const g = classes.map((c) => Q1_GROUP_OF[c]);
  return g.every((x) => x !== undefined) ? g : null;
}

/**
 * Predicted Q1 fractions (class probabilities summed per answer) and the
 * true ones renormalised over the covered answers, for rows whose covered
 * fractions are not all 0; returns the two n x covered matrices.
 */
export function q1FractionPairs(
  probs: ArrayLike<number>,
  votes: ArrayLike<number>,
  groups: readonly number[],
): { pred: Float32Array; truth: Float32Array; n: number; covered: number[] } {
  const c = groups.length;
  const rows = probs.length / c;
  const covered = [...new Set(groups)].sort((a, b) => a - b);
  const q1 = voteIndex("Class1.1");
  const pred: number[] = [];
  const truth: number[] = [];
  let n = 0;
  for (let i = 0; i < rows; i++) {
    const t = covered.map((a) => votes[i * NUM_VOTES + q1 + a]);
    const s = t.reduce((x, y) => x + y, 0);
    if (!(s > 0)) continue;
    n++;
    for (let k = 0; k < covered.length; k++) {
      let p = 0;
      for (let j = 0; j < c; j++) if (groups[j] === covered[k]) p += probs[i * c + j];
      pred.push(p);
      truth.push(t[k] / s);
    }
  }
  return { pred: Float32Array.from(pred), truth: Float32Array.from(truth), n, covered };
}

/** A class run's probabilities scored against the volunteers' Q1 fractions. */
export interface Q1FractionScore {
  rmse: number;
  n: number;
  /** Q1 answer -> the run's classes summed into it. */
  groups: Record<string, string[]>;
}

/**
 * The RMSE of class probabilities summed per Q1 answer against the
 * volunteers' Q1 fractions (see {@linkcode q1FractionPairs}); null when no
 * row has a covered fraction.
 */
export function q1FractionScore(
  probs: ArrayLike<number>,
  votes: ArrayLike<number>,
  classes: readonly string[],
  groups: readonly number[],
): Q1FractionScore | null {
  const pairs = q1FractionPairs(probs, votes, groups);
  if (pairs.n === 0) return null;
  const named: Record<string, string[]> = {};
  for (const a of pairs.covered) named[Q1_CLASSES[a]] = classes.filter((_, j) => groups[j] === a);
  return { rmse: rmse(pairs.pred, pairs.truth), n: pairs.n, groups: named };
}
