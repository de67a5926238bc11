/**
 * Resumable download of one file.
 *
 * Bytes go to `<target>.part`, with `<target>.part.json` beside it holding
 * what a later run needs to resume safely: the expected size, the server's
 * validator (ETag or Last-Modified, sent back as `If-Range` so a changed
 * file restarts instead of being spliced) and the MD5 the storage announced.
 * A network failure keeps the partial file (and is retried a few times);
 * the next run continues it with an HTTP Range request. When the transfer
 * ends, the size is checked against the API's listing and the server's
 * headers, the MD5 against the storage's `x-goog-hash`/`Content-MD5` when
 * given, and only then is the file renamed into place.
 *
 * @module
 */
import { dirname } from "node:path";
import { formatBytes } from "../cli.ts";
import { readJson, writeJsonAtomic } from "../io/atomic.ts";
import type { RangeRequest } from "./client.ts";
import { FetchError, isDiskFull } from "./errors.ts";
import { base64ToHex, hashFile } from "./hash.ts";
import { ProgressMeter, type ProgressSnapshot } from "./progress.ts";

/** Options of {@linkcode downloadResumable}. */
/** Network failures retried per file within one run, when the caller does not say. */
export const DEFAULT_RETRIES = 3;

export interface DownloadOptions {
  /** Opens the data, from `range.offset` on when given (see `KaggleClient.openDataFile`). */
  open: (range?: RangeRequest) => Promise<Response>;
  /** Final path of the file. */
  target: string;
  /** Name used in progress lines and messages. */
  label: string;
  /** Size the API lists for the file, when it does. */
  expectedSize?: number;
  onProgress?: (p: ProgressSnapshot) => void;
  /** Network failures retried within this run before giving up (default {@linkcode DEFAULT_RETRIES}). */
  retries?: number;
  /** Wait before retry `n` is `n * retryDelayMs` (default 2000). */
  retryDelayMs?: number;
  /** Least time between two progress reports (default 500 ms). */
  progressIntervalMs?: number;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
  /** Opens the partial file for writing; defaults to `Deno.open` (tests inject faults). */
  openFile?: (path: string, options: Deno.OpenOptions) => Promise<PartWriter>;
}

/** The part of `Deno.FsFile` the download writes through. */
export interface PartWriter {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** What {@linkcode downloadResumable} produced. */
export interface DownloadResult {
  path: string;
  size: number;
  sha256: string;
  md5: string;
  /** Whether an MD5 from the server was checked. */
  md5Verified: boolean;
  /** Bytes already present from an earlier attempt or run (0 for a fresh download). */
  resumedFrom: number;
}

/** What is kept beside a partial download so a later run can resume it. */
interface PartMeta {
  label: string;
  expectedSize?: number;
  validator?: string;
  /** Hex MD5 of the whole file, as announced by the storage. */
  md5?: string;
}

/** Path of the partial file kept beside `target` while downloading. */
export function partPath(target: string): string {
  return `${target}.part`;
}

function metaPath(target: string): string {
  return `${target}.part.json`;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function discard(target: string): Promise<void> {
  await Deno.remove(partPath(target)).catch(() => {});
  await Deno.remove(metaPath(target)).catch(() => {});
}

async function readMeta(target: string): Promise<PartMeta | undefined> {
  try {
    return await readJson<PartMeta>(metaPath(target));
  } catch {
    return undefined;
  }
}

function parseContentRange(v: string | null): { start?: number; total?: number } | undefined {
  const m = v && /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    total: m[2] === "*" ? undefined : Number(m[2]),
  };
}

/** The whole-file MD5 a storage response announces, as hex. */
function announcedMd5(res: Response): string | undefined {
  const goog = /(?:^|[\s,])md5=([A-Za-z0-9+/]+=*)/.exec(res.headers.get("x-goog-hash") ?? "");
  if (goog) return base64ToHex(goog[1]);
  // Content-MD5 describes the body, so only a full response gives the file's.
  const contentMd5 = res.headers.get("content-md5");
  if (res.status === 200 && contentMd5) return base64ToHex(contentMd5.trim());
  return undefined;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Restarts the transfer from byte 0 (the partial copy could not be continued). */
class Restart extends Error {}

/**
 * Downloads to `target`, resuming a partial file left by an earlier run,
 * and verifies size and checksum. Throws a {@linkcode FetchError} of kind
 * "network" (partial kept, rerun resumes), "disk-full" (partial removed) or
 * "mismatch" (bad copy removed).
 */
export async function downloadResumable(options: DownloadOptions): Promise<DownloadResult> {
  const { target, label, expectedSize, open } = options;
  const retries = options.retries ?? DEFAULT_RETRIES;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const interval = options.progressIntervalMs ?? 500;
  const now = options.now ?? (() => performance.now());
  const openFile = options.openFile ?? ((path, o) => Deno.open(path, o));
  const part = partPath(target);
  await Deno.mkdir(dirname(target), { recursive: true });

  let meta = await readMeta(target);
  const existing = await fileSize(part);
  let resumedFrom = existing ?? 0;
  if (
    existing !== undefined &&
    (!meta || meta.label !== label ||
      (expectedSize !== undefined && meta.expectedSize !== undefined &&
        meta.expectedSize !== expectedSize) ||
      (expectedSize !== undefined && existing > expectedSize))
  ) {
    // Bytes of unknown origin, or of another version of the file: start over.
    await discard(target);
    meta = undefined;
    resumedFrom = 0;
  }

  let total = expectedSize ?? meta?.expectedSize;

  /** One request and transfer; returns when the part file holds the whole file. */
  const transferOnce = async (): Promise<void> => {
    const offset = (await fileSize(part)) ?? 0;
    if (offset > 0 && total !== undefined && offset === total) return;
    let res: Response;
    try {
      res = await open(offset > 0 ? { offset, validator: meta?.validator } : undefined);
    } catch (e) {
      if (e instanceof FetchError && e.kind === "network" && offset > 0) {
        throw new FetchError(
          "network",
          `${e.message}; ${formatBytes(offset)} of ${label} are kept in ${part}: run the same ` +
            `command again to resume`,
        );
      }
      throw e;
    }
    let append = false;
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get("content-range"));
      if (!range || range.start !== offset) {
        await res.body?.cancel();
        throw new Restart();
      }
      if (range.total !== undefined) total = range.total;
      append = true;
    } else if (res.status === 416) {
      await res.body?.cancel();
      const range = parseContentRange(res.headers.get("content-range"));
      if (offset > 0 && range?.total === offset) return;
      throw new Restart();
    } else {
      // A whole new copy: trust the listing, else this response's length.
      const length = Number(res.headers.get("content-length") ?? NaN);
      total = expectedSize ?? (Number.isFinite(length) ? length : undefined);
    }
    const validator = res.headers.get("etag") ?? res.headers.get("last-modified") ?? undefined;
    meta = {
      label,
      expectedSize: total,
      validator: validator ?? (append ? meta?.validator : undefined),
      md5: announcedMd5(res) ?? (append ? meta?.md5 : undefined),
    };
    await writeJsonAtomic(metaPath(target), meta);

    const file = await openFile(
      part,
      append ? { append: true } : {
        write: true,
        create: true,
        truncate: true,
      },
    );
    let done = append ? offset : 0;
    const meter = new ProgressMeter(total, now);
    let lastReport = -Infinity;
    const report = (force: boolean) => {
      const t = now();
      if (!options.onProgress || (!force && t - lastReport < interval)) return;
      lastReport = t;
      options.onProgress(meter.update(done));
    };
    report(true);
    try {
      if (!res.body) throw new Error("empty response body");
      const reader = res.body.getReader();
      while (true) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new FetchError(
            "network",
            `network failure while downloading ${label} at ${formatBytes(done)}` +
              `${total !== undefined ? ` of ${formatBytes(total)}` : ""} (${message(e)}); the ` +
              `partial download is kept in ${part}: run the same command again to resume`,
          );
        }
        if (chunk.done) break;
        try {
          let off = 0;
          while (off < chunk.value.length) off += await file.write(chunk.value.subarray(off));
        } catch (e) {
          await reader.cancel().catch(() => {});
          if (isDiskFull(e)) {
            file.close();
            await discard(target);
            throw new FetchError(
              "disk-full",
              `disk full while writing ${part} (${formatBytes(done)} written` +
                `${total !== undefined ? `, ${formatBytes(total)} needed` : ""}): the partial ` +
                `file was removed; free space in ${dirname(target)} and run again`,
            );
          }
          throw e;
        }
        done += chunk.value.length;
        report(false);
      }
      report(true);
    } finally {
      try {
        file.close();
      } catch {
        // Already closed after a full disk.
      }
    }
  };

  let attempt = 0;
  let restarts = 0;
  while (true) {
    try {
      await transferOnce();
      break;
    } catch (e) {
      if (e instanceof Restart && restarts++ < 2) {
        await discard(target);
        meta = undefined;
        total = expectedSize;
        continue;
      }
      if (e instanceof FetchError && e.kind === "network" && attempt < retries) {
        attempt++;
        await new Promise((r) => setTimeout(r, retryDelayMs * attempt));
        continue;
      }
      if (e instanceof Restart) {
        throw new FetchError("http", `the server keeps answering ${label} with a wrong range`);
      }
      if (isDiskFull(e)) {
        await discard(target);
        throw new FetchError(
          "disk-full",
          `disk full while downloading ${label} into ${dirname(target)}: the partial file was ` +
            `removed; free space and run again`,
        );
      }
      throw e;
    }
  }

  const digests = await hashFile(part);
  const sizeProblem = expectedSize !== undefined && digests.size !== expectedSize
    ? `Kaggle lists ${expectedSize} bytes`
    : total !== undefined && digests.size !== total
    ? `the server announced ${total} bytes`
    : undefined;
  if (sizeProblem) {
    await discard(target);
    throw new FetchError(
      "mismatch",
      `size mismatch for ${label}: downloaded ${digests.size} bytes but ${sizeProblem}; the bad ` +
        `copy was removed: run again to download it afresh`,
    );
  }
  if (meta?.md5 && meta.md5 !== digests.md5) {
    await discard(target);
    throw new FetchError(
      "mismatch",
      `checksum mismatch for ${label}: the storage announced MD5 ${meta.md5}, the download has ` +
        `${digests.md5}; the bad copy was removed: run again to download it afresh`,
    );
  }
  await Deno.rename(part, target);
  await Deno.remove(metaPath(target)).catch(() => {});
  return {
    path: target,
    size: digests.size,
    sha256: digests.sha256,
    md5: digests.md5,
    md5Verified: meta?.md5 !== undefined,
    resumedFrom,
  };
}
