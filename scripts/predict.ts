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
import { BACKEND_NAMES, describeBackend, setupBackend } from "../lib/backend.ts";
import {
  bar,
  choiceFlag,
  formatDuration,
  numberFlag,
  parseFlags,
  ProgressLine,
  required,
  runMain,
  UsageError,
} from "../lib/cli.ts";
import { PREDICT_FORMATS } from "../lib/predict/format.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { expandPatterns, mergePredictions } from "../lib/predict/merge.ts";
import { predict, PREDICT_DEFAULTS } from "../lib/predict/predict.ts";
import { openRun } from "../lib/predict/run.ts";
import { resolveRunDir } from "../lib/io/run_dir.ts";
import { parseShard } from "../lib/predict/shard.ts";

/** Exit status when some images could not be read (the rest were predicted). */
const SOME_FAILED = 3;

const USAGE = `usage: deno task predict --model RUN_DIR --in INPUT --out FILE.csv [flags]
       deno task predict --merge 'FILE-*.csv' [--merge ...] --out FILE.csv

  --model RUN_DIR    training run folder (config.json + model/); also RUN/model,
                     RUN/model/model.json or a file:// URL of one of these
  --in INPUT         folder of images (JPEG, PNG, WebP, TIFF, FITS; any size: cropped and
                     resized as the run's training data, FITS stretched as its dataset was;
                     see docs/inputs.md), one image file, or a preprocessed dataset folder
  --split NAME       dataset split (default: unlabeled if it has images, else test)
  --out FILE         CSV to write, one row per image sorted by id (= file name without
                     extension); unreadable images are listed in FILE.errors.csv
  --format F         ${PREDICT_FORMATS.join(" | ")}: id,label,probability,p_<class>... (default),
                     or the Kaggle submission (votes models): GalaxyID,Class1.1,...,Class11.6
  --tta              average over the 8 rotations and flips of the square
  --shard i/n        only slice i (0-based, 0..n-1) of n, by a hash of the id
  --no-header        no header row (to concatenate shard files with cat)
  --batch N          images per batch (${PREDICT_DEFAULTS.batchSize})
  --concurrency N    images decoding at once (${PREDICT_DEFAULTS.concurrency})
  --backend NAME     ${BACKEND_NAMES.join("|")} (default: the fastest that loads)
  --no-native-kernels  wasm without the oneDNN kernels (also GALAXY_NATIVE_KERNELS=0)
  --no-resume        start over instead of continuing FILE.partial of an interrupted run
  --merge FILES      merge the outputs of a sharded run (repeatable; * and ? allowed in
                     the file name); their .errors.csv files are merged too

exit status: 0 all predicted; 3 some images unreadable (see the errors file), the others
predicted; 1 failure; 2 usage error`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    model: { type: "string" },
    in: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    format: { type: "string" },
    tta: { type: "boolean" },
    shard: { type: "string" },
    "no-header": { type: "boolean" },
    batch: { type: "string" },
    concurrency: { type: "string" },
    backend: { type: "string" },
    "no-native-kernels": { type: "boolean" },
    "no-resume": { type: "boolean" },
    merge: { type: "string", multiple: true },
  }, USAGE);
  const out = required("out", f.out, USAGE);
  const backend = choiceFlag("backend", f.backend, BACKEND_NAMES, undefined);

  if (f.merge) {
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
    requested: backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
  });
  console.log(describeBackend(info));
  const format = choiceFlag("format", f.format, PREDICT_FORMATS, "classes");
  const batchSize = numberFlag("batch", f.batch, PREDICT_DEFAULTS.batchSize, {
    min: 1,
    integer: true,
  });
  const concurrency = numberFlag("concurrency", f.concurrency, PREDICT_DEFAULTS.concurrency, {
    min: 1,
    max: 256,
    integer: true,
  });
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
  const run = await openRun(modelDir);
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
      format,
      tta: f.tta,
      batchSize,
      concurrency,
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
