/**
 * `--model` of `serve` and `export-web`, in one place: the value takes every
 * form {@linkcode resolveRunDir} accepts (RUN, RUN/model, RUN/model/model.json
 * or a `file://` URL), and the run it names is opened for inference.
 *
 * @module
 */
import { resolveRunDir } from "../run/run_dir.ts";
import { openRun, type Run } from "../run/open.ts";

/**
 * Opens the run that `--model` names.
 *
 * @throws {RunDirError} (a usage error, exit 2) where the value names no run folder.
 */
export async function openModelFlag(value: string): Promise<Run> {
  return await openRun(await resolveRunDir(value));
}
