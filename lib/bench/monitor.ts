/**
 * Runs one command and measures it from outside: wall time, exit status
 * and peak resident memory of the command and everything it spawns.
 *
 * Memory is the larger of two readings:
 * - the `/proc` sampler of {@linkcode ./rss.ts}: every 50 ms, each process
 *   of the tree's `VmHWM`, summed over the processes (exact for one
 *   process, an upper bound of the simultaneous peak for several);
 * - where GNU time is installed at `/usr/bin/time` (the command then runs
 *   under it), its `%M`: the kernel's `ru_maxrss` of the largest process
 *   of the tree, exact at exit, so growth during the sampler's last 50 ms
 *   before exit is not missed. The wrapper itself is not counted.
 *
 * Deno lets only a process holding every permission read `/proc`, so this
 * runs in its own small process (bench/rss_monitor.ts, started with
 * `--allow-all` by lib/bench/process.ts), not in the harness, whose own
 * permissions are those of `deno task bench`. Its memory is not counted.
 *
 * @module
 */
import { descendants, readParents, type RssReport, RssSampler } from "./rss.ts";

/** Where GNU time is expected. */
export const GNU_TIME = "/usr/bin/time";

/** What {@linkcode monitorCommand} reports, memory in KiB. */
export interface MonitorReport extends RssReport {
  /** GNU time's `%M`, or null where it is not installed or did not report. */
  gnuTimeMaxKiB: number | null;
  /** The figure reported: max(treePeakKiB, gnuTimeMaxKiB). */
  peakKiB: number;
  /** From spawn to exit, seconds. */
  wallSeconds: number;
  exitCode: number;
  signal: string | null;
  /** True when the command was killed for taking longer than the timeout. */
  timedOut: boolean;
}

/** Whether an executable file exists at `path`. */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** GNU time's `-o` file: its last line holding only a number is `%M`. */
export function parseGnuTimeOutput(text: string): number | null {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
  return lines.length ? Number(lines.at(-1)) : null;
}

/** Kills `root` and its descendants (children first), ignoring those already gone. */
export function killTree(root: number, signal: Deno.Signal = "SIGKILL"): void {
  let pids: number[];
  try {
    pids = descendants(root, readParents());
  } catch {
    pids = [root];
  }
  for (const pid of pids.reverse()) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Options of {@linkcode monitorCommand}. */
export interface MonitorOptions {
  /** Poll interval of the sampler. Default 50 ms. */
  intervalMs?: number;
  /** Kill the tree after this long. Default: never. */
  timeoutSeconds?: number;
  /** Run under GNU time when it is installed. Default true. */
  gnuTime?: boolean;
  /** Resolves when the command should be stopped early (e.g. on a signal). */
  stop?: Promise<void>;
}

/**
 * Runs `argv` with this process's stdout and stderr, polling its memory,
 * and reports when it has exited.
 */
export async function monitorCommand(
  argv: readonly string[],
  options: MonitorOptions = {},
): Promise<MonitorReport> {
  if (argv.length === 0) throw new Error("monitor: no command given");
  const useTime = (options.gnuTime ?? true) && isExecutable(GNU_TIME);
  const timeDir = useTime ? await Deno.makeTempDir({ prefix: "galaxy-bench-time-" }) : "";
  const timeFile = `${timeDir}/maxrss`;
  const full = useTime ? [GNU_TIME, "-f", "%M", "-o", timeFile, ...argv] : [...argv];
  const t0 = performance.now();
  const child = new Deno.Command(full[0], {
    args: full.slice(1),
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const sampler = new RssSampler(child.pid, {
    intervalMs: options.intervalMs,
    exclude: useTime ? new Set([child.pid]) : undefined,
  }).start();
  let timedOut = false;
  const timer = options.timeoutSeconds === undefined ? null : setTimeout(() => {
    timedOut = true;
    killTree(child.pid);
  }, options.timeoutSeconds * 1000);
  options.stop?.then(() => killTree(child.pid));
  const status = await child.status;
  const wallSeconds = (performance.now() - t0) / 1000;
  if (timer !== null) clearTimeout(timer);
  const rss = sampler.stop();
  let gnuTimeMaxKiB: number | null = null;
  if (useTime) {
    gnuTimeMaxKiB = parseGnuTimeOutput(await Deno.readTextFile(timeFile).catch(() => ""));
    await Deno.remove(timeDir, { recursive: true }).catch(() => {});
  }
  return {
    ...rss,
    gnuTimeMaxKiB,
    peakKiB: Math.max(rss.treePeakKiB, gnuTimeMaxKiB ?? 0),
    wallSeconds,
    exitCode: status.code,
    signal: status.signal,
    timedOut,
  };
}
