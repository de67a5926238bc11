/**
 * `deno task evaluate --model RUN --data DATASET --out REPORT_DIR`: scores a
 * run on a labelled split and writes report.json, report.md and pictures;
 * see lib/evaluate.ts.
 *
 * Exit status: 0 done; 1 failure; 2 usage error.
 *
 * @module
 */
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { bar, ProgressLine, required, runMain } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { EVALUATE_TASK } from "../lib/tasks/evaluate.ts";
import { evaluate } from "../lib/evaluate.ts";
import { resolveRunDir } from "../lib/run/run_dir.ts";
import { openRun } from "../lib/run/open.ts";
import { assertWritable } from "../lib/io/writable.ts";
import {
  describeComparison,
  describeIntervals,
  type ScoredImages,
} from "../lib/evaluate/compare.ts";
import { compareRuns } from "../lib/evaluate/compare_runs.ts";
import { join } from "node:path";

const USAGE = usage(EVALUATE_TASK);

async function main(): Promise<number> {
  const f = parseTask(EVALUATE_TASK, Deno.args);
  const options = {
    run: await resolveRunDir(required("model", f.model, USAGE)),
    data: required("data", f.data, USAGE),
    out: required("out", f.out, USAGE),
    split: f.split,
    // Test-time augmentation is the default (docs/quality.md); --tta is still accepted.
    tta: !f["no-tta"],
    batchSize: f.batch,
    worst: f.worst,
  };
  // Before any work: a read-only --out is found now, not after scoring every image.
  await assertWritable(options.out, "folder");
  const info = await setupBackend({
    requested: f.backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
  });
  const backendLine = describeBackend(info);
  console.log(backendLine);
  const run = await openRun(options.run, { verify: !f["no-verify"] });
  const progress = new ProgressLine();
  let scored: ScoredImages | null = null;
  const r = await evaluate({
    ...options,
    run,
    onScored: (s) => scored = s,
    backend: backendLine,
    onProgress: (done, total) =>
      progress.update(`${bar(total ? done / total : 1)} ${done}/${total} images`, done === total),
  });
  progress.done();
  const m = r.classification;
  const what = r.kind === "votes" ? "question 1 (derived)" : `scheme ${r.scheme}`;
  console.log(`${r.split} split, ${r.n} images${r.tta ? ", TTA" : ""}:`);
  if (r.votes) console.log(`  RMSE over the 37 vote fractions: ${r.votes.rmse.toFixed(4)}`);
  console.log(
    `  ${what}: accuracy ${m.accuracy.toFixed(4)}, balanced accuracy ` +
      `${m.balancedAccuracy.toFixed(4)}, macro-F1 ${m.macroF1.toFixed(4)}, top-2 ` +
      `${m.top2Accuracy.toFixed(4)}, ECE ${m.ece.toFixed(4)}`,
  );
  if (r.q1FractionRmse) {
    console.log(
      `  class probabilities vs Q1 vote fractions: RMSE ${r.q1FractionRmse.rmse.toFixed(4)}`,
    );
  }
  for (const line of describeIntervals(r.intervals)) console.log(line);
  console.log(`report: ${options.out}/report.md`);
  if (f.compare !== undefined) {
    const other = await resolveRunDir(f.compare);
    const otherRun = await openRun(other, { verify: !f["no-verify"] });
    let c;
    try {
      c = await compareRuns(scored!, {
        ...options,
        run: otherRun,
        a: String(options.run),
        backend: backendLine,
      });
    } finally {
      otherRun.model.dispose();
    }
    for (const line of describeComparison(c, options.run, other)) console.log(line);
    console.log(`comparison: ${join(options.out, "compare.json")}`);
  }
  return 0;
}

await runMain(main);
