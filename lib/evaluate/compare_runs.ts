/**
 * `deno task evaluate --compare OTHER_RUN`: scores the other run on the same
 * dataset split as the first (its own report goes to `OUT/compare/`), and
 * writes the paired difference of the headline metrics to
 * `OUT/compare.json`.
 *
 * @module
 */
import { join } from "node:path";
import { evaluate, type EvaluateOptions } from "../evaluate.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { compareScored, type Comparison, type ScoredImages } from "./compare.ts";

/** `compare.json`: which runs were compared on what, and the comparison. */
export interface ComparisonReport extends Comparison {
  /** The run whose report is in OUT (a in `a - b`). */
  a: string;
  /** The run compared with it (b), whose report is in OUT/compare. */
  b: string;
  /** Dataset folder and split both were scored on. */
  data: string;
  split: string | null;
}

/**
 * Scores `o.run` like `evaluate` (report in `o.out/compare`) and compares the
 * already scored run `a` with it, image by image.
 */
export async function compareRuns(
  a: ScoredImages,
  o: EvaluateOptions & { a?: string },
): Promise<ComparisonReport> {
  let b: ScoredImages | null = null;
  const report = await evaluate({
    ...o,
    out: join(o.out, "compare"),
    onScored: (s) => b = s,
    onProgress: undefined,
  });
  const c = compareScored(a, b!);
  const out: ComparisonReport = {
    ...c,
    a: o.a ?? "this run",
    b: typeof o.run === "string" ? o.run : o.run.dir,
    data: o.data,
    split: report.split,
  };
  await writeJsonAtomic(join(o.out, "compare.json"), out);
  return out;
}
