/**
 * The flags of `deno task predict`, declared once: scripts/predict.ts
 * parses them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, choice, int, list, text } from "../flags.ts";
import { PREDICT_FORMATS } from "../predict/format.ts";
import { PREDICT_DEFAULTS } from "../predict/predict.ts";
import { BACKEND_FLAG, NO_NATIVE_KERNELS_FLAG, NO_VERIFY_FLAG } from "./common.ts";

/** `deno task predict`. */
export const PREDICT_TASK = {
  task: "predict",
  synopsis: [
    "deno task predict --model RUN_DIR --in INPUT --out FILE.csv [flags]",
    "deno task predict --merge 'FILE-*.csv' [--merge ...] --out FILE.csv",
  ],
  flags: {
    model: text(
      "RUN_DIR",
      "training run folder (config.json + model/); also RUN/model, RUN/model/model.json or a " +
        "file:// URL of one of these",
    ),
    in: text(
      "INPUT",
      "folder of images (JPEG, PNG, WebP, TIFF, FITS; any size: cropped and resized as the " +
        "run's training data, FITS stretched as its dataset was; see docs/inputs.md), one image " +
        "file, or a preprocessed dataset folder",
    ),
    split: text("NAME", "split of a dataset folder", {
      shown: "unlabeled if it has images, else test",
    }),
    out: text(
      "FILE",
      "CSV to write, one row per image sorted by id (the file name without extension); " +
        "unreadable images are listed in FILE.errors.csv",
    ),
    format: choice(
      PREDICT_FORMATS,
      "id,label,probability,p_<class>... or, for votes models, the Kaggle submission: " +
        "GalaxyID,Class1.1,...,Class11.6 in the order of training_solutions_rev1.csv",
      { default: "classes" },
    ),
    tta: bool(
      "average over the 8 rotations and flips of the square (handed classes swapped back on " +
        "mirrored views)",
    ),
    shard: text(
      "i/n",
      "only slice i (0-based, 0..n-1) of n; an id's slice is a hash of the id, so it does not " +
        "move when images are added",
    ),
    "no-header": bool("no header row (to concatenate shard files with cat)"),
    batch: int("N", "images per batch", { min: 1, default: PREDICT_DEFAULTS.batchSize }),
    concurrency: int("N", "images decoding at once", {
      min: 1,
      max: 256,
      default: PREDICT_DEFAULTS.concurrency,
    }),
    backend: BACKEND_FLAG,
    "no-native-kernels": NO_NATIVE_KERNELS_FLAG,
    "no-verify": NO_VERIFY_FLAG,
    "no-resume": bool("start over instead of continuing FILE.partial of an interrupted run"),
    merge: list(
      "FILES",
      "merge the outputs of a sharded run (repeatable; * and ? allowed in the file name); " +
        "their .errors.csv files are merged too",
    ),
  },
  epilogue: "exit status: 0 all predicted; 3 some images unreadable (see the errors file), the " +
    "others\npredicted; 1 failure; 2 usage error",
};
