/**
 * What the run page shows, gathered from a run folder: its settings
 * (`config.json`), the training curves (`metrics.jsonl`), the best model's
 * scores (`report.json`) and, where `deno task evaluate` wrote a report
 * into a sub-folder of the run, that evaluation: confusion matrix,
 * per-class precision/recall/F1 and the most confidently wrong galaxies.
 * Charts are the report's own Vega-Lite charts, rendered to SVG.
 *
 * @module
 */
import { join } from "node:path";
import type { EvaluationReport, WrongGalaxy } from "../evaluate.ts";
import type { ClassificationMetrics } from "../metrics.ts";
import { confusionSpec, curvesSpec, readMetricsLog } from "../report/charts.ts";
import { vegaLiteToSvg } from "../report/render.ts";
import { readRunConfig } from "../run/config.ts";
import { runPaths } from "../run/layout.ts";

/** The run page's content. */
export interface RunSummary {
  /** Folder name of the run. */
  name: string;
  /** The run's `config.json` `dataset` block and a few training settings. */
  config: Record<string, unknown>;
  /** Epochs logged in `metrics.jsonl`. */
  epochs: number;
  /** Best epoch and its validation score (from `report.json`), when training finished. */
  best: { epoch: number; monitor: string; score: number } | null;
  /** Training curves as SVG, or null (see `notes`). */
  curvesSvg: string | null;
  /** Where the scores come from, e.g. "evaluation eval/ on the test split (n = 812)". */
  scoresFrom: string | null;
  /** Classification metrics shown (evaluation, else the training report's test scores). */
  metrics: ClassificationMetrics | null;
  /** Class names of `metrics`. */
  classes: string[];
  /** Confusion matrix as SVG, or null. */
  confusionSvg: string | null;
  /** Most confidently wrong galaxies (evaluation only). */
  wrong: WrongGalaxy[];
  /** Run-relative path of the evaluation's grid of those galaxies (`wrong.png`), or null. */
  wrongPicture: string | null;
  /** RMSE over the 37 vote fractions, votes runs. */
  votesRmse: number | null;
  /** What is missing and how to get it. */
  notes: string[];
}

async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/** The newest `deno task evaluate` report in a sub-folder of `runDir` (or in it). */
export async function findEvaluation(
  runDir: string,
): Promise<{ dir: string; report: EvaluationReport } | null> {
  const found: { dir: string; report: EvaluationReport; at: string }[] = [];
  const candidates = [""];
  try {
    for await (const e of Deno.readDir(runDir)) if (e.isDirectory) candidates.push(e.name);
  } catch {
    return null;
  }
  for (const sub of candidates) {
    const r = await readJsonOrNull<EvaluationReport>(join(runDir, sub, "report.json"));
    if (r && r.classification && Array.isArray(r.mostConfidentlyWrong)) {
      found.push({ dir: sub, report: r, at: r.createdAt ?? "" });
    }
  }
  found.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return found[0] ?? null;
}

/** Gathers the run page's content from `runDir`; see the module doc. */
export async function runSummary(runDir: string): Promise<RunSummary> {
  const name = runDir.replace(/\/+$/, "").split("/").pop() ?? runDir;
  const notes: string[] = [];
  // The page shows settings only: serve verified the run when it opened it.
  const cfg = await readRunConfig(runDir, false).then((r) => r.config, () => null);
  const options = cfg?.options as Record<string, unknown> | undefined;
  const { dir: _dir, manifestSha256: _hash, ...dataset } = cfg?.dataset ?? {};
  const config: Record<string, unknown> = { ...dataset };
  if (options) {
    for (const k of ["epochs", "batch", "loss", "gamma", "lr", "optimizer", "seed"]) {
      if (options[k] !== undefined) config[k] = options[k];
    }
  }

  const trainReport = await readJsonOrNull<{
    bestEpoch: number;
    monitor: string;
    bestScore: number;
    split: string;
    classes: string[];
    metrics: ClassificationMetrics | null;
    rmse: number | null;
  }>(runPaths(runDir).report);
  const best = trainReport && typeof trainReport.bestEpoch === "number"
    ? { epoch: trainReport.bestEpoch, monitor: trainReport.monitor, score: trainReport.bestScore }
    : null;

  let curvesSvg: string | null = null;
  let epochs = 0;
  try {
    const rows = await readMetricsLog(runPaths(runDir).metrics);
    epochs = rows.length;
    if (rows.length > 0) {
      curvesSvg = await vegaLiteToSvg(curvesSpec(rows, `Training curves: ${name}`, best?.epoch));
    } else notes.push("metrics.jsonl has no epochs yet: no training curves.");
  } catch (e) {
    notes.push(`No training curves: ${(e as Error).message}.`);
  }

  const evaluation = await findEvaluation(runDir);
  let metrics: ClassificationMetrics | null = null;
  let classes: string[] = [];
  let scoresFrom: string | null = null;
  let wrong: WrongGalaxy[] = [];
  let wrongPicture: string | null = null;
  let votesRmse: number | null = null;
  if (evaluation) {
    const r = evaluation.report;
    metrics = r.classification;
    classes = r.classes;
    wrong = r.mostConfidentlyWrong;
    votesRmse = r.votes?.rmse ?? null;
    const where = evaluation.dir === "" ? "the run folder" : `${evaluation.dir}/`;
    scoresFrom = `deno task evaluate (${where}), ${r.split} split, n = ${r.n}` +
      (r.tta ? ", test-time augmentation" : "") +
      (r.kind === "votes" ? "; classes: question 1 of the vote fractions" : "");
    if (r.pictures?.wrong) wrongPicture = join(evaluation.dir, r.pictures.wrong);
  } else {
    notes.push(
      "No evaluation report in the run folder: `deno task evaluate --model RUN --data DATASET " +
        "--out RUN/eval` adds the most confidently wrong galaxies.",
    );
    if (trainReport?.metrics) {
      metrics = trainReport.metrics;
      classes = trainReport.classes;
      scoresFrom =
        `the best model at the end of training (report.json), ${trainReport.split} split, ` +
        `n = ${trainReport.metrics.n}`;
    }
    votesRmse = trainReport?.rmse ?? null;
  }
  let confusionSvg: string | null = null;
  if (metrics) {
    confusionSvg = await vegaLiteToSvg(
      confusionSpec(metrics.confusion, classes, `Confusion matrix (n = ${metrics.n})`),
    );
  } else if (!trainReport) {
    notes.push("No report.json: training has not finished, so there are no test scores yet.");
  }
  return {
    name,
    config,
    epochs,
    best,
    curvesSvg,
    scoresFrom,
    metrics,
    classes,
    confusionSvg,
    wrong,
    wrongPicture,
    votesRmse,
    notes,
  };
}
