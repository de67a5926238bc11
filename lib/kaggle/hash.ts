/**
 * Streaming file digests (SHA-256 and MD5 in one pass), for verifying
 * downloads and recording archives in the fetch state.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Hex digests of a file. */
export interface FileDigests {
  sha256: string;
  md5: string;
  size: number;
}

/** Reads `path` once, in 1 MiB chunks, and returns its SHA-256, MD5 and size. */
export async function hashFile(path: string): Promise<FileDigests> {
  const sha256 = createHash("sha256");
  const md5 = createHash("md5");
  let size = 0;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    const chunk = buf.subarray(0, n);
    sha256.update(chunk);
    md5.update(chunk);
    size += n;
  }
  return { sha256: sha256.digest("hex"), md5: md5.digest("hex"), size };
}

/** Base64 digest (as HTTP headers carry it) to lower-case hex. */
export function base64ToHex(b64: string): string {
  const bin = atob(b64);
  let hex = "";
  for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, "0");
  return hex;
}
