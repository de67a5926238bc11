/**
 * The on-disk dataset format that `deno task preprocess` writes and
 * {@linkcode ../data/dataset.ts} reads.
 *
 * A dataset is a folder holding:
 * - `manifest.json` ({@linkcode Manifest}), written last: a folder without it
 *   is an unfinished run;
 * - shard files `<split>-<NNNNN>.bin`, one per planned chunk of a split;
 * - `report.json`: every skipped item and warning, with reasons;
 * - `progress.json`: the resume journal (shards done and their hashes).
 *
 * A shard file is self-describing (all integers little-endian):
 *
 * | bytes | content |
 * | --- | --- |
 * | `[0, P)` | pixels: `count` records of `height * width * 3` uint8 (RGB, row-major), record `i` at `i * recordBytes`; P = `count * recordBytes` |
 * | `[labelsOffset, +4 * count)` | int32 class index per record (class schemes only) |
 * | `[votesOffset, +148 * count)` | float32 x 37 vote fractions per record (sources with fractions only) |
 * | `[metaOffset, +metaLength)` | UTF-8 JSON {@linkcode ShardMeta}: ids, offsets, train statistics, skipped items |
 * | last 16 bytes | footer: uint64 `metaOffset`, uint32 `metaLength`, 4 bytes magic `GZS1` |
 *
 * The pixel block is one contiguous `N x H x W x 3` array at offset 0, so a
 * reader fetches record `i` with one positioned read.
 *
 * @module
 */
import type { FitsStretch } from "./stretch.ts";
import { join } from "node:path";
import { readJson } from "../io/atomic.ts";
import { NUM_VOTES } from "./schema.ts";

/** Dataset splits; `unlabeled` holds images without labels (Kaggle `images_test_rev1`). */
export type Split = "train" | "val" | "test" | "unlabeled";

/** The four splits in the order shards are written and listed. */
export const SPLITS: readonly Split[] = ["train", "val", "test", "unlabeled"];

/** `format` field of a manifest. */
export const DATASET_FORMAT = "galaxy-dataset";
/** Version of the folder and shard layout described in this module. */
export const DATASET_FORMAT_VERSION = 1;
/** Name of the manifest inside a dataset folder. */
export const MANIFEST_FILE = "manifest.json";
/** Name of the bad-input report inside a dataset folder. */
export const REPORT_FILE = "report.json";
/** Name of the resume journal inside a dataset folder. */
export const PROGRESS_FILE = "progress.json";
/** Magic of a shard footer. */
export const SHARD_MAGIC = "GZS1";
/** Bytes of a shard footer. */
export const SHARD_FOOTER_BYTES = 16;

/** One shard as the manifest lists it. */
export interface ShardEntry {
  /** File name inside the dataset folder. */
  file: string;
  /** Split whose records the shard holds. */
  split: Split;
  /** Records in the shard. */
  count: number;
  /** File size in bytes. */
  bytes: number;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
}

/** Image counts of one split. */
export interface SplitCounts {
  /** Images in the split. */
  total: number;
  /** Per class index (empty for the `votes` scheme and the unlabeled split). */
  perClass: number[];
}

/** Contents of `manifest.json`. */
export interface Manifest {
  /** Always {@linkcode DATASET_FORMAT}: marks the folder as a galaxy dataset. */
  format: typeof DATASET_FORMAT;
  /** {@linkcode DATASET_FORMAT_VERSION} of the writer. */
  formatVersion: number;
  /** Program and version that wrote the dataset. */
  tool: { name: string; version: string };
  /** ISO 8601 time the dataset was first written (kept when a run resumes). */
  createdAt: string;
  /** Where the images and labels came from. */
  source: {
    path: string;
    layout: "kaggle" | "labels-csv" | "class-folders";
    /** Source image size most images have (others were reported as warnings). */
    expectedImageSize: [number, number] | null;
  };
  /** Label scheme the targets follow (see lib/data/label_schemes.ts). */
  scheme: {
    name: string;
    kind: "classes" | "votes";
    classNames: string[];
    flipPairs: [number, number][];
  };
  /** Stored images: size, centre-crop fraction of the source, bytes per record. */
  image: {
    height: number;
    width: number;
    channels: 3;
    crop: number;
    recordBytes: number;
    /** What decoded the images (lib/data/image.ts IMAGE_PIPELINE). */
    decoder: string;
    /** How FITS inputs were stretched to 8 bits (absent in datasets made before FITS was read). */
    fitsStretch?: FitsStretch;
  };
  /** Whether records carry the 37 vote fractions. */
  hasVotes: boolean;
  /** Whether labelled records carry a class index. */
  hasLabels: boolean;
  /** How records were split: val and test fractions, seed and method. */
  split: { val: number; test: number; seed: number | string; method: string };
  /** Image counts per split. */
  counts: Record<Split, SplitCounts>;
  /** Per-channel (R, G, B) mean and standard deviation of the train split, 0-255 units. */
  stats: { mean: number[]; std: number[]; pixels: number } | null;
  /** Items reported as bad (skipped) and as warnings; details in report.json. */
  problems: { skipped: number; warnings: number; leftOut: number };
  /** Hash of the plan (inputs, labels, options) that produced the shards. */
  fingerprint: string;
  /** Every shard file, in the order written. */
  shards: ShardEntry[];
}

/** An item left out of a shard, or a warning about one kept. */
export interface ItemProblem {
  /** Item id; absent for a row without one or a dataset-level warning. */
  id?: string;
  /** Source file (relative to the source folder), with `:line` for CSV rows. */
  file?: string;
  /** What is wrong. */
  reason: string;
}

/** JSON metadata block of a shard file. */
export interface ShardMeta {
  format: typeof DATASET_FORMAT;
  formatVersion: number;
  fingerprint: string;
  file: string;
  split: Split;
  shardIndex: number;
  count: number;
  height: number;
  width: number;
  channels: 3;
  recordBytes: number;
  labelsOffset: number | null;
  votesOffset: number | null;
  ids: string[];
  /** Per-class counts of the records (empty when there are no labels). */
  classCounts: number[];
  /** Per-channel sum and sum of squares of pixel values, and pixels counted. */
  stats: { sum: number[]; sumSq: number[]; pixels: number };
  /** Planned items that could not be decoded. */
  skipped: ItemProblem[];
  /** Kept items with a warning (e.g. unexpected source size). */
  warnings: ItemProblem[];
}

/** Targets and ids of one shard, as {@linkcode readShardMeta} returns them. */
export interface ShardContents {
  meta: ShardMeta;
  labels: Int32Array | null;
  votes: Float32Array | null;
}

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

/**
 * Reads a shard's footer, metadata and targets (not its pixels). Throws
 * naming the file when it is truncated or not a shard.
 */
export async function readShardMeta(path: string): Promise<ShardContents> {
  using f = await Deno.open(path, { read: true });
  const size = (await f.stat()).size;
  if (size < SHARD_FOOTER_BYTES) fail(path, `too short to be a shard (${size} bytes)`);
  const readAt = async (offset: number, length: number): Promise<Uint8Array> => {
    const buf = new Uint8Array(length);
    await f.seek(offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < length) {
      const n = await f.read(buf.subarray(got));
      if (n === null) fail(path, `unexpected end of file at byte ${offset + got}`);
      got += n;
    }
    return buf;
  };
  const foot = await readAt(size - SHARD_FOOTER_BYTES, SHARD_FOOTER_BYTES);
  const dv = new DataView(foot.buffer);
  const magic = new TextDecoder().decode(foot.subarray(12, 16));
  if (magic !== SHARD_MAGIC) fail(path, `not a shard file (footer magic '${magic}')`);
  const metaOffset = Number(dv.getBigUint64(0, true));
  const metaLength = dv.getUint32(8, true);
  if (metaOffset + metaLength + SHARD_FOOTER_BYTES !== size) {
    fail(path, "footer does not match the file size (truncated or corrupt shard)");
  }
  let meta: ShardMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(await readAt(metaOffset, metaLength)));
  } catch (e) {
    fail(path, `metadata is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (meta.ids?.length !== meta.count) fail(path, "metadata ids do not match its count");
  let labels: Int32Array | null = null;
  if (meta.labelsOffset !== null) {
    const b = await readAt(meta.labelsOffset, 4 * meta.count);
    const d = new DataView(b.buffer);
    labels = new Int32Array(meta.count);
    for (let i = 0; i < meta.count; i++) labels[i] = d.getInt32(4 * i, true);
  }
  let votes: Float32Array | null = null;
  if (meta.votesOffset !== null) {
    const b = await readAt(meta.votesOffset, 4 * NUM_VOTES * meta.count);
    const d = new DataView(b.buffer);
    votes = new Float32Array(NUM_VOTES * meta.count);
    for (let i = 0; i < votes.length; i++) votes[i] = d.getFloat32(4 * i, true);
  }
  return { meta, labels, votes };
}

/** Checks a parsed manifest has the fields and types readers rely on. */
export function validateManifest(m: unknown, where = MANIFEST_FILE): Manifest {
  const o = m as Record<string, unknown>;
  if (typeof o !== "object" || o === null) fail(where, "not a JSON object");
  if (o.format !== DATASET_FORMAT) fail(where, `format is '${o.format}', not '${DATASET_FORMAT}'`);
  if (o.formatVersion !== DATASET_FORMAT_VERSION) {
    fail(where, `format version ${o.formatVersion} is not supported (${DATASET_FORMAT_VERSION})`);
  }
  const img = o.image as Manifest["image"];
  if (
    !img || !Number.isInteger(img.height) || !Number.isInteger(img.width) || img.channels !== 3 ||
    img.recordBytes !== img.height * img.width * 3
  ) fail(where, "image: needs integer height, width, channels 3 and recordBytes = H*W*3");
  const scheme = o.scheme as Manifest["scheme"];
  if (!scheme || !Array.isArray(scheme.classNames) || !Array.isArray(scheme.flipPairs)) {
    fail(where, "scheme: needs classNames and flipPairs arrays");
  }
  if (scheme.kind !== "classes" && scheme.kind !== "votes") {
    fail(where, `scheme.kind '${scheme.kind}'`);
  }
  const counts = o.counts as Manifest["counts"];
  for (const s of SPLITS) {
    if (!counts?.[s] || !Number.isInteger(counts[s].total)) fail(where, `counts.${s} is missing`);
  }
  if (!Array.isArray(o.shards)) fail(where, "shards is not a list");
  const seen = new Set<string>();
  (o.shards as ShardEntry[]).forEach((s, i) => {
    const at = `${where}: shards[${i}]`;
    if (typeof s.file !== "string" || s.file.includes("/") || s.file.startsWith(".")) {
      fail(at, `bad file name '${s.file}'`);
    }
    if (seen.has(s.file)) fail(at, `${s.file} listed twice`);
    seen.add(s.file);
    if (!SPLITS.includes(s.split)) fail(at, `unknown split '${s.split}'`);
    if (!Number.isInteger(s.count) || s.count < 0) fail(at, `bad count ${s.count}`);
    if (!Number.isInteger(s.bytes) || s.bytes < SHARD_FOOTER_BYTES) {
      fail(at, `bad bytes ${s.bytes}`);
    }
    if (typeof s.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(s.sha256)) {
      fail(at, "sha256 is not 64 hex digits");
    }
  });
  for (const s of SPLITS) {
    const listed = (o.shards as ShardEntry[]).filter((x) => x.split === s)
      .reduce((a, x) => a + x.count, 0);
    if (listed !== counts[s].total) {
      fail(where, `counts.${s}.total is ${counts[s].total} but its shards hold ${listed}`);
    }
  }
  return o as unknown as Manifest;
}

/** Reads and validates `<dir>/manifest.json`. */
export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE);
  return validateManifest(await readJson(path), path);
}
