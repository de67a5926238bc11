/**
 * The retraining job's outcomes, their exit codes, and `RUNS/retrain.log`:
 * one JSON line per run, appended, for people and monitoring to read.
 *
 * @module
 */
import { join } from "node:path";

/** How a retraining run ended. */
export type RetrainOutcome = "promoted" | "not_promoted" | "nothing_new" | "failed" | "busy";

/**
 * Exit status per outcome, for a scheduler: 0 promoted or nothing to do,
 * 1 failed, 2 trained but not promoted, 3 another run holds the lock.
 */
export const EXIT_CODES: Readonly<Record<RetrainOutcome, number>> = {
  promoted: 0,
  nothing_new: 0,
  failed: 1,
  not_promoted: 2,
  busy: 3,
};

/** Name of the log inside the runs folder. */
export const LOG_FILE = "retrain.log";

/** One line of `retrain.log`. */
export interface RetrainLogEntry {
  /** ISO time the line was written (the end of the run). */
  time: string;
  outcome: RetrainOutcome;
  /** The run folder trained by this run (its name inside the runs folder), if any. */
  run: string | null;
  /** Metric the candidate was judged by, on the test split of the new dataset. */
  metric: string | null;
  metrics: { new: number | null; current: number | null };
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  /** Why it failed, or who holds the lock when busy; null otherwise. */
  error: string | null;
  pid: number;
}

function line(entry: RetrainLogEntry): string {
  return JSON.stringify(entry) + "\n";
}

/** Appends one entry to `RUNS/retrain.log` (O_APPEND: concurrent lines never interleave). */
export async function appendLog(runs: string, entry: RetrainLogEntry): Promise<void> {
  await Deno.writeTextFile(join(runs, LOG_FILE), line(entry), { append: true, create: true });
}

/** {@linkcode appendLog} for a signal handler, which must finish before the process exits. */
export function appendLogSync(runs: string, entry: RetrainLogEntry): void {
  Deno.writeTextFileSync(join(runs, LOG_FILE), line(entry), { append: true, create: true });
}

/** Every entry of `RUNS/retrain.log`, oldest first (an unreadable line is an error naming it). */
export async function readLog(runs: string): Promise<RetrainLogEntry[]> {
  const path = join(runs, LOG_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").map((l, i) => [l, i + 1] as const).filter(([l]) => l.trim() !== "")
    .map(([l, n]) => {
      try {
        return JSON.parse(l) as RetrainLogEntry;
      } catch {
        throw new Error(`${path}:${n} is not a JSON line`);
      }
    });
}
