/**
 * What every script shares: flag parsing with clear errors, a progress line
 * that redraws on a terminal and prints sparse lines elsewhere (CI logs,
 * cron mail), and a clean exit for errors the user can act on.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** An error whose message is the whole story: printed without a stack trace. */
export class UsageError extends Error {}

/** Parses `args` with node:util's parseArgs, turning its errors into {@linkcode UsageError}s. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  usage: string,
) {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}`);
  }
}

/** The bounds {@linkcode numberFlag} checks. */
export interface NumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
}

/**
 * A flag's value as a number within [min, max], or a UsageError naming the
 * flag; `fallback` when the flag is absent (`undefined` leaves the default
 * to the library the value goes to).
 */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  range?: NumberRange,
): number;
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number | undefined,
  range?: NumberRange,
): number | undefined;
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number | undefined,
  range: NumberRange = {},
): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  const { min = -Infinity, max = Infinity, integer = false } = range;
  if (
    value.trim() === "" || !Number.isFinite(n) || n < min || n > max ||
    (integer && !Number.isInteger(n))
  ) {
    const kind = integer ? "an integer" : "a number";
    const bounds = [min > -Infinity ? `>= ${min}` : "", max < Infinity ? `<= ${max}` : ""]
      .filter(Boolean).join(" and ");
    throw new UsageError(`--${name} must be ${kind}${bounds ? ` ${bounds}` : ""}, got '${value}'`);
  }
  return n;
}

/**
 * A flag's value from a fixed set of choices, or a UsageError naming the
 * flag; `fallback` when the flag is absent (`undefined` leaves the choice
 * to the library the value goes to).
 */
export function choiceFlag<C extends string>(
  name: string,
  value: string | undefined,
  choices: readonly C[],
  fallback: C,
): C;
export function choiceFlag<C extends string>(
  name: string,
  value: string | undefined,
  choices: readonly C[],
  fallback: C | undefined,
): C | undefined;
export function choiceFlag<C extends string>(
  name: string,
  value: string | undefined,
  choices: readonly C[],
  fallback: C | undefined,
): C | undefined {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${value}'`);
  }
  return value as C;
}

/** A required flag, or a UsageError naming it. */
export function required(name: string, value: string | undefined, usage: string): string {
  if (value === undefined || value === "") {
    throw new UsageError(`--${name} is required\n\n${usage}`);
  }
  return value;
}

/** `1536` -> `"1.50 KiB"`, `512` -> `"512 B"`. */
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

/** `3725` -> `"1h02m"`, `65` -> `"1m05s"`, `7.4` -> `"7s"`, not finite -> `"?"`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * A progress line: redrawn in place on a terminal (at most 10 times a
 * second); elsewhere printed as a plain line at most every `plainEverySeconds`.
 */
export class ProgressLine {
  #tty = Deno.stderr.isTerminal();
  #last = 0;
  #shown = false;
  constructor(private readonly plainEverySeconds = 30) {}

  /** Shows `text`; `force` prints it even if one was shown a moment ago. */
  update(text: string, force = false): void {
    const now = performance.now();
    const gap = this.#tty ? 100 : this.plainEverySeconds * 1000;
    if (!force && this.#shown && now - this.#last < gap) return;
    this.#last = now;
    this.#shown = true;
    const bytes = new TextEncoder().encode(this.#tty ? `\r\x1b[2K${text}` : `${text}\n`);
    Deno.stderr.writeSync(bytes);
  }

  /**
   * Prints `line` to stderr on a line of its own; on a terminal the progress
   * line is erased first, and the next update draws it again.
   */
  log(line: string): void {
    if (this.#tty && this.#shown) {
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
      this.#shown = false;
    }
    console.error(line);
  }

  /** Ends the line so the next output starts on a fresh one. */
  done(): void {
    if (this.#tty && this.#shown) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    this.#shown = false;
  }
}

/** A text progress bar: `[#####.....] 50%`. */
export function bar(fraction: number, width = 20): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}] ${
    String(Math.floor(f * 100)).padStart(3)
  }%`;
}

/**
 * Runs a script's main function: a {@linkcode UsageError} or any error
 * prints its message and exits 2 or 1; `main`'s number is the exit status.
 */
export async function runMain(main: () => Promise<number | void>): Promise<never> {
  try {
    Deno.exit((await main()) ?? 0);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    if (Deno.env.get("GALAXY_DEBUG")) console.error(e);
    Deno.exit(1);
  }
}
