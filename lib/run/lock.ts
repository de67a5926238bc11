/**
 * One writer per run folder: `train` (fresh or `--resume`, and so retrain's
 * candidate runs) holds `RUN/run.lock` while it writes the folder. The rules
 * are the retraining job's (lib/io/lock.ts): the lock file's `flock` decides
 * whether its holder is alive, and a stale lock (its process gone, even by
 * SIGKILL) is taken over, saying so.
 *
 * @module
 */
import { acquireLock, type RetrainLock } from "../io/lock.ts";
import { runPaths } from "./layout.ts";

/** Exit status of `train` when another process writes the run folder. */
export const RUN_IN_USE_EXIT = 3;

/** Another live process holds the run folder's lock. */
export class RunInUseError extends Error {
  /** The exit status scripts use for it ({@linkcode RUN_IN_USE_EXIT}). */
  readonly exitCode = RUN_IN_USE_EXIT;
  constructor(dir: string, pid: number | null, since: string | null, why: string) {
    super(
      pid === null
        ? `run folder in use: ${dir} (its lock ${runPaths(dir).lock} is being written; ${why})`
        : `run folder in use by pid ${pid} since ${since}: ${dir} (${why}); ` +
          "wait for it to finish, or choose another --out",
    );
    this.name = "RunInUseError";
  }
}

/** The lock of a run folder this process holds. */
export interface RunLock {
  /** The lock file. */
  path: string;
  /** A line saying whose stale lock was taken over, or null. */
  tookOver: string | null;
  /** Gives the lock up (removes the file). Idempotent. */
  release(): void;
}

/**
 * Takes the lock of run folder `dir` (which must exist).
 *
 * @throws {RunInUseError} when a live process holds it.
 */
export async function lockRunFolder(dir: string): Promise<RunLock> {
  const path = runPaths(dir).lock;
  const r = await acquireLock(path);
  if ("busy" in r) {
    throw new RunInUseError(dir, r.busy?.pid ?? null, r.busy?.startedAt ?? null, r.why);
  }
  const held: RetrainLock = r.held;
  const old = held.tookOver;
  return {
    path,
    tookOver: old
      ? `took over the stale lock ${path}` +
        (old.info ? ` of pid ${old.info.pid} (since ${old.info.startedAt})` : "") +
        `: ${old.why}`
      : null,
    release: () => held.release(),
  };
}
