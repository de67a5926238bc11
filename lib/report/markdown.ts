/**
 * `report.md`: the evaluation report as tables a person reads.
 *
 * @module
 */
import type { EvaluationReport } from "../evaluate.ts";
import { formatInterval, type HeadlineMetric, METRIC_NAMES } from "../evaluate/compare.ts";
import type { Interval } from "../metrics/bootstrap.ts";

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : "n/a");
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "n/a");

/** Escapes text for a markdown table cell. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(head: string[], rows: (string | number)[][]): string {
  const line = (r: (string | number)[]) => `| ${r.map((x) => cell(String(x))).join(" | ")} |`;
  return [line(head), `| ${head.map(() => "---").join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** The markdown of an evaluation report. */
export function evaluationMarkdown(r: EvaluationReport): string {
  const m = r.classification;
  const out: string[] = [];
  const about = r.kind === "votes"
    ? "question 1 of the Galaxy Zoo tree, derived from the 37 predicted fractions"
    : `the ${r.classes.length} classes of scheme \`${r.scheme}\``;
  out.push(
    `# Evaluation of \`${r.run}\``,
    "",
    table(["", ""], [
      ["data", `\`${r.data}\`, split \`${r.split}\``],
      ["images scored", r.n],
      ["model", `scheme \`${r.scheme}\` (${r.kind})`],
      ["true classes from", `${r.labels.source} (scheme \`${r.labels.scheme}\`)`],
      ...(r.labels.leftOut ? [["left out (no class)", r.labels.leftOut]] : []),
      ["test-time augmentation", r.tta ? "yes: mean over the 8 rotations and flips" : "no"],
      ["backend", r.backend ?? "n/a"],
      ["written", r.createdAt],
    ]),
    "",
  );
  // Issue 23: the headline metrics with their bootstrap intervals.
  const intervals = Object.entries(r.intervals ?? {}) as [HeadlineMetric, Interval][];
  if (intervals.length > 0) {
    out.push(
      "## Headline metrics with 95 % intervals",
      "",
      table(
        ["metric", "value (95 % bootstrap interval over images)"],
        intervals.map(([k, i]) => [METRIC_NAMES[k], formatInterval(k, i)]),
      ),
      "",
    );
  }
  if (r.votes) {
    out.push(
      "## Vote fractions",
      "",
      `RMSE over the 37 vote fractions (the Kaggle competition's metric): **${f4(r.votes.rmse)}**`,
      "",
      table(
        ["question", "", "RMSE"],
        r.votes.perQuestion.map((q) => [`Q${q.question}`, q.text, f4(q.rmse)]),
      ),
      "",
    );
  }
  out.push(
    `## Classification: ${about}`,
    "",
    table(["metric", "value", "what it is"], [
      ["accuracy", f4(m.accuracy), "share of images whose most probable class is the true one"],
      [
        "balanced accuracy",
        f4(m.balancedAccuracy),
        "mean recall over the classes that have images",
      ],
      [
        "macro-F1",
        f4(m.macroF1),
        "mean F1 over the classes that have images or predictions",
      ],
      ["top-2 accuracy", f4(m.top2Accuracy), "true class among the two most probable"],
      [
        "expected calibration error",
        f4(m.ece),
        "15 equal-width bins of the top probability: mean |accuracy - confidence|, weighted by bin size",
      ],
      ["log loss", f4(m.logLoss), "mean -ln p(true class)"],
    ]),
    "",
  );
  if (r.q1FractionRmse) {
    const g = Object.entries(r.q1FractionRmse.groups)
      .map(([a, cs]) => `${a} = ${cs.join(" + ")}`).join("; ");
    out.push(
      `Class probabilities as vote fractions: RMSE **${f4(r.q1FractionRmse.rmse)}** against the ` +
        `volunteers' question 1 fractions (${g}; fractions renormalised over these answers; ` +
        `${r.q1FractionRmse.n} images).`,
      "",
    );
  }
  out.push(
    "### Per class",
    "",
    table(
      ["class", "precision", "recall", "F1", "support", "predicted"],
      m.perClass.map((k) => [
        k.name,
        f4(k.precision),
        k.recall === null ? "n/a (no images)" : f4(k.recall),
        f4(k.f1),
        k.support,
        k.predicted,
      ]),
    ),
    "",
    "### Confusion matrix",
    "",
    "Rows: true class; columns: predicted class.",
    "",
    table(
      ["true \\ predicted", ...r.classes],
      m.confusion.map((row, i) => [r.classes[i], ...row]),
    ),
    "",
  );
  if (r.pictures.confusion) out.push(`![confusion matrix](${r.pictures.confusion})`, "");
  if (r.pictures.curves) {
    out.push("## Training curves", "", `![training curves](${r.pictures.curves})`, "");
  }
  if (r.mostConfidentlyWrong.length) {
    out.push(
      "## Most confidently wrong",
      "",
      table(
        ["id", "true", "predicted", "p(predicted)", "p(true)"],
        r.mostConfidentlyWrong.map((w) => [
          w.id,
          w.true,
          w.predicted,
          pct(w.probability),
          pct(w.trueProbability),
        ]),
      ),
      "",
    );
    if (r.pictures.wrong) out.push(`![most confidently wrong galaxies](${r.pictures.wrong})`, "");
  }
  if (r.notes.length) out.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  return out.join("\n");
}
