/**
 * `deno task evaluate --model RUN --data DATASET --out REPORT_DIR`: scores a
 * run on a labelled split and writes report.json, report.md and pictures;
 * see lib/evaluate.ts.
 *
 * Exit status: 0 done; 1 failure; 2 usage error.
 *
 * @module
 */
import { BACKEND_NAMES, describeBackend, setupBackend } from "../lib/backend.ts";
import {
  bar,
  choiceFlag,
  numberFlag,
  parseFlags,
  ProgressLine,
  required,
  runMain,
} from "../lib/cli.ts";
import { SPLITS } from "../lib/data/manifest.ts";
import { evaluate } from "../lib/evaluate.ts";
import { resolveRunDir } from "../lib/io/run_dir.ts";
import {
  describeComparison,
  describeIntervals,
  type ScoredImages,
} from "../lib/evaluate/compare.ts";
import { compareRuns } from "../lib/evaluate/compare_runs.ts";
import { join } from "node:path";

const USAGE = `usage: deno task evaluate --model RUN_DIR --data DATASET_DIR --out REPORT_DIR [flags]

  --model RUN_DIR    training run folder (config.json + model/, metrics.jsonl for the curves);
                     also RUN/model, RUN/model/model.json or a file:// URL of one of these
  --data DIR         preprocessed dataset folder (same image size and crop as the run's)
  --split NAME       train|val|test (default test, or val when there is no test split)
  --out DIR          report folder: report.json, report.md, confusion.png, curves.png, wrong.png
  --no-tta           score the plain model instead of the mean over the 8 rotations and flips
                     of the square (the default since it lowered votes RMSE at 5 of 5 seeds,
                     docs/quality.md); --tta is accepted and is the default
  --compare RUN_DIR  also score RUN_DIR on the same images and print the paired difference
                     (this run minus RUN_DIR) of each headline metric with its 95 % interval;
                     RUN_DIR's report goes to OUT/compare/, the comparison to OUT/compare.json
  --batch N          images per batch (64)
  --worst N          galaxies in the most-confidently-wrong grid (16; 0: none)
  --backend NAME     ${BACKEND_NAMES.join("|")} (default: the fastest that loads)
  --no-native-kernels  wasm without the oneDNN kernels (also GALAXY_NATIVE_KERNELS=0)

exit status: 0 done; 1 failure; 2 usage error`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    model: { type: "string" },
    data: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    tta: { type: "boolean" },
    "no-tta": { type: "boolean" },
    compare: { type: "string" },
    batch: { type: "string" },
    worst: { type: "string" },
    backend: { type: "string" },
    "no-native-kernels": { type: "boolean" },
  }, USAGE);
  const backend = choiceFlag("backend", f.backend, BACKEND_NAMES, undefined);
  const split = choiceFlag("split", f.split, SPLITS.filter((s) => s !== "unlabeled"), undefined);
  const options = {
    run: await resolveRunDir(required("model", f.model, USAGE)),
    data: required("data", f.data, USAGE),
    out: required("out", f.out, USAGE),
    split,
    // Issue 23: test-time augmentation is evaluate's default.
    tta: !f["no-tta"],
    batchSize: numberFlag("batch", f.batch, 64, { min: 1, integer: true }),
    worst: numberFlag("worst", f.worst, 16, { min: 0, max: 200, integer: true }),
  };
  const info = await setupBackend({
    requested: backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
  });
  const backendLine = describeBackend(info);
  console.log(backendLine);
  const progress = new ProgressLine();
  let scored: ScoredImages | null = null;
  const r = await evaluate({
    ...options,
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
    const c = await compareRuns(scored!, {
      ...options,
      run: other,
      a: String(options.run),
      backend: backendLine,
    });
    for (const line of describeComparison(c, options.run, other)) console.log(line);
    console.log(`comparison: ${join(options.out, "compare.json")}`);
  }
  return 0;
}

await runMain(main);
