/**
 * The flags of `deno task train`, declared once: scripts/train.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, hidden, int, text } from "../flags.ts";
import { TRAIN_FLAGS } from "../train/flags.ts";
import { BACKEND_FLAG, NO_NATIVE_KERNELS_FLAG } from "./common.ts";

/** `deno task train`. */
export const TRAIN_TASK = {
  task: "train",
  synopsis: ["deno task train --data DATASET_DIR --out RUN_DIR [flags]"],
  flags: {
    data: text("DATASET_DIR", "preprocessed dataset folder (required)"),
    out: text("RUN_DIR", "run folder to write (required)"),
    ...TRAIN_FLAGS,
    "no-augment": bool("no rotations/flips/shifts/brightness-contrast jitter"),
    resume: bool("continue the run in --out from its last checkpoint"),
    "no-verify": bool(
      "resume from a checkpoint (or start from a model) that does not match the SHA-256 " +
        "recorded when it was written (see docs/run-folder.md)",
    ),
    backend: BACKEND_FLAG,
    "no-native-kernels": NO_NATIVE_KERNELS_FLAG,
    replicas: int("N", "mirrored data-parallel replicas, one process per GPU", {
      min: 1,
      max: 64,
      shown: "default: the GPUs nvidia-smi -L lists, or 1",
    }),
    // Set by the mirrored launcher for each replica process.
    "replica-rank": hidden(int("N", "this replica's rank", { min: 0 })),
    "replica-count": hidden(int("N", "replicas in the group", { min: 1 })),
    "replica-dir": hidden(text("DIR", "the group's rendezvous folder")),
  },
  epilogue: "exit status: 0 done; 1 failure; 2 usage error; 3 the run folder is in use by " +
    "another process",
};
