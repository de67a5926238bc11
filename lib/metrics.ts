/**
 * Classification and vote-fraction metrics: the one implementation behind
 * train's per-epoch validation, its end-of-run report, and `evaluate`.
 *
 * Conventions (those of scikit-learn where it has one): precision of a class
 * never predicted is 0; recall of a class with no support is undefined and
 * left out of balanced accuracy; macro-F1 averages the classes that have
 * support or predictions (a class absent from both says nothing).
 * Top-2: the true class counts as found when fewer than two classes have a
 * strictly higher probability (a tie with the true class does not push it
 * out). ECE: the top probabilities are put into equal-width bins over [0, 1]
 * (a probability of exactly 1 in the last); ECE is the sum over bins of
 * (images in bin / n) * |accuracy in bin - mean top probability in bin|.
 * Every average over images is 0 when there are none.
 *
 * @module
 */

/** Precision, recall and F1 of one class. */
export interface ClassMetrics {
  /** Class name. */
  name: string;
  /** Share of the images predicted as this class that are in it. */
  precision: number;
  /** Share of the class's images predicted as it; `null` where the class has no support. */
  recall: number | null;
  /** Harmonic mean of precision and recall. */
  f1: number;
  /** Images whose true class this is. */
  support: number;
  /** Images predicted as this class. */
  predicted: number;
}

/** Everything `evaluate` and train's report say about a classifier. */
export interface ClassificationMetrics {
  /** Number of images scored. */
  n: number;
  /** Share of images whose top prediction is the true class. */
  accuracy: number;
  /** Mean recall over the classes that have support. */
  balancedAccuracy: number;
  /** Unweighted mean of the per-class F1 over classes that occur or are predicted. */
  macroF1: number;
  /** The true class is among the two most probable. */
  top2Accuracy: number;
  /** Expected calibration error of the top prediction, 15 equal-width bins. */
  ece: number;
  /** Mean negative log-likelihood of the true class. */
  logLoss: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Precision, recall and F1 of each class, in class index order. */
  perClass: ClassMetrics[];
}

/** Index of the largest of `c` values starting at `off`. */
export function argmaxAt(values: ArrayLike<number>, off: number, c: number): number {
  let best = 0;
  for (let j = 1; j < c; j++) if (values[off + j] > values[off + best]) best = j;
  return best;
}

/**
 * Metrics of class probabilities `probs` (n x classes, row-major) against
 * true class indices `labels`.
 */
export function classificationMetrics(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: readonly string[],
  options: { eceBins?: number } = {},
): ClassificationMetrics {
  const c = classes.length;
  const n = labels.length;
  if (probs.length !== n * c) {
    throw new Error(`metrics: ${probs.length} probabilities for ${n} labels x ${c} classes`);
  }
  const bins = options.eceBins ?? 15;
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const binCount = new Array<number>(bins).fill(0);
  const binConf = new Array<number>(bins).fill(0);
  const binCorrect = new Array<number>(bins).fill(0);
  let correct = 0, top2 = 0, nll = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < c)) throw new Error(`metrics: label ${y} of row ${i} is not a class index`);
    const off = i * c;
    const pred = argmaxAt(probs, off, c);
    confusion[y][pred]++;
    if (pred === y) correct++;
    // Top-2: fewer than one other class beats the true one.
    let above = 0;
    for (let j = 0; j < c; j++) if (j !== y && probs[off + j] > probs[off + y]) above++;
    if (above < 2) top2++;
    nll -= Math.log(Math.max(probs[off + y], 1e-12));
    const conf = probs[off + pred];
    const b = Math.min(bins - 1, Math.floor(conf * bins));
    binCount[b]++;
    binConf[b] += conf;
    if (pred === y) binCorrect[b]++;
  }
  const perClass: ClassMetrics[] = classes.map((name, k) => {
    const tp = confusion[k][k];
    const support = confusion[k].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[k], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : null;
    const f1 = precision + (recall ?? 0) > 0
      ? 2 * precision * (recall ?? 0) / (precision + (recall ?? 0))
      : 0;
    return { name, precision, recall, f1, support, predicted };
  });
  const recalls = perClass.filter((m) => m.recall !== null).map((m) => m.recall!);
  const counted = perClass.filter((m) => m.support > 0 || m.predicted > 0);
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if (binCount[b] > 0) ece += Math.abs(binCorrect[b] - binConf[b]) / Math.max(n, 1);
  }
  return {
    n,
    accuracy: n ? correct / n : 0,
    balancedAccuracy: recalls.length ? mean(recalls) : 0,
    macroF1: counted.length ? mean(counted.map((m) => m.f1)) : 0,
    top2Accuracy: n ? top2 / n : 0,
    ece,
    logLoss: n ? nll / n : 0,
    confusion,
    perClass,
  };
}

/** Root-mean-square error over every value (the competition's metric over 37 x N fractions). */
export function rmse(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (pred.length !== truth.length) {
    throw new Error(`rmse: ${pred.length} predictions for ${truth.length} targets`);
  }
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i] - truth[i]) ** 2;
  return pred.length ? Math.sqrt(s / pred.length) : 0;
}

/**
 * RMSE over the chosen `columns` of row-major `width`-wide matrices, e.g.
 * the answers of one Galaxy Zoo question among the 37 fractions.
 */
export function columnRmse(
  pred: ArrayLike<number>,
  truth: ArrayLike<number>,
  width: number,
  columns: readonly number[],
): number {
  if (pred.length !== truth.length || pred.length % width !== 0) {
    throw new Error(
      `columnRmse: ${pred.length} predictions for ${truth.length} targets of width ${width}`,
    );
  }
  if (columns.some((c) => !(Number.isInteger(c) && c >= 0 && c < width))) {
    throw new Error(`columnRmse: columns ${columns.join(",")} are not all within 0..${width - 1}`);
  }
  let s = 0;
  const rows = pred.length / width;
  for (let r = 0; r < rows; r++) {
    for (const c of columns) s += (pred[r * width + c] - truth[r * width + c]) ** 2;
  }
  const count = rows * columns.length;
  return count ? Math.sqrt(s / count) : 0;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
