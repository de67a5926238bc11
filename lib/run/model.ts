/**
 * A run's best model, `RUN/model/`: saved sealed (its `model.json` records
 * the weights' SHA-256 and the run's config) and loaded verified, through
 * lib/io/model_io.ts (the owner of the TF.js Layers format).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import {
  captureModel,
  loadModel,
  type LoadOptions,
  type ModelFolder,
  readModelFolder,
  saveArtifacts,
} from "../io/model_io.ts";
import { type RunConfig, writeRunConfig } from "./config.ts";
import { runPaths } from "./layout.ts";

/** Saves `artifacts` as run `dir`'s best model, with its config inside model.json (`galaxy`). */
export async function saveRunModel(
  dir: string,
  artifacts: tf.io.ModelArtifacts,
  config: RunConfig,
): Promise<void> {
  await saveArtifacts(runPaths(dir).modelDir, artifacts, { galaxy: config });
}

/**
 * Writes a run folder around a model made outside `train` (benchmarks,
 * tests): `config.json` and `model/`, both sealed.
 */
export async function saveRunFolder(
  dir: string,
  config: RunConfig,
  model: tf.LayersModel,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeRunConfig(dir, config);
  await saveRunModel(dir, await captureModel(model), config);
}

/** Whether run `dir` has a model yet. */
export async function hasRunModel(dir: string): Promise<boolean> {
  return await Deno.stat(runPaths(dir).modelJson).then((s) => s.isFile, () => false);
}

/**
 * Reads run `dir`'s model folder, verified (see {@linkcode readModelFolder}).
 *
 * @throws {Error} naming the file when the run has no model.
 * @throws {DigestMismatchError} when a file differs from its recorded SHA-256.
 */
export async function readRunModel(dir: string, o: LoadOptions = {}): Promise<ModelFolder> {
  if (!await hasRunModel(dir)) {
    throw new Error(`${dir} has no model (${runPaths(dir).modelJson} is missing)`);
  }
  return await readModelFolder(runPaths(dir).modelDir, o);
}

/** Loads run `dir`'s model, verified; see {@linkcode readRunModel}. */
export async function loadRunModel(dir: string, o: LoadOptions = {}): Promise<tf.LayersModel> {
  if (!await hasRunModel(dir)) {
    throw new Error(`${dir} has no model (${runPaths(dir).modelJson} is missing)`);
  }
  return await loadModel(runPaths(dir).modelDir, o);
}

/** The path of a file of run `dir`'s model folder (`model.json` or a weight file it names). */
export function runModelFile(dir: string, name: string): string {
  return join(runPaths(dir).modelDir, name);
}
