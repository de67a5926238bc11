/**
 * Simulated Galaxy Zoo volunteers: each of ~40-55 volunteers walks the
 * decision tree of lib/data/schema.ts, answering each question with
 * probabilities set by the galaxy's true morphology (blurred by how hard the
 * image is to read), and the 37 vote fractions are the answer counts over the
 * number of volunteers. Fractions obtained this way obey the tree's sum rules
 * exactly, including the competition data's quirk that Q6 ("anything odd?")
 * is counted for every volunteer, those who answered "star or artifact" too.
 *
 * @module
 */
import { NUM_VOTES, voteIndex } from "../schema.ts";
import type { Rng } from "./prng.ts";
import { type Morphology, ODD_FEATURES } from "./scene.ts";

/** Answer probabilities of every question for one galaxy (each array sums to 1). */
export interface AnswerProbabilities {
  q1: number[];
  q2: number[];
  q3: number[];
  q4: number[];
  q5: number[];
  q6: number[];
  q7: number[];
  q8: number[];
  q9: number[];
  q10: number[];
  q11: number[];
}

function normalize(p: number[]): number[] {
  let s = 0;
  for (const x of p) s += Math.max(0, x);
  return p.map((x) => Math.max(0, x) / s);
}

/** Blends `p` towards `prior` by `amount` (image ambiguity). */
function blur(p: number[], prior: number[], amount: number): number[] {
  const a = normalize(p), b = normalize(prior);
  return a.map((x, i) => (1 - amount) * x + amount * b[i]);
}

function smoothstep(a: number, b: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - a) / (b - a)));
  return t * t * (3 - 2 * t);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Gaussian weights of ordered answers around a (fractional) true position. */
function ordinal(count: number, centre: number, width: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < count; k++) out.push(Math.exp(-((k - centre) ** 2) / (2 * width * width)));
  return normalize(out);
}

/**
 * What an average volunteer answers to each question about a galaxy of this
 * morphology. `ambiguity` (0..1) mixes every question towards a vague prior:
 * some images are simply harder to read than their true type suggests.
 */
export function answerProbabilities(m: Morphology, ambiguity: number): AnswerProbabilities {
  const c = m.clarity;
  const a = Math.min(0.9, ambiguity + 0.25 * (1 - c));
  const q = m.axisRatio;

  // Q1: smooth / features or disk / star or artifact.
  let q1: number[];
  switch (m.kind) {
    case "elliptical": {
      const flat = sigmoid((0.45 - q) / 0.06); // thin smooth bodies get some "disk" votes
      q1 = [0.93 - 0.2 * flat, 0.05 + 0.2 * flat, 0.02];
      if (m.odd === "lens") q1 = [0.75, 0.23, 0.02];
      break;
    }
    case "spiral":
      // A disk whose arms do not show reads as smooth to many volunteers.
      q1 = [0.26 - 0.26 * m.armVisibility + 0.08 * m.bulgeFraction, 1, 0.01];
      q1[1] = 1 - q1[0] - q1[2];
      break;
    case "lenticular":
      q1 = [0.45, 0.53 + 0.15 * m.barVisibility, 0.02];
      break;
    case "edge_on":
      q1 = [0.08 + 0.15 * m.bulgeFraction, 0.9, 0.02];
      break;
    case "merger":
      q1 = [0.3, 0.66, 0.04];
      break;
    case "irregular":
      q1 = [0.3, 0.62, 0.08];
      break;
    case "star":
      q1 = [0.12, 0.06, 0.82];
      break;
    case "artifact":
      q1 = [0.18, 0.2, 0.62];
      break;
  }
  q1 = blur(q1, [0.45, 0.45, 0.1], a);

  // Q2: could it be a disk seen edge-on?
  let edge: number;
  if (m.kind === "edge_on") edge = 0.95 - 0.4 * Math.max(0, q - 0.3);
  else if (m.kind === "elliptical") edge = 0.15 + 0.6 * sigmoid((0.45 - q) / 0.06);
  else if (m.kind === "spiral" || m.kind === "lenticular") {
    edge = 0.02 + 0.9 * sigmoid((0.32 - q) / 0.05);
  } else edge = 0.1;
  const q2 = blur([edge, 1 - edge], [0.2, 0.8], a);

  // Q3: bar?
  const bar = 0.05 + 0.85 * m.barVisibility;
  const q3 = blur([bar, 1 - bar], [0.2, 0.8], a);

  // Q4: spiral pattern?
  const spiral = m.kind === "spiral"
    ? 0.06 + 0.92 * smoothstep(0.1, 0.6, m.armVisibility)
    : m.kind === "merger" || m.kind === "irregular"
    ? 0.1 + 0.5 * m.armVisibility
    : 0.08;
  const q4 = blur([Math.min(0.98, spiral), 1 - Math.min(0.98, spiral)], [0.5, 0.5], a);

  // Q5: bulge prominence, from the bulge-to-total ratio.
  const bt = m.bulgeFraction;
  const bulgeCentre = bt < 0.03 ? 0 : bt < 0.15 ? 1 : bt < 0.4 ? 2 : 3;
  const bulgeSoft = Math.min(3, Math.max(0, bt < 0.03 ? 0 : 0.5 + bt * 6));
  const q5 = blur(ordinal(4, 0.6 * bulgeCentre + 0.4 * bulgeSoft, 0.6), [0.15, 0.4, 0.35, 0.1], a);

  // Q6: anything odd?
  let odd = m.odd === "none" ? 0.08 : m.odd === "other" ? 0.5 : 0.82;
  if (m.odd === "lens" || m.odd === "dust_lane") odd = 0.62;
  if (m.kind === "star" || m.kind === "artifact") odd = Math.max(odd, 0.2);
  const q6 = blur([odd, 1 - odd], [0.2, 0.8], a);

  // Q7: how rounded (smooth galaxies)?
  const round = sigmoid((q - 0.79) / 0.035);
  const cigar = sigmoid((0.46 - q) / 0.035);
  const q7 = blur([round, Math.max(0.02, 1 - round - cigar), cigar], [0.4, 0.45, 0.15], a);

  // Q8: which odd feature? Confusions follow what volunteers mix up.
  const q8base = [0.08, 0.08, 0.2, 0.14, 0.32, 0.12, 0.06];
  let q8: number[];
  if (m.odd === "none") q8 = q8base;
  else {
    const t = ODD_FEATURES.indexOf(m.odd);
    q8 = q8base.map((x) => 0.35 * x);
    q8[t] += 0.65;
    if (m.odd === "merger") q8[2] += 0.15;
    if (m.odd === "disturbed") {
      q8[5] += 0.1;
      q8[3] += 0.1;
    }
    if (m.odd === "irregular") q8[2] += 0.12;
  }
  q8 = blur(q8, q8base, a);

  // Q9: bulge of an edge-on disk.
  let q9raw: number[];
  if (m.kind === "edge_on") {
    q9raw = [0.12, 0.08, 0.12];
    q9raw[m.bulgeShape === "rounded" ? 0 : m.bulgeShape === "boxy" ? 1 : 2] += 0.7;
  } else q9raw = [0.5, 0.15, 0.35]; // those who called a non-edge-on disk edge-on
  const q9 = blur(q9raw, [0.45, 0.15, 0.4], a);

  // Q10: arm winding from the pitch angle (tight < ~14 deg < medium < ~25 deg < loose).
  const wind = m.arms > 0 ? Math.min(2, Math.max(0, (m.pitchDeg - 9) / 11)) : 1;
  const q10 = blur(ordinal(3, wind, 0.45), [0.3, 0.45, 0.25], a);

  // Q11: arm count (answers 1, 2, 3, 4, more than four, can't tell).
  let q11raw: number[];
  if (m.arms > 0) {
    const idx = Math.min(4, m.arms - 1);
    q11raw = [0, 0, 0, 0, 0, 0];
    q11raw[idx] = 1;
    if (idx > 0) q11raw[idx - 1] += 0.2;
    if (idx < 4) q11raw[idx + 1] += 0.2;
    // Faint arms, and many arms, are hard to count.
    q11raw[5] = 0.12 + 0.6 * (1 - m.armVisibility) + (m.arms >= 4 ? 0.15 : 0);
  } else q11raw = [0.05, 0.25, 0.05, 0.03, 0.02, 0.6];
  const q11 = blur(q11raw, [0.1, 0.4, 0.1, 0.05, 0.05, 0.3], a);

  return { q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11 };
}

const COL = {
  q1: voteIndex("Class1.1"),
  q2: voteIndex("Class2.1"),
  q3: voteIndex("Class3.1"),
  q4: voteIndex("Class4.1"),
  q5: voteIndex("Class5.1"),
  q6: voteIndex("Class6.1"),
  q7: voteIndex("Class7.1"),
  q8: voteIndex("Class8.1"),
  q9: voteIndex("Class9.1"),
  q10: voteIndex("Class10.1"),
  q11: voteIndex("Class11.1"),
};

/**
 * Walks `volunteers` volunteers down the tree and returns the 37 vote
 * fractions (answer counts over volunteers), in `VOTE_COLUMNS` order.
 */
export function simulateVotes(p: AnswerProbabilities, volunteers: number, rng: Rng): Float64Array {
  if (!(volunteers >= 1)) throw new Error(`simulateVotes: need at least 1 volunteer`);
  const counts = new Float64Array(NUM_VOTES);
  const ask = (question: keyof typeof COL, probs: number[]): number => {
    const k = rng.pick(probs);
    counts[COL[question] + k]++;
    return k;
  };
  for (let v = 0; v < volunteers; v++) {
    const a1 = ask("q1", p.q1);
    if (a1 === 0) ask("q7", p.q7);
    else if (a1 === 1) {
      if (ask("q2", p.q2) === 0) ask("q9", p.q9);
      else {
        ask("q3", p.q3);
        if (ask("q4", p.q4) === 0) {
          ask("q10", p.q10);
          ask("q11", p.q11);
        }
        ask("q5", p.q5);
      }
    }
    // In the competition's data Q6 is counted for every volunteer (see schema.ts).
    if (ask("q6", p.q6) === 0) ask("q8", p.q8);
  }
  for (let i = 0; i < NUM_VOTES; i++) counts[i] /= volunteers;
  return counts;
}

/**
 * The vote fractions of one galaxy: per-galaxy ambiguity and number of
 * volunteers (38-55, Galaxy Zoo 2 had typically 40-50) drawn from `rng`.
 */
export function votesFor(m: Morphology, rng: Rng): Float64Array {
  const ambiguity = 0.22 * rng.next() ** 2;
  const volunteers = rng.int(38, 55);
  return simulateVotes(answerProbabilities(m, ambiguity), volunteers, rng);
}
