/**
 * Atomic file writes: the data goes to a temporary file beside the target,
 * is flushed, then renamed over it, so a reader (or a run killed midway)
 * sees either the old file or the new one, never half of one.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";

function tempPath(path: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  return join(dirname(path), `.${path.split("/").pop()}.${Deno.pid}.${rand}.tmp`);
}

/** Writes bytes or text to `path` atomically, creating parent folders. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.sync();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await Deno.rename(tmp, path);
}

/**
 * Writes `bytes` atomically to `dir/<prefix>-<16 hex digits of SHA-256>.bin`
 * and returns that name. A file named by its content never changes once
 * written, so an index renamed into place afterwards (model.json, a
 * checkpoint's state.json) always points at a whole file.
 */
export async function writeContentNamed(
  dir: string,
  prefix: string,
  bytes: Uint8Array,
): Promise<string> {
  const name = `${prefix}-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}.bin`;
  await writeFileAtomic(join(dir, name), bytes);
  return name;
}

/**
 * Writes `bytes` atomically to `dir/<prefix>-<16 random hex digits>.bin`
 * and returns that name: a new name every time, like
 * {@linkcode writeContentNamed}, without hashing (hundreds of MB of
 * checkpoint cost 150 ms of SHA-256 on the main thread).
 */
export async function writeUniquelyNamed(
  dir: string,
  prefix: string,
  bytes: Uint8Array,
): Promise<string> {
  const random = crypto.getRandomValues(new Uint8Array(8));
  const name = `${prefix}-${
    Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")
  }.bin`;
  await writeFileAtomic(join(dir, name), bytes);
  return name;
}

/**
 * Removes the files `<prefix>-<hex>.bin` in `dir`, for each of `prefixes`,
 * that `keep` does not name: those of earlier saves, unreferenced once the
 * new index is in place.
 */
export async function removeUnreferenced(
  dir: string,
  prefixes: readonly string[],
  keep: readonly string[],
): Promise<void> {
  const ours = new RegExp(`^(${prefixes.join("|")})-[0-9a-f]+\\.bin$`);
  for await (const e of Deno.readDir(dir)) {
    if (ours.test(e.name) && !keep.includes(e.name)) {
      await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  }
}

/** Writes `value` as pretty JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Reads and parses a JSON file, naming the file in any error. */
export async function readJson<T = unknown>(path: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
}

/**
 * Renames a finished temporary file into place (for writers that stream to
 * a temp path themselves); the temp path comes from {@linkcode tempFileFor}.
 */
export async function commitTemp(tmp: string, path: string): Promise<void> {
  await Deno.rename(tmp, path);
}

/** A temporary path beside `path`, for streaming writers that rename when done. */
export function tempFileFor(path: string): string {
  return tempPath(path);
}
