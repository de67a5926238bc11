/**
 * Summary statistics of repeated measurements: the benchmark table shows
 * the median of the repetitions; the JSON keeps min, max and every sample.
 *
 * @module
 */

/** The median, min and max of a set of samples, and the samples themselves. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Number of samples. */
  n: number;
  /** The samples in the order they were taken. */
  samples: number[];
}

/** Median of `values` (mean of the middle two for an even count); throws when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  if (values.some((v) => !Number.isFinite(v))) {
    throw new Error(`median of non-finite values: ${values.join(", ")}`);
  }
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median, min and max of `samples` (at least one, all finite). */
export function summarize(samples: readonly number[]): Summary {
  const m = median(samples);
  return {
    median: m,
    min: Math.min(...samples),
    max: Math.max(...samples),
    n: samples.length,
    samples: [...samples],
  };
}

/**
 * The ratio shown in the table, oriented so that higher is always better:
 * `toolkit / peer` for throughput, `peer / toolkit` for quantities where
 * lower is better (time, memory). Null when either side is missing or zero.
 */
export function betterRatio(
  toolkit: number | null,
  peer: number | null,
  higherIsBetter: boolean,
): number | null {
  if (toolkit === null || peer === null) return null;
  if (!Number.isFinite(toolkit) || !Number.isFinite(peer) || toolkit <= 0 || peer <= 0) {
    return null;
  }
  return higherIsBetter ? toolkit / peer : peer / toolkit;
}
