/**
 * Opening a training run folder for inference (`predict`, `evaluate`,
 * `serve`, `export-web`, retrain's comparison): its `config.json` says how
 * the images must be cropped and resized and what the outputs mean, and
 * `model/` holds the best model. Every file is checked against the SHA-256
 * recorded when it was written; a damaged one is refused
 * ({@linkcode DigestMismatchError}), never predicted with.
 *
 * @module
 */
import { DEFAULT_FITS_STRETCH } from "../data/stretch.ts";
import * as tf from "@tensorflow/tfjs";
import { readRunConfig, type RunConfig, type RunDataset } from "./config.ts";
import { readRunModel } from "./model.ts";

export type { RunDataset } from "./config.ts";

/** An opened run: its settings and its best model. */
export interface Run {
  /** The run folder. */
  dir: string;
  /** Its `config.json`'s `dataset` block, checked. */
  dataset: RunDataset;
  /** The best model, loaded from `model/`. */
  model: tf.LayersModel;
  /** SHA-256 of `model/model.json` (which records its weights' digests): identifies the model. */
  modelDigest: string;
  /** The weight files of `model/`, relative to it. */
  weightFiles: string[];
  /** The whole config.json, for reports. */
  config: RunConfig;
  /** Whether config.json, model.json and the weights all matched their recorded SHA-256. */
  verified: boolean;
}

/** How to open a run. */
export interface OpenRunOptions {
  /** Check every file against its recorded SHA-256 (default true; `--no-verify` turns it off). */
  verify?: boolean;
  /** Where to say that the run was not verified (default: a warning on stderr). */
  warn?: (line: string) => void;
}

/**
 * Opens a run folder: reads `config.json` and `model/`, verifying both,
 * and checks the model's input is `size` x `size` x 3 and its output has
 * one value per class. A run written before digests were recorded opens
 * with a warning (through `o.warn`) that it could not be verified.
 *
 * @throws {DigestMismatchError} when a file differs from its recorded SHA-256.
 */
export async function openRun(dir: string, o: OpenRunOptions = {}): Promise<Run> {
  const verify = o.verify ?? true;
  const warn = o.warn ?? ((line: string) => console.error(`warning: ${line}`));
  const { config, verified: configVerified } = await readRunConfig(dir, verify);
  const dataset = config.dataset;
  const folder = await readRunModel(dir, { verify });
  const model = await tf.loadLayersModel(tf.io.fromMemory(folder.artifacts));
  const [, h, w, c] = model.inputs[0].shape;
  const out = model.outputs[0].shape;
  const problems: string[] = [];
  if (h !== dataset.size || w !== dataset.size || c !== 3) {
    problems.push(
      `the model takes ${h}x${w}x${c} images, config.json says ${dataset.size}x${dataset.size}x3`,
    );
  }
  if (out.length !== 2 || out[1] !== dataset.classes.length) {
    problems.push(
      `the model has ${
        out[out.length - 1]
      } outputs, config.json lists ${dataset.classes.length} classes`,
    );
  }
  if (problems.length) {
    model.dispose();
    throw new Error(`${dir}: ${problems.join("; ")}`);
  }
  const verified = configVerified && folder.verified;
  if (!verify) warn(`${dir}: not verified (--no-verify): its files are used as they are`);
  else if (!verified) {
    warn(
      `${dir} was written before galaxy recorded SHA-256 digests: its model cannot be verified ` +
        "(a run trained or retrained now is)",
    );
  }
  const { scheme, kind, classes, flipPairs, size, crop, fitsStretch } = dataset;
  return {
    dir,
    dataset: {
      scheme,
      kind,
      classes,
      flipPairs,
      size,
      crop,
      fitsStretch: fitsStretch ?? DEFAULT_FITS_STRETCH,
    },
    model,
    modelDigest: folder.modelDigest,
    weightFiles: folder.weightFiles,
    config,
    verified,
  };
}
