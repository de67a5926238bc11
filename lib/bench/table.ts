/**
 * The benchmark table: one line per measured figure, as a Markdown table
 * (so it can be pasted into the README as printed), with the ratio always
 * oriented so that above 1 means the toolkit does better.
 *
 * @module
 */
import { betterRatio, type Summary } from "./stats.ts";

/** One line of the table (and one object of results.json). */
export interface Row {
  /** Id of the benchmark that produced the row (what `--only` takes). */
  id: string;
  /** What was measured, naming the peer. */
  what: string;
  unit: string;
  /** True for throughput; false for time and memory. */
  higherIsBetter: boolean;
  /** The toolkit's figure, or null when it could not be measured. */
  toolkit: Summary | null;
  /** The peer's figure, or null. */
  peer: Summary | null;
  /** Shown in the peer column when `peer` is null: "peer not installed", "n/a", ... */
  peerText?: string;
  /** Shown in the toolkit column when `toolkit` is null (e.g. "failed"). */
  toolkitText?: string;
  /** A fixed reference figure (a target) compared against when there is no peer program. */
  target?: number;
  /** A sentence printed under the table. */
  note?: string;
  /**
   * The TensorFlow.js backend the toolkit's figure ran on, as its workload
   * reported it (`tensorflow`, `wasm`, `cpu`); absent for rows that run no
   * TensorFlow (preprocess, reader, all-reduce).
   */
  backend?: string;
}

/** Groups digits by thousands: 1234567 -> "1,234,567". */
function groupThousands(s: string): string {
  const [int, frac] = s.split(".");
  const sign = int.startsWith("-") ? "-" : "";
  const digits = sign ? int.slice(1) : int;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + grouped + (frac !== undefined ? `.${frac}` : "");
}

/**
 * A figure with three significant digits (no exponent), digits grouped:
 * 1234.5 -> "1,235", 12.345 -> "12.3", 0.012345 -> "0.0123", 0 -> "0".
 */
export function formatFigure(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, 2 - magnitude);
  // Rounding may carry into a new digit (999.6 -> 1000): fine, still 3+ significant.
  return groupThousands(x.toFixed(decimals));
}

/** A ratio with two decimals and an `x`: 1.234 -> "1.23x". */
export function formatRatio(r: number | null): string {
  return r === null ? "-" : `${r >= 100 ? r.toFixed(0) : r.toFixed(2)}x`;
}

/** The ratio of a row (above 1: the toolkit does better), against the peer or the target. */
export function rowRatio(row: Row): number | null {
  const t = row.toolkit?.median ?? null;
  const p = row.peer?.median ?? row.target ?? null;
  return betterRatio(t, p, row.higherIsBetter);
}

/** The text of each column of a row, in table order. */
export function rowCells(row: Row): string[] {
  const toolkit = row.toolkit ? formatFigure(row.toolkit.median) : row.toolkitText ?? "failed";
  let peer: string;
  if (row.peer) peer = formatFigure(row.peer.median);
  else if (row.target !== undefined) peer = `${formatFigure(row.target)} (target)`;
  else peer = row.peerText ?? "n/a";
  const unit = row.higherIsBetter ? row.unit : `${row.unit} (lower is better)`;
  return [row.id, row.what, toolkit, peer, formatRatio(rowRatio(row)), unit, row.backend ?? "-"];
}

/** Column headers of the table. */
export const TABLE_HEADER: readonly string[] = [
  "id",
  "measured",
  "toolkit",
  "peer",
  "ratio (>1: toolkit better)",
  "unit",
  "backend",
];

/** Pads `s` to `width` (right-aligned when `right`). */
function pad(s: string, width: number, right: boolean): string {
  return right ? s.padStart(width) : s.padEnd(width);
}

/**
 * Renders rows as an aligned Markdown table, followed by the rows' notes
 * numbered as they are referenced from the `measured` column.
 */
export function renderTable(rows: readonly Row[]): string {
  const notes: string[] = [];
  const body = rows.map((r) => {
    const cells = rowCells(r);
    if (r.note) {
      notes.push(r.note);
      cells[1] = `${cells[1]} [${notes.length}]`;
    }
    return cells;
  });
  const all = [[...TABLE_HEADER], ...body];
  const widths = TABLE_HEADER.map((_, c) => Math.max(3, ...all.map((r) => r[c].length)));
  // Figures right-aligned, text left-aligned.
  const right = [false, false, true, true, true, false, false];
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => pad(c, widths[i], right[i])).join(" | ")} |`;
  const rule = `|${
    widths.map((w, i) => (right[i] ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")
  }|`;
  const out = [line(all[0]), rule, ...body.map(line)];
  if (notes.length) {
    out.push("");
    notes.forEach((n, i) => out.push(`[${i + 1}] ${n}`));
  }
  return out.join("\n");
}
