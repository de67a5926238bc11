/**
 * The benchmark runner: each benchmark prepares its inputs and a plan (the
 * commands to measure, toolkit and peers, and how many repetitions), the
 * runner measures the commands one at a time, interleaved (t, p, t, p,
 * ...: a slow minute on a shared machine then hurts both sides alike),
 * after the plan's warm-up repetitions, and the benchmark turns the
 * samples into table rows.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { PEER_PYTHON, type PythonVersions } from "./machine.ts";
import { runMeasured, type RunResult } from "./process.ts";
import { summarize, type Summary } from "./stats.ts";
import type { Row } from "./table.ts";
import { WORKLOAD_PERMISSIONS } from "./workload.ts";

/** Whose program a command is. */
export type Role = "toolkit" | "peer";

/** One command a benchmark measures. */
export interface Variant {
  /** Key within its benchmark, e.g. `toolkit`, `pillow-plain`. */
  key: string;
  /** What a reader calls it, e.g. "Pillow plain script (1 process)". */
  label: string;
  role: Role;
  argv: string[];
  /** Python modules a peer imports; when one is missing the peer is "not installed". */
  requires?: readonly ("numpy" | "PIL" | "torch" | "torchvision")[];
  /**
   * Per-run deadline, seconds, sized to the work (lib/bench/benchmarks.ts
   * `deadline`): a run that outlasts it is killed and its row fails saying so.
   */
  timeoutSeconds: number;
  /** Environment variables added for this variant's runs. */
  env?: Record<string, string>;
}

/** The measured runs of one variant. */
export interface VariantRuns {
  variant: Variant;
  /** Warm-up runs (not counted). */
  warmups: RunResult[];
  /** Counted runs, in order. */
  runs: RunResult[];
  /** Load average (1 min) just before each counted run. */
  loadavg: number[];
  /** Why the variant was not run ("peer not installed"), or null. */
  skipped: string | null;
  /** The first error, after which the variant was not run again. */
  failed: string | null;
}

/** What a benchmark will run. */
export interface Plan {
  variants: Variant[];
  warmupReps: number;
  reps: number;
  /** Builds the table rows from the runs, by variant key. */
  rows(results: ReadonlyMap<string, VariantRuns>): BenchRow[];
  /** Inputs and settings, recorded in results.json. */
  settings: Record<string, unknown>;
}

/** A table row with the runs its figures came from (for results.json). */
export interface BenchRow extends Row {
  sources: { toolkit?: VariantRuns; peer?: VariantRuns; others?: VariantRuns[] };
}

/** What every benchmark gets to prepare its plan. */
export interface SuiteContext {
  quick: boolean;
  /** Progress lines (stderr). */
  log(line: string): void;
  /** bench/versions.py's report, or null when the peers' Python is missing. */
  python: PythonVersions | null;
}

/** One benchmark: an id (`--only`), a description (`--list`), and its plan. */
export interface Benchmark {
  id: string;
  /** One line for `--list` and the README. */
  description: string;
  prepare(ctx: SuiteContext): Promise<Plan>;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** The command line of a toolkit workload: `deno run --config deno.json ... bench/workloads/NAME.ts ARGS`. */
export function workloadCommand(name: string, args: readonly string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--config",
    CONFIG,
    ...WORKLOAD_PERMISSIONS,
    `${ROOT}bench/workloads/${name}.ts`,
    ...args,
  ];
}

/** The command line of a Python peer: `/usr/bin/python3 bench/NAME.py ARGS`. */
export function peerCommand(name: string, args: readonly string[]): string[] {
  return [PEER_PYTHON, `${ROOT}bench/${name}.py`, ...args];
}

/** The modules of `requires` that bench/versions.py found missing (all of them without Python). */
export function missingModules(
  requires: readonly string[],
  python: PythonVersions | null,
): string[] {
  if (python === null) return [...requires];
  const have: Record<string, string | null> = {
    numpy: python.numpy,
    PIL: python.PIL,
    torch: python.torch,
    torchvision: python.torchvision,
  };
  return requires.filter((m) => !have[m]);
}

/** A command line as one shell-quoted string, for results.json and the README. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`))
    .join(" ");
}

/** Per counted run, `pick(run)` where the run succeeded and gave a finite number. */
export function runValues(
  vr: VariantRuns | undefined,
  pick: (r: RunResult) => number | null | undefined,
): number[] {
  if (!vr) return [];
  return vr.runs.filter((r) => r.ok).map(pick).filter((x): x is number =>
    typeof x === "number" && Number.isFinite(x)
  );
}

/** A numeric field of the result line of each successful run. */
export function resultValues(vr: VariantRuns | undefined, field: string): number[] {
  return runValues(vr, (r) => {
    const v = r.result?.[field];
    return typeof v === "number" ? v : null;
  });
}

/** Peak resident memory of each successful run, MiB. */
export function peakRssMiB(vr: VariantRuns | undefined): number[] {
  return runValues(vr, (r) => (r.monitor ? r.monitor.peakKiB / 1024 : null));
}

/** Summary of `values`, or null when there are none. */
export function summaryOrNull(values: readonly number[]): Summary | null {
  return values.length ? summarize(values) : null;
}

/** Why a variant has no figure: not installed, failed (with the error), or no runs. */
export function absentText(vr: VariantRuns | undefined): string {
  if (!vr) return "n/a";
  if (vr.skipped) return vr.skipped;
  if (vr.failed) return "failed";
  return "n/a";
}

/**
 * The backend a toolkit variant's runs report (the `backend` field of the
 * first successful run's result), or undefined when it reports none.
 */
export function reportedBackend(vr: VariantRuns | undefined): string | undefined {
  const b = vr?.runs.find((r) => r.ok && typeof r.result?.backend === "string")?.result?.backend;
  return typeof b === "string" ? b : undefined;
}

/** Options of {@linkcode compareRow}. */
export interface CompareOptions {
  id: string;
  what: string;
  unit: string;
  higherIsBetter: boolean;
  toolkit: VariantRuns | undefined;
  peer?: VariantRuns;
  /** Figures of a run. */
  values(vr: VariantRuns | undefined): number[];
  target?: number;
  note?: string;
}

/** A row comparing a toolkit variant with a peer variant (or a target); failures become notes. */
export function compareRow(o: CompareOptions): BenchRow {
  const notes = [o.note ?? ""];
  for (const vr of [o.toolkit, o.peer]) {
    if (vr?.failed) notes.push(`${vr.variant.label} failed: ${vr.failed}`);
  }
  return {
    id: o.id,
    what: o.what,
    unit: o.unit,
    higherIsBetter: o.higherIsBetter,
    toolkit: summaryOrNull(o.values(o.toolkit)),
    toolkitText: absentText(o.toolkit),
    peer: o.peer ? summaryOrNull(o.values(o.peer)) : null,
    peerText: o.peer ? absentText(o.peer) : "n/a",
    target: o.target,
    note: notes.filter((n) => n !== "").join(" ") || undefined,
    backend: reportedBackend(o.toolkit),
    sources: { toolkit: o.toolkit, peer: o.peer },
  };
}

/** Progress of the runner, for the log. */
function describeRun(vr: VariantRuns, r: RunResult, label: string): string {
  if (!r.ok) return `${label} ${vr.variant.label}: FAILED: ${r.error}`;
  const figures = Object.entries(r.result ?? {})
    .filter(([k, v]) => typeof v === "number" && /per_sec|^ms$|gb_per_s/.test(k))
    .map(([k, v]) => `${k} ${(v as number).toPrecision(4)}`);
  const mem = r.monitor ? `, peak RSS ${(r.monitor.peakKiB / 1024).toFixed(0)} MiB` : "";
  return `${label} ${vr.variant.label}: ${figures.join(", ")}${mem}`;
}

/**
 * Runs a plan: the warm-up repetitions, then the counted ones, each
 * repetition running every variant once in order. A variant that fails is
 * not run again; a peer whose modules are missing is not run at all.
 */
export async function runPlan(
  id: string,
  plan: Plan,
  ctx: SuiteContext,
  runner: (
    argv: string[],
    timeoutSeconds?: number,
    env?: Record<string, string>,
  ) => Promise<RunResult> = (argv, t, env) => runMeasured({ argv, timeoutSeconds: t, env }),
): Promise<Map<string, VariantRuns>> {
  const results = new Map<string, VariantRuns>();
  for (const v of plan.variants) {
    const missing = missingModules(v.requires ?? [], ctx.python);
    results.set(v.key, {
      variant: v,
      warmups: [],
      runs: [],
      loadavg: [],
      skipped: missing.length
        ? `peer not installed (${PEER_PYTHON} cannot import ${missing.join(", ")})`
        : null,
      failed: null,
    });
    if (missing.length) {
      ctx.log(`[${id}] ${v.label}: not installed (missing ${missing.join(", ")})`);
    }
  }
  const total = plan.warmupReps + plan.reps;
  for (let rep = 0; rep < total; rep++) {
    const warm = rep < plan.warmupReps;
    const label = warm
      ? `[${id}] warm-up ${rep + 1}/${plan.warmupReps}`
      : `[${id}] rep ${rep - plan.warmupReps + 1}/${plan.reps}`;
    for (const vr of results.values()) {
      if (vr.skipped || vr.failed) continue;
      const load = Deno.loadavg()[0];
      const r = await runner(vr.variant.argv, vr.variant.timeoutSeconds, vr.variant.env);
      if (warm) vr.warmups.push(r);
      else {
        vr.runs.push(r);
        vr.loadavg.push(load);
      }
      if (!r.ok) vr.failed = r.error;
      ctx.log(describeRun(vr, r, label));
    }
  }
  return results;
}
