/**
 * Where `evaluate` takes the true classes from: the dataset's labels when
 * it uses the run's scheme; for a `gz5` or `q1` run on a dataset with only
 * vote fractions, the fractions read with the run's scheme; for a votes run,
 * question 1 of the fractions. Anything else cannot score the run: an Error
 * says why.
 *
 * @module
 */
import type { Manifest } from "../data/manifest.ts";
import { getLabelScheme, Q1_CLASSES } from "../data/label_schemes.ts";
import type { EvaluationReport } from "../evaluate.ts";
import type { RunDataset } from "../run/open.ts";

/** The true classes of a split, as the run's outputs are scored against them. */
export interface LabelSource {
  /** What the report says the classes came from. */
  source: EvaluationReport["labels"]["source"];
  /** The scheme whose classes are scored (`q1` for a votes run). */
  scheme: string;
  /** The class names the classification metrics are about. */
  classes: string[];
  /** A row's class from its 37 fractions (null: none under the scheme); null: the dataset's label. */
  deriveClass: ((votes: Float32Array) => number | null) | null;
  /** Remarks for the report. */
  notes: string[];
}

/** The label source of run `r` on the dataset of manifest `m` (folder `data`, for messages). */
export function labelSource(r: RunDataset, m: Manifest, data: string): LabelSource {
  if (r.kind === "votes") {
    if (!m.hasVotes) throw new Error(`${data} has no vote fractions to score a votes run on`);
    const q1 = getLabelScheme("q1");
    return {
      source: "question 1 of the vote fractions",
      scheme: "q1",
      classes: [...Q1_CLASSES],
      deriveClass: (v) => q1.target({ id: "", votes: v }),
      notes: [],
    };
  }
  const classes = [...r.classes];
  const same = m.scheme.name === r.scheme && m.hasLabels &&
    JSON.stringify(m.scheme.classNames) === JSON.stringify(r.classes);
  if (same) return { source: "dataset", scheme: r.scheme, classes, deriveClass: null, notes: [] };
  if (m.hasVotes && (r.scheme === "gz5" || r.scheme === "q1")) {
    const scheme = getLabelScheme(r.scheme);
    return {
      source: "vote fractions",
      scheme: r.scheme,
      classes,
      deriveClass: (v) => scheme.target({ id: "", votes: v }),
      notes: [
        `The dataset's scheme is '${m.scheme.name}'; true classes were derived from its vote ` +
        `fractions with the run's scheme '${r.scheme}'.`,
      ],
    };
  }
  throw new Error(
    `${data} is labelled with scheme '${m.scheme.name}' (${m.scheme.classNames.length} ` +
      `classes) and the run with '${r.scheme}' (${r.classes.join(", ")}): ` +
      "its labels cannot score this run",
  );
}
