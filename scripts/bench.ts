/**
 * `deno task bench [--quick] [--only ID[,ID...]] [--list] [--out FILE]`:
 * measures the toolkit against its Python peers and prints one table; the
 * same rows go to bench/results.json. See lib/bench/ and bench/.
 *
 * Exit status: 0 when every toolkit figure was measured, 1 when one
 * failed, 2 usage error.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { BENCHMARKS } from "../lib/bench/benchmarks.ts";
import {
  collectVersions,
  machineFacts,
  PEER_PYTHON,
  pythonVersions,
} from "../lib/bench/machine.ts";
import { type RowRecord, rowRecord, writeResults } from "../lib/bench/report.ts";
import { type BenchRow, runPlan, type SuiteContext } from "../lib/bench/suite.ts";
import { renderTable } from "../lib/bench/table.ts";
import { runMeasured } from "../lib/bench/process.ts";
import { runMain, UsageError } from "../lib/cli.ts";
import { parseTask } from "../lib/flags.ts";
import { BENCH_TASK } from "../lib/tasks/bench.ts";

const DEFAULT_OUT = fileURLToPath(new URL("../bench/results.json", import.meta.url));

await runMain(async () => {
  const flags = parseTask(BENCH_TASK, Deno.args);
  if (flags.list) {
    const width = Math.max(...BENCHMARKS.map((b) => b.id.length));
    for (const b of BENCHMARKS) console.log(`${b.id.padEnd(width)}  ${b.description}`);
    return 0;
  }
  const ids = BENCHMARKS.map((b) => b.id);
  const wanted = flags.only?.split(",").map((s) => s.trim()).filter((s) => s !== "") ?? ids;
  const unknown = wanted.filter((id) => !ids.includes(id));
  if (unknown.length) {
    throw new UsageError(`unknown benchmark ${unknown.join(", ")}: use one of ${ids.join(", ")}`);
  }
  const selected = BENCHMARKS.filter((b) => wanted.includes(b.id));
  const quick = flags.quick;
  const out = flags.out ?? DEFAULT_OUT;
  const log = (line: string) => console.error(line);

  const machine = machineFacts();
  const python = await pythonVersions();
  const versions = collectVersions(python);
  log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryMiB} MiB, ` +
      `${machine.os}, load ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
  );
  log(
    `versions: deno ${versions.deno}, tfjs ${versions.tfjs}, sharp ${versions.sharp}; ` +
      (python
        ? `${PEER_PYTHON}: Python ${versions.python}, torch ${versions.torch}, ` +
          `torchvision ${versions.torchvision}, Pillow ${versions.Pillow}, numpy ${versions.numpy}`
        : `${PEER_PYTHON} not found: every peer is reported as not installed`),
  );
  log(`${quick ? "quick" : "full"} run of: ${selected.map((b) => b.id).join(", ")}`);
  const load = Deno.loadavg()[0];
  if (load > 0.5 * machine.cores) {
    log(
      `warning: the machine is busy (load ${load.toFixed(2)} on ${machine.cores} cores): ` +
        "figures will be low and noisy, torch's OpenMP threads especially",
    );
  }

  const ctx: SuiteContext = { quick, log, python };
  const rows: BenchRow[] = [];
  const records: RowRecord[] = [];
  let failures = 0;
  for (const b of selected) {
    log(`== ${b.id}: ${b.description}`);
    const started = performance.now();
    let benchRows: BenchRow[];
    let settings: Record<string, unknown> = {};
    try {
      const plan = await b.prepare(ctx);
      settings = plan.settings;
      const results = await runPlan(
        b.id,
        plan,
        ctx,
        (argv, timeoutSeconds, env) =>
          runMeasured({ argv, timeoutSeconds, env, forwardStderr: flags.verbose === true }),
      );
      benchRows = plan.rows(results);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log(`[${b.id}] could not run: ${msg}`);
      benchRows = [{
        id: b.id,
        what: b.description,
        unit: "",
        higherIsBetter: true,
        toolkit: null,
        toolkitText: "failed",
        peer: null,
        note: `could not run: ${msg}`,
        sources: {},
      }];
    }
    log(`[${b.id}] done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    for (const r of benchRows) {
      if (r.toolkit === null) failures++;
      rows.push(r);
      records.push(rowRecord(r, { quick, settings, machine, versions }));
    }
  }
  console.log(renderTable(rows));
  await writeResults(out, records, ids);
  log(`\nwrote ${records.length} rows to ${out}${quick ? " (quick run: indicative only)" : ""}`);
  return failures ? 1 : 0;
});
