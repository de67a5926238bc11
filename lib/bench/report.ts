/**
 * `bench/results.json`: the table's rows as JSON, one object per row, each
 * with the commands that produced it, every sample and run, the machine
 * and the versions, so a figure can be traced and reproduced.
 *
 * @module
 */
import { readJson, writeJsonAtomic } from "../io/atomic.ts";
import type { MachineFacts, Versions } from "./machine.ts";
import type { BenchRow, VariantRuns } from "./suite.ts";
import { shellQuote } from "./suite.ts";
import { rowRatio } from "./table.ts";
import type { Summary } from "./stats.ts";

/** One run of a command as results.json records it. */
export interface RunRecord {
  ok: boolean;
  /** The command's own result line. */
  result: Record<string, unknown> | null;
  wallSeconds: number | null;
  /** Peak RSS figure used (max of the two below), KiB. */
  peakRssKiB: number | null;
  /** Sum of the process tree's VmHWM from /proc, KiB. */
  treePeakKiB: number | null;
  /** GNU time's %M (largest process), KiB. */
  gnuTimeMaxKiB: number | null;
  /** Largest simultaneous VmRSS sum seen, KiB. */
  concurrentPeakKiB: number | null;
  error: string | null;
}

/** One side (toolkit or peer) of a row. */
export interface SideRecord {
  label: string;
  command: string;
  argv: string[];
  /** The row's figure for this side; null when it has none. */
  figure: Summary | null;
  status: "measured" | "failed" | "not installed";
  error: string | null;
  /** 1-minute load average before each counted run. */
  loadavg: number[];
  runs: RunRecord[];
  warmups: RunRecord[];
}

/** One object of results.json. */
export interface RowRecord {
  id: string;
  what: string;
  /** The TensorFlow.js backend of the toolkit's figure; null for rows that run no TensorFlow. */
  backend: string | null;
  unit: string;
  higherIsBetter: boolean;
  /** Above 1: the toolkit does better. */
  ratio: number | null;
  /** How the ratio was computed. */
  ratioMeaning: string;
  toolkit: SideRecord | null;
  peer: SideRecord | null;
  /** Other commands the figure depends on (e.g. the 1-replica run of the scaling row). */
  others: SideRecord[];
  target: number | null;
  note: string | null;
  quick: boolean;
  settings: Record<string, unknown>;
  finishedAt: string;
  machine: MachineFacts;
  versions: Versions;
}

function runRecord(r: VariantRuns["runs"][number]): RunRecord {
  const m = r.monitor;
  return {
    ok: r.ok,
    result: r.result,
    wallSeconds: m?.wallSeconds ?? null,
    peakRssKiB: m?.peakKiB ?? null,
    treePeakKiB: m?.treePeakKiB ?? null,
    gnuTimeMaxKiB: m?.gnuTimeMaxKiB ?? null,
    concurrentPeakKiB: m?.concurrentPeakKiB ?? null,
    error: r.error,
  };
}

function sideRecord(vr: VariantRuns | undefined, figure: Summary | null): SideRecord | null {
  if (!vr) return null;
  return {
    label: vr.variant.label,
    command: shellQuote(vr.variant.argv),
    argv: vr.variant.argv,
    figure,
    status: vr.skipped ? "not installed" : vr.failed ? "failed" : "measured",
    error: vr.skipped ?? vr.failed,
    loadavg: vr.loadavg,
    runs: vr.runs.map(runRecord),
    warmups: vr.warmups.map(runRecord),
  };
}

/** How a row's ratio reads. */
export function ratioMeaning(row: BenchRow): string {
  const other = row.peer ? "peer" : row.target !== undefined ? "target" : null;
  if (other === null) return "no ratio (nothing to compare with)";
  return row.higherIsBetter
    ? `toolkit / ${other} (higher is better)`
    : `${other} / toolkit (the toolkit's figure is lower-is-better; ratio above 1: toolkit better)`;
}

/** The results.json object of a row. */
export function rowRecord(
  row: BenchRow,
  context: {
    quick: boolean;
    settings: Record<string, unknown>;
    machine: MachineFacts;
    versions: Versions;
  },
): RowRecord {
  return {
    id: row.id,
    what: row.what,
    backend: row.backend ?? null,
    unit: row.unit,
    higherIsBetter: row.higherIsBetter,
    ratio: rowRatio(row),
    ratioMeaning: ratioMeaning(row),
    toolkit: sideRecord(row.sources.toolkit, row.toolkit),
    peer: sideRecord(row.sources.peer, row.peer),
    others: (row.sources.others ?? []).map((vr) => sideRecord(vr, null)!),
    target: row.target ?? null,
    note: row.note ?? null,
    quick: context.quick,
    settings: context.settings,
    finishedAt: new Date().toISOString(),
    machine: context.machine,
    versions: context.versions,
  };
}

/**
 * Writes `records` to `path`, keeping the rows of benchmarks not run this
 * time (so `--only` updates its own rows), in the order of `order`.
 */
export async function writeResults(
  path: string,
  records: readonly RowRecord[],
  order: readonly string[],
): Promise<RowRecord[]> {
  let old: RowRecord[] = [];
  try {
    const parsed = await readJson<unknown>(path);
    if (Array.isArray(parsed)) old = parsed as RowRecord[];
  } catch {
    // no previous results (or unreadable: replaced)
  }
  const fresh = new Set(records.map((r) => r.id));
  const merged = [...old.filter((r) => !fresh.has(r.id)), ...records];
  const rank = (id: string) => {
    const i = order.indexOf(id);
    return i < 0 ? order.length : i;
  };
  // A stable sort keeps each benchmark's rows in the order it produced them.
  merged.sort((a, b) => rank(a.id) - rank(b.id));
  await writeJsonAtomic(path, merged);
  return merged;
}
