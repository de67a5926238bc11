/**
 * Splitting a catalogue of images over `n` machines: `--shard i/n` (0-based
 * `i`, as Kubernetes' JOB_COMPLETION_INDEX) keeps the ids whose hash falls
 * in slice `i`.
 *
 * An id's slice is the first 4 bytes of SHA-256 of its UTF-8 bytes, read as
 * a big-endian unsigned integer, modulo `n` (in Python:
 * `int(hashlib.sha256(id.encode()).hexdigest()[:8], 16) % n`). It depends on
 * the id alone, so adding or removing images never moves the others to
 * another slice, and every id is in exactly one slice.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Slice `index` (0-based) of `count`. */
export interface Shard {
  /** This slice, 0 to `count` - 1. */
  index: number;
  /** Number of slices. */
  count: number;
}

/** Parses `i/n` with 0 <= i < n; throws a message naming the flag. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`--shard must be i/n (0-based i, e.g. 0/4), got '${text}'`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1) throw new Error(`--shard ${text}: n must be at least 1`);
  if (index >= count) {
    throw new Error(`--shard ${text}: i is 0-based and must be below n (0 to ${count - 1})`);
  }
  return { index, count };
}

/** The slice (0 to `count` - 1) of an id. */
export function shardOf(id: string, count: number): number {
  const d = createHash("sha256").update(id, "utf8").digest();
  return d.readUInt32BE(0) % count;
}

/** Whether `id` belongs to `shard` (every id does when there is no shard). */
export function inShard(id: string, shard: Shard | null): boolean {
  return shard === null || shard.count === 1 || shardOf(id, shard.count) === shard.index;
}
