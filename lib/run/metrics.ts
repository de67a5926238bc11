/**
 * A run's `metrics.jsonl`: one JSON line per finished epoch, appended as
 * training goes. A resumed run first drops the lines its checkpoint does not
 * include (epochs finished after the last checkpoint that reached the disk),
 * so the file never lists an epoch twice.
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";
import { runPaths } from "./layout.ts";

/** Appends one epoch's row to `RUN/metrics.jsonl`. */
export async function appendMetricsRow(dir: string, row: { epoch: number }): Promise<void> {
  await Deno.writeTextFile(runPaths(dir).metrics, JSON.stringify(row) + "\n", { append: true });
}

/** What {@linkcode keepEpochs} removed from `metrics.jsonl`. */
export interface MetricsTrim {
  /** Epochs whose lines were dropped (finished after the checkpoint). */
  dropped: number[];
  /** Lines that were not whole JSON rows (cut short by a full disk or a kill), 1-based. */
  damaged: number[];
}

/**
 * Keeps the lines of epochs `1..epochsDone` of `RUN/metrics.jsonl` (the first
 * of each), dropping later epochs and lines cut short; rewrites the file
 * atomically when anything is dropped.
 */
export async function keepEpochs(dir: string, epochsDone: number): Promise<MetricsTrim> {
  const path = runPaths(dir).metrics;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { dropped: [], damaged: [] };
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  const keep: string[] = [];
  const seen = new Set<number>();
  const trim: MetricsTrim = { dropped: [], damaged: [] };
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let epoch: unknown;
    try {
      epoch = JSON.parse(line).epoch;
    } catch {
      trim.damaged.push(i + 1);
      return;
    }
    if (typeof epoch !== "number") trim.damaged.push(i + 1);
    else if (epoch > epochsDone || seen.has(epoch)) trim.dropped.push(epoch);
    else {
      seen.add(epoch);
      keep.push(line);
    }
  });
  if (trim.dropped.length || trim.damaged.length) {
    await writeFileAtomic(path, keep.map((l) => l + "\n").join(""));
  }
  return trim;
}
