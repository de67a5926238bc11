/**
 * `evaluate`'s pictures in the report folder: the confusion matrix, the
 * run's training curves, and the grid of the most confidently wrong
 * galaxies. A picture that cannot be made is a note, not a failure.
 *
 * @module
 */
import { join } from "node:path";
import type { Split } from "../data/dataset.ts";
import type { EvaluationReport } from "../evaluate.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { confusionSpec, renderChart, trainingCurves, writePicture } from "../report/charts.ts";
import { clip, galaxyGrid, gridCaptionChars } from "../report/galaxy_grid.ts";
import type { WrongCandidate } from "./predictions.ts";

/** What the pictures show. */
export interface PictureInputs {
  /** Report folder. */
  out: string;
  /** Run folder (its metrics.jsonl gives the curves). */
  runDir: string;
  split: Split;
  /** What is classified, for titles: `scheme gz5`, `question 1 (...)`. */
  what: string;
  classes: string[];
  confusion: number[][];
  n: number;
  /** The most confidently wrong galaxies (empty: no grid). */
  worst: WrongCandidate[];
  /** Image side of the pixels. */
  side: number;
  /** Wrong galaxies asked for (0: no grid wanted, so no note when there are none). */
  worstWanted: number;
}

/** Draws the pictures into `out`; returns their file names and the notes on those not made. */
export async function drawPictures(
  p: PictureInputs,
): Promise<{ pictures: EvaluationReport["pictures"]; notes: string[] }> {
  const notes: string[] = [];
  const pictures: EvaluationReport["pictures"] = { confusion: null, curves: null, wrong: null };
  await writePicture(
    join(p.out, "confusion"),
    await renderChart(
      confusionSpec(
        p.confusion,
        p.classes,
        `Confusion matrix: ${p.what}, ${p.split} split (n = ${p.n})`,
      ),
    ),
  );
  pictures.confusion = "confusion.png";
  try {
    await writePicture(join(p.out, "curves"), await trainingCurves(p.runDir));
    pictures.curves = "curves.png";
  } catch (e) {
    notes.push(`No training curves: ${(e as Error).message}.`);
  }
  if (p.worst.length > 0) {
    await writeFileAtomic(join(p.out, "wrong.png"), await wrongGrid(p));
    pictures.wrong = "wrong.png";
  } else if (p.worstWanted > 0) {
    notes.push("No wrong predictions: no grid of wrong galaxies.");
  }
  return { pictures, notes };
}

/** The grid of the most confidently wrong galaxies, as PNG bytes. */
function wrongGrid(p: PictureInputs): Promise<Uint8Array> {
  // Cut long class names, never the probability after them.
  const room = gridCaptionChars() - "pred: ".length - " (0.00)".length;
  const caption = (what: string, name: string, prob: number) =>
    `${what}: ${clip(name, room)} (${prob.toFixed(2)})`;
  return galaxyGrid(
    p.worst.map((w) => ({
      id: w.id,
      pixels: w.pixels,
      side: p.side,
      lines: [
        w.id,
        caption("true", w.true, w.trueProbability),
        caption("pred", w.predicted, w.probability),
      ],
      colors: ["#111", "#1a7f37", "#c62828"],
    })),
    {
      title: `Most confidently wrong: ${p.split} split, ${p.what}`,
      subtitle: `the ${p.worst.length} wrong predictions of highest probability; in ` +
        `brackets the model's probability; ${p.side} px inputs, upscaled`,
    },
  );
}
