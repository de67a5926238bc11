/**
 * Train / val / test assignment by a seeded hash of the galaxy id.
 *
 * Each id maps to `u = SHA-256("<seed>:<id>")` read as a number in [0, 1)
 * (its first 48 bits): `u < test` goes to test, `u < test + val` to val, the
 * rest to train. The split of an id depends on nothing but the id, the seed
 * and the two fractions, so a galaxy never changes split when more data
 * arrives or other rows are dropped.
 *
 * Stratification: the same thresholds apply within every class and `u` is
 * independent of the class, so each class is split in the requested
 * proportions in expectation. That is not exact: a class of n items gets a
 * binomial(n, p) count in a split of fraction p, which matters only for small
 * classes (16 items and p = 0.1 leave the split without that class 18.5 % of
 * the time). Exact per-class quotas (ranking ids within a class) would move
 * ids between splits whenever the class grows, which is the property this
 * module exists to keep; {@linkcode splitShortfalls} instead names the classes
 * whose realised counts are missing from a split so the run can warn.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The three labelled splits (unlabeled data is kept apart). */
export type LabeledSplit = "train" | "val" | "test";

/** Fractions and seed of a split. */
export interface SplitOptions {
  val: number;
  test: number;
  seed: number | string;
}

/**
 * A split seed as given on the command line: a number when it reads as an
 * integer (as preprocess records it in the manifest), else the string.
 */
export function splitSeedFlag(value: string): number | string {
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

/** Checks the fractions are in [0, 1) and leave a non-empty share for train. */
export function validateSplitOptions(o: SplitOptions): void {
  for (const [k, x] of [["val", o.val], ["test", o.test]] as const) {
    if (!Number.isFinite(x) || x < 0 || x >= 1) {
      throw new Error(`--${k} must be a fraction in [0, 1), got ${x}`);
    }
  }
  if (o.val + o.test >= 1) {
    throw new Error(`--val + --test must be below 1 (got ${o.val} + ${o.test})`);
  }
}

/** A stable uniform number in [0, 1) for `id` under `seed`. */
export function splitHash(id: string, seed: number | string): number {
  const d = createHash("sha256").update(`${seed}:${id}`).digest();
  // 48 bits fit a double exactly.
  return d.readUIntBE(0, 6) / 2 ** 48;
}

/** The split an id belongs to. */
export function assignSplit(id: string, o: SplitOptions): LabeledSplit {
  const u = splitHash(id, o.seed);
  if (u < o.test) return "test";
  if (u < o.test + o.val) return "val";
  return "train";
}

/** A class whose realised count in a split is zero although its expected count is not small. */
export interface SplitShortfall {
  split: LabeledSplit;
  classIndex: number;
  expected: number;
}

/**
 * Classes with no item in a split they were expected to reach (expected count
 * of at least one), from per-split per-class counts.
 */
export function splitShortfalls(
  counts: Record<LabeledSplit, number[]>,
  o: SplitOptions,
): SplitShortfall[] {
  const out: SplitShortfall[] = [];
  const classes = counts.train.length;
  for (let c = 0; c < classes; c++) {
    const total = counts.train[c] + counts.val[c] + counts.test[c];
    const frac: Record<LabeledSplit, number> = {
      train: 1 - o.val - o.test,
      val: o.val,
      test: o.test,
    };
    for (const s of ["train", "val", "test"] as const) {
      const expected = total * frac[s];
      if (expected >= 1 && counts[s][c] === 0) out.push({ split: s, classIndex: c, expected });
    }
  }
  return out;
}
