/**
 * The names of a training run folder's files, in one place. A run folder
 * holds:
 * - `config.json`: every setting of the run and the dataset it was trained
 *   on ({@linkcode ./config.ts}), sealed with its SHA-256;
 * - `model/`: the best model so far, TF.js Layers format (`model.json` and a
 *   weights file it names), sealed ({@linkcode ./model.ts});
 * - `checkpoint/`: the last training state, for `--resume`
 *   (`state.json` naming a variables and an optimizer file), sealed;
 * - `metrics.jsonl`: one line per finished epoch ({@linkcode ./metrics.ts});
 * - `report.json` and `curves.png`/`curves.svg`: the best model on the test
 *   split and the training curves, once training finishes;
 * - `run.lock`: while a `train` writes the folder ({@linkcode ./lock.ts}).
 *
 * See docs/run-folder.md.
 *
 * @module
 */
import { join } from "node:path";

/** The run's settings. */
export const CONFIG_FILE = "config.json";
/** The best model's folder. */
export const MODEL_DIR = "model";
/** The model file inside {@linkcode MODEL_DIR} (the TF.js Layers format's name). */
export const MODEL_JSON = "model.json";
/** The last training state's folder. */
export const CHECKPOINT_DIR = "checkpoint";
/** The checkpoint's index inside {@linkcode CHECKPOINT_DIR}, renamed into place last. */
export const CHECKPOINT_STATE = "state.json";
/** One JSON line per finished epoch. */
export const METRICS_FILE = "metrics.jsonl";
/** The best model on the test split, written when training finishes. */
export const TRAIN_REPORT_FILE = "report.json";
/** The training curves' picture (without extension: `.png` and `.svg` are written). */
export const CURVES_NAME = "curves";
/** The lock of the process writing the folder. */
export const LOCK_FILE = "run.lock";

/** Absolute or relative paths of every file of the run folder `dir`. */
export interface RunPaths {
  dir: string;
  config: string;
  modelDir: string;
  modelJson: string;
  checkpointDir: string;
  checkpointState: string;
  metrics: string;
  report: string;
  /** Curves picture path without extension. */
  curves: string;
  lock: string;
}

/** The paths of the run folder `dir`'s files. */
export function runPaths(dir: string): RunPaths {
  return {
    dir,
    config: join(dir, CONFIG_FILE),
    modelDir: join(dir, MODEL_DIR),
    modelJson: join(dir, MODEL_DIR, MODEL_JSON),
    checkpointDir: join(dir, CHECKPOINT_DIR),
    checkpointState: join(dir, CHECKPOINT_DIR, CHECKPOINT_STATE),
    metrics: join(dir, METRICS_FILE),
    report: join(dir, TRAIN_REPORT_FILE),
    curves: join(dir, CURVES_NAME),
    lock: join(dir, LOCK_FILE),
  };
}

/** Names whose presence in a folder means it already holds a run (the lock alone does not). */
export const RUN_MARKERS: readonly string[] = [CONFIG_FILE, CHECKPOINT_DIR, METRICS_FILE];
