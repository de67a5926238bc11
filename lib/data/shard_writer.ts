/**
 * Writes one shard file in the layout described in
 * {@linkcode ./manifest.ts}: records are streamed to a temporary file beside
 * the target (never held whole in memory), hashed as they are written, then
 * the targets, metadata and footer are appended, the file is flushed to disk
 * and renamed into place. A shard under its final name is therefore always
 * complete; a killed writer leaves only a `.tmp` file.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename } from "node:path";
import { commitTemp, tempFileFor } from "../io/atomic.ts";
import {
  DATASET_FORMAT,
  DATASET_FORMAT_VERSION,
  type ItemProblem,
  SHARD_FOOTER_BYTES,
  SHARD_MAGIC,
  type ShardEntry,
  type ShardMeta,
  type Split,
} from "./manifest.ts";
import { NUM_VOTES } from "./schema.ts";

/** What a shard holds and where it goes. */
export interface ShardWriterOptions {
  /** Final path of the shard file. */
  path: string;
  fingerprint: string;
  split: Split;
  shardIndex: number;
  height: number;
  width: number;
  /** Records carry a class index. */
  hasLabels: boolean;
  /** Records carry the 37 vote fractions. */
  hasVotes: boolean;
  /** Number of classes, for per-class counts (0 without labels). */
  numClasses: number;
}

/** One image record. */
export interface ShardRecord {
  id: string;
  /** `height * width * 3` RGB bytes. */
  pixels: Uint8Array;
  label?: number;
  votes?: ArrayLike<number>;
}

/** A finished shard: its manifest entry and metadata. */
export interface FinishedShard {
  entry: ShardEntry;
  meta: ShardMeta;
}

const WRITE_BUFFER_BYTES = 1 << 20;

/** Streams records into one shard file; see the module doc. */
export class ShardWriter {
  readonly tmp: string;
  #file: Deno.FsFile;
  #hash: Hash = createHash("sha256");
  #buf = new Uint8Array(WRITE_BUFFER_BYTES);
  #used = 0;
  #written = 0;
  #ids: string[] = [];
  #labels: number[] = [];
  #votes: number[] = [];
  #classCounts: number[];
  #sum = [0, 0, 0];
  #sumSq = [0, 0, 0];
  #skipped: ItemProblem[] = [];
  #warnings: ItemProblem[] = [];
  readonly recordBytes: number;

  private constructor(readonly o: ShardWriterOptions, tmp: string, file: Deno.FsFile) {
    this.tmp = tmp;
    this.#file = file;
    this.recordBytes = o.height * o.width * 3;
    this.#classCounts = new Array(o.numClasses).fill(0);
  }

  /** Opens a temporary file beside `o.path`. */
  static async create(o: ShardWriterOptions): Promise<ShardWriter> {
    const tmp = tempFileFor(o.path);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    return new ShardWriter(o, tmp, file);
  }

  /** Records written so far. */
  get count(): number {
    return this.#ids.length;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#used + bytes.length > this.#buf.length) await this.#flush();
    if (bytes.length > this.#buf.length) {
      await this.#writeAll(bytes);
      return;
    }
    this.#buf.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#writeAll(this.#buf.subarray(0, this.#used));
    this.#used = 0;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    this.#hash.update(bytes);
    let off = 0;
    while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
    this.#written += bytes.length;
  }

  /** Appends one record. */
  async add(r: ShardRecord): Promise<void> {
    const o = this.o;
    if (r.pixels.length !== this.recordBytes) {
      throw new Error(
        `record ${r.id}: ${r.pixels.length} pixel bytes, expected ${this.recordBytes}`,
      );
    }
    if (o.hasLabels) {
      if (r.label === undefined || !(r.label >= 0 && r.label < o.numClasses)) {
        throw new Error(`record ${r.id}: class index ${r.label} out of range`);
      }
      this.#labels.push(r.label);
      this.#classCounts[r.label]++;
    }
    if (o.hasVotes) {
      if (!r.votes || r.votes.length !== NUM_VOTES) {
        throw new Error(`record ${r.id}: needs ${NUM_VOTES} vote fractions`);
      }
      for (let k = 0; k < NUM_VOTES; k++) this.#votes.push(r.votes[k]);
    }
    const p = r.pixels;
    let s0 = 0, s1 = 0, s2 = 0, q0 = 0, q1 = 0, q2 = 0;
    for (let i = 0; i < p.length; i += 3) {
      const a = p[i], b = p[i + 1], c = p[i + 2];
      s0 += a;
      s1 += b;
      s2 += c;
      q0 += a * a;
      q1 += b * b;
      q2 += c * c;
    }
    this.#sum[0] += s0;
    this.#sum[1] += s1;
    this.#sum[2] += s2;
    this.#sumSq[0] += q0;
    this.#sumSq[1] += q1;
    this.#sumSq[2] += q2;
    this.#ids.push(r.id);
    await this.#write(p);
  }

  /** Notes a planned item that was left out (e.g. undecodable). */
  skip(p: ItemProblem): void {
    this.#skipped.push(p);
  }

  /** Notes a warning about a kept item. */
  warn(p: ItemProblem): void {
    this.#warnings.push(p);
  }

  /** Writes targets, metadata and footer, flushes, renames into place. */
  async finish(): Promise<FinishedShard> {
    const o = this.o;
    const n = this.count;
    try {
      await this.#flush();
      let labelsOffset: number | null = null;
      if (o.hasLabels) {
        labelsOffset = this.#written;
        const b = new Uint8Array(4 * n);
        const dv = new DataView(b.buffer);
        this.#labels.forEach((x, i) => dv.setInt32(4 * i, x, true));
        await this.#writeAll(b);
      }
      let votesOffset: number | null = null;
      if (o.hasVotes) {
        votesOffset = this.#written;
        const b = new Uint8Array(4 * this.#votes.length);
        const dv = new DataView(b.buffer);
        this.#votes.forEach((x, i) => dv.setFloat32(4 * i, x, true));
        await this.#writeAll(b);
      }
      const meta: ShardMeta = {
        format: DATASET_FORMAT,
        formatVersion: DATASET_FORMAT_VERSION,
        fingerprint: o.fingerprint,
        file: basename(o.path),
        split: o.split,
        shardIndex: o.shardIndex,
        count: n,
        height: o.height,
        width: o.width,
        channels: 3,
        recordBytes: this.recordBytes,
        labelsOffset,
        votesOffset,
        ids: this.#ids,
        classCounts: this.#classCounts,
        stats: { sum: this.#sum, sumSq: this.#sumSq, pixels: n * o.height * o.width },
        skipped: this.#skipped,
        warnings: this.#warnings,
      };
      const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
      const metaOffset = this.#written;
      await this.#writeAll(metaBytes);
      const foot = new Uint8Array(SHARD_FOOTER_BYTES);
      const dv = new DataView(foot.buffer);
      dv.setBigUint64(0, BigInt(metaOffset), true);
      dv.setUint32(8, metaBytes.length, true);
      foot.set(new TextEncoder().encode(SHARD_MAGIC), 12);
      await this.#writeAll(foot);
      await this.#file.sync();
      this.#file.close();
      await commitTemp(this.tmp, o.path);
      const entry: ShardEntry = {
        file: basename(o.path),
        split: o.split,
        count: n,
        bytes: this.#written,
        sha256: this.#hash.digest("hex"),
      };
      return { entry, meta };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Closes and deletes the temporary file (after an error). */
  async abort(): Promise<void> {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
    await Deno.remove(this.tmp).catch(() => {});
  }
}

/** Bytes of metadata one item can add to a shard beyond its pixels and targets. */
export function metaBytesPerItem(maxIdJsonBytes: number, maxFileJsonBytes: number): number {
  // An item adds its id, or a skipped/warning entry: id, file and a reason
  // (reasons are cut to MAX_REASON characters, escaped JSON may double them).
  return maxIdJsonBytes + 1 + maxIdJsonBytes + maxFileJsonBytes + 2 * MAX_REASON + 40;
}

/** Longest reason kept in a shard's metadata (longer ones are cut). */
export const MAX_REASON = 240;

/**
 * How many items a shard of at most `maxBytes` can plan for, given the
 * per-record bytes and the worst-case metadata per item.
 */
export function shardCapacity(
  maxBytes: number,
  recordBytes: number,
  hasLabels: boolean,
  hasVotes: boolean,
  metaPerItem: number,
): number {
  const fixed = 4096 + SHARD_FOOTER_BYTES; // metadata keys, stats, footer
  const per = recordBytes + (hasLabels ? 4 : 0) + (hasVotes ? 4 * NUM_VOTES : 0) + metaPerItem;
  const cap = Math.floor((maxBytes - fixed) / per);
  if (cap < 1) {
    throw new Error(
      `--shard-mb ${(maxBytes / 2 ** 20).toFixed(4)} is too small for one ${per}-byte record`,
    );
  }
  return cap;
}
