/**
 * Error bars for `evaluate`: the 95 % bootstrap interval of each headline
 * metric of one run, and the paired difference between two runs scored on
 * the same images (`deno task evaluate --compare OTHER_RUN`).
 *
 * The headline metrics: for a votes run the competition's RMSE over the 37
 * fractions, and accuracy, balanced accuracy and macro-F1 of question 1
 * read off the fractions; for a class run the three class metrics.
 * Intervals come from lib/metrics/bootstrap.ts (percentile bootstrap over
 * images, 2000 resamples, seed 0 unless told otherwise).
 *
 * @module
 */
import {
  bootstrapIntervals,
  type BootstrapOptions,
  classStatistics,
  type Interval,
  pairedIntervals,
  rmseStatistic,
  type Statistic,
} from "../metrics/bootstrap.ts";
import { NUM_VOTES } from "../data/schema.ts";

/** What `evaluate` scored, image by image (index i is the same image in every array). */
export interface ScoredImages {
  /** The run's output kind. */
  kind: "classes" | "votes";
  /** Names of the classes of `predicted` and `labels` (question 1's answers for votes). */
  classes: string[];
  /** Image ids. */
  ids: string[];
  /** Predicted class per image. */
  predicted: Int32Array;
  /** True class per image. */
  labels: Int32Array;
  /** Votes runs: predicted and true fractions, n x 37 row-major; else null. */
  votes: { pred: Float32Array; truth: Float32Array } | null;
}

/** Names of the headline metrics. */
export type HeadlineMetric = "rmse" | "accuracy" | "balancedAccuracy" | "macroF1";

/** Whether a higher value of the metric is better. */
export const HIGHER_IS_BETTER: Readonly<Record<HeadlineMetric, boolean>> = {
  rmse: false,
  accuracy: true,
  balancedAccuracy: true,
  macroF1: true,
};

/** The headline metrics of `s` as statistics of an index set (RMSE only where there are fractions). */
export function headlineStatistics(s: ScoredImages): Partial<Record<HeadlineMetric, Statistic>> {
  const c = classStatistics(s.predicted, s.labels, s.classes.length);
  return {
    ...(s.votes ? { rmse: rmseStatistic(s.votes.pred, s.votes.truth, NUM_VOTES) } : {}),
    accuracy: c.accuracy,
    balancedAccuracy: c.balancedAccuracy,
    macroF1: c.macroF1,
  };
}

/** The bootstrap interval of each headline metric of one run's scored images. */
export function headlineIntervals(
  s: ScoredImages,
  options: BootstrapOptions = {},
): Partial<Record<HeadlineMetric, Interval>> {
  return bootstrapIntervals(s.ids.length, headlineStatistics(s) as Record<string, Statistic>, {
    ...options,
  }) as Partial<Record<HeadlineMetric, Interval>>;
}

/** One metric of a comparison: both runs' values and their paired difference (a - b). */
export interface MetricComparison {
  /** Run a's value on the shared images. */
  a: number;
  /** Run b's value on the shared images. */
  b: number;
  /** a - b with its paired-bootstrap interval. */
  difference: Interval;
  /**
   * `a better` / `b better` when the interval excludes 0 in that direction
   * (by {@linkcode HIGHER_IS_BETTER}), else `no clear difference`.
   */
  verdict: "a better" | "b better" | "no clear difference";
}

/** Result of {@linkcode compareScored}. */
export interface Comparison {
  /** Images both runs were scored on. */
  n: number;
  /** Images only one run was scored on (left out of the comparison). */
  onlyA: number;
  /** Images only the other run was scored on. */
  onlyB: number;
  /** Each headline metric both runs have. */
  metrics: Partial<Record<HeadlineMetric, MetricComparison>>;
}

/** Rows of `s` reordered (and subset) to `ids`. */
function reorder(s: ScoredImages, ids: readonly string[]): ScoredImages {
  const at = new Map(s.ids.map((id, i) => [id, i]));
  const rows = ids.map((id) => at.get(id)!);
  const pick = (a: Float32Array, w: number) => {
    const out = new Float32Array(rows.length * w);
    rows.forEach((r, i) => out.set(a.subarray(r * w, (r + 1) * w), i * w));
    return out;
  };
  return {
    ...s,
    ids: [...ids],
    predicted: Int32Array.from(rows, (r) => s.predicted[r]),
    labels: Int32Array.from(rows, (r) => s.labels[r]),
    votes: s.votes
      ? { pred: pick(s.votes.pred, NUM_VOTES), truth: pick(s.votes.truth, NUM_VOTES) }
      : null,
  };
}

/**
 * The paired difference a - b of every headline metric, over the images
 * both were scored on (matched by id).
 *
 * @throws {Error} when the runs are of different kinds or classes, or share no image.
 */
export function compareScored(
  a: ScoredImages,
  b: ScoredImages,
  options: BootstrapOptions = {},
): Comparison {
  if (a.kind !== b.kind || JSON.stringify(a.classes) !== JSON.stringify(b.classes)) {
    throw new Error(
      `cannot compare a ${a.kind} run (${a.classes.join(", ")}) with a ${b.kind} run ` +
        `(${b.classes.join(", ")}): they are not scored on the same classes`,
    );
  }
  const inB = new Set(b.ids);
  const shared = a.ids.filter((id) => inB.has(id));
  if (shared.length === 0) throw new Error("the two runs share no scored image");
  const ra = reorder(a, shared);
  const rb = reorder(b, shared);
  const sa = headlineStatistics(ra) as Record<string, Statistic>;
  const sb = headlineStatistics(rb) as Record<string, Statistic>;
  const keys = Object.keys(sa).filter((k) => k in sb);
  const pick = (s: Record<string, Statistic>) => Object.fromEntries(keys.map((k) => [k, s[k]]));
  const diff = pairedIntervals(shared.length, pick(sa), pick(sb), options);
  const all = new Uint32Array(shared.length).map((_, i) => i);
  const metrics: Comparison["metrics"] = {};
  for (const k of keys as HeadlineMetric[]) {
    const d = diff[k];
    const better = (sign: number) => HIGHER_IS_BETTER[k] ? sign > 0 : sign < 0;
    metrics[k] = {
      a: sa[k](all),
      b: sb[k](all),
      difference: d,
      verdict: d.lo > 0
        ? (better(1) ? "a better" : "b better")
        : d.hi < 0
        ? (better(-1) ? "a better" : "b better")
        : "no clear difference",
    };
  }
  return {
    n: shared.length,
    onlyA: a.ids.length - shared.length,
    onlyB: b.ids.filter((id) => !new Set(a.ids).has(id)).length,
    metrics,
  };
}

/** Human names of the headline metrics, for the console and Markdown. */
export const METRIC_NAMES: Readonly<Record<HeadlineMetric, string>> = {
  rmse: "RMSE",
  accuracy: "accuracy",
  balancedAccuracy: "balanced accuracy",
  macroF1: "macro-F1",
};

/** `0.1342 (95 % CI 0.1301-0.1385)`, percentages for the class metrics. */
export function formatInterval(metric: HeadlineMetric, i: Interval, signed = false): string {
  const pct = metric !== "rmse";
  const f = (x: number) => {
    const s = pct ? (100 * x).toFixed(2) : x.toFixed(4);
    return signed && x >= 0 ? `+${s}` : s;
  };
  const unit = pct ? (signed ? " points" : " %") : "";
  return `${f(i.estimate)}${unit} (${Math.round(i.level * 100)} % CI ${f(i.lo)} to ${f(i.hi)})`;
}

/** Console lines of a comparison of run `nameA` against run `nameB`. */
export function describeComparison(c: Comparison, nameA: string, nameB: string): string[] {
  const lines = [
    `paired comparison on ${c.n} shared images (a = ${nameA}, b = ${nameB})` +
    (c.onlyA + c.onlyB > 0 ? `; ${c.onlyA} only in a, ${c.onlyB} only in b left out` : ""),
  ];
  for (const [k, m] of Object.entries(c.metrics) as [HeadlineMetric, MetricComparison][]) {
    const v = (x: number) => k === "rmse" ? x.toFixed(4) : `${(100 * x).toFixed(2)} %`;
    lines.push(
      `  ${METRIC_NAMES[k]}: a ${v(m.a)}, b ${v(m.b)}, a - b ${
        formatInterval(k, m.difference, true)
      }: ${m.verdict}`,
    );
  }
  return lines;
}

/** Console lines of a run's headline intervals. */
export function describeIntervals(
  intervals: Partial<Record<HeadlineMetric, Interval>>,
): string[] {
  const entries = Object.entries(intervals) as [HeadlineMetric, Interval][];
  if (entries.length === 0) return [];
  return [
    `  95 % bootstrap intervals over the ${entries[0][1].n} images:`,
    ...entries.map(([k, i]) => `    ${METRIC_NAMES[k]} ${formatInterval(k, i)}`),
  ];
}
