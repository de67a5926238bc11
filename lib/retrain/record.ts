/**
 * What one retraining run has done so far, and its one way to end: a
 * {@linkcode RetrainResult} for the caller and a line in `RUNS/retrain.log`
 * ({@linkcode ./log.ts}), written once whether the run ends normally,
 * fails, or is stopped by a signal. A candidate that will never be judged
 * is deleted on the way out.
 *
 * @module
 */
import { join, resolve } from "node:path";
import {
  appendLog,
  appendLogSync,
  EXIT_CODES,
  type RetrainLogEntry,
  type RetrainOutcome,
} from "./log.ts";
import { CURRENT_LINK, type PromotionMetric } from "./promote.ts";

/** What a run did; `exitCode` is what the CLI exits with. */
export interface RetrainResult {
  outcome: RetrainOutcome;
  exitCode: number;
  /** One line for people. */
  message: string;
  /** Run folder name of the candidate, if one was started. */
  run: string | null;
  metric: PromotionMetric | null;
  metrics: { new: number | null; current: number | null };
  seconds: number;
  error: string | null;
}

function round(x: number | null, digits = 6): number | null {
  return x === null || !Number.isFinite(x) ? x : Number(x.toFixed(digits));
}

/** The state of one retraining run that its ending reports, and that ending. */
export class RetrainRecord {
  /** Name of the candidate run folder, once one is started. */
  run: string | null = null;
  /** Set once the candidate is judged: from then on it is never deleted as failed. */
  judged = false;
  /** The metric that judges the candidate, once known. */
  metric: PromotionMetric | null = null;
  /** The candidate's and the current model's scores, as they come. */
  readonly metrics: RetrainResult["metrics"] = { new: null, current: null };
  #ended = false;
  readonly #t0 = performance.now();

  constructor(readonly runs: string) {}

  /** Whether the run's log line has been written (or is being written). */
  get ended(): boolean {
    return this.#ended;
  }

  /** The result of ending now with `outcome`. */
  result(outcome: RetrainOutcome, message: string, error: string | null = null): RetrainResult {
    return {
      outcome,
      exitCode: EXIT_CODES[outcome],
      message,
      run: this.run,
      metric: this.metric,
      metrics: { new: round(this.metrics.new), current: round(this.metrics.current) },
      seconds: Math.round((performance.now() - this.#t0) / 100) / 10,
      error,
    };
  }

  /**
   * Ends the run with `r`: marks it ended, then appends its log line (an
   * error writing the log propagates, and then ends nothing more).
   */
  async end(r: RetrainResult): Promise<RetrainResult> {
    this.#ended = true;
    await appendLog(this.runs, entry(r));
    return r;
  }

  /**
   * Ends a failed run, unless it has ended already: deletes a candidate that
   * will not be judged and logs the failure (a log that cannot be written
   * then is left unwritten: the failure is still returned).
   */
  async fail(message: string): Promise<RetrainResult> {
    const r = this.result("failed", `failed: ${message}`, message);
    if (this.#ended) return r;
    this.discardCandidate();
    this.#ended = true;
    await appendLog(this.runs, entry(r)).catch(() => {});
    return r;
  }

  /** {@linkcode fail} for a signal handler, which must finish before the process exits. */
  failSync(error: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.discardCandidate();
    appendLogSync(this.runs, entry(this.result("failed", "interrupted", error)));
  }

  /**
   * Deletes a candidate that will never be judged (failed or interrupted): it is never resumed,
   * so failing nights would otherwise pile up run folders (the log keeps the error).
   */
  discardCandidate(): void {
    if (!this.run || this.judged) return;
    try {
      const target = Deno.readLinkSync(join(this.runs, CURRENT_LINK));
      if (resolve(this.runs, target) === resolve(this.runs, this.run)) return;
    } catch {
      // no current link
    }
    try {
      Deno.removeSync(join(this.runs, this.run), { recursive: true });
    } catch {
      // never created, or already gone
    }
  }
}

/** The log line of `r`. */
export function entry(r: RetrainResult): RetrainLogEntry {
  return {
    time: new Date().toISOString(),
    outcome: r.outcome,
    run: r.run,
    metric: r.metric,
    metrics: r.metrics,
    seconds: r.seconds,
    error: r.error,
    pid: Deno.pid,
  };
}
