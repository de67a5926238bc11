/**
 * `evaluate`: scores a trained run on a labelled split of a dataset and
 * writes a report folder: `report.json`, `report.md`, and pictures
 * (`confusion.png`, `curves.png`, `wrong.png`, with SVGs of the charts).
 *
 * What is scored:
 * - Class runs (`gz5`, `q1`, `csv`): the metrics of lib/metrics.ts on the
 *   predicted class probabilities. Labels come from the dataset when it uses
 *   the run's scheme; a `gz5` or `q1` run can also be scored on a dataset
 *   that only has vote fractions, its labels then derived from the
 *   fractions with the run's scheme (rows the scheme leaves out are left out
 *   and counted).
 * - Where the dataset has the 37 vote fractions, a class run whose classes
 *   all map onto Galaxy Zoo question 1 (`q1`: itself; `gz5`: round,
 *   in_between, cigar -> smooth; edge_on, spiral -> features or disk) is
 *   also scored as a vote-fraction estimator: `q1FractionRmse` is the RMSE
 *   between the class probabilities summed per Q1 answer and the
 *   volunteers' Q1 fractions renormalised over the answers the scheme
 *   covers (gz5 has no star/artifact class, so smooth vs features are
 *   renormalised to sum 1; rows where both are 0 are skipped). It says how
 *   well the probabilities track the volunteers' uncertainty, which the
 *   accuracy on hard labels does not.
 * - `votes` runs: RMSE over the 37 fractions (the competition's metric),
 *   per question; and the classification metrics of question 1 derived
 *   from the fractions (true class: argmax of the volunteers' Class1.1-1.3;
 *   probabilities: the predicted Class1.1-1.3, which sum to 1).
 *
 * The stages, each a module of lib/evaluate/: the label source
 * (`labels.ts`), the predictions (`predictions.ts`), the scores
 * (`score.ts`, shared with training's validation), the pictures
 * (`pictures.ts`), then the report (here).
 *
 * @module
 */
import { join } from "node:path";
import { type Dataset, openDataset, type Split } from "./data/dataset.ts";
import { writeFileAtomic, writeJsonAtomic } from "./io/atomic.ts";
import type { ClassificationMetrics } from "./metrics.ts";
import { openRun, type Run } from "./run/open.ts";
import { evaluationMarkdown } from "./report/markdown.ts";
import { labelSource } from "./evaluate/labels.ts";
import { drawPictures } from "./evaluate/pictures.ts";
import { type Predictions, predictSplit } from "./evaluate/predictions.ts";
import {
  type Q1FractionScore,
  q1FractionScore,
  q1Groups,
  scoreOutputs,
  type VoteScores,
} from "./evaluate/score.ts";

export { q1FractionPairs, q1Groups } from "./evaluate/score.ts";
// Error bars (bootstrap intervals, paired comparison) live in their own module.
import { headlineIntervals, type HeadlineMetric, type ScoredImages } from "./evaluate/compare.ts";
import type { Interval } from "./metrics/bootstrap.ts";

/** Settings of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** Run folder (or an opened run, which the caller disposes). */
  run: string | Run;
  /** Dataset folder. */
  data: string;
  /** Split to score: default `test`, or `val` when the dataset has no test split. */
  split?: Split;
  /** Report folder. */
  out: string;
  /** Average over the 8 rotations and flips. */
  tta?: boolean;
  /** Images per model call (default 64). */
  batchSize?: number;
  /** Galaxies in the most-confidently-wrong grid (default 16; 0: no grid). */
  worst?: number;
  /** The backend line, recorded in the report. */
  backend?: string;
  /** Called with the images of the split read so far, at the start and after each batch. */
  onProgress?: (done: number, total: number) => void;
  /** Called once with what was scored, image by image (for `--compare`). */
  onScored?: (scored: ScoredImages) => void;
}

/** One galaxy of the most-confidently-wrong list. */
export interface WrongGalaxy {
  /** Image id. */
  id: string;
  /** True class. */
  true: string;
  /** Predicted class. */
  predicted: string;
  /** Predicted probability of the predicted class. */
  probability: number;
  /** Predicted probability of the true class. */
  trueProbability: number;
}

/** Contents of `report.json`. */
export interface EvaluationReport {
  /** When the report was made (ISO 8601). */
  createdAt: string;
  /** Run folder. */
  run: string;
  /** Dataset folder. */
  data: string;
  /** Split scored. */
  split: Split;
  /** Whether predictions averaged the 8 rotations and flips. */
  tta: boolean;
  /** The backend line, or null when none was given. */
  backend: string | null;
  /** The run's label scheme. */
  scheme: string;
  /** The run's output kind: class probabilities or the 37 vote fractions. */
  kind: "classes" | "votes";
  /** Images of the split that were scored. */
  n: number;
  /** Where the true classes came from. */
  labels: {
    source: "dataset" | "vote fractions" | "question 1 of the vote fractions";
    scheme: string;
    /** Images of the split without a class under that scheme (not scored). */
    leftOut: number;
  };
  /** Names of the classes the classification metrics are about. */
  classes: string[];
  /** Classification metrics on the scored images. */
  classification: ClassificationMetrics;
  /** 95 % bootstrap interval of each headline metric (lib/evaluate/compare.ts). */
  intervals: Partial<Record<HeadlineMetric, Interval>>;
  /** votes runs: the competition's RMSE over the 37 fractions, and per question. */
  votes: VoteScores | null;
  /** Class runs on data with fractions: class probabilities vs Q1 vote fractions. */
  q1FractionRmse: Q1FractionScore | null;
  /** Wrong predictions of highest predicted probability, highest first (at most `worst`). */
  mostConfidentlyWrong: WrongGalaxy[];
  /** Files in the report folder (null: not made, see notes). */
  pictures: { confusion: string | null; curves: string | null; wrong: string | null };
  /** Remarks on how the run was scored and what was left out. */
  notes: string[];
}

function defaultSplit(ds: Dataset): Split {
  return ds.size("test") > 0 ? "test" : "val";
}

/** Scores a run on a dataset split and writes the report folder; returns `report.json`'s content. */
export async function evaluate(o: EvaluateOptions): Promise<EvaluationReport> {
  const run = typeof o.run === "string" ? await openRun(o.run) : o.run;
  const ds = await openDataset(o.data);
  try {
    return await evaluateOpen(o, run, ds);
  } finally {
    ds.close();
    if (typeof o.run === "string") run.model.dispose();
  }
}

/** The split to score, checked: it has labels and images, and the run's image size and crop. */
function checkSplit(o: EvaluateOptions, run: Run, ds: Dataset): Split {
  const r = run.dataset;
  const m = ds.manifest;
  const split = o.split ?? defaultSplit(ds);
  if (split === "unlabeled") throw new Error(`split 'unlabeled' of ${o.data} has no labels`);
  if (ds.size(split) === 0) throw new Error(`split '${split}' of ${o.data} has no images`);
  if (
    m.image.height !== r.size || m.image.width !== r.size || Math.abs(m.image.crop - r.crop) > 1e-9
  ) {
    throw new Error(
      `${o.data} holds ${m.image.width}x${m.image.height} images cropped at ${m.image.crop}; ` +
        `the run was trained on ${r.size}x${r.size} at crop ${r.crop}: preprocess the data as ` +
        "the run's dataset was",
    );
  }
  return split;
}

/** The scores of the predictions: classification, vote fractions, Q1 fractions; notes on gaps. */
function scorePredictions(run: Run, classes: string[], p: Predictions) {
  const r = run.dataset;
  const notes: string[] = [];
  const { classification, votes } = scoreOutputs({
    classes: { probs: p.probs, labels: p.labels, classes },
    votes: p.outputs && p.truthVotes ? { pred: p.outputs, truth: p.truthVotes } : undefined,
  });
  const groups = r.kind === "classes" ? q1Groups(r.classes) : null;
  let q1FractionRmse: Q1FractionScore | null = null;
  if (groups && p.truthVotes) {
    q1FractionRmse = q1FractionScore(p.probs, p.truthVotes, r.classes, groups);
  } else if (r.kind === "classes" && p.truthVotes && !groups) {
    notes.push("The run's classes do not map onto Galaxy Zoo question 1: no fraction RMSE.");
  }
  return { classification: classification!, votes, q1FractionRmse, notes };
}

async function evaluateOpen(o: EvaluateOptions, run: Run, ds: Dataset): Promise<EvaluationReport> {
  const r = run.dataset;
  const split = checkSplit(o, run, ds);
  const total = ds.size(split);
  const labels = labelSource(r, ds.manifest, o.data);
  const worstWanted = o.worst ?? 16;
  const predictions = await predictSplit(run, ds, {
    split,
    labels,
    batchSize: o.batchSize ?? 64,
    tta: o.tta,
    worst: worstWanted,
    onProgress: o.onProgress,
  });
  const { n, leftOut } = predictions;
  if (n === 0) {
    throw new Error(
      `none of the ${total} images of split '${split}' has a class under scheme '${r.scheme}'`,
    );
  }
  const notes = [...labels.notes];
  if (leftOut > 0) {
    notes.push(
      `${leftOut} of ${total} images have no class under '${r.scheme}' and were not scored.`,
    );
  }
  const scores = scorePredictions(run, labels.classes, predictions);
  notes.push(...scores.notes);
  const scored: ScoredImages = {
    kind: r.kind,
    classes: labels.classes,
    ids: predictions.ids,
    predicted: predictions.predicted,
    labels: predictions.labels,
    votes: predictions.outputs && predictions.truthVotes
      ? { pred: predictions.outputs, truth: predictions.truthVotes }
      : null,
  };
  const intervals = headlineIntervals(scored);
  o.onScored?.(scored);

  await Deno.mkdir(o.out, { recursive: true });
  const drawn = await drawPictures({
    out: o.out,
    runDir: run.dir,
    split,
    what: r.kind === "votes" ? "question 1 (from the vote fractions)" : `scheme ${r.scheme}`,
    classes: labels.classes,
    confusion: scores.classification.confusion,
    n,
    worst: predictions.worst,
    side: r.size,
    worstWanted,
  });
  notes.push(...drawn.notes);

  const report: EvaluationReport = {
    createdAt: new Date().toISOString(),
    run: run.dir,
    data: o.data,
    split,
    tta: !!o.tta,
    backend: o.backend ?? null,
    scheme: r.scheme,
    kind: r.kind,
    n,
    labels: { source: labels.source, scheme: labels.scheme, leftOut },
    classes: labels.classes,
    classification: scores.classification,
    intervals,
    votes: scores.votes,
    q1FractionRmse: scores.q1FractionRmse,
    mostConfidentlyWrong: predictions.worst.map(({ pixels: _, ...w }) => w),
    pictures: drawn.pictures,
    notes,
  };
  await writeReport(o.out, report);
  return report;
}

/** Writes `report.json` and `report.md` into the report folder. */
async function writeReport(out: string, report: EvaluationReport): Promise<void> {
  await writeJsonAtomic(join(out, "report.json"), report);
  await writeFileAtomic(join(out, "report.md"), evaluationMarkdown(report));
}
