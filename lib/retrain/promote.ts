/**
 * Which run is served, how a candidate is judged against it, and the atomic
 * switch. `RUNS/current` is a symbolic link to a run folder (by its name,
 * relative, so the runs folder can be mounted anywhere); promoting makes a
 * new link `RUNS/.current.tmp` and renames it over `current`. rename(2)
 * replaces the link in one step: a reader (`predict --model RUNS/current`)
 * sees the old run or the new one, never no model.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { EvaluationReport } from "../evaluate.ts";
import type { SchemeKind } from "../data/label_schemes.ts";
import { SCHEME_DEFAULTS } from "../train/dataset_settings.ts";

/** Name of the link to the served run inside the runs folder. */
export const CURRENT_LINK = "current";
/** The link made beside it before the rename. */
const CURRENT_TMP = ".current.tmp";

/** The run `RUNS/current` points at. */
export interface CurrentRun {
  /** The link's target as written (a name inside the runs folder, or a path). */
  target: string;
  /** Absolute path of the run folder. */
  dir: string;
  /** False when the link dangles (its folder was deleted by hand). */
  exists: boolean;
}

/** Reads `RUNS/current`: null when there is none; an error when it is not a symbolic link. */
export async function readCurrent(runs: string): Promise<CurrentRun | null> {
  const path = join(runs, CURRENT_LINK);
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!info.isSymlink) {
    throw new Error(
      `${path} is a ${info.isDirectory ? "folder" : "file"}, not a symbolic link to a run: ` +
        `move it aside (e.g. mv ${path} ${join(runs, "manual")}) and link it: ` +
        `ln -s manual ${path}`,
    );
  }
  const target = await Deno.readLink(path);
  const dir = resolve(runs, target);
  const exists = await Deno.stat(dir).then((s) => s.isDirectory, () => false);
  return { target, dir, exists };
}

/** Points `RUNS/current` at the run folder `runName` (inside the runs folder) atomically. */
export async function promote(runs: string, runName: string): Promise<void> {
  const tmp = join(runs, CURRENT_TMP);
  // Left by a run killed between the two steps: it was never visible as `current`.
  await Deno.remove(tmp).catch(() => {});
  await Deno.symlink(runName, tmp);
  try {
    await Deno.rename(tmp, join(runs, CURRENT_LINK));
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Test-split scores a candidate can be promoted by. */
export type PromotionMetric = "accuracy" | "balanced_accuracy" | "macro_f1" | "rmse";

/** The metrics `--metric` accepts. */
export const PROMOTION_METRICS: readonly PromotionMetric[] = [
  "accuracy",
  "balanced_accuracy",
  "macro_f1",
  "rmse",
];

/**
 * The default metric: the dataset's default monitor (lib/train/dataset_settings.ts),
 * RMSE over the 37 fractions for a votes run, accuracy for classes.
 */
export function defaultMetric(kind: SchemeKind): PromotionMetric {
  return SCHEME_DEFAULTS[kind].monitor;
}

/** Whether a smaller value of `metric` is better. */
export function lowerIsBetter(metric: PromotionMetric): boolean {
  return metric === "rmse";
}

/** The value of `metric` in an evaluation report. */
export function metricOf(report: EvaluationReport, metric: PromotionMetric): number {
  switch (metric) {
    case "accuracy":
      return report.classification.accuracy;
    case "balanced_accuracy":
      return report.classification.balancedAccuracy;
    case "macro_f1":
      return report.classification.macroF1;
    case "rmse":
      if (!report.votes) {
        throw new Error(
          `--metric rmse needs a votes run (scheme votes); ${report.run} is a '${report.scheme}' ` +
            "classifier: use accuracy, balanced_accuracy or macro_f1",
        );
      }
      return report.votes.rmse;
  }
}

/** Whether `candidate` is at least as good as `current` on `metric` (a tie promotes). */
export function atLeastAsGood(
  metric: PromotionMetric,
  candidate: number,
  current: number,
): boolean {
  if (!Number.isFinite(candidate)) return false;
  if (!Number.isFinite(current)) return true;
  return lowerIsBetter(metric) ? candidate <= current : candidate >= current;
}
