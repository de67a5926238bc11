/**
 * Listing a folder as users of `os.walk(followlinks=True)` expect: a
 * symlink is followed to what it names (a folder or a file), a broken link
 * or a link loop is reported by name, and a name that is not valid UTF-8
 * is reported with its bytes escaped (`caf\xe9`), never taken for a missing
 * file.
 *
 * Why the bytes need care: Deno decodes file names lossily (an invalid
 * byte becomes U+FFFD), so such an entry cannot be opened by the name it is
 * listed under. Its raw bytes are read with libc's readdir through FFI
 * (Linux; elsewhere, or without `--allow-ffi`, the lossy name is shown).
 *
 * Loop protection for walkers: {@linkcode realFolder} gives a folder's
 * canonical path, so a walker that follows links keeps a set of the ones
 * it has listed and skips (and reports) a link back to one of them.
 *
 * @module
 */
import { join } from "node:path";

/** What an entry is, after following symlinks. */
export type EntryKind = "file" | "dir" | "broken-link" | "link-loop" | "bad-name" | "other";

/** One folder entry. */
export interface DirEntry {
  /** The name as Deno lists it (lossy for a non-UTF-8 name). */
  name: string;
  /** `join(dir, name)`. */
  path: string;
  /** What it is; a symlink's kind is that of its target. */
  kind: EntryKind;
  /** Whether the entry itself is a symlink. */
  link: boolean;
  /** For broken-link, link-loop and bad-name: what to tell the user (names the entry). */
  problem?: string;
}

/** `bytes` as text: printable ASCII kept, anything else as `\xHH`. */
export function escapeBytes(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c
      ? String.fromCharCode(b)
      : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return s;
}

/** dirent64's d_name offset on Linux glibc and musl (x86_64, aarch64): after ino, off, reclen, type. */
const D_NAME = 19;

/** The raw names in `dir` via libc readdir, or null when that is not possible here. */
export function rawNames(dir: string): Uint8Array[] | null {
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  let lib;
  try {
    lib = Deno.dlopen(
      "libc.so.6",
      {
        opendir: { parameters: ["buffer"], result: "pointer" },
        readdir: { parameters: ["pointer"], result: "pointer" },
        closedir: { parameters: ["pointer"], result: "i32" },
      } as const,
    );
  } catch {
    return null;
  }
  try {
    const d = lib.symbols.opendir(new TextEncoder().encode(dir + "\0"));
    if (d === null) return null;
    const out: Uint8Array[] = [];
    try {
      for (let e = lib.symbols.readdir(d); e !== null; e = lib.symbols.readdir(d)) {
        const view = new Deno.UnsafePointerView(e);
        const name: number[] = [];
        for (let i = D_NAME; name.length < 4096; i++) {
          const b = view.getUint8(i);
          if (b === 0) break;
          name.push(b);
        }
        out.push(new Uint8Array(name));
      }
    } finally {
      lib.symbols.closedir(d);
    }
    return out;
  } finally {
    lib.close();
  }
}

/** How to name a non-UTF-8 entry: its bytes escaped when they can be read, else the lossy name. */
function badName(dir: string, lossy: string): string {
  const decoder = new TextDecoder();
  const raw = rawNames(dir)?.find((b) => decoder.decode(b) === lossy);
  return raw
    ? `name is not valid UTF-8: '${escapeBytes(raw)}' in ${dir} (rename it in UTF-8)`
    : `name is not valid UTF-8: shown as '${lossy}' in ${dir} (rename it in UTF-8)`;
}

function errorCode(e: unknown): string {
  return (e as { code?: string }).code ?? (e instanceof Error ? e.name : String(e));
}

/** The kind of one entry, following a symlink. */
async function classify(dir: string, e: Deno.DirEntry): Promise<DirEntry> {
  const path = join(dir, e.name);
  const base = { name: e.name, path, link: e.isSymlink };
  if (e.name.includes("\uFFFD")) {
    // A real U+FFFD in a valid name still resolves; a lossy one does not.
    const there = await Deno.lstat(path).then(() => true, () => false);
    if (!there) return { ...base, kind: "bad-name", problem: badName(dir, e.name) };
  }
  if (!e.isSymlink) {
    return { ...base, kind: e.isDirectory ? "dir" : e.isFile ? "file" : "other" };
  }
  try {
    const info = await Deno.stat(path);
    return { ...base, kind: info.isDirectory ? "dir" : info.isFile ? "file" : "other" };
  } catch (err) {
    const target = await Deno.readLink(path).catch(() => "?");
    if (errorCode(err) === "ELOOP" || /too many levels of symbolic links/i.test(String(err))) {
      return { ...base, kind: "link-loop", problem: `symlink loop: ${path} -> ${target}` };
    }
    return {
      ...base,
      kind: "broken-link",
      problem: `broken symlink: ${path} -> ${target} (the target does not exist)`,
    };
  }
}

/**
 * The entries of `dir` with symlinks followed, sorted by name (UTF-16 code
 * units), hidden ones (`.name`) left out. Throws when `dir` cannot be read.
 */
export async function readEntries(dir: string): Promise<DirEntry[]> {
  const listed: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) listed.push(e);
  const out = await Promise.all(listed.map((e) => classify(dir, e)));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The canonical path of a folder (symlinks resolved), for a walker's loop protection. */
export function realFolder(path: string): Promise<string> {
  return Deno.realPath(path);
}
