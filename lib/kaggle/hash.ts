/**
 * Streaming file digests (SHA-256 and MD5 in one pass), for verifying
 * downloads and recording archives in the fetch state.
 *
 * @module
 */
import { digestFile } from "../io/digest.ts";

/** Hex digests of a file. */
export interface FileDigests {
  sha256: string;
  md5: string;
  size: number;
}

/** Reads `path` once and returns its SHA-256, MD5 and size. */
export async function hashFile(path: string): Promise<FileDigests> {
  const { digests, size } = await digestFile(path, ["sha256", "md5"]);
  return { ...digests, size };
}

/** Base64 digest (as HTTP headers carry it) to lower-case hex. */
export function base64ToHex(b64: string): string {
  const bin = atob(b64);
  let hex = "";
  for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, "0");
  return hex;
}
