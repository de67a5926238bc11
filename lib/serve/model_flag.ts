/**
 * `--model` of `serve` and `export-web`, in one place: the value names a
 * run folder (config.json + model/), which is opened for inference.
 *
 * @module
 */
import { openRun, type Run } from "../predict/run.ts";

/** Opens the run that `--model` names. */
export async function openModelFlag(value: string): Promise<Run> {
  return await openRun(value);
}
