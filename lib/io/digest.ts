/**
 * Streaming file digests: a file is read once, a few MiB at a time, and fed
 * to every hash asked for, so shards and multi-GB archives are hashed
 * without being held in memory.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Digests of one file, hex, by algorithm, and its size in bytes. */
export interface FileDigest<A extends string> {
  digests: Record<A, string>;
  size: number;
}

const CHUNK_BYTES = 1 << 22;

/** Reads `path` once and returns its hex digests under each node:crypto `algorithms` name. */
export async function digestFile<A extends string>(
  path: string,
  algorithms: readonly A[],
): Promise<FileDigest<A>> {
  const hashes = algorithms.map((a) => createHash(a));
  let size = 0;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(CHUNK_BYTES);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    const chunk = buf.subarray(0, n);
    for (const h of hashes) h.update(chunk);
    size += n;
  }
  const digests = {} as Record<A, string>;
  algorithms.forEach((a, i) => digests[a] = hashes[i].digest("hex"));
  return { digests, size };
}

/** The SHA-256 of a file, lower-case hex. */
export async function sha256File(path: string): Promise<string> {
  return (await digestFile(path, ["sha256"])).digests.sha256;
}
