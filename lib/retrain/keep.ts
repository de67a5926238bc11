/**
 * Naming the retraining job's run folders and deleting old ones.
 *
 * The job names its runs `run-YYYYMMDDTHHMMSSZ` (UTC start time, `-2`, `-3`
 * if taken), so name order is age order, and it only ever deletes folders so
 * named: runs made by hand in the same folder (`deno task train --out
 * RUNS/r1`) are never touched. Datasets live in `RUNS/datasets/<key>`; one
 * is deleted when no run left in the runs folder was trained on it.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { readRecordedDatasetDir } from "../run/config.ts";

/** Names of the job's run folders. */
export const RUN_NAME = /^run-\d{8}T\d{6}Z(-\d+)?$/;

/** Folder of the job's datasets inside the runs folder. */
export const DATASETS_DIR = "datasets";

/** A new run name for a run starting at `now`, not among `taken`. */
export function newRunName(now: Date, taken: ReadonlySet<string>): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
  const base = `run-${stamp}`;
  if (!taken.has(base)) return base;
  for (let k = 2;; k++) if (!taken.has(`${base}-${k}`)) return `${base}-${k}`;
}

/** Every entry name in `dir` (empty if it does not exist). */
async function names(dir: string, folders = true): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (!folders || e.isDirectory) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/** The job's run folders in `runs`, oldest first. */
export async function listRuns(runs: string): Promise<string[]> {
  return (await names(runs)).filter((n) => RUN_NAME.test(n)).sort();
}

/** Every name in the runs folder (files too), so a new run name collides with nothing. */
export async function takenNames(runs: string): Promise<Set<string>> {
  return new Set(await names(runs, false));
}

/**
 * Deletes the job's run folders beyond the newest `keep`, never one in
 * `protect` (absolute paths: the current run's target, the run just
 * trained). Returns the names deleted.
 */
export async function pruneRuns(
  runs: string,
  keep: number,
  protect: readonly string[],
): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`--keep must be >= 1, got ${keep}`);
  const spared = new Set(protect.map((p) => resolve(p)));
  const all = await listRuns(runs);
  const old = all.slice(0, Math.max(0, all.length - keep));
  const deleted: string[] = [];
  for (const name of old) {
    const dir = resolve(runs, name);
    if (spared.has(dir)) continue;
    await Deno.remove(dir, { recursive: true });
    deleted.push(name);
  }
  return deleted;
}

/**
 * Deletes the folders of `RUNS/datasets/` that no run folder in `runs` (nor
 * `extra`, e.g. the current run's target when it lives elsewhere) was
 * trained on, except those in `protect`. Returns the names deleted.
 */
export async function pruneDatasets(
  runs: string,
  protect: readonly string[],
  extra: readonly string[] = [],
): Promise<string[]> {
  const used = new Set(protect.map((p) => resolve(p)));
  const runDirs = [...(await names(runs)).map((n) => join(runs, n)), ...extra];
  for (const dir of runDirs) {
    const d = await readRecordedDatasetDir(dir);
    if (d) used.add(d);
  }
  const root = join(runs, DATASETS_DIR);
  const deleted: string[] = [];
  for (const name of (await names(root)).sort()) {
    if (used.has(resolve(root, name))) continue;
    await Deno.remove(join(root, name), { recursive: true });
    deleted.push(name);
  }
  return deleted;
}
