/**
 * Reading a preprocessed dataset folder (format in {@linkcode ./manifest.ts})
 * as batches of pixels, class indices and vote fractions.
 *
 * Memory is O(batch) for pixels: each batch is fetched from the shard files
 * with positioned synchronous reads (adjacent records coalesced into one
 * read), never a whole shard. Ids and targets of every record (a few
 * hundred bytes each) are loaded from the shards' metadata at open.
 *
 * Shuffling is a seeded permutation of the split that depends only on
 * (seed, epoch), so a run resumed at `startBatch` sees exactly the batches
 * an uninterrupted run would have seen from there.
 *
 * @module
 */
import { join } from "node:path";
import { sha256File } from "../io/digest.ts";
import { mixSeed, permutation as shuffledIndices } from "../random.ts";
import { type Manifest, readManifest, readShardMeta, type Split, SPLITS } from "./manifest.ts";
import { NUM_VOTES } from "./schema.ts";

export type { Manifest, Split } from "./manifest.ts";

/** A batch of records, in the order the iterator chose. */
export interface Batch {
  /** Number of images in the batch. */
  n: number;
  /** Record ids, one per image, in batch order. */
  ids: string[];
  /** `n * H * W * 3` bytes, NHWC, RGB. */
  pixels: Uint8Array;
  /** Class index per image (class schemes, labelled splits), else null. */
  labels: Int32Array | null;
  /** `n * 37` vote fractions when the dataset has them (labelled splits), else null. */
  votes: Float32Array | null;
  /** Index of this batch within the epoch. */
  index: number;
}

/** Options of {@linkcode Dataset.batches}. */
export interface BatchOptions {
  /** Images per batch. */
  batchSize: number;
  /** Seeded permutation instead of stored order. */
  shuffle?: boolean;
  /** Permutation seed (0). */
  seed?: number;
  /** Epoch number; each epoch has its own permutation (0). */
  epoch?: number;
  /** First batch to yield, for resuming mid-epoch (0). */
  startBatch?: number;
  /** Leave out a last batch smaller than `batchSize`. */
  dropRemainder?: boolean;
}

/** An open dataset folder. */
export interface Dataset {
  /** The dataset folder. */
  dir: string;
  /** Its parsed `manifest.json`. */
  manifest: Manifest;
  /** Records in a split. */
  size(split: Split): number;
  /** Records per class in a split (empty for the votes scheme and unlabeled). */
  classCounts(split: Split): number[];
  /** Mean of each of the 37 vote fractions over a split; null without fractions or records. */
  meanVotes(split: Split): Float64Array | null;
  /** Number of batches `batches` yields for these options from batch 0. */
  numBatches(split: Split, opts: { batchSize: number; dropRemainder?: boolean }): number;
  /** Ids of a split in stored order. */
  ids(split: Split): readonly string[];
  /** Batches of a split, read from the shards, in stored or shuffled order. */
  batches(split: Split, opts: BatchOptions): AsyncIterableIterator<Batch>;
  /** Re-hashes every shard; throws naming the first that does not match the manifest. */
  verify(): Promise<void>;
  /** Closes the open shard files; reads after this throw. */
  close(): void;
}

interface SplitIndex {
  ids: string[];
  /** Shard number (into manifest.shards) and record within it, per record. */
  shard: Int32Array;
  record: Int32Array;
  labels: Int32Array | null;
  votes: Float32Array | null;
}

/**
 * The order of a split's `n` records for (seed, epoch): the toolkit's seeded
 * Fisher-Yates shuffle (lib/random.ts) under a seed mixed from both.
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  // Indices stay below 2^31, so the Int32 view reads the same numbers.
  return new Int32Array(shuffledIndices(n, mixSeed(seed, epoch)).buffer);
}

/**
 * Opens a dataset folder: reads and validates the manifest, checks every
 * listed shard exists with its listed size, loads ids and targets. With
 * `verify`, also re-hashes every shard.
 */
export async function openDataset(dir: string, opts: { verify?: boolean } = {}): Promise<Dataset> {
  const manifest = await readManifest(dir);
  const { height, width } = manifest.image;
  const recordBytes = manifest.image.recordBytes;
  for (const s of manifest.shards) {
    const path = join(dir, s.file);
    let size: number;
    try {
      size = (await Deno.stat(path)).size;
    } catch {
      throw new Error(`shard ${path} listed in ${join(dir, "manifest.json")} does not exist`);
    }
    if (size !== s.bytes) {
      throw new Error(`shard ${path} has ${size} bytes; the manifest lists ${s.bytes}`);
    }
  }
  const metas = await Promise.all(manifest.shards.map((s) => readShardMeta(join(dir, s.file))));
  const index = {} as Record<Split, SplitIndex>;
  for (const split of SPLITS) {
    const members = manifest.shards.map((s, k) => ({ s, k })).filter((x) => x.s.split === split);
    const n = members.reduce((a, x) => a + x.s.count, 0);
    const labelled = split !== "unlabeled";
    const ix: SplitIndex = {
      ids: [],
      shard: new Int32Array(n),
      record: new Int32Array(n),
      labels: labelled && manifest.hasLabels ? new Int32Array(n) : null,
      votes: labelled && manifest.hasVotes ? new Float32Array(n * NUM_VOTES) : null,
    };
    let at = 0;
    for (const { s, k } of members) {
      const m = metas[k];
      const where = join(dir, s.file);
      if (m.meta.count !== s.count || m.meta.split !== split) {
        throw new Error(`shard ${where}: metadata says ${m.meta.count} ${m.meta.split} records`);
      }
      if (m.meta.height !== height || m.meta.width !== width) {
        throw new Error(`shard ${where}: records are ${m.meta.width}x${m.meta.height}`);
      }
      if (ix.labels && !m.labels) throw new Error(`shard ${where}: has no class labels`);
      if (ix.votes && !m.votes) throw new Error(`shard ${where}: has no vote fractions`);
      for (let r = 0; r < s.count; r++) {
        ix.ids.push(m.meta.ids[r]);
        ix.shard[at + r] = k;
        ix.record[at + r] = r;
      }
      ix.labels?.set(m.labels!, at);
      ix.votes?.set(m.votes!, at * NUM_VOTES);
      at += s.count;
    }
    index[split] = ix;
  }

  const handles = new Map<number, Deno.FsFile>();
  let closed = false;
  const handle = (k: number): Deno.FsFile => {
    if (closed) throw new Error(`dataset ${dir} is closed`);
    let h = handles.get(k);
    if (!h) {
      h = Deno.openSync(join(dir, manifest.shards[k].file), { read: true });
      handles.set(k, h);
    }
    return h;
  };

  /**
   * Fills `dst` from byte `pos` of shard `k`, synchronously: a few KB from
   * the page cache take microseconds, where an asynchronous read costs a
   * turn of the event loop, which a training step holds for its whole
   * length (the read-ahead then waited on 32 of them after every step).
   */
  const readAt = (k: number, pos: number, dst: Uint8Array) => {
    const fh = handle(k);
    fh.seekSync(pos, Deno.SeekMode.Start);
    let got = 0;
    while (got < dst.length) {
      const n = fh.readSync(dst.subarray(got));
      if (n === null || n === 0) {
        throw new Error(`shard ${manifest.shards[k].file}: unexpected end of file`);
      }
      got += n;
    }
  };

  /** Reads records `order[from..to)` of a split into one batch. */
  function readBatch(
    split: Split,
    order: Int32Array | null,
    from: number,
    to: number,
    batchIndex: number,
  ): Batch {
    const ix = index[split];
    const n = to - from;
    const at = (i: number) => (order ? order[from + i] : from + i);
    const pixels = new Uint8Array(n * recordBytes);
    let i = 0;
    while (i < n) {
      // Coalesce a run of records adjacent in the same shard into one read.
      const g0 = at(i);
      let len = 1;
      while (
        i + len < n && at(i + len) === g0 + len && ix.shard[g0 + len] === ix.shard[g0]
      ) len++;
      const k = ix.shard[g0];
      const dst = pixels.subarray(i * recordBytes, (i + len) * recordBytes);
      readAt(k, ix.record[g0] * recordBytes, dst);
      i += len;
    }
    const ids = new Array<string>(n);
    const labels = ix.labels ? new Int32Array(n) : null;
    const votes = ix.votes ? new Float32Array(n * NUM_VOTES) : null;
    for (let j = 0; j < n; j++) {
      const g = at(j);
      ids[j] = ix.ids[g];
      if (labels) labels[j] = ix.labels![g];
      if (votes) votes.set(ix.votes!.subarray(g * NUM_VOTES, (g + 1) * NUM_VOTES), j * NUM_VOTES);
    }
    return { n, ids, pixels, labels, votes, index: batchIndex };
  }

  const numBatches = (split: Split, o: { batchSize: number; dropRemainder?: boolean }) => {
    const n = index[split].ids.length;
    return o.dropRemainder ? Math.floor(n / o.batchSize) : Math.ceil(n / o.batchSize);
  };

  async function* batches(split: Split, o: BatchOptions): AsyncIterableIterator<Batch> {
    if (!SPLITS.includes(split)) throw new Error(`unknown split '${split}'`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw new Error(`batchSize must be a positive integer, got ${o.batchSize}`);
    }
    const start = o.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0) {
      throw new Error(`startBatch must be a non-negative integer, got ${start}`);
    }
    const n = index[split].ids.length;
    const order = o.shuffle ? permutation(n, o.seed ?? 0, o.epoch ?? 0) : null;
    const count = numBatches(split, o);
    for (let b = start; b < count; b++) {
      yield readBatch(split, order, b * o.batchSize, Math.min(n, (b + 1) * o.batchSize), b);
    }
  }

  const ds: Dataset = {
    dir,
    manifest,
    size: (split) => index[split].ids.length,
    classCounts: (split) => [...manifest.counts[split].perClass],
    meanVotes(split) {
      const v = index[split].votes;
      const n = v ? v.length / NUM_VOTES : 0;
      if (!v || n === 0) return null;
      const mean = new Float64Array(NUM_VOTES);
      for (let i = 0; i < v.length; i++) mean[i % NUM_VOTES] += v[i];
      return mean.map((x) => x / n);
    },
    numBatches,
    ids: (split) => index[split].ids,
    batches,
    async verify() {
      for (const s of manifest.shards) {
        const path = join(dir, s.file);
        const got = await sha256File(path);
        if (got !== s.sha256) {
          throw new Error(`shard ${path} fails its checksum: SHA-256 ${got}, manifest ${s.sha256}`);
        }
      }
    },
    close() {
      closed = true;
      for (const h of handles.values()) h.close();
      handles.clear();
    },
  };
  if (opts.verify) await ds.verify();
  return ds;
}
