/**
 * The quality table: toolkit against the PyTorch reference over several
 * seeds, each seed on its own split of the same images (`--split-seed` =
 * seed), scored on the pooled validation and test splits.
 *
 * Two kinds of error bar, because two things vary:
 * - **over seeds** (training noise and which images are held out): mean ±
 *   sample sd of each side, and of the per-seed paired difference, with a
 *   Student-t 95 % interval of the mean difference over the seeds;
 * - **over images** (which galaxies happen to be scored): the paired
 *   bootstrap interval of the difference on all (seed, image) pairs pooled
 *   (lib/evaluate/compare.ts).
 * A difference is called a difference only when the t interval over seeds
 * excludes 0.
 *
 * @module
 */
import {
  compareScored,
  type Comparison,
  type HeadlineMetric,
  HIGHER_IS_BETTER,
  METRIC_NAMES,
  type ScoredImages,
} from "../evaluate/compare.ts";
import { concatScored, tagScored } from "./scored.ts";

/** One seed's scorings of both sides. */
export interface SeedScores {
  /** Training seed (also the split seed). */
  seed: number;
  /** The toolkit's run, pooled val + test. */
  toolkit: ScoredImages;
  /** The reference's run on the same images. */
  reference: ScoredImages;
}

/** Mean, sample sd and Student-t 95 % interval of the mean of `xs`. */
export interface SeedStats {
  mean: number;
  sd: number;
  lo: number;
  hi: number;
  n: number;
}

/** Two-sided 95 % Student-t quantiles by degrees of freedom (1-30); 1.96 beyond. */
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** Mean, sd and t interval of the mean; with one value the interval is unbounded. */
export function seedStats(xs: readonly number[]): SeedStats {
  const n = xs.length;
  if (n === 0) throw new Error("no seeds");
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : NaN;
  const t = n > 1 ? (T975[n - 2] ?? 1.96) : Infinity;
  const half = n > 1 ? t * sd / Math.sqrt(n) : Infinity;
  return { mean, sd, lo: mean - half, hi: mean + half, n };
}

/** The summary of a set of seeds. */
export interface QualitySummary {
  /** Seeds, in order. */
  seeds: number[];
  /** Per seed: the paired comparison (a = toolkit, b = reference) on its images. */
  perSeed: Comparison[];
  /** Over seeds, per metric: toolkit, reference and difference statistics. */
  overSeeds: Partial<
    Record<HeadlineMetric, { toolkit: SeedStats; reference: SeedStats; difference: SeedStats }>
  >;
  /** The paired bootstrap over every (seed, image) pair. */
  pooled: Comparison;
}

/** Compares the two sides seed by seed and pooled. */
export function summarize(scores: readonly SeedScores[]): QualitySummary {
  const perSeed = scores.map((s) => compareScored(s.toolkit, s.reference));
  const pooled = compareScored(
    concatScored(scores.map((s) => tagScored(s.toolkit, `s${s.seed}`))),
    concatScored(scores.map((s) => tagScored(s.reference, `s${s.seed}`))),
  );
  const overSeeds: QualitySummary["overSeeds"] = {};
  for (const k of Object.keys(pooled.metrics) as HeadlineMetric[]) {
    const a = perSeed.map((c) => c.metrics[k]!.a);
    const b = perSeed.map((c) => c.metrics[k]!.b);
    overSeeds[k] = {
      toolkit: seedStats(a),
      reference: seedStats(b),
      difference: seedStats(a.map((x, i) => x - b[i])),
    };
  }
  return { seeds: scores.map((s) => s.seed), perSeed, overSeeds, pooled };
}

/** Verdict on the toolkit from the over-seeds interval of the difference. */
export function verdict(metric: HeadlineMetric, d: SeedStats): string {
  if (!(d.lo > 0 || d.hi < 0)) return "no clear difference";
  const toolkitHigher = d.lo > 0;
  return toolkitHigher === HIGHER_IS_BETTER[metric] ? "toolkit better" : "reference better";
}

/** Markdown tables of a summary: one row per side, one column per seed, then mean ± sd. */
export function summaryMarkdown(s: QualitySummary, names: { toolkit: string; reference: string }) {
  const out: string[] = [];
  const pct = (k: HeadlineMetric) => k !== "rmse";
  const v = (k: HeadlineMetric, x: number) =>
    Number.isFinite(x) ? (pct(k) ? (100 * x).toFixed(2) : x.toFixed(4)) : "n/a";
  const sv = (k: HeadlineMetric, x: number) =>
    Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${v(k, x)}` : "n/a";
  for (const k of Object.keys(s.overSeeds) as HeadlineMetric[]) {
    const o = s.overSeeds[k]!;
    const unit = pct(k) ? " (%)" : "";
    out.push(
      `**${METRIC_NAMES[k]}${unit}**, pooled val + test of each seed's split (${
        s.perSeed.map((c) => c.n).join(" / ")
      } images):`,
      "",
      `| run | ${s.seeds.map((x) => `seed ${x}`).join(" | ")} | mean ± sd |`,
      `| --- | ${s.seeds.map(() => "---").join(" | ")} | --- |`,
      `| ${names.toolkit} | ${s.perSeed.map((c) => v(k, c.metrics[k]!.a)).join(" | ")} | ${
        v(k, o.toolkit.mean)
      } ± ${v(k, o.toolkit.sd)} |`,
      `| ${names.reference} | ${s.perSeed.map((c) => v(k, c.metrics[k]!.b)).join(" | ")} | ${
        v(k, o.reference.mean)
      } ± ${v(k, o.reference.sd)} |`,
      `| difference (paired 95 % bootstrap interval) | ${
        s.perSeed.map((c) => {
          const d = c.metrics[k]!.difference;
          return `${sv(k, d.estimate)} (${sv(k, d.lo)} to ${sv(k, d.hi)})`;
        }).join(" | ")
      } | ${sv(k, o.difference.mean)} ± ${v(k, o.difference.sd)} |`,
      "",
      (o.difference.n > 1
        ? `Difference (toolkit - reference) over the ${o.difference.n} seeds: ${
          sv(k, o.difference.mean)
        }, 95 % t interval ${sv(k, o.difference.lo)} to ${sv(k, o.difference.hi)}: **${
          verdict(k, o.difference)
        }**.`
        : `One seed: no interval over seeds, so no verdict.`) +
        ` Paired bootstrap over all ${s.pooled.n} (seed, image) pairs: ${
          sv(k, s.pooled.metrics[k]!.difference.estimate)
        } (${sv(k, s.pooled.metrics[k]!.difference.lo)} to ${
          sv(k, s.pooled.metrics[k]!.difference.hi)
        }).`,
      "",
    );
  }
  return out.join("\n");
}
