/**
 * The columns of a predictions file.
 *
 * `classes` (default): `id`, `label` (the predicted class), `probability`
 * (its probability), then `p_<class>` for every class in output order. For a
 * `votes` model the label is the Galaxy Zoo question 1 answer with the
 * largest predicted fraction (`smooth`, `features_or_disk`,
 * `star_or_artifact`), its probability that fraction, and the `p_` columns
 * are the 37 predicted vote fractions `p_Class1.1` ... `p_Class11.6`.
 *
 * `kaggle` (votes models only): the competition's submission format,
 * `GalaxyID` and the 37 `Class1.1` ... `Class11.6` columns in the order of
 * `training_solutions_rev1.csv`.
 *
 * Values are written with 6 decimals, as the competition's files are.
 *
 * @module
 */
import { Q1_CLASSES } from "../data/label_schemes.ts";
import { KAGGLE_HEADER, NUM_VOTES, VOTE_COLUMNS, voteIndex } from "../data/schema.ts";
import { csvLine } from "../io/csv.ts";
import { argmaxAt } from "../metrics.ts";
import type { RunDataset } from "../run/open.ts";

/** Output formats of `predict --format`. */
export type PredictFormat = "classes" | "kaggle";

/** The formats `--format` accepts. */
export const PREDICT_FORMATS: readonly PredictFormat[] = ["classes", "kaggle"];

/** Columns of the errors file written beside the predictions. */
export const ERRORS_HEADER: readonly string[] = ["id", "file", "reason"];

/** Turns model outputs into CSV lines in one format. */
export interface RowFormatter {
  header: readonly string[];
  /** CSV lines (without line ends) for `ids` and their `outputs` (n x classes, row-major). */
  lines(ids: readonly string[], outputs: Float32Array): string[];
}

const fixed = (x: number) => x.toFixed(6);

/** The formatter of `format` for a run; throws when the format does not fit the model. */
export function rowFormatter(run: RunDataset, format: PredictFormat): RowFormatter {
  const c = run.classes.length;
  if (format === "kaggle") {
    if (run.kind !== "votes" || c !== NUM_VOTES) {
      throw new Error(
        `--format kaggle needs a votes model (37 vote fractions); this run's scheme is '${run.scheme}'`,
      );
    }
    // The model's outputs are in VOTE_COLUMNS order, which is the header's order after GalaxyID.
    const order = KAGGLE_HEADER.slice(1).map((name) => run.classes.indexOf(name));
    if (order.some((k) => k < 0)) {
      throw new Error("this run's classes are not the 37 Kaggle vote columns");
    }
    return {
      header: KAGGLE_HEADER,
      lines: (ids, out) =>
        ids.map((id, i) => csvLine([id, ...order.map((k) => fixed(out[i * c + k]))])),
    };
  }
  const header = ["id", "label", "probability", ...run.classes.map((k) => `p_${k}`)];
  if (run.kind === "votes") {
    const q1 = voteIndex("Class1.1");
    if (run.classes[q1] !== VOTE_COLUMNS[q1]) {
      throw new Error("this run's classes are not the 37 Kaggle vote columns");
    }
    return {
      header,
      lines: (ids, out) =>
        ids.map((id, i) => {
          const off = i * c;
          const k = argmaxAt(out, off + q1, Q1_CLASSES.length);
          const row = Array.from(out.subarray(off, off + c), fixed);
          return csvLine([id, Q1_CLASSES[k], fixed(out[off + q1 + k]), ...row]);
        }),
    };
  }
  return {
    header,
    lines: (ids, out) =>
      ids.map((id, i) => {
        const off = i * c;
        const k = argmaxAt(out, off, c);
        const row = Array.from(out.subarray(off, off + c), fixed);
        return csvLine([id, run.classes[k], fixed(out[off + k]), ...row]);
      }),
  };
}

/** The id (first field) of a CSV line, unquoting it when quoted. */
export function lineId(line: string): string {
  if (!line.startsWith('"')) {
    const comma = line.indexOf(",");
    return comma < 0 ? line : line.slice(0, comma);
  }
  let out = "";
  for (let i = 1; i < line.length; i++) {
    if (line[i] === '"') {
      if (line[i + 1] === '"') {
        out += '"';
        i++;
        continue;
      }
      return out;
    }
    out += line[i];
  }
  throw new Error(`unterminated quoted id in line: ${line.slice(0, 80)}`);
}
