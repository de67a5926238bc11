/**
 * Transfer progress: rate over a sliding window, time left, and the
 * human-readable line the scripts print.
 *
 * @module
 */

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

/** `1536` -> `"1.5 KiB"`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/** `3725` -> `"1h02m"`, `65` -> `"1m05s"`, `7.4` -> `"7s"`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
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
