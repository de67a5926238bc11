/**
 * `deno run --allow-all bench/rss_monitor.ts --report FILE [--timeout S] -- CMD ARGS...`
 *
 * Runs CMD with this process's stdout and stderr, measures its wall time
 * and the peak resident memory of its process tree from /proc (see
 * lib/bench/monitor.ts), writes that as JSON to FILE, and exits with CMD's
 * exit status. SIGTERM stops CMD's whole tree. The benchmark harness
 * starts one of these around every measured command.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { monitorCommand } from "../lib/bench/monitor.ts";

const dash = Deno.args.indexOf("--");
if (dash < 0) {
  console.error("usage: rss_monitor.ts --report FILE [--timeout S] -- CMD ARGS...");
  Deno.exit(2);
}
const { values: a } = parseArgs({
  args: Deno.args.slice(0, dash),
  options: { report: { type: "string" }, timeout: { type: "string" } },
  strict: true,
});
if (!a.report) throw new Error("--report is required");

let requestStop: () => void = () => {};
const stop = new Promise<void>((resolve) => (requestStop = resolve));
Deno.addSignalListener("SIGTERM", () => requestStop());
Deno.addSignalListener("SIGINT", () => requestStop());

const report = await monitorCommand(Deno.args.slice(dash + 1), {
  timeoutSeconds: a.timeout === undefined ? undefined : Number(a.timeout),
  stop,
});
await writeJsonAtomic(a.report, report);
Deno.exit(report.signal ? 128 + 9 : report.exitCode);
