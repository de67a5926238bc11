/**
 * `RUNS/retrain.state.json`: what the last successful retraining saw, so the
 * next one can tell whether anything new arrived. Written atomically, and
 * only after a candidate was trained and judged (promoted or not): a failed
 * or interrupted run leaves it as it was, so the next run tries again.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "../io/atomic.ts";
import type { InputFingerprint } from "./fingerprint.ts";

/** Name of the state file inside the runs folder. */
export const STATE_FILE = "retrain.state.json";

/** The preprocessing settings that shape a dataset (and so a model's inputs and splits). */
export interface DataSettings {
  /** Label scheme; null: the layout's default (gz5 for Kaggle, csv otherwise). */
  scheme: string | null;
  size: number;
  crop: number;
  val: number;
  test: number;
  splitSeed: number | string;
}

/** The last run that trained and judged a candidate. */
export interface LastSuccess {
  time: string;
  outcome: "promoted" | "not_promoted";
  /** Run folder name inside the runs folder. */
  run: string;
  /** Why it was promoted or not (e.g. the class set changed). */
  why?: string;
  /** Dataset folder, relative to the runs folder. */
  dataset: string;
  /** {@linkcode datasetKey} of the inputs and settings. */
  datasetKey: string;
  settings: DataSettings;
  inputs: InputFingerprint;
}

/** Contents of `retrain.state.json`. */
export interface RetrainState {
  version: 1;
  lastSuccess: LastSuccess | null;
}

/** Identity of a dataset: the inputs' fingerprint and the settings that preprocess them. */
export function datasetKey(inputs: InputFingerprint, settings: DataSettings): string {
  return createHash("sha256").update(JSON.stringify({ inputs: inputs.digest, settings })).digest(
    "hex",
  );
}

/** Reads the state, or null when there is none yet. */
export async function readState(runs: string): Promise<RetrainState | null> {
  const path = join(runs, STATE_FILE);
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const s = await readJson<RetrainState>(path);
  if (s?.version !== 1 || !("lastSuccess" in s)) {
    throw new Error(
      `${path} is not a retrain state (version 1); delete it to make the next run retrain`,
    );
  }
  return s;
}

/** Records a successful run (atomically). */
export async function writeState(runs: string, last: LastSuccess): Promise<void> {
  const state: RetrainState = { version: 1, lastSuccess: last };
  await writeJsonAtomic(join(runs, STATE_FILE), state);
}
