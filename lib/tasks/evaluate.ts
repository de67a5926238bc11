/**
 * The flags of `deno task evaluate`, declared once: scripts/evaluate.ts
 * parses them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { SPLITS } from "../data/manifest.ts";
import { bool, choice, hidden, int, text } from "../flags.ts";
import { BACKEND_FLAG, NO_NATIVE_KERNELS_FLAG, NO_VERIFY_FLAG } from "./common.ts";

/** `deno task evaluate`. */
export const EVALUATE_TASK = {
  task: "evaluate",
  synopsis: ["deno task evaluate --model RUN_DIR --data DATASET_DIR --out REPORT_DIR [flags]"],
  flags: {
    model: text(
      "RUN_DIR",
      "training run folder (config.json + model/, metrics.jsonl for the curves); also " +
        "RUN/model, RUN/model/model.json or a file:// URL of one of these",
    ),
    data: text("DIR", "preprocessed dataset folder (same image size and crop as the run's)"),
    split: choice(SPLITS.filter((s) => s !== "unlabeled"), "the split to score", {
      shown: "test, or val when there is no test split",
    }),
    out: text(
      "DIR",
      "report folder: report.json, report.md, confusion.png, curves.png, wrong.png",
    ),
    "no-tta": bool(
      "score the plain model instead of the mean over the 8 rotations and flips of the square " +
        "(test-time augmentation is the default: it lowered votes RMSE at 5 of 5 seeds, " +
        "docs/quality.md)",
    ),
    // Scripts written before TTA became the default still pass it.
    tta: hidden(bool("average over the 8 rotations and flips of the square (the default)")),
    compare: text(
      "RUN_DIR",
      "also score RUN_DIR on the same images and print the paired difference (this run minus " +
        "RUN_DIR) of each headline metric with its 95 % interval; RUN_DIR's report goes to " +
        "OUT/compare/, the comparison to OUT/compare.json",
    ),
    batch: int("N", "images per batch", { min: 1, default: 64 }),
    worst: int("N", "galaxies in the most-confidently-wrong grid (0: none)", {
      min: 0,
      max: 200,
      default: 16,
    }),
    backend: BACKEND_FLAG,
    "no-native-kernels": NO_NATIVE_KERNELS_FLAG,
    "no-verify": NO_VERIFY_FLAG,
  },
  epilogue: "exit status: 0 done; 1 failure; 2 usage error",
};
