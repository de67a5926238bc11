/**
 * Safe, streaming extraction of zip archives (multi-GB ones included) with
 * `@zip.js/zip.js`.
 *
 * The archive is read with random access from the file on disk, a chunk at
 * a time, so memory stays bounded whatever its size. Before anything is
 * written, every entry is checked: a name that is absolute or climbs out
 * with `..` (zip-slip), a symbolic link or another special file, and an
 * entry whose declared size or compression ratio looks like a zip bomb all
 * refuse the whole archive. While extracting, the bytes actually inflated
 * are counted against the entry's declared size and a {@linkcode ZipBudget}
 * shared by nested archives, so a header that lies cannot slip a bomb past
 * the checks. Each file lands atomically (temporary file, then rename).
 *
 * @module
 */
import * as zip from "@zip.js/zip.js";
import { basename, dirname } from "node:path";
import { commitTemp, tempFileFor } from "./atomic.ts";

/** Why an archive was refused: damaged, unsafe entry, or over a size limit. */
export type ZipErrorKind = "corrupt" | "unsafe-entry" | "too-large";

/** An archive that cannot be extracted; the message names the archive (and entry). */
export class ZipError extends Error {
  constructor(
    readonly kind: ZipErrorKind,
    readonly archive: string,
    message: string,
    readonly entry?: string,
  ) {
    super(message);
    this.name = "ZipError";
  }
}

/** Limits that stop zip bombs. */
export interface ZipLimits {
  /** Most uncompressed bytes extracted in all (one budget for an archive and those nested in it). */
  maxTotalBytes: number;
  /** Highest uncompressed/compressed ratio allowed for an entry of at least `ratioMinBytes`. */
  maxRatio: number;
  /** Entries smaller than this skip the ratio check (a tiny file can legitimately compress well). */
  ratioMinBytes: number;
}

/**
 * Defaults sized for the Galaxy Zoo data (about 2.5 GB uncompressed in all;
 * JPEGs barely compress, the CSV about 3:1), with wide margins.
 */
export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = {
  maxTotalBytes: 64 * 2 ** 30,
  maxRatio: 100,
  ratioMinBytes: 2 ** 20,
};

/** Counts the bytes extracted so far against {@linkcode ZipLimits.maxTotalBytes}. */
export class ZipBudget {
  /** Uncompressed bytes extracted so far. */
  used = 0;
  constructor(readonly limits: ZipLimits = DEFAULT_ZIP_LIMITS) {}

  /** Takes `n` bytes from the budget, throwing a "too-large" {@linkcode ZipError} past the cap. */
  take(n: number, archive: string, entry: string): void {
    this.used += n;
    if (this.used > this.limits.maxTotalBytes) {
      throw new ZipError(
        "too-large",
        archive,
        `refusing ${archive}: extracting '${entry}' takes the total uncompressed size past the ` +
          `cap of ${this.limits.maxTotalBytes} bytes (a zip bomb, or raise the cap)`,
        entry,
      );
    }
  }
}

/** One entry of an archive, as declared by its central directory. */
export interface ZipEntryInfo {
  /** Path inside the archive, `/`-separated. */
  name: string;
  /** Declared uncompressed size in bytes. */
  size: number;
  /** Declared compressed size in bytes. */
  compressedSize: number;
  directory: boolean;
}

/**
 * Why an entry name is unsafe to extract (absolute, `..`, drive letter,
 * NUL), or `null` when it is a plain relative path.
 */
export function unsafeNameReason(name: string): string | null {
  if (name === "") return "empty name";
  if (name.includes("\0")) return "NUL character in name";
  if (name.startsWith("/") || name.startsWith("\\")) return "absolute path";
  if (/^[A-Za-z]:/.test(name)) return "drive-letter path";
  // Backslashes count as separators too: a Windows host resolves them.
  if (name.split(/[\\/]/).includes("..")) return "'..' path component (zip-slip)";
  return null;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Why an entry is not a plain file or folder (a link, a device...), or `null`. */
function specialFileReason(e: zip.Entry): string | null {
  const unixType = (e.externalFileAttributes >>> 16) & S_IFMT;
  if (e.symlink || unixType === S_IFLNK) return "symbolic link";
  // Only archives written on Unix carry a file type; 0 means none was recorded.
  if (unixType !== 0 && unixType !== S_IFREG && unixType !== S_IFDIR) {
    return `special file (mode 0o${unixType.toString(8)})`;
  }
  return null;
}

/**
 * zip.js reader over a file on disk: random access by seek + read, one read
 * at a time (a file handle has a single cursor).
 */
class FileRangeReader extends zip.Reader<string> {
  #file: Deno.FsFile | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {
    super(path);
  }

  override async init(): Promise<void> {
    this.#file = await Deno.open(this.path, { read: true });
    this.size = (await this.#file.stat()).size;
  }

  override readUint8Array(index: number, length: number): Promise<Uint8Array> {
    const read = async () => {
      const file = this.#file!;
      const n = Math.max(0, Math.min(length, this.size - index));
      const out = new Uint8Array(n);
      await file.seek(index, Deno.SeekMode.Start);
      let off = 0;
      while (off < n) {
        const got = await file.read(out.subarray(off));
        if (got === null) break;
        off += got;
      }
      return out.subarray(0, off);
    };
    const result = this.#queue.then(read);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A zip archive opened for safe extraction. {@linkcode SafeZip.open} has
 * already checked every entry; {@linkcode SafeZip.extract} streams one
 * entry to a file.
 */
export class SafeZip {
  /** Every entry of the archive, in central-directory order. */
  readonly entries: readonly ZipEntryInfo[];
  readonly #byName: Map<string, zip.FileEntry>;

  private constructor(
    readonly path: string,
    private readonly reader: FileRangeReader,
    private readonly zipReader: zip.ZipReader<string>,
    raw: zip.Entry[],
    readonly budget: ZipBudget,
  ) {
    this.entries = raw.map((e) => ({
      name: e.filename,
      size: e.uncompressedSize,
      compressedSize: e.compressedSize,
      directory: e.directory,
    }));
    this.#byName = new Map(
      raw.filter((e): e is zip.FileEntry => !e.directory).map((e) => [e.filename, e]),
    );
  }

  /**
   * Opens `path`, reads its central directory and checks every entry;
   * throws a {@linkcode ZipError} naming the archive when it is damaged,
   * holds an unsafe entry, or declares more than the limits allow.
   */
  static async open(path: string, budget: ZipBudget = new ZipBudget()): Promise<SafeZip> {
    const name = basename(path);
    const reader = new FileRangeReader(path);
    // Names are checked below, with messages of our own; zip.js's own check would
    // stop at the first one with a generic error.
    const zipReader = new zip.ZipReader(reader, {
      useWebWorkers: false,
      filenameValidation: "tolerant",
    });
    let raw: zip.Entry[];
    try {
      raw = await zipReader.getEntries();
    } catch (e) {
      reader.close();
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) throw e;
      throw new ZipError(
        "corrupt",
        name,
        `${path} is corrupt or not a zip archive (${message(e)}): download or copy it again`,
      );
    }
    try {
      checkEntries(path, raw, budget.limits);
    } catch (e) {
      reader.close();
      throw e;
    }
    return new SafeZip(path, reader, zipReader, raw, budget);
  }

  /**
   * Streams entry `name` to `dest` atomically (temporary file beside it,
   * then rename), verifying its CRC-32, its declared size and the budget.
   * Returns the bytes written. File-system errors (e.g. disk full) are
   * passed through as they are, after removing the temporary file.
   */
  async extract(name: string, dest: string): Promise<number> {
    const entry = this.#byName.get(name);
    if (!entry) throw new Error(`${this.path} has no file entry '${name}'`);
    await Deno.mkdir(dirname(dest), { recursive: true });
    const tmp = tempFileFor(dest);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let written = 0;
    let sinkError: unknown;
    const archive = basename(this.path);
    const budget = this.budget;
    const sink = new WritableStream<Uint8Array>({
      async write(chunk) {
        try {
          if (written + chunk.length > entry.uncompressedSize) {
            throw new ZipError(
              "too-large",
              archive,
              `refusing ${archive}: entry '${name}' inflates past its declared size of ` +
                `${entry.uncompressedSize} bytes (a zip bomb or a damaged archive)`,
              name,
            );
          }
          budget.take(chunk.length, archive, name);
          let off = 0;
          while (off < chunk.length) off += await file.write(chunk.subarray(off));
          written += chunk.length;
        } catch (e) {
          sinkError = e;
          throw e;
        }
      },
    });
    try {
      await entry.getData(sink, { checkCrc32: true });
      if (written !== entry.uncompressedSize) {
        throw new ZipError(
          "corrupt",
          archive,
          `${this.path}: entry '${name}' holds ${written} bytes, its header says ` +
            `${entry.uncompressedSize}: the archive is corrupt, download or copy it again`,
          name,
        );
      }
    } catch (e) {
      file.close();
      await Deno.remove(tmp).catch(() => {});
      if (sinkError !== undefined) throw sinkError;
      if (e instanceof ZipError) throw e;
      throw new ZipError(
        "corrupt",
        archive,
        `${this.path}: entry '${name}' is corrupt (${
          message(e)
        }): download or copy the archive again`,
        name,
      );
    }
    file.close();
    await commitTemp(tmp, dest);
    return written;
  }

  /** Releases the file handle. */
  async close(): Promise<void> {
    await this.zipReader.close().catch(() => {});
    this.reader.close();
  }
}

function checkEntries(path: string, raw: zip.Entry[], limits: ZipLimits): void {
  const name = basename(path);
  let declared = 0;
  for (const e of raw) {
    const bad = unsafeNameReason(e.filename) ?? specialFileReason(e);
    if (bad) {
      throw new ZipError(
        "unsafe-entry",
        name,
        `refusing ${path}: entry '${e.filename}' is a ${bad}; nothing was extracted from it`,
        e.filename,
      );
    }
    if (e.directory) continue;
    declared += e.uncompressedSize;
    const ratio = e.uncompressedSize / Math.max(1, e.compressedSize);
    if (e.uncompressedSize >= limits.ratioMinBytes && ratio > limits.maxRatio) {
      throw new ZipError(
        "too-large",
        name,
        `refusing ${path}: entry '${e.filename}' expands ${ratio.toFixed(0)}:1 ` +
          `(${e.compressedSize} -> ${e.uncompressedSize} bytes), over the ${limits.maxRatio}:1 ` +
          `limit for a zip bomb`,
        e.filename,
      );
    }
  }
  if (declared > limits.maxTotalBytes) {
    throw new ZipError(
      "too-large",
      name,
      `refusing ${path}: it declares ${declared} uncompressed bytes, over the cap of ` +
        `${limits.maxTotalBytes} (a zip bomb, or raise the cap)`,
    );
  }
}

/** True when the file starts like a zip archive (local header or empty-archive record). */
export async function looksLikeZip(path: string): Promise<boolean> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(4);
  let off = 0;
  while (off < 4) {
    const n = await file.read(head.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off === 4 && head[0] === 0x50 && head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}
