/**
 * `--model` of `serve` and `export-web`, in one place: the value takes every
 * form {@linkcode resolveRunDir} accepts (RUN, RUN/model, RUN/model/model.json
 * or a `file://` URL), and the run it names is opened for inference.
 *
 * @module
 */
import { resolveRunDir } from "../run/run_dir.ts";
import { openRun, type OpenRunOptions, type Run } from "../run/open.ts";

/**
 * Opens the run that `--model` names, verified unless `o.verify` is false
 * (`--no-verify`).
 *
 * @throws {RunDirError} (a usage error, exit 2) where the value names no run folder.
 * @throws {DigestMismatchError} when a file of the model is damaged.
 */
export async function openModelFlag(value: string, o: OpenRunOptions = {}): Promise<Run> {
  return await openRun(await resolveRunDir(value), o);
}
