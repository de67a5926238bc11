/**
 * Opening a training run folder for inference: its `config.json` says how
 * the images must be cropped and resized and what the outputs mean, and
 * `model/` holds the best model. `predict` and `evaluate` both start here.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { readJson } from "../io/atomic.ts";
import { loadModel } from "../io/model_io.ts";
import { NUM_VOTES } from "../data/schema.ts";
import { checkFitsStretch, DEFAULT_FITS_STRETCH, type FitsStretch } from "../data/stretch.ts";

/** The part of a run's `config.json` that inference reads. */
export interface RunDataset {
  /** Label scheme name (`gz5`, `q1`, `votes`, `csv`). */
  scheme: string;
  /** Whether the model outputs class probabilities or the 37 vote fractions. */
  kind: "classes" | "votes";
  /** Class names in output order (the 37 answer columns for `votes`). */
  classes: string[];
  /** Class pairs a mirror swaps (handed classes). */
  flipPairs: [number, number][];
  /** Side of the square network input, pixels. */
  size: number;
  /** Centre crop, fraction of the shorter side. */
  crop: number;
  /**
   * issue 24: how FITS inputs become 8-bit RGB, as the training dataset was
   * packed (config.json `dataset.fitsStretch`; the default for older runs).
   */
  fitsStretch: FitsStretch;
}

/** An opened run: its settings and its best model. */
export interface Run {
  /** The run folder. */
  dir: string;
  /** Its `config.json`'s `dataset` block, checked. */
  dataset: RunDataset;
  /** The best model, loaded from `model/`. */
  model: tf.LayersModel;
  /** SHA-256 of `model/model.json` (which names its weights by content hash): identifies the weights. */
  modelDigest: string;
  /** The whole config.json, for reports. */
  config: Record<string, unknown>;
}

function field<T>(cfg: Record<string, unknown>, path: string, ok: (v: unknown) => boolean): T {
  const v = cfg[path];
  if (!ok(v)) throw new Error(`dataset.${path} is missing or invalid`);
  return v as T;
}

/** Reads and checks the `dataset` block of a run's config.json. */
export function parseRunDataset(config: Record<string, unknown>, where: string): RunDataset {
  const d = config.dataset as Record<string, unknown> | undefined;
  if (!d || typeof d !== "object") throw new Error(`${where}: no "dataset" block`);
  try {
    const kind = field<"classes" | "votes">(d, "kind", (v) => v === "classes" || v === "votes");
    const classes = field<string[]>(
      d,
      "classes",
      (v) => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === "string"),
    );
    const size = field<number>(d, "size", (v) => Number.isInteger(v) && (v as number) > 0);
    const crop = field<number>(
      d,
      "crop",
      (v) => typeof v === "number" && v > 0 && v <= 1,
    );
    const flipPairs = (d.flipPairs ?? []) as [number, number][];
    if (
      !Array.isArray(flipPairs) ||
      !flipPairs.every((p) =>
        Array.isArray(p) && p.length === 2 && p.every((i) => Number.isInteger(i) && i >= 0) &&
        p[0] < classes.length && p[1] < classes.length
      )
    ) {
      throw new Error("dataset.flipPairs is invalid");
    }
    const scheme = typeof d.scheme === "string" ? d.scheme : kind;
    if (kind === "votes" && classes.length !== NUM_VOTES) {
      throw new Error(`a votes run needs ${NUM_VOTES} classes, config lists ${classes.length}`);
    }
    const fitsStretch = d.fitsStretch === undefined
      ? DEFAULT_FITS_STRETCH
      : checkFitsStretch(d.fitsStretch, "dataset.fitsStretch");
    return { scheme, kind, classes, flipPairs, size, crop, fitsStretch };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/**
 * Opens a run folder: reads `config.json`, loads `model/`, and checks the
 * model's input is `size` x `size` x 3 and its output has one value per class.
 */
export async function openRun(dir: string): Promise<Run> {
  const configPath = join(dir, "config.json");
  const config = await readJson<Record<string, unknown>>(configPath);
  const dataset = parseRunDataset(config, configPath);
  const modelDir = join(dir, "model");
  let modelJson: string;
  try {
    modelJson = await Deno.readTextFile(join(modelDir, "model.json"));
  } catch {
    throw new Error(`${dir} has no model (${join(modelDir, "model.json")} is missing)`);
  }
  const model = await loadModel(modelDir);
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
  return {
    dir,
    dataset,
    model,
    modelDigest: createHash("sha256").update(modelJson).digest("hex"),
    config,
  };
}
