/**
 * Running one measured command as a subprocess: its own throughput comes
 * from the JSON object on the last line of its stdout; its wall time and
 * peak resident memory are measured from outside, by bench/rss_monitor.ts
 * (see lib/bench/monitor.ts for how), which runs the command.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readJson } from "../io/atomic.ts";
import type { MonitorReport } from "./monitor.ts";

/** A command to measure. */
export interface CommandSpec {
  /** Program and arguments. */
  argv: string[];
  /** Killed (with its whole tree) after this long. Default 1800 s. */
  timeoutSeconds?: number;
  /** Copy the child's stderr to ours as it comes. */
  forwardStderr?: boolean;
  /** Environment variables added to ours for the command (e.g. oneDNN's instruction-set cap). */
  env?: Record<string, string>;
}

/** Outcome of {@linkcode runMeasured}. */
export interface RunResult {
  ok: boolean;
  /** The JSON object of the last non-empty stdout line, when there is one. */
  result: Record<string, unknown> | null;
  /** Wall time, exit status and memory, from the monitor; null if it did not report. */
  monitor: MonitorReport | null;
  /** Last lines of stderr, for error reports. */
  stderrTail: string[];
  /** Why the run failed (non-zero exit, timeout, no result line). */
  error: string | null;
}

const PROJECT_CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));
const MONITOR = fileURLToPath(new URL("../../bench/rss_monitor.ts", import.meta.url));

/**
 * The JSON object on the last non-empty line of `stdout`; throws a clear
 * error when that line is missing or is not a JSON object.
 */
export function parseResultLine(stdout: string): Record<string, unknown> {
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const last = lines.at(-1);
  if (last === undefined) {
    throw new Error("printed nothing on stdout (expected a JSON result line)");
  }
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    throw new Error(`last stdout line is not JSON: ${last.slice(0, 200)}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`last stdout line is not a JSON object: ${last.slice(0, 200)}`);
  }
  return value as Record<string, unknown>;
}

/** The last non-empty lines of `text`, at most `count`, without terminal colour codes. */
export function tailLines(text: string, count: number): string[] {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  return plain.split(/[\r\n]/).filter((l) => l.trim() !== "").slice(-count);
}

/**
 * The line of a failed command's stderr that says why: the first
 * `error: ...` line (Deno's uncaught error, Python's last exception line
 * ends with `Error: ...`), else the last line.
 */
export function errorLine(lines: readonly string[]): string {
  const deno = lines.find((l) => /^error:/i.test(l.trim()));
  if (deno) return deno.trim();
  const python = lines.findLast((l) => /^\w+(Error|Exception|Exit)\b.*:/.test(l.trim()));
  return (python ?? lines.at(-1) ?? "").trim();
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onChunk?: (b: Uint8Array) => void,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    onChunk?.(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/** The monitor's command line around `spec.argv`, reporting to `reportPath`. */
export function monitorArgv(spec: CommandSpec, reportPath: string): string[] {
  return [
    Deno.execPath(),
    "run",
    // Reading /proc takes every permission in Deno (see lib/bench/monitor.ts).
    "--allow-all",
    "--config",
    PROJECT_CONFIG,
    MONITOR,
    "--report",
    reportPath,
    "--timeout",
    String(spec.timeoutSeconds ?? 1800),
    "--",
    ...spec.argv,
  ];
}

/** Runs `spec` under the monitor and returns what it and the command reported. */
export async function runMeasured(spec: CommandSpec): Promise<RunResult> {
  const dir = await Deno.makeTempDir({ prefix: "galaxy-bench-run-" });
  const reportPath = join(dir, "monitor.json");
  try {
    const argv = monitorArgv(spec, reportPath);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: spec.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // A last resort should the monitor itself hang; it enforces the timeout first.
    const guard = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, ((spec.timeoutSeconds ?? 1800) + 60) * 1000);
    const forward = spec.forwardStderr ? (b: Uint8Array) => Deno.stderr.writeSync(b) : undefined;
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout),
      collect(child.stderr, forward),
      child.status,
    ]);
    clearTimeout(guard);
    const stderrTail = tailLines(stderr, 30);
    const monitor = await readJson<MonitorReport>(reportPath).catch(() => null);
    let error: string | null = null;
    if (monitor === null) {
      error = `the monitor did not report (exit ${status.code}${
        status.signal ? `, ${status.signal}` : ""
      })`;
    } else if (monitor.timedOut) {
      error = `timed out after ${spec.timeoutSeconds ?? 1800} s`;
    } else if (monitor.exitCode !== 0 || monitor.signal) {
      const why = errorLine(stderrTail);
      error = `exited with ${
        monitor.signal ? `signal ${monitor.signal}` : `status ${monitor.exitCode}`
      }${why ? `: ${why}` : ""}`;
    }
    let result: Record<string, unknown> | null = null;
    if (error === null) {
      try {
        result = parseResultLine(stdout);
      } catch (e) {
        error = (e as Error).message;
      }
    }
    return { ok: error === null, result, monitor, stderrTail, error };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
