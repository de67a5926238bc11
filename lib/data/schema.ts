/**
 * The Galaxy Zoo 2 decision tree as the Kaggle "Galaxy Zoo - The Galaxy
 * Challenge" encodes it: 11 questions, 37 answers, one column per answer
 * (`Class1.1` ... `Class11.6`) holding a vote fraction.
 *
 * The fractions are cumulative down the tree: the answers to a question sum
 * to the fraction of volunteers that reached it, which is the sum of the
 * parent answers that lead to it. The rules below are those of the
 * competition's "decision tree" page and of Willett et al. 2013 (MNRAS 435,
 * 2835, table 1 and fig. 1), in the form the winning solution's output layer
 * enforced them (S. Dieleman, "My solution for the Galaxy Zoo challenge",
 * 2014, section "Incorporating output constraints"; the weights in
 * `GalaxyOutputLayer` of custom.py and the checks in check_label_constraints.py
 * of github.com/benanne/kaggle-galaxies). Q6 sums to 1 rather than to the
 * fraction that did not answer "star or artifact": the competition's data was
 * generated that way, as its forum thread 6706 reported.
 *
 * | question | its answers sum to |
 * | --- | --- |
 * | Q1 smooth / features / star | 1 |
 * | Q2 edge-on? | Class1.2 |
 * | Q3 bar? | Class2.2 |
 * | Q4 spiral? | Class2.2 |
 * | Q5 bulge prominence | Class2.2 |
 * | Q6 anything odd? | 1 (asked of every galaxy in the competition's data) |
 * | Q7 roundness | Class1.1 |
 * | Q8 odd feature | Class6.1 |
 * | Q9 bulge shape | Class2.1 |
 * | Q10 arm winding | Class4.1 |
 * | Q11 arm count | Class4.1 |
 *
 * @module
 */

/** One question of the tree. */
export interface Question {
  /** 1-based number, as in the column names (`Class<id>.<answer>`). */
  id: number;
  /** The question as Galaxy Zoo 2 asks it. */
  text: string;
  /** Answer texts, in column order. */
  answers: readonly string[];
  /**
   * Column names of the answers whose fractions sum to the fraction that
   * reached this question; empty for questions every volunteer answered.
   */
  parents: readonly string[];
}

/** The 11 questions of the tree, in column order. */
export const QUESTIONS: readonly Question[] = [
  {
    id: 1,
    text: "Is the galaxy simply smooth and rounded, with no sign of a disk?",
    answers: ["smooth", "features or disk", "star or artifact"],
    parents: [],
  },
  {
    id: 2,
    text: "Could this be a disk viewed edge-on?",
    answers: ["yes", "no"],
    parents: ["Class1.2"],
  },
  {
    id: 3,
    text: "Is there a sign of a bar feature through the centre of the galaxy?",
    answers: ["bar", "no bar"],
    parents: ["Class2.2"],
  },
  {
    id: 4,
    text: "Is there any sign of a spiral arm pattern?",
    answers: ["spiral", "no spiral"],
    parents: ["Class2.2"],
  },
  {
    id: 5,
    text: "How prominent is the central bulge, compared with the rest of the galaxy?",
    answers: ["no bulge", "just noticeable", "obvious", "dominant"],
    parents: ["Class2.2"],
  },
  { id: 6, text: "Is there anything odd?", answers: ["yes", "no"], parents: [] },
  {
    id: 7,
    text: "How rounded is it?",
    answers: ["completely round", "in between", "cigar-shaped"],
    parents: ["Class1.1"],
  },
  {
    id: 8,
    text: "Is the odd feature a ring, or is the galaxy disturbed or irregular?",
    answers: ["ring", "lens or arc", "disturbed", "irregular", "other", "merger", "dust lane"],
    parents: ["Class6.1"],
  },
  {
    id: 9,
    text: "Does the galaxy have a bulge at its centre? If so, what shape?",
    answers: ["rounded", "boxy", "no bulge"],
    parents: ["Class2.1"],
  },
  {
    id: 10,
    text: "How tightly wound do the spiral arms appear?",
    answers: ["tight", "medium", "loose"],
    parents: ["Class4.1"],
  },
  {
    id: 11,
    text: "How many spiral arms are there?",
    answers: ["1", "2", "3", "4", "more than four", "can't tell"],
    parents: ["Class4.1"],
  },
];

/** The 37 answer columns, `Class1.1` ... `Class11.6`, in the CSV's order. */
export const VOTE_COLUMNS: readonly string[] = QUESTIONS.flatMap((q) =>
  q.answers.map((_, i) => `Class${q.id}.${i + 1}`)
);

/** Number of vote-fraction columns (37). */
export const NUM_VOTES: number = VOTE_COLUMNS.length;

/** Header of `training_solutions_rev1.csv` and of a Kaggle submission. */
export const KAGGLE_HEADER: readonly string[] = ["GalaxyID", ...VOTE_COLUMNS];

/** Column index of an answer, e.g. `voteIndex("Class7.1") === 15`. */
export function voteIndex(column: string): number {
  const i = VOTE_COLUMNS.indexOf(column);
  if (i < 0) throw new Error(`unknown vote column '${column}'`);
  return i;
}

/** A question's answer columns as [start, end) indices into the 37 fractions. */
export function questionSlice(q: Question): [number, number] {
  const start = voteIndex(`Class${q.id}.1`);
  return [start, start + q.answers.length];
}

/** One broken rule in a row of vote fractions. */
export interface TreeViolation {
  /** Number of the question whose answers break the rule. */
  question: number;
  /** What the answers sum to. */
  sum: number;
  /** What they should sum to (the parent fraction, or 1). */
  expected: number;
}

/** Default tolerance: the competition's CSV is rounded to 6 decimals and not exact. */
export const TREE_TOLERANCE = 0.01;

/**
 * Checks one row of 37 fractions against the tree: every question's answers
 * sum to the fraction that reached it, within `tolerance`. (The range of
 * each value, [0, 1], is checked where the CSV is read.)
 */
export function checkTree(votes: ArrayLike<number>, tolerance = TREE_TOLERANCE): TreeViolation[] {
  if (votes.length !== NUM_VOTES) {
    throw new Error(`expected ${NUM_VOTES} vote fractions, got ${votes.length}`);
  }
  const out: TreeViolation[] = [];
  for (const q of QUESTIONS) {
    const [a, b] = questionSlice(q);
    let sum = 0;
    for (let i = a; i < b; i++) sum += votes[i];
    const expected = q.parents.length === 0
      ? 1
      : q.parents.reduce((s, p) => s + votes[voteIndex(p)], 0);
    if (Math.abs(sum - expected) > tolerance) out.push({ question: q.id, sum, expected });
  }
  return out;
}

/** Human-readable form of a row's violations, for error reports. */
export function describeViolations(v: TreeViolation[]): string {
  return v.map((x) =>
    `Q${x.question} answers sum to ${x.sum.toFixed(4)}, expected ${x.expected.toFixed(4)}`
  ).join("; ");
}
