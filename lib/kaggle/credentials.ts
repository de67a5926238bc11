/**
 * Kaggle API credentials, found where the official `kaggle` CLI looks for
 * them and with the same precedence:
 *
 * 1. The config folder is `$KAGGLE_CONFIG_DIR` when set; otherwise
 *    `~/.kaggle` when it exists; otherwise, on Linux,
 *    `$XDG_CONFIG_HOME/kaggle` (default `~/.config/kaggle`).
 * 2. `kaggle.json` in that folder (`{"username": ..., "key": ...}`) is read
 *    first, then the environment overrides it key by key: `KAGGLE_USERNAME`
 *    and `KAGGLE_KEY` win over the file.
 *
 * Like the CLI, a `kaggle.json` that other users can read draws a warning.
 * The key itself is never part of any message.
 *
 * @module
 */
import { join } from "node:path";
import { FetchError } from "./errors.ts";

/** Where the token page is, for messages telling how to create credentials. */
export const KAGGLE_TOKEN_PAGE = "https://www.kaggle.com/settings";

/** A Kaggle username and API key, and where each came from. */
export interface KaggleCredentials {
  username: string;
  /** The API key: never print or log it. */
  key: string;
  /** Where the credentials came from, for messages (e.g. `~/.kaggle/kaggle.json`). */
  source: string;
}

/** What the lookup reads: the environment, the platform, and the file system. */
export interface CredentialLookup {
  /** Environment variable reader; defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** `process.platform`-style name; defaults to `Deno.build.os`. */
  platform?: string;
}

/** Credentials plus warnings the caller should print (e.g. file permissions). */
export interface CredentialResult {
  credentials: KaggleCredentials;
  warnings: string[];
}

function homeDir(env: (name: string) => string | undefined): string {
  return env("HOME") ?? env("USERPROFILE") ?? "~";
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The folder holding `kaggle.json`, chosen as the official CLI chooses it. */
export function kaggleConfigDir(lookup: CredentialLookup = {}): string {
  const env = lookup.env ?? ((n) => Deno.env.get(n));
  const platform = lookup.platform ?? Deno.build.os;
  const explicit = env("KAGGLE_CONFIG_DIR");
  if (explicit) return explicit;
  const home = homeDir(env);
  const legacy = join(home, ".kaggle");
  if (platform === "linux" && !isDir(legacy)) {
    return join(env("XDG_CONFIG_HOME") || join(home, ".config"), "kaggle");
  }
  return legacy;
}

/** The message for "no credentials anywhere", naming every place looked at. */
function noCredentialsMessage(
  configFile: string,
  missing: string[],
  fileNote: string,
  dirNote: string,
): string {
  return `no Kaggle API credentials (missing ${missing.join(" and ")}): ` +
    `KAGGLE_USERNAME/KAGGLE_KEY are not both set and ${configFile} ${fileNote}${dirNote}. ` +
    `Create a token at ${KAGGLE_TOKEN_PAGE} (API > Create New Token), save the kaggle.json it ` +
    `gives you as ${configFile} and run 'chmod 600 ${configFile}', or export KAGGLE_USERNAME ` +
    `and KAGGLE_KEY (set KAGGLE_CONFIG_DIR to use another folder). Without an account, use ` +
    `--from PATH for archives already downloaded, or --synthetic N for generated data.`;
}

/**
 * Finds the Kaggle credentials, or throws a {@linkcode FetchError} of kind
 * "credentials" that says where it looked and how to create them.
 */
export function findCredentials(lookup: CredentialLookup = {}): CredentialResult {
  const env = lookup.env ?? ((n) => Deno.env.get(n));
  const dir = kaggleConfigDir(lookup);
  const configFile = join(dir, "kaggle.json");
  const warnings: string[] = [];
  const values: { username?: string; key?: string } = {};
  const from: { username?: string; key?: string } = {};
  let fileNote = "does not exist";

  let text: string | undefined;
  try {
    text = Deno.readTextFileSync(configFile);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      fileNote = `cannot be read (${e instanceof Error ? e.message : e})`;
    }
  }
  if (text !== undefined) {
    fileNote = "lacks them";
    const mode = Deno.statSync(configFile).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      warnings.push(
        `Warning: your Kaggle API key is readable by other users on this system ` +
          `(${configFile} has mode 0${(mode & 0o777).toString(8)}); to fix this run ` +
          `'chmod 600 ${configFile}'`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      fileNote = 'is not valid JSON (it should read {"username":"...","key":"..."})';
    }
    if (parsed && typeof parsed === "object") {
      const o = parsed as Record<string, unknown>;
      for (const k of ["username", "key"] as const) {
        if (typeof o[k] === "string" && o[k] !== "") {
          values[k] = o[k] as string;
          from[k] = configFile;
        }
      }
    }
  }
  // The CLI lets every KAGGLE_* variable override the file's value of the same name.
  for (const [k, name] of [["username", "KAGGLE_USERNAME"], ["key", "KAGGLE_KEY"]] as const) {
    const v = env(name);
    if (v) {
      values[k] = v;
      from[k] = name;
    }
  }
  if (!values.username || !values.key) {
    const missing = [!values.username && "username", !values.key && "key"].filter(
      (x): x is string => typeof x === "string",
    );
    // Say why that folder was chosen: people expect ~/.kaggle.
    const dirNote = env("KAGGLE_CONFIG_DIR")
      ? " (from KAGGLE_CONFIG_DIR)"
      : dir === join(homeDir(env), ".kaggle")
      ? ""
      : ` (KAGGLE_CONFIG_DIR is unset and ${join(homeDir(env), ".kaggle")} does not exist)`;
    throw new FetchError(
      "credentials",
      noCredentialsMessage(configFile, missing, fileNote, dirNote),
    );
  }
  const source = from.username === "KAGGLE_USERNAME" && from.key === "KAGGLE_KEY"
    ? "environment (KAGGLE_USERNAME, KAGGLE_KEY)"
    : from.username === from.key
    ? from.username!
    : `username from ${from.username}, key from ${from.key}`;
  return {
    credentials: { username: values.username, key: values.key, source },
    warnings,
  };
}
