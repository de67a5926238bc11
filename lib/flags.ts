/**
 * A task's flags declared once: each flag's type, default, check and help
 * text live in one table ({@linkcode TaskFlags}), and the parser
 * ({@linkcode parseTask}), `--help` ({@linkcode usage}) and the flag tables
 * of docs/cli.md ({@linkcode markdownTable}) are all made from it.
 *
 * @module
 */
import { choiceFlag, numberFlag, type NumberRange, parseFlags, UsageError } from "./cli.ts";

/** What parseArgs hands a flag's reader: absent, a string, a boolean, or every repeat. */
export type RawFlag = string | boolean | string[] | undefined;

/** One flag: how it is parsed, read, checked and described. */
export interface Flag<T> {
  /** parseArgs' type: a value after the flag, or a switch. */
  type: "string" | "boolean";
  /** The flag may be repeated; its value is then every occurrence. */
  multiple?: boolean;
  /** The value's placeholder in help (`N`, `DIR`, `adam|sgd`); none for a switch. */
  arg?: string;
  /** What the flag does, one sentence, without its default. */
  help: string;
  /** The default as shown after the help text, e.g. `20` or `the fastest that loads`. */
  shown?: string;
  /** The heading this flag starts in `--help` (a group of related flags). */
  section?: string;
  /** Set by programs (a launcher for its workers), not by users: left out of help and docs. */
  hidden?: boolean;
  /** The value (the default when absent), or a {@linkcode UsageError} naming the flag. */
  read: (name: string, raw: RawFlag) => T;
}

/** A task's flags by name (without the leading `--`). */
export type FlagTable = Record<string, Flag<unknown>>;

/** The values a table's flags read to, by flag name. */
export type FlagValues<S extends FlagTable> = {
  [K in keyof S]: S[K] extends Flag<infer T> ? T : never;
};

/** A task's command line: its synopsis, its flags, and the text around them in `--help`. */
export interface TaskFlags<S extends FlagTable = FlagTable> {
  /** The task's name as `deno task NAME` runs it. */
  task: string;
  /** One line each, after `usage: ` (the first) or aligned under it. */
  synopsis: string[];
  /** A paragraph between the synopsis and the flags. */
  about?: string;
  /** The flags. */
  flags: S;
  /** A paragraph after the flags (exit status, pages, credentials...). */
  epilogue?: string;
}

const asString = (name: string, raw: RawFlag): string | undefined => {
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") throw new UsageError(`--${name} takes a value`);
  return raw;
};

/** The bounds and default of a number flag. */
export interface NumberFlagOptions<D extends number | undefined> extends NumberRange {
  /** The value when the flag is absent (undefined: left to the library it goes to). */
  default?: D;
  /** The default as shown in help, when it is not `default` itself. */
  shown?: string;
}

/** A number flag within the given bounds. */
export function num<D extends number | undefined = undefined>(
  arg: string,
  help: string,
  o: NumberFlagOptions<D> = {},
): Flag<D extends number ? number : number | undefined> {
  const { default: fallback, shown, ...range } = o;
  return {
    type: "string",
    arg,
    help,
    shown: shown ?? (fallback === undefined ? undefined : String(fallback)),
    read: (name, raw) => numberFlag(name, asString(name, raw), fallback, range) as never,
  };
}

/** An integer flag within the given bounds. */
export function int<D extends number | undefined = undefined>(
  arg: string,
  help: string,
  o: NumberFlagOptions<D> = {},
): Flag<D extends number ? number : number | undefined> {
  return num(arg, help, { ...o, integer: true });
}

/** A flag taking one of `choices` (shown as `a|b|c` unless `arg` says otherwise). */
export function choice<C extends string, D extends C | undefined = undefined>(
  choices: readonly C[],
  help: string,
  o: { default?: D; shown?: string; arg?: string } = {},
): Flag<D extends C ? C : C | undefined> {
  return {
    type: "string",
    arg: o.arg ?? choices.join("|"),
    help,
    shown: o.shown ?? o.default,
    read: (name, raw) => choiceFlag(name, asString(name, raw), choices, o.default) as never,
  };
}

/** A flag taking any text (a path, a URL, a pattern). */
export function text<D extends string | undefined = undefined>(
  arg: string,
  help: string,
  o: { default?: D; shown?: string } = {},
): Flag<D extends string ? string : string | undefined> {
  return {
    type: "string",
    arg,
    help,
    shown: o.shown ?? o.default,
    read: (name, raw) => (asString(name, raw) ?? o.default) as never,
  };
}

/** A switch: true when given. */
export function bool(help: string): Flag<boolean> {
  return { type: "boolean", help, read: (_name, raw) => raw === true };
}

/** A flag that may be repeated: every value given, in order (empty when absent). */
export function list(arg: string, help: string): Flag<string[]> {
  return {
    type: "string",
    multiple: true,
    arg,
    help,
    read: (_name, raw) => (Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : []),
  };
}

/** A flag with its own reader: `read` gets the value given (never called when absent). */
export function custom<T>(
  arg: string,
  help: string,
  read: (name: string, value: string) => T,
  o: { shown?: string } = {},
): Flag<T | undefined> {
  return {
    type: "string",
    arg,
    help,
    shown: o.shown,
    read: (name, raw) => {
      const value = asString(name, raw);
      return value === undefined ? undefined : read(name, value);
    },
  };
}

/** `flag` hidden from help and docs (set by programs, not users). */
export function hidden<T>(flag: Flag<T>): Flag<T> {
  return { ...flag, hidden: true };
}

/** `flag` opening a section of `--help` headed `title`. */
export function section<T>(title: string, flag: Flag<T>): Flag<T> {
  return { ...flag, section: title };
}

/** The parseArgs declarations of a table's flags. */
export function parseOptions(
  flags: FlagTable,
): Record<string, { type: "string" | "boolean"; multiple?: boolean }> {
  return Object.fromEntries(
    Object.entries(flags).map((
      [name, f],
    ) => [name, f.multiple ? { type: f.type, multiple: true } : { type: f.type }]),
  );
}

/** `--name ARG` of a flag, as help and docs show it. */
export function flagSyntax(name: string, flag: Flag<unknown>): string {
  return flag.arg ? `--${name} ${flag.arg}` : `--${name}`;
}

/** A flag's help text with its default, e.g. `epochs (20)`. */
export function flagMeaning(flag: Flag<unknown>): string {
  return flag.shown === undefined ? flag.help : `${flag.help} (${flag.shown})`;
}

const WIDTH = 100;
const COLUMN = 24;

/** Greedy word wrap of `words` into lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
}

/** The `--help` text of a task: synopsis, about, one entry per visible flag, epilogue. */
export function usage(cli: TaskFlags): string {
  const [first, ...rest] = cli.synopsis;
  const out = [`usage: ${first}`, ...rest.map((s) => `       ${s}`)];
  if (cli.about) out.push("", cli.about);
  out.push("");
  for (const [name, flag] of Object.entries(cli.flags)) {
    if (flag.hidden) continue;
    if (flag.section) out.push(` ${flag.section}:`);
    const syntax = `  ${flagSyntax(name, flag)}`;
    const meaning = wrap(flagMeaning(flag), WIDTH - COLUMN);
    const pad = " ".repeat(COLUMN);
    if (syntax.length < COLUMN - 1) out.push(syntax.padEnd(COLUMN) + meaning[0]);
    else out.push(syntax, pad + meaning[0]);
    for (const line of meaning.slice(1)) out.push(pad + line);
  }
  if (cli.epilogue) out.push("", cli.epilogue);
  return out.join("\n");
}

/**
 * Parses `args` against the task's table and reads every flag (defaults
 * applied, values checked). `--help` prints {@linkcode usage} and exits 0;
 * an unknown flag or a bad value is a {@linkcode UsageError} (the unknown
 * flag's error carries the usage).
 */
export function parseTask<S extends FlagTable>(cli: TaskFlags<S>, args: string[]): FlagValues<S> {
  const values = parseFlags(args, parseOptions(cli.flags), usage(cli)) as Record<string, RawFlag>;
  const out: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(cli.flags)) out[name] = flag.read(name, values[name]);
  return out as FlagValues<S>;
}

/** `s` safe inside a markdown table cell. */
function cell(s: string): string {
  return s.replaceAll("|", "\\|");
}

/**
 * The task's visible flags as a markdown table (`| flag | meaning (default) |`),
 * padded as `deno fmt` pads tables, so the generated file passes `deno fmt --check`.
 */
export function markdownTable(cli: TaskFlags): string {
  const rows = Object.entries(cli.flags).filter(([, f]) => !f.hidden).map((
    [name, f],
  ) => [cell(`\`${flagSyntax(name, f)}\``), cell(flagMeaning(f))]);
  const header = ["flag", "meaning (default)"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)]
    .join("\n");
}
