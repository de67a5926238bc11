/**
 * Transfer progress: rate over a sliding window, time left, and the
 * human-readable line the scripts print.
 *
 * @module
 */
import { formatBytes, formatDuration } from "../cli.ts";

/** One reading of a transfer's progress. */
export interface ProgressSnapshot {
  /** Bytes of the file present so far (resumed bytes included). */
  done: number;
  /** Size of the whole file, when known. */
  total?: number;
  /** Recent transfer rate in bytes per second (0 until two readings). */
  bytesPerSecond: number;
  /** Seconds left at the recent rate, when the total and a rate are known. */
  etaSeconds?: number;
}

/**
 * Turns byte counts into rate and ETA. The rate is measured over the last
 * `windowMs` of readings so it follows the network, and bytes resumed from
 * an earlier run do not inflate it.
 */
export class ProgressMeter {
  #samples: { t: number; bytes: number }[] = [];

  constructor(
    readonly total: number | undefined,
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 10_000,
  ) {}

  /** Records that `done` bytes are present now and returns the snapshot. */
  update(done: number): ProgressSnapshot {
    const t = this.now();
    this.#samples.push({ t, bytes: done });
    while (this.#samples.length > 2 && t - this.#samples[0].t > this.windowMs) {
      this.#samples.shift();
    }
    const first = this.#samples[0];
    const dt = (t - first.t) / 1000;
    const bytesPerSecond = dt > 0 ? Math.max(0, done - first.bytes) / dt : 0;
    const snap: ProgressSnapshot = { done, total: this.total, bytesPerSecond };
    if (this.total !== undefined && bytesPerSecond > 0) {
      snap.etaSeconds = Math.max(0, this.total - done) / bytesPerSecond;
    }
    return snap;
  }
}

/** `"images_test_rev1.zip  12.0 MiB / 48.0 MiB  25%  3.00 MiB/s  ETA 12s"`. */
export function describeProgress(label: string, p: ProgressSnapshot): string {
  const parts = [label];
  if (p.total !== undefined && p.total > 0) {
    const pct = Math.min(100, Math.floor((p.done / p.total) * 100));
    parts.push(`${formatBytes(p.done)} / ${formatBytes(p.total)}`, `${pct}%`);
  } else {
    parts.push(formatBytes(p.done));
  }
  parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
  parts.push(p.etaSeconds === undefined ? "ETA --" : `ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join("  ");
}
