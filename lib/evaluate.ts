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
 * @module
 */
import { join } from "node:path";
import { type Dataset, openDataset, type Split } from "./data/dataset.ts";
import { getLabelScheme, Q1_CLASSES } from "./data/label_schemes.ts";
import { NUM_VOTES, QUESTIONS, questionSlice, voteIndex } from "./data/schema.ts";
import { predictBatch } from "./inference.ts";
import { writeFileAtomic, writeJsonAtomic } from "./io/atomic.ts";
import {
  argmaxAt,
  type ClassificationMetrics,
  classificationMetrics,
  columnRmse,
  rmse,
} from "./metrics.ts";
import { openRun, type Run } from "./predict/run.ts";
import { confusionSpec, renderChart, trainingCurves, writePicture } from "./report/charts.ts";
import { clip, galaxyGrid, gridCaptionChars } from "./report/galaxy_grid.ts";
import { evaluationMarkdown } from "./report/markdown.ts";
// Issue 23: error bars (bootstrap intervals, paired comparison) live in their own module.
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
  votes: {
    rmse: number;
    perQuestion: { question: number; text: string; rmse: number }[];
  } | null;
  /** Class runs on data with fractions: class probabilities vs Q1 vote fractions. */
  q1FractionRmse: {
    rmse: number;
    n: number;
    /** Q1 answer -> the run's classes summed into it. */
    groups: Record<string, string[]>;
  } | null;
  /** Wrong predictions of highest predicted probability, highest first (at most `worst`). */
  mostConfidentlyWrong: WrongGalaxy[];
  /** Files in the report folder (null: not made, see notes). */
  pictures: { confusion: string | null; curves: string | null; wrong: string | null };
  /** Remarks on how the run was scored and what was left out. */
  notes: string[];
}

/** Which Q1 answer (0 smooth, 1 features or disk, 2 star or artifact) each known class belongs to. */
const Q1_GROUP_OF: Readonly<Record<string, number>> = {
  smooth: 0,
  round: 0,
  in_between: 0,
  cigar: 0,
  features_or_disk: 1,
  edge_on: 1,
  spiral: 1,
  star_or_artifact: 2,
};

/** Q1 answer of every class, or null when some class has none. */
export function q1Groups(classes: readonly string[]): number[] | null {
  const g = classes.map((c) => Q1_GROUP_OF[c]);
  return g.every((x) => x !== undefined) ? g : null;
}

/**
 * Predicted Q1 fractions (class probabilities summed per answer) and the
 * true ones renormalised over the covered answers, for rows whose covered
 * fractions are not all 0; returns the two n x covered matrices.
 */
export function q1FractionPairs(
  probs: ArrayLike<number>,
  votes: ArrayLike<number>,
  groups: readonly number[],
): { pred: Float32Array; truth: Float32Array; n: number; covered: number[] } {
  const c = groups.length;
  const rows = probs.length / c;
  const covered = [...new Set(groups)].sort((a, b) => a - b);
  const q1 = voteIndex("Class1.1");
  const pred: number[] = [];
  const truth: number[] = [];
  let n = 0;
  for (let i = 0; i < rows; i++) {
    const t = covered.map((a) => votes[i * NUM_VOTES + q1 + a]);
    const s = t.reduce((x, y) => x + y, 0);
    if (!(s > 0)) continue;
    n++;
    for (let k = 0; k < covered.length; k++) {
      let p = 0;
      for (let j = 0; j < c; j++) if (groups[j] === covered[k]) p += probs[i * c + j];
      pred.push(p);
      truth.push(t[k] / s);
    }
  }
  return { pred: Float32Array.from(pred), truth: Float32Array.from(truth), n, covered };
}

interface Candidate extends WrongGalaxy {
  pixels: Uint8Array;
}

/** Keeps the `k` wrong predictions with the highest predicted probability. */
class WorstK {
  items: Candidate[] = [];
  constructor(readonly k: number) {}
  offer(probability: number, make: () => Candidate): void {
    if (this.k <= 0) return;
    if (
      this.items.length >= this.k && probability <= this.items[this.items.length - 1].probability
    ) {
      return;
    }
    this.items.push(make());
    // Ties keep the earlier (stored-order) image first: a stable sort.
    this.items.sort((a, b) => b.probability - a.probability);
    if (this.items.length > this.k) this.items.pop();
  }
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

async function evaluateOpen(o: EvaluateOptions, run: Run, ds: Dataset): Promise<EvaluationReport> {
  const r = run.dataset;
  const m = ds.manifest;
  const split = o.split ?? defaultSplit(ds);
  const notes: string[] = [];
  if (split === "unlabeled") throw new Error(`split 'unlabeled' of ${o.data} has no labels`);
  const total = ds.size(split);
  if (total === 0) throw new Error(`split '${split}' of ${o.data} has no images`);
  if (
    m.image.height !== r.size || m.image.width !== r.size || Math.abs(m.image.crop - r.crop) > 1e-9
  ) {
    throw new Error(
      `${o.data} holds ${m.image.width}x${m.image.height} images cropped at ${m.image.crop}; ` +
        `the run was trained on ${r.size}x${r.size} at crop ${r.crop}: preprocess the data as ` +
        "the run's dataset was",
    );
  }

  // Where the true classes come from.
  let labelSource: EvaluationReport["labels"]["source"];
  let deriveClass: ((votes: Float32Array) => number | null) | null = null;
  if (r.kind === "votes") {
    if (!m.hasVotes) throw new Error(`${o.data} has no vote fractions to score a votes run on`);
    labelSource = "question 1 of the vote fractions";
    const q1 = getLabelScheme("q1");
    deriveClass = (v) => q1.target({ id: "", votes: v });
  } else {
    const same = m.scheme.name === r.scheme && m.hasLabels &&
      JSON.stringify(m.scheme.classNames) === JSON.stringify(r.classes);
    if (same) {
      labelSource = "dataset";
    } else if (m.hasVotes && (r.scheme === "gz5" || r.scheme === "q1")) {
      labelSource = "vote fractions";
      const scheme = getLabelScheme(r.scheme);
      deriveClass = (v) => scheme.target({ id: "", votes: v });
      notes.push(
        `The dataset's scheme is '${m.scheme.name}'; true classes were derived from its vote ` +
          `fractions with the run's scheme '${r.scheme}'.`,
      );
    } else {
      throw new Error(
        `${o.data} is labelled with scheme '${m.scheme.name}' (${m.scheme.classNames.length} ` +
          `classes) and the run with '${r.scheme}' (${r.classes.join(", ")}): ` +
          "its labels cannot score this run",
      );
    }
  }
  const classes = r.kind === "votes" ? [...Q1_CLASSES] : [...r.classes];
  const c = classes.length;
  const width = r.classes.length;
  const groups = r.kind === "classes" ? q1Groups(r.classes) : null;

  const probs = new Float32Array(total * c);
  const labels = new Int32Array(total);
  const outputs = r.kind === "votes" ? new Float32Array(total * NUM_VOTES) : null;
  const truthVotes = m.hasVotes ? new Float32Array(total * NUM_VOTES) : null;
  const side = r.size;
  const recordBytes = side * side * 3;
  const worst = new WorstK(o.worst ?? 16);
  const scoredIds: string[] = [];
  const predicted = new Int32Array(total);
  const q1 = voteIndex("Class1.1");
  let n = 0, seen = 0, leftOut = 0;
  o.onProgress?.(0, total);
  for await (const b of ds.batches(split, { batchSize: o.batchSize ?? 64 })) {
    const out = predictBatch(run.model, b, { tta: o.tta, flipPairs: r.flipPairs });
    for (let i = 0; i < b.n; i++) {
      const v = b.votes ? b.votes.subarray(i * NUM_VOTES, (i + 1) * NUM_VOTES) : null;
      const label = deriveClass ? deriveClass(v!) : b.labels![i];
      if (label === null) {
        leftOut++;
        continue;
      }
      const row = out.subarray(i * width, (i + 1) * width);
      const p = probs.subarray(n * c, (n + 1) * c);
      if (r.kind === "votes") {
        // Q1's three fractions sum to 1 by the head's construction; renormalise against rounding.
        const s = row[q1] + row[q1 + 1] + row[q1 + 2];
        for (let k = 0; k < 3; k++) p[k] = s > 0 ? row[q1 + k] / s : 1 / 3;
        outputs!.set(row, n * NUM_VOTES);
      } else {
        p.set(row);
      }
      labels[n] = label;
      if (v && truthVotes) truthVotes.set(v, n * NUM_VOTES);
      const pred = argmaxAt(p, 0, c);
      scoredIds.push(b.ids[i]);
      predicted[n] = pred;
      if (pred !== label) {
        worst.offer(p[pred], () => ({
          id: b.ids[i],
          true: classes[label],
          predicted: classes[pred],
          probability: p[pred],
          trueProbability: p[label],
          pixels: b.pixels.slice(i * recordBytes, (i + 1) * recordBytes),
        }));
      }
      n++;
    }
    seen += b.n;
    o.onProgress?.(seen, total);
  }
  if (n === 0) {
    throw new Error(
      `none of the ${total} images of split '${split}' has a class under scheme '${r.scheme}'`,
    );
  }
  if (leftOut > 0) {
    notes.push(
      `${leftOut} of ${total} images have no class under '${r.scheme}' and were not scored.`,
    );
  }
  const classification = classificationMetrics(
    probs.subarray(0, n * c),
    labels.subarray(0, n),
    classes,
  );

  let votes: EvaluationReport["votes"] = null;
  if (outputs && truthVotes) {
    const pred = outputs.subarray(0, n * NUM_VOTES);
    const truth = truthVotes.subarray(0, n * NUM_VOTES);
    votes = {
      rmse: rmse(pred, truth),
      perQuestion: QUESTIONS.map((q) => {
        const [a, z] = questionSlice(q);
        const cols = Array.from({ length: z - a }, (_, k) => a + k);
        return { question: q.id, text: q.text, rmse: columnRmse(pred, truth, NUM_VOTES, cols) };
      }),
    };
  }
  const scored: ScoredImages = {
    kind: r.kind,
    classes,
    ids: scoredIds,
    predicted: predicted.subarray(0, n),
    labels: labels.subarray(0, n),
    votes: outputs && truthVotes
      ? { pred: outputs.subarray(0, n * NUM_VOTES), truth: truthVotes.subarray(0, n * NUM_VOTES) }
      : null,
  };
  const intervals = headlineIntervals(scored);
  o.onScored?.(scored);
  let q1FractionRmse: EvaluationReport["q1FractionRmse"] = null;
  if (groups && truthVotes) {
    const pairs = q1FractionPairs(
      probs.subarray(0, n * c),
      truthVotes.subarray(0, n * NUM_VOTES),
      groups,
    );
    if (pairs.n > 0) {
      const named: Record<string, string[]> = {};
      for (const a of pairs.covered) {
        named[Q1_CLASSES[a]] = r.classes.filter((_, j) => groups[j] === a);
      }
      q1FractionRmse = { rmse: rmse(pairs.pred, pairs.truth), n: pairs.n, groups: named };
    }
  } else if (r.kind === "classes" && truthVotes && !groups) {
    notes.push("The run's classes do not map onto Galaxy Zoo question 1: no fraction RMSE.");
  }

  // Pictures.
  await Deno.mkdir(o.out, { recursive: true });
  const pictures: EvaluationReport["pictures"] = { confusion: null, curves: null, wrong: null };
  const what = r.kind === "votes" ? "question 1 (from the vote fractions)" : `scheme ${r.scheme}`;
  await writePicture(
    join(o.out, "confusion"),
    await renderChart(
      confusionSpec(
        classification.confusion,
        classes,
        `Confusion matrix: ${what}, ${split} split (n = ${n})`,
      ),
    ),
  );
  pictures.confusion = "confusion.png";
  try {
    await writePicture(join(o.out, "curves"), await trainingCurves(run.dir));
    pictures.curves = "curves.png";
  } catch (e) {
    notes.push(`No training curves: ${(e as Error).message}.`);
  }
  if (worst.items.length > 0) {
    // Cut long class names, never the probability after them.
    const room = gridCaptionChars() - "pred: ".length - " (0.00)".length;
    const caption = (what: string, name: string, p: number) =>
      `${what}: ${clip(name, room)} (${p.toFixed(2)})`;
    const png = await galaxyGrid(
      worst.items.map((w) => ({
        id: w.id,
        pixels: w.pixels,
        side,
        lines: [
          w.id,
          caption("true", w.true, w.trueProbability),
          caption("pred", w.predicted, w.probability),
        ],
        colors: ["#111", "#1a7f37", "#c62828"],
      })),
      {
        title: `Most confidently wrong: ${split} split, ${what}`,
        subtitle: `the ${worst.items.length} wrong predictions of highest probability; in ` +
          `brackets the model's probability; ${side} px inputs, upscaled`,
      },
    );
    await writeFileAtomic(join(o.out, "wrong.png"), png);
    pictures.wrong = "wrong.png";
  } else if ((o.worst ?? 16) > 0) {
    notes.push("No wrong predictions: no grid of wrong galaxies.");
  }

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
    labels: {
      source: labelSource,
      scheme: r.kind === "votes" ? "q1" : r.scheme,
      leftOut,
    },
    classes,
    classification,
    intervals,
    votes,
    q1FractionRmse,
    mostConfidentlyWrong: worst.items.map(({ pixels: _, ...w }) => w),
    pictures,
    notes,
  };
  await writeJsonAtomic(join(o.out, "report.json"), report);
  await writeFileAtomic(join(o.out, "report.md"), evaluationMarkdown(report));
  return report;
}
