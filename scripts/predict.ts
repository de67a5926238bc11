/**
 * `deno task predict --model RUN --in INPUT --out predictions.csv`: class
 * probabilities (or vote fractions) for a folder of images, one image, or a
 * dataset split; see lib/predict/predict.ts. `--merge` joins the files of a
 * sharded run.
 *
 * Exit status: 0 every image predicted; 3 some images could not be read
 * (listed in the errors file beside --out; every other image was
 * predicted); 1 failure; 2 usage error.
 *
 * @module
 */
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { bar, formatDuration, ProgressLine, required, runMain, UsageError } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { PREDICT_TASK } from "../lib/tasks/predict.ts";
import { jitStartNote } from "../lib/cuda_jit.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { expandPatterns, mergePredictions } from "../lib/predict/merge.ts";
import { predict } from "../lib/predict/predict.ts";
import { openRun } from "../lib/run/open.ts";
import { resolveRunDir } from "../lib/run/run_dir.ts";
import { assertWritable } from "../lib/io/writable.ts";
import { parseShard } from "../lib/predict/shard.ts";

/** Exit status when some images could not be read (the rest were predicted). */
const SOME_FAILED = 3;

const USAGE = usage(PREDICT_TASK);

async function main(): Promise<number> {
  const f = parseTask(PREDICT_TASK, Deno.args);
  const out = required("out", f.out, USAGE);
  // Before any work: a read-only --out is found now, not after predicting every image.
  await assertWritable(out, "file");

  if (f.merge.length) {
    if (f.model || f.in) throw new UsageError(`--merge takes no --model or --in\n\n${USAGE}`);
    const files = await expandPatterns(f.merge, out);
    const m = await mergePredictions(files, out);
    console.log(
      `merged ${m.files.length} files: ${m.rows} rows to ${out}` +
        (m.errorsFile ? `; ${m.failed} unreadable images listed in ${m.errorsFile}` : ""),
    );
    return m.failed > 0 ? SOME_FAILED : 0;
  }

  const info = await setupBackend({
    requested: f.backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
  });
  console.log(describeBackend(info));
  const jit = await jitStartNote(info);
  if (jit) console.log(jit);
  let shard = null;
  if (f.shard !== undefined) {
    try {
      shard = parseShard(f.shard);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const modelDir = await resolveRunDir(required("model", f.model, USAGE));
  const inPath = required("in", f.in, USAGE);
  const run = await openRun(modelDir, { verify: !f["no-verify"] });
  const d = run.dataset;
  console.log(
    `model: ${modelDir} (scheme ${d.scheme}, ${d.classes.length} outputs, ${d.size} px, ` +
      `crop ${d.crop})`,
  );
  const input = await resolveInput(inPath, { split: f.split });
  try {
    const what = input.kind === "dataset"
      ? `dataset ${inPath}, split ${input.split}: ${input.dataset.size(input.split)} images`
      : `${input.items.length + input.refused.length} image files in ${inPath}`;
    console.log(
      `input: ${what}${shard ? `; shard ${shard.index}/${shard.count}` : ""}` +
        `${f.tta ? "; test-time augmentation over 8 views" : ""}`,
    );
    const progress = new ProgressLine();
    const summary = await predict({
      run,
      input,
      inPath,
      out,
      format: f.format,
      tta: f.tta,
      batchSize: f.batch,
      concurrency: f.concurrency,
      shard,
      header: !f["no-header"],
      resume: !f["no-resume"],
      log: (line) => {
        progress.done();
        console.error(line);
      },
      onProgress: (p) => {
        const eta = p.imagesPerSecond > 0 ? (p.total - p.done) / p.imagesPerSecond : NaN;
        progress.update(
          `${bar(p.total ? p.done / p.total : 1)} ${p.done}/${p.total} images` +
            `${p.failed ? ` (${p.failed} unreadable)` : ""}  ` +
            `${p.imagesPerSecond.toFixed(1)} images/s  ETA ${formatDuration(eta)}`,
          p.done === p.total,
        );
      },
    });
    progress.done();
    console.log(
      `wrote ${summary.predicted} rows to ${summary.out} in ${formatDuration(summary.seconds)}` +
        (summary.resumedRows ? ` (${summary.resumedRows} kept from an interrupted run)` : ""),
    );
    if (summary.warnings.length) {
      console.error(
        `warning: ${summary.warnings.length} images were predicted far from square ` +
          "(listed above; see docs/inputs.md for the aspect rule)",
      );
    }
    if (summary.errorsFile) {
      console.error(
        `warning: ${summary.failed} images could not be read: listed in ${summary.errorsFile}`,
      );
      return SOME_FAILED;
    }
    return 0;
  } finally {
    if (input.kind === "dataset") input.dataset.close();
    run.model.dispose();
  }
}

await runMain(main);
