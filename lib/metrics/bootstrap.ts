/**
 * Bootstrap confidence intervals for the headline metrics (RMSE over the 37
 * vote fractions, accuracy, balanced accuracy, macro-F1), and paired
 * intervals for the difference between two models scored on the same
 * images.
 *
 * The percentile bootstrap (Efron & Tibshirani 1993, ch. 13): draw the
 * scored images n times with replacement, recompute the metric, repeat
 * `resamples` times; the interval is the (1 - level) / 2 and
 * (1 + level) / 2 quantiles of the recomputed values. A paired interval
 * draws one set of images per resample and recomputes both models' metric
 * on it, so what the two share (which images are hard) cancels out.
 * Resamples come from a seeded generator: the same inputs and seed give the
 * same interval.
 *
 * The class metrics follow lib/metrics.ts: recall of a class without
 * support is left out of balanced accuracy; macro-F1 averages the classes
 * that occur or are predicted.
 *
 * @module
 */
import { mulberry32 } from "../random.ts";

/** A point estimate with its bootstrap interval. */
export interface Interval {
  /** The metric on the images as scored (not a bootstrap mean). */
  estimate: number;
  /** Lower end of the interval. */
  lo: number;
  /** Upper end of the interval. */
  hi: number;
  /** Coverage of the interval, e.g. 0.95. */
  level: number;
  /** Number of bootstrap resamples. */
  resamples: number;
  /** Number of images resampled. */
  n: number;
}

/** Settings of the bootstrap. */
export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Coverage (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
}

/** A metric computed on a subset (with repeats) of the scored images, given by their indices. */
export type Statistic = (indices: Uint32Array) => number;

/** Default bootstrap settings. */
export const BOOTSTRAP_DEFAULTS: Required<BootstrapOptions> = {
  resamples: 2000,
  level: 0.95,
  seed: 0,
};

function settings(options: BootstrapOptions): Required<BootstrapOptions> {
  const o = { ...BOOTSTRAP_DEFAULTS, ...options };
  if (!(Number.isInteger(o.resamples) && o.resamples >= 1)) {
    throw new Error(`bootstrap: resamples must be a positive integer, got ${o.resamples}`);
  }
  if (!(o.level > 0 && o.level < 1)) {
    throw new Error(`bootstrap: level must be in (0, 1), got ${o.level}`);
  }
  return o;
}

/** Quantile `q` of sorted `xs`, linear between order statistics (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error("quantile of no values");
  const pos = q * (n - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < n ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[n - 1];
}

/**
 * Percentile-bootstrap intervals of several statistics of the same `n`
 * images, all recomputed on the same resamples (so that their intervals
 * are consistent with each other).
 *
 * @throws {Error} when n is 0 or the settings are out of range.
 */
export function bootstrapIntervals<K extends string>(
  n: number,
  statistics: Readonly<Record<K, Statistic>>,
  options: BootstrapOptions = {},
): Record<K, Interval> {
  const o = settings(options);
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`bootstrap: needs images, got n = ${n}`);
  const keys = Object.keys(statistics) as K[];
  const identity = new Uint32Array(n).map((_, i) => i);
  const values = keys.map(() => new Float64Array(o.resamples));
  const rand = mulberry32(o.seed);
  const idx = new Uint32Array(n);
  for (let r = 0; r < o.resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    keys.forEach((k, j) => values[j][r] = statistics[k](idx));
  }
  const out = {} as Record<K, Interval>;
  keys.forEach((k, j) => {
    const sorted = values[j].sort();
    out[k] = {
      estimate: statistics[k](identity),
      lo: quantile(sorted, (1 - o.level) / 2),
      hi: quantile(sorted, (1 + o.level) / 2),
      level: o.level,
      resamples: o.resamples,
      n,
    };
  });
  return out;
}

/**
 * Paired intervals of `a[k] - b[k]` for each statistic, `a` and `b` being
 * the same metric of two models on the same `n` images (index i is the
 * same image for both).
 */
export function pairedIntervals<K extends string>(
  n: number,
  a: Readonly<Record<K, Statistic>>,
  b: Readonly<Record<K, Statistic>>,
  options: BootstrapOptions = {},
): Record<K, Interval> {
  const diff = {} as Record<K, Statistic>;
  for (const k of Object.keys(a) as K[]) diff[k] = (idx) => a[k](idx) - b[k](idx);
  return bootstrapIntervals(n, diff, options);
}

/** RMSE over all `width` columns of the rows in `indices`: per-row sums of squared errors. */
export function rmseStatistic(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  width: number,
): Statistic {
  if (pred.length !== truth.length || pred.length % width !== 0) {
    throw new Error(
      `rmse: ${pred.length} predictions for ${truth.length} targets of width ${width}`,
    );
  }
  const rows = pred.length / width;
  const sse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < width; c++) s += (pred[r * width + c] - truth[r * width + c]) ** 2;
    sse[r] = s;
  }
  return (idx) => {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += sse[idx[i]];
    return idx.length ? Math.sqrt(s / (idx.length * width)) : 0;
  };
}

/** The three headline class metrics as statistics of predicted and true class indices. */
export function classStatistics(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): { accuracy: Statistic; balancedAccuracy: Statistic; macroF1: Statistic } {
  if (predicted.length !== labels.length) {
    throw new Error(`class metrics: ${predicted.length} predictions for ${labels.length} labels`);
  }
  const confusion = new Float64Array(classes * classes);
  const fill = (idx: Uint32Array) => {
    confusion.fill(0);
    for (let i = 0; i < idx.length; i++) {
      confusion[labels[idx[i]] * classes + predicted[idx[i]]]++;
    }
  };
  const perClass = () => {
    const recalls: number[] = [];
    const f1s: number[] = [];
    for (let k = 0; k < classes; k++) {
      let support = 0, predictedK = 0;
      for (let j = 0; j < classes; j++) {
        support += confusion[k * classes + j];
        predictedK += confusion[j * classes + k];
      }
      const tp = confusion[k * classes + k];
      if (support > 0) recalls.push(tp / support);
      if (support > 0 || predictedK > 0) {
        const precision = predictedK > 0 ? tp / predictedK : 0;
        const recall = support > 0 ? tp / support : 0;
        f1s.push(precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0);
      }
    }
    return { recalls, f1s };
  };
  const mean = (xs: number[]) => xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0;
  return {
    accuracy: (idx) => {
      let c = 0;
      for (let i = 0; i < idx.length; i++) if (predicted[idx[i]] === labels[idx[i]]) c++;
      return idx.length ? c / idx.length : 0;
    },
    balancedAccuracy: (idx) => {
      fill(idx);
      return mean(perClass().recalls);
    },
    macroF1: (idx) => {
      fill(idx);
      return mean(perClass().f1s);
    },
  };
}
