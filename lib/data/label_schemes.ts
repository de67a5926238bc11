/**
 * Label schemes: how a label row (a class name, or the 37 Galaxy Zoo vote
 * fractions) becomes a training target.
 *
 * | name | kind | targets |
 * | --- | --- | --- |
 * | `gz5` | classes | round, in_between, cigar, edge_on, spiral (Willett et al. 2013 thresholds, as used by Dai & Tong 2018); rows matching no class, or more than one, are left out |
 * | `q1` | classes | argmax of Class1.1-1.3: smooth, features_or_disk, star_or_artifact; keeps every row |
 * | `votes` | votes | the 37 fractions as regression targets |
 * | `csv` | classes | the `label` of `labels.csv` or the class sub-folder name, classes sorted by name |
 *
 * `gz5` thresholds (on the fractions as the Kaggle CSV gives them, which are
 * cumulative down the tree):
 * - round: Class1.1 >= 0.469 and Class7.1 >= 0.50
 * - in_between: Class1.1 >= 0.469 and Class7.2 >= 0.50
 * - cigar: Class1.1 >= 0.469 and Class7.3 >= 0.50
 * - edge_on: Class1.2 >= 0.430 and Class2.1 >= 0.602
 * - spiral: Class1.2 >= 0.430 and Class2.2 >= 0.715 and Class4.1 >= 0.619
 *
 * On rows that obey the tree at most one class can match: the Class7 answers
 * sum to Class1.1, so two of them reach 0.50 only on an exact tie; edge_on and
 * spiral need Class2.1 + Class2.2 (= Class1.2) >= 1.317; and edge_on or spiral
 * need Class1.2 >= 0.602, leaving Class1.1 <= 0.398 < 0.469. A row that still
 * matches two (a tie, or fractions slightly off the tree within its tolerance)
 * is ambiguous: it is left out, counted under its own reason, never assigned
 * to the first match.
 *
 * `flipPairs` lists the class pairs a mirror flip swaps: none of the vote
 * based schemes distinguishes the sense of spiral winding, while Galaxy Zoo 1
 * style classes such as `spiral_cw` / `spiral_acw` swap under a flip.
 *
 * @module
 */
import { NUM_VOTES, VOTE_COLUMNS, voteIndex } from "./schema.ts";

/** Whether a scheme's targets are class indices or the 37 vote fractions. */
export type SchemeKind = "classes" | "votes";

/** One labelled item as a source provides it. */
export interface LabelRow {
  /** Item id, unique within the source (e.g. the Kaggle GalaxyID). */
  id: string;
  /** Class name (labels.csv `label` or class sub-folder), when the source has one. */
  label?: string;
  /** The 37 vote fractions in {@linkcode VOTE_COLUMNS} order, when the source has them. */
  votes?: ArrayLike<number>;
}

/** A labelling of the data: class names, how a row maps to a target, flip symmetry. */
export interface LabelScheme {
  /** Name the scheme is chosen by (`--scheme`). */
  name: string;
  /** One line on what the classes are. */
  description: string;
  /** Whether targets are class indices or vote fractions. */
  kind: SchemeKind;
  /** Class names in index order (for `votes`: the 37 answer columns). */
  classNames: string[];
  /** What a row must carry: vote fractions or a class label. */
  needs: "votes" | "label";
  /**
   * A row's class index (classes kind; for votes kind 0, the target being the
   * row's fractions), or null when the row is left out.
   */
  target(row: LabelRow): number | null;
  /** Why `target` left the row out (a short reason usable as a count key); null if kept. */
  leftOutReason(row: LabelRow): string | null;
  /** Class index pairs `[i, j]` (i < j) that a left-right mirror flip swaps. */
  flipPairs: [number, number][];
}

/** How a named scheme is built; `csv` needs the class names found in the data. */
export interface LabelSchemeEntry {
  /** Name the scheme is chosen by (`--scheme`). */
  name: string;
  /** One line on what the classes are. */
  description: string;
  /** Whether targets are class indices or vote fractions. */
  kind: SchemeKind;
  /** What a row must carry: vote fractions or a class label. */
  needs: "votes" | "label";
  /** Builds the scheme; `labels` are the class names found in the data (needed by `csv`). */
  create(labels?: readonly string[]): LabelScheme;
}

const v = (name: string) => voteIndex(name);

/** Class names of `gz5`, in index order. */
export const GZ5_CLASSES = ["round", "in_between", "cigar", "edge_on", "spiral"] as const;

const GZ5_RULES: { name: string; all: [number, number][] }[] = [
  { name: "round", all: [[v("Class1.1"), 0.469], [v("Class7.1"), 0.50]] },
  { name: "in_between", all: [[v("Class1.1"), 0.469], [v("Class7.2"), 0.50]] },
  { name: "cigar", all: [[v("Class1.1"), 0.469], [v("Class7.3"), 0.50]] },
  { name: "edge_on", all: [[v("Class1.2"), 0.430], [v("Class2.1"), 0.602]] },
  {
    name: "spiral",
    all: [[v("Class1.2"), 0.430], [v("Class2.2"), 0.715], [v("Class4.1"), 0.619]],
  },
];

/** The `gz5` classes a row of fractions satisfies (normally zero or one). */
export function gz5Matches(votes: ArrayLike<number>): number[] {
  const out: number[] = [];
  GZ5_RULES.forEach((rule, k) => {
    if (rule.all.every(([i, t]) => votes[i] >= t)) out.push(k);
  });
  return out;
}

function needVotes(scheme: string, row: LabelRow): ArrayLike<number> {
  if (!row.votes || row.votes.length !== NUM_VOTES) {
    throw new Error(`scheme '${scheme}' needs the ${NUM_VOTES} vote fractions of id ${row.id}`);
  }
  return row.votes;
}

function gz5(): LabelScheme {
  const reason = (row: LabelRow): string | null => {
    const m = gz5Matches(needVotes("gz5", row));
    if (m.length === 1) return null;
    if (m.length === 0) return "gz5: matches no class";
    return `gz5: ambiguous (${m.map((k) => GZ5_CLASSES[k]).join(" and ")})`;
  };
  return {
    name: "gz5",
    description: "five classes of Willett et al. 2013 (Dai & Tong 2018 thresholds)",
    kind: "classes",
    needs: "votes",
    classNames: [...GZ5_CLASSES],
    target(row) {
      const m = gz5Matches(needVotes("gz5", row));
      return m.length === 1 ? m[0] : null;
    },
    leftOutReason: reason,
    flipPairs: [],
  };
}

/** Class names of `q1`, in index order (answers of Galaxy Zoo question 1). */
export const Q1_CLASSES = ["smooth", "features_or_disk", "star_or_artifact"] as const;

function q1(): LabelScheme {
  const start = v("Class1.1");
  return {
    name: "q1",
    description: "argmax of Class1.1-1.3 (smooth / features or disk / star or artifact)",
    kind: "classes",
    needs: "votes",
    classNames: [...Q1_CLASSES],
    target(row) {
      const votes = needVotes("q1", row);
      // Ties go to the lower index, so the result never depends on float noise order.
      let best = 0;
      for (let k = 1; k < 3; k++) if (votes[start + k] > votes[start + best]) best = k;
      return best;
    },
    leftOutReason: () => null,
    flipPairs: [],
  };
}

function votes(): LabelScheme {
  return {
    name: "votes",
    description: "the 37 Galaxy Zoo 2 vote fractions as regression targets",
    kind: "votes",
    needs: "votes",
    classNames: [...VOTE_COLUMNS],
    target(row) {
      needVotes("votes", row);
      return 0;
    },
    leftOutReason: () => null,
    flipPairs: [],
  };
}

// Tokens whose swap is the mirror image of a class: clockwise vs anticlockwise winding.
const MIRROR_TOKENS: [string, string][] = [
  ["cw", "acw"],
  ["cw", "ccw"],
  ["clockwise", "anticlockwise"],
  ["clockwise", "counterclockwise"],
];

/**
 * Class pairs a mirror flip swaps, found from the names: two names equal but
 * for one `_`/`-`/space-separated token being `cw` vs `acw` (or `ccw`), or
 * `clockwise` vs `anticlockwise` (or `counterclockwise`), case-insensitive.
 */
export function detectFlipPairs(names: readonly string[]): [number, number][] {
  const index = new Map(names.map((n, i) => [n.toLowerCase(), i]));
  const pairs = new Map<string, [number, number]>();
  names.forEach((name, i) => {
    const parts = name.toLowerCase().split(/([_\-\s]+)/);
    parts.forEach((tok, p) => {
      for (const [a, b] of MIRROR_TOKENS) {
        if (tok !== a) continue;
        const other = [...parts.slice(0, p), b, ...parts.slice(p + 1)].join("");
        const j = index.get(other);
        if (j !== undefined && j !== i) {
          const pair: [number, number] = i < j ? [i, j] : [j, i];
          pairs.set(pair.join(","), pair);
        }
      }
    });
  });
  return [...pairs.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/** Sorts class names the way the `csv` scheme indexes them (by code point, like ImageFolder). */
export function sortClassNames(labels: Iterable<string>): string[] {
  return [...new Set(labels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function csv(labels?: readonly string[]): LabelScheme {
  if (!labels || labels.length === 0) {
    throw new Error("scheme 'csv' needs the class labels found in the data (none given)");
  }
  const classNames = sortClassNames(labels);
  const index = new Map(classNames.map((n, i) => [n, i]));
  return {
    name: "csv",
    description: "class labels from labels.csv or class sub-folders, sorted by name",
    kind: "classes",
    needs: "label",
    classNames,
    target(row) {
      return row.label === undefined ? null : index.get(row.label) ?? null;
    },
    leftOutReason(row) {
      if (row.label === undefined) return "csv: no label";
      return index.has(row.label) ? null : `csv: unknown class '${row.label}'`;
    },
    flipPairs: detectFlipPairs(classNames),
  };
}

/** Every scheme by name. */
export const LABEL_SCHEMES: Readonly<Record<string, LabelSchemeEntry>> = {
  gz5: {
    name: "gz5",
    description: "five Galaxy Zoo 2 classes (Willett et al. 2013 / Dai & Tong 2018)",
    kind: "classes",
    needs: "votes",
    create: gz5,
  },
  q1: {
    name: "q1",
    description: "argmax of Galaxy Zoo question 1",
    kind: "classes",
    needs: "votes",
    create: q1,
  },
  votes: {
    name: "votes",
    description: "37 vote fractions (regression)",
    kind: "votes",
    needs: "votes",
    create: votes,
  },
  csv: {
    name: "csv",
    description: "labels.csv or class sub-folders",
    kind: "classes",
    needs: "label",
    create: csv,
  },
};

/** Names of the schemes, for `--scheme` help and errors. */
export const SCHEME_NAMES: readonly string[] = Object.keys(LABEL_SCHEMES);

/**
 * Builds a scheme by name; `labels` (the class names seen in the data) is
 * required by `csv` and ignored by the others.
 */
export function getLabelScheme(name: string, labels?: readonly string[]): LabelScheme {
  const entry = LABEL_SCHEMES[name];
  if (!entry) {
    throw new Error(`unknown label scheme '${name}': use one of ${SCHEME_NAMES.join(", ")}`);
  }
  return entry.create(labels);
}
