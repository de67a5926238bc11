/**
 * The flags of `deno task retrain`, declared once: tasks/retrain.ts parses
 * them, `--help` and docs/cli.md show them. Its training flags are train's
 * (lib/train/flags.ts); unset ones are inherited, so none has a default here.
 *
 * @module
 */
import { splitSeedFlag } from "../data/split.ts";
import { bool, choice, custom, hidden, int, num, section, text } from "../flags.ts";
import { PREPROCESS_DEFAULTS } from "../preprocess.ts";
import { PROMOTION_METRICS } from "../retrain/promote.ts";
import { DATA_DEFAULTS } from "../retrain/retrain.ts";
import { type TrainFlag, trainFlags } from "../train/flags.ts";
import { BACKEND_FLAG, NO_NATIVE_KERNELS_FLAG } from "./common.ts";

/** The training flags retrain takes (see RetrainTrainSettings). */
export const RETRAIN_TRAIN_FLAGS = [
  "epochs",
  "batch",
  "lr",
  "warmup",
  "seed",
  "patience",
  "stem",
  "width",
  "eval-batch",
] as const satisfies readonly TrainFlag[];

const [firstTrainFlag, ...otherTrainFlags] = RETRAIN_TRAIN_FLAGS;
const p = DATA_DEFAULTS;
const shown = (x: number | string) => ({ shown: String(x) });

/** `deno task retrain`. */
export const RETRAIN_TASK = {
  task: "retrain",
  synopsis: ["deno task retrain --data INPUT_DIR --runs RUNS_DIR [flags]"],
  about: `Retrains when images or labels changed since the last successful run, and
promotes the new run to RUNS/current if it scores at least as well as the
current model on the test split of the new dataset.
Exit status: 0 promoted or nothing new, 1 failed, 2 not promoted, 3 already running.`,
  flags: {
    data: text("INPUT_DIR", "input folder, any layout deno task preprocess reads"),
    runs: text("RUNS_DIR", "runs folder: runs, current, datasets, lock, state and log"),
    metric: choice(PROMOTION_METRICS, "the score that decides promotion (rmse: lower is better)", {
      arg: "M",
      shown: "accuracy; rmse for a votes scheme",
    }),
    force: bool("promote the new run whatever its score"),
    always: bool("train even if nothing changed"),
    "from-scratch": bool("fresh weights instead of the current model's (fine-tuning)"),
    keep: int("N", "the job's run folders to keep; never deletes current's target", {
      min: 1,
      default: 5,
    }),
    [firstTrainFlag]: section(
      "training (unset: the defaults of deno task train, shown; stem and width of the current " +
        "run when fine-tuning)",
      trainFlags([firstTrainFlag])[firstTrainFlag],
    ),
    ...trainFlags(otherTrainFlags),
    replicas: int("N", "one process per GPU", {
      min: 1,
      max: 64,
      shown: "default: the GPUs nvidia-smi lists, or 1",
    }),
    backend: BACKEND_FLAG,
    "no-native-kernels": NO_NATIVE_KERNELS_FLAG,
    scheme: section(
      "preprocessing (unset: the current run's, else these defaults)",
      text("NAME", "label scheme", { shown: "gz5 for Kaggle, csv otherwise" }),
    ),
    size: int("PX", "image side", { min: 8, max: 424, ...shown(p.size) }),
    crop: num("F", "centre crop, a fraction of the shorter side", {
      min: 0.01,
      max: 1,
      ...shown(p.crop),
    }),
    val: num("F", "validation fraction", { min: 0, max: 1, ...shown(p.val) }),
    test: num("F", "test fraction", { min: 0, max: 1, ...shown(p.test) }),
    "split-seed": custom("S", "seed of the split", (_f, v) => splitSeedFlag(v), shown(p.splitSeed)),
    "max-bad": num("F", "fail when more than this share of the items is bad", {
      min: 0,
      max: 1,
      ...shown(PREPROCESS_DEFAULTS.maxBad),
    }),
    // Set for the replica processes of a mirrored candidate.
    "train-replica": hidden(text("JSON", "the candidate's training options")),
    "replica-rank": hidden(int("N", "this replica's rank", { min: 0 })),
    "replica-count": hidden(int("N", "replicas in the group", { min: 1 })),
    "replica-dir": hidden(text("DIR", "the group's rendezvous folder")),
  },
};
