/**
 * Verified files: every file a model consists of carries, from the moment it
 * is written, a SHA-256 that is checked whenever it is read.
 *
 * - A JSON file (`config.json`, `model/model.json`, `checkpoint/state.json`)
 *   is *sealed*: its last key, {@linkcode SEAL_KEY}, holds the SHA-256 of
 *   `JSON.stringify` of the rest (compact, keys in file order). The seal is
 *   written in the same atomic rename as the content, so no kill can leave
 *   a file and its digest out of step.
 * - A binary file (weights, checkpoint variables) has its SHA-256 recorded in
 *   the sealed JSON that names it.
 *
 * A mismatch is a {@linkcode DigestMismatchError} naming the file, the
 * digest recorded and the digest found. Writers hash off the main thread
 * ({@linkcode sha256Hex}, `crypto.subtle.digest`), so a background write does
 * not stall training; readers, who wait for the result anyway, use
 * `node:crypto`, which measured faster (docs/run-folder.md).
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The key of a sealed JSON file that holds the digest of the rest. */
export const SEAL_KEY = "contentSha256";

/** The flag that skips verification, named in messages. */
export const NO_VERIFY_FLAG = "--no-verify";

/** A file's content differs from the SHA-256 recorded when it was written. */
export class DigestMismatchError extends Error {
  constructor(
    /** The damaged file. */
    readonly path: string,
    /** SHA-256 recorded when it was written, hex. */
    readonly expected: string,
    /** SHA-256 of what is there now, hex. */
    readonly actual: string,
    /** What to do about it, for the message. */
    readonly advice = `copy the run again from its source, or retrain; ${NO_VERIFY_FLAG} ` +
      "uses it anyway",
  ) {
    super(
      `${path} is damaged: its SHA-256 is ${actual}, but ${expected} was recorded when it was ` +
        `written: ${advice}`,
    );
    this.name = "DigestMismatchError";
  }
}

/** SHA-256 of `bytes` (text as UTF-8), lower-case hex, on this thread. */
export function sha256HexSync(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA-256 of `bytes`, lower-case hex, computed off the main thread (for background writes). */
export async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Throws a {@linkcode DigestMismatchError} when `bytes` (read from `path`) do not hash to `expected`. */
export function verifyBytes(path: string, bytes: Uint8Array, expected: string): void {
  const actual = sha256HexSync(bytes);
  if (actual !== expected) throw new DigestMismatchError(path, expected, actual);
}

/**
 * The text of `value` as a sealed JSON file (pretty-printed, the seal last).
 * `value` must not hold {@linkcode SEAL_KEY} itself.
 */
export function sealJson(value: Record<string, unknown>): string {
  const { [SEAL_KEY]: _old, ...content } = value;
  const seal = sha256HexSync(JSON.stringify(content));
  return JSON.stringify({ ...content, [SEAL_KEY]: seal }, null, 2) + "\n";
}

/** What {@linkcode unsealJson} found. */
export interface Unsealed<T> {
  /** The content without the seal. */
  value: T;
  /** Whether the file had a seal (and it matched: a mismatch throws). False for files written before seals. */
  sealed: boolean;
  /** The file's text as read. */
  text: string;
}

/**
 * Parses a sealed JSON file's text and checks its seal (unless `verify` is
 * false). A file without a seal (written before seals) is returned with
 * `sealed: false`; the caller says so.
 *
 * @throws {Error} naming `path` when the text is not a JSON object.
 * @throws {DigestMismatchError} when the seal does not match.
 */
export function unsealJson<T = Record<string, unknown>>(
  path: string,
  text: string,
  verify = true,
): Unsealed<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (damaged?): ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${path} is not a JSON object`);
  }
  const { [SEAL_KEY]: seal, ...content } = parsed as Record<string, unknown>;
  if (seal === undefined) return { value: content as T, sealed: false, text };
  if (verify) {
    const actual = sha256HexSync(JSON.stringify(content));
    if (actual !== seal) throw new DigestMismatchError(path, String(seal), actual);
  }
  return { value: content as T, sealed: true, text };
}

/** Reads and unseals a JSON file; see {@linkcode unsealJson}. */
export async function readSealedJson<T = Record<string, unknown>>(
  path: string,
  verify = true,
): Promise<Unsealed<T>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return unsealJson<T>(path, text, verify);
}
