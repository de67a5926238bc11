/**
 * What `--model` (and any flag naming a training run) takes, resolved to the
 * run folder: the folder that holds `config.json` and `model/`.
 *
 * Users bring habits from `tf.loadLayersModel`, so each of these names the
 * same run:
 * - `RUN` (also a link to it, e.g. `RUNS/current`);
 * - `RUN/model`, the model folder;
 * - `RUN/model/model.json`, the model file;
 * - a `file://` URL of any of those (`file:///abs/RUN/model/model.json`).
 *
 * Anything else is a {@linkcode RunDirError} saying what was found and what
 * the flag takes (a usage error: scripts exit 2).
 *
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../cli.ts";
import { CONFIG_FILE, MODEL_DIR, MODEL_JSON, runPaths } from "./layout.ts";

/** The forms a run flag accepts, for messages. */
export const RUN_FORMS =
  "a training run folder RUN (with config.json and model/), RUN/model, RUN/model/model.json, " +
  "or a file:// URL of one of these";

/** A run flag's value names no run folder; the message says what the flag takes. */
export class RunDirError extends UsageError {
  constructor(flag: string, value: string, why: string) {
    super(`${flag} ${value}: ${why}; ${flag} takes ${RUN_FORMS}`);
    this.name = "RunDirError";
  }
}

async function stat(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/** Whether `dir` is a run folder: `config.json` and `model/model.json` in it. */
async function isRunDir(dir: string): Promise<boolean> {
  const paths = runPaths(dir);
  return (await stat(paths.config))?.isFile === true &&
    (await stat(paths.modelJson))?.isFile === true;
}

/** The local path of a `file:` URL, or of a plain path; throws for other URL schemes. */
function localPath(value: string, flag: string): string {
  if (/^file:/i.test(value)) {
    try {
      return fileURLToPath(new URL(value));
    } catch (e) {
      throw new RunDirError(flag, value, `not a local file URL (${(e as Error).message})`);
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]+):\/\//i.exec(value);
  if (scheme) {
    throw new RunDirError(flag, value, `${scheme[1]}:// models are not read, only local files`);
  }
  return value;
}

/**
 * The run folder `value` names (absolute, as given: a link such as
 * `RUNS/current` is kept, not followed), in any form of the module doc.
 * `flag` names the flag in errors.
 */
export async function resolveRunDir(value: string, flag = "--model"): Promise<string> {
  const path = resolve(localPath(value.trim(), flag));
  const info = await stat(path);
  if (!info) throw new RunDirError(flag, value, `${path} does not exist`);
  const candidates = info.isDirectory
    ? [path, ...(basename(path) === MODEL_DIR ? [dirname(path)] : [])]
    : basename(path) === MODEL_JSON && basename(dirname(path)) === MODEL_DIR
    ? [dirname(dirname(path))]
    : [];
  for (const dir of candidates) if (await isRunDir(dir)) return dir;
  const found = info.isDirectory
    ? `${path} is a folder without ${CONFIG_FILE} and ${MODEL_DIR}/${MODEL_JSON}`
    : `${path} is a file, not a run's ${MODEL_DIR}/${MODEL_JSON}`;
  throw new RunDirError(flag, value, found);
}
