/**
 * Opening a run folder for training, fresh or `--resume`, in the order that
 * keeps one writer and a consistent history:
 *
 * 1. create the folder and take its lock ({@linkcode ./lock.ts}; exit 3 when
 *    another process writes it);
 * 2. fresh: refuse a folder that already holds a run. Resume: load the
 *    checkpoint, verified (a damaged one is refused, naming the file), and
 *    check the recorded settings allow resuming with the new ones;
 * 3. drop the `metrics.jsonl` lines of epochs the checkpoint does not
 *    include (finished after the last checkpoint that reached the disk,
 *    e.g. before a full disk or a kill), and temporary files a killed write
 *    left behind;
 * 4. write `config.json`.
 *
 * Every step that changed something is said in {@linkcode TrainingFolder.notes}.
 *
 * @module
 */
import { join } from "node:path";
import { DigestMismatchError, NO_VERIFY_FLAG } from "../io/verify.ts";
import { type Checkpoint, loadCheckpoint } from "../train/checkpoint.ts";
import { readRunConfig, resumeConflict, type RunConfig, writeRunConfig } from "./config.ts";
import { CHECKPOINT_DIR, MODEL_DIR, RUN_MARKERS, runPaths } from "./layout.ts";
import { lockRunFolder, type RunLock } from "./lock.ts";
import { keepEpochs } from "./metrics.ts";

/** A run folder opened for training. */
export interface TrainingFolder {
  dir: string;
  /** The lock (null in replicas other than the lead, which write nothing). */
  lock: RunLock | null;
  /** The checkpoint to resume from, or null to start at epoch 1. */
  checkpoint: Checkpoint | null;
  /** What opening the folder found or changed, one line each, for the console. */
  notes: string[];
}

/** How to open the folder. */
export interface TrainingFolderOptions {
  /** Continue from the checkpoint (`--resume`). */
  resume: boolean;
  /** Whether this process writes the folder (rank 0 of a mirrored run). */
  lead: boolean;
  /** Check the checkpoint against its recorded SHA-256 (default true; `--no-verify`). */
  verify?: boolean;
  /** The config of this session, written (by the lead) once the folder is open. */
  config: RunConfig;
}

/**
 * Opens run folder `dir` for training; see the module doc. The caller
 * releases {@linkcode TrainingFolder.lock} when done.
 *
 * @throws {RunInUseError} when another live process holds the folder.
 * @throws {DigestMismatchError} when the checkpoint is damaged.
 */
export async function openTrainingFolder(
  dir: string,
  o: TrainingFolderOptions,
): Promise<TrainingFolder> {
  const notes: string[] = [];
  let lock: RunLock | null = null;
  if (o.lead) {
    await Deno.mkdir(dir, { recursive: true });
    lock = await lockRunFolder(dir);
    if (lock.tookOver) notes.push(lock.tookOver);
  }
  try {
    if (!o.resume) {
      if (o.lead) await assertNoRun(dir);
      if (o.lead) await writeRunConfig(dir, o.config);
      return { dir, lock, checkpoint: null, notes };
    }
    const checkpoint = await resumePoint(dir, o, notes);
    if (o.lead) {
      const trim = await keepEpochs(dir, checkpoint?.state.epoch ?? 0);
      if (trim.dropped.length) {
        notes.push(
          `dropped the ${runPaths(dir).metrics} lines of epoch(s) ${trim.dropped.join(", ")}: ` +
            "finished after the last checkpoint that reached the disk, they are trained again",
        );
      }
      if (trim.damaged.length) {
        notes.push(
          `dropped cut-short line(s) ${trim.damaged.join(", ")} of ${runPaths(dir).metrics}`,
        );
      }
      const removed = await removeTemporaryFiles(dir);
      if (removed.length) notes.push(`removed ${removed.length} unfinished temporary file(s)`);
      await writeRunConfig(dir, o.config);
    }
    return { dir, lock, checkpoint, notes };
  } catch (e) {
    lock?.release();
    throw e;
  }
}

/** The checkpoint of a resumed run (verified, settings checked), or null with a note. */
async function resumePoint(
  dir: string,
  o: TrainingFolderOptions,
  notes: string[],
): Promise<Checkpoint | null> {
  const paths = runPaths(dir);
  let checkpoint;
  try {
    checkpoint = await loadCheckpoint(paths.checkpointDir, o.verify ?? true);
  } catch (e) {
    if (!(e instanceof DigestMismatchError)) throw e;
    throw new DigestMismatchError(
      e.path,
      e.expected,
      e.actual,
      "the checkpoint cannot be resumed from. Train again into a new --out " +
        `(the best model so far is in ${paths.modelDir}), or resume with ${NO_VERIFY_FLAG} ` +
        "to use the checkpoint anyway",
    );
  }
  if (!checkpoint) {
    notes.push(`no checkpoint in ${paths.checkpointDir}: starting at epoch 1`);
    return null;
  }
  if (!checkpoint.verified && (o.verify ?? true)) {
    notes.push(`${paths.checkpointDir} was written before checkpoints recorded SHA-256 digests`);
  }
  const old = await readRunConfig(dir, o.verify ?? true);
  const conflict = resumeConflict(old.config, o.config, dir);
  if (conflict) throw new Error(conflict);
  return checkpoint;
}

/** Throws when `dir` already holds a run (anything but an unheld lock). */
async function assertNoRun(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (RUN_MARKERS.includes(e.name)) {
      throw new Error(
        `${dir} already holds a run: use --resume to continue it, or choose another --out`,
      );
    }
  }
}

/** Removes the temporary files of atomic writes a kill interrupted (lib/io/atomic.ts names them `.NAME.PID.RAND.tmp`). */
async function removeTemporaryFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const sub of ["", CHECKPOINT_DIR, MODEL_DIR]) {
    const folder = join(dir, sub);
    try {
      for await (const e of Deno.readDir(folder)) {
        if (e.isFile && /^\..+\.\d+\.[0-9a-f]+\.tmp$/.test(e.name)) {
          await Deno.remove(join(folder, e.name));
          removed.push(join(folder, e.name));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return removed;
}
