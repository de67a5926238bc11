/**
 * `deno task preprocess`: turns an input folder of galaxy images and labels
 * into a dataset folder of shards (format in {@linkcode ./data/manifest.ts}).
 *
 * The run, in named stages:
 * 1. plan ({@linkcode planDataset}): list the source ({@linkcode readSource}),
 *    validating every label row; label each item with the scheme and assign
 *    its split by a seeded hash of its id ({@linkcode assignSplit}); cut each
 *    split's items, sorted by id, into shards that fit `--shard-mb`. The plan,
 *    the options that shape the output, every label and every image file's
 *    size and modification time make the run's fingerprint;
 * 2. decode ({@linkcode decodeImages}) the images of each shard not yet done
 *    in a pool of decoder processes ({@linkcode DecodePool}), `--concurrency`
 *    images in flight per decoder, handed on in plan order (so the output is
 *    byte-identical however the decoding interleaves);
 * 3. write shards ({@linkcode writeShards}): each to a temporary file that is
 *    renamed when complete, then noted with its SHA-256 in `progress.json`;
 * 4. report and manifest ({@linkcode writeManifestAndReport}): `report.json`,
 *    then `manifest.json` last.
 *
 * Resuming: a re-run with the same input and options reuses every shard in
 * `progress.json` whose size matches, and adopts a shard that was renamed
 * but not yet journaled (killed in between) after checking the fingerprint
 * in its own metadata and hashing it; only the rest is decoded. Stray
 * `.tmp` files of a killed run are deleted. A folder holding a dataset with
 * another fingerprint is refused unless `overwrite` is set (its manifest is
 * then deleted before any shard is touched, so no manifest ever lists a
 * shard that fails its checksum). Two runs must not share one output folder
 * at the same time.
 *
 * Bad input never stops the run (unless `strict`): it is listed in
 * `report.json` and counted; the run fails (`ok: false`) when the bad share
 * of all items exceeds `maxBad`. Items a scheme leaves out (e.g. `gz5` rows
 * matching no class) are not bad; they are counted by reason.
 *
 * Memory is the per-item metadata (ids, labels, fractions: a few hundred
 * bytes per image) plus a fixed amount for decoding and writing (each decoder
 * process is a Deno with sharp, about 95 MiB); images are streamed, never
 * collected.
 *
 * @module
 */
import { TOOLKIT_VERSION } from "./version.ts";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { readJson, writeJsonAtomic } from "./io/atomic.ts";
import { sha256File } from "./io/digest.ts";
import {
  DEFAULT_FITS_STRETCH,
  type FitsStretch,
  IMAGE_PIPELINE,
  sniffImageSize,
  validateImageOptions,
} from "./data/image.ts";
import { aspectWarning } from "./data/aspect.ts";
import { checkFitsStretch } from "./data/stretch.ts";
import { type DecodeOutcome, DecodePool, decodeSettings } from "./data/decode_pool.ts";
import {
  getLabelScheme,
  LABEL_SCHEMES,
  type LabelScheme,
  SCHEME_NAMES,
} from "./data/label_schemes.ts";
import {
  DATASET_FORMAT,
  DATASET_FORMAT_VERSION,
  type ItemProblem,
  type Manifest,
  MANIFEST_FILE,
  PROGRESS_FILE,
  readShardMeta,
  REPORT_FILE,
  type ShardEntry,
  type ShardMeta,
  type Split,
  SPLITS,
  validateManifest,
} from "./data/manifest.ts";
import {
  type FinishedShard,
  MAX_REASON,
  metaBytesPerItem,
  shardCapacity,
  ShardWriter,
} from "./data/shard_writer.ts";
import { readSource, type Source, type SourceItem } from "./data/sources.ts";
import {
  assignSplit,
  type SplitOptions,
  splitShortfalls,
  validateSplitOptions,
} from "./data/split.ts";

/** Name and version written into manifests. */
export const TOOL = { name: "galaxy preprocess", version: TOOLKIT_VERSION };

/** Options of {@linkcode preprocess}; defaults are those of the CLI. */
export interface PreprocessOptions {
  /** Source folder: Kaggle layout, labels.csv with images, or class sub-folders. */
  inDir: string;
  /** Dataset folder to write (manifest, shards, report). */
  outDir: string;
  /** Label scheme; default `gz5` for the Kaggle layout, `csv` otherwise. */
  scheme?: string;
  /** Output side in pixels (64). */
  size?: number;
  /** Centre crop as a fraction of the shorter side (0.5). */
  crop?: number;
  /** How FITS inputs become 8-bit RGB (lib/data/stretch.ts; default DEFAULT_FITS_STRETCH). */
  fitsStretch?: FitsStretch;
  /** Validation fraction (0.1). */
  val?: number;
  /** Test fraction (0.1). */
  test?: number;
  /** Seed of the split hash (0). */
  splitSeed?: number | string;
  /** Largest shard file in MiB (256). */
  shardMb?: number;
  /** Images each decoder works on at once (3; 6 when decoding in this process). */
  concurrency?: number;
  /**
   * Decoder processes ({@linkcode DecodePool}): one per core by default
   * when subprocesses are allowed (`--allow-run`); 0 decodes in this process.
   */
  processes?: number;
  /** Any bad item is fatal. */
  strict?: boolean;
  /** Largest tolerated share of bad items (0.01). */
  maxBad?: number;
  /** Also pack the Kaggle test images as split `unlabeled` (default true). */
  unlabeled?: boolean;
  /** Use only this many ids (a fixed hash sample), for quick runs. */
  limit?: number;
  /** Replace a dataset built from other input or options in `outDir`. */
  overwrite?: boolean;
  /** Called after each decoded image. */
  onProgress?: (p: PreprocessProgress) => void;
  /** Informational lines (plan, resume, warnings). */
  log?: (line: string) => void;
}

/** Progress of the decoding phase. */
export interface PreprocessProgress {
  /** Images decoded (or failed) in this run, out of `total`. */
  done: number;
  /** Images to decode in this run. */
  total: number;
  /** Decoding rate of this run so far. */
  imagesPerSecond: number;
  /** Seconds left at the current rate (NaN before the first image). */
  etaSeconds: number;
  /** Shard being written. */
  shard: string;
}

/** Contents of `report.json`. */
export interface PreprocessReport {
  /** Absolute path of the source folder. */
  source: string;
  /** Layout of the source folder. */
  layout: Source["layout"];
  /** Label scheme name. */
  scheme: string;
  /** When the dataset was created (ISO 8601; a re-run over a finished one keeps its date). */
  createdAt: string;
  /** Items considered, images packed, and the counts of the lists below. */
  totals: { items: number; packed: number; skipped: number; warnings: number; leftOut: number };
  /** skipped / items. */
  badFraction: number;
  /** Largest tolerated share of bad items. */
  maxBad: number;
  /** Every item left out as bad, with its file (and CSV line) and the reason. */
  skipped: ItemProblem[];
  /** Kept items with a warning, and dataset-level warnings (no id). */
  warnings: ItemProblem[];
  /** Items the scheme left out, by reason, with their ids. */
  leftOut: Record<string, { count: number; ids: string[] }>;
  /** Non-image files ignored in the image folders. */
  ignoredFiles: number;
}

/** Outcome of {@linkcode preprocess}. */
export interface PreprocessResult {
  /** Contents of the `manifest.json` written. */
  manifest: Manifest;
  /** Contents of the `report.json` written. */
  report: PreprocessReport;
  /** False when the bad share exceeded `maxBad`. */
  ok: boolean;
  /** One-line summary. */
  summary: string;
  /** Shards written by this run. */
  shardsBuilt: number;
  /** Shards already complete from an earlier run, kept. */
  shardsReused: number;
  /** Images decoded in this run. */
  decoded: number;
  /** Wall-clock seconds of this run. */
  seconds: number;
}

/** Thrown in strict mode at the first bad item (after writing report.json). */
export class StrictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StrictError";
  }
}

interface PlannedItem extends SourceItem {
  /** Class index (class schemes) or null. */
  target: number | null;
}

interface PlannedShard {
  file: string;
  split: Split;
  index: number;
  items: PlannedItem[];
}

interface Journal {
  fingerprint: string;
  done: Record<string, { bytes: number; sha256: string }>;
}

function cut(reason: string): string {
  return reason.length > MAX_REASON ? reason.slice(0, MAX_REASON - 3) + "..." : reason;
}

function jsonBytes(s: string): number {
  return new TextEncoder().encode(JSON.stringify(s)).length;
}

/**
 * Size and modification time of a file, as make and rsync judge a change:
 * an image replaced in place under the same name changes the fingerprint.
 * (A synchronous stat is about 5 us here; 140k of them take under a second.)
 */
function fileStamp(path: string): string {
  try {
    const st = Deno.statSync(path);
    return `${st.size}:${st.mtime?.getTime() ?? ""}`;
  } catch {
    return "absent"; // gone since the listing: decoding will report it
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return null;
  }
}

async function tryJson<T>(path: string): Promise<T | null> {
  if ((await fileSize(path)) === null) return null;
  return await readJson<T>(path);
}

/** The options' values when unset (`deno task preprocess` shows them in its help). */
export const PREPROCESS_DEFAULTS = {
  size: 64,
  crop: 0.5,
  val: 0.1,
  test: 0.1,
  splitSeed: 0,
  shardMb: 256,
  maxBad: 0.01,
} as const;

function checkOptions(o: PreprocessOptions): Required<
  Pick<
    PreprocessOptions,
    | "size"
    | "crop"
    | "val"
    | "test"
    | "splitSeed"
    | "shardMb"
    | "concurrency"
    | "maxBad"
    | "processes"
    | "fitsStretch"
  >
> {
  const { processes, lanes } = decodeSettings({ processes: o.processes, lanes: o.concurrency });
  const d = PREPROCESS_DEFAULTS;
  const r = {
    size: o.size ?? d.size,
    crop: o.crop ?? d.crop,
    val: o.val ?? d.val,
    test: o.test ?? d.test,
    splitSeed: o.splitSeed ?? d.splitSeed,
    shardMb: o.shardMb ?? d.shardMb,
    concurrency: lanes,
    maxBad: o.maxBad ?? d.maxBad,
    processes,
    fitsStretch: checkFitsStretch(o.fitsStretch ?? DEFAULT_FITS_STRETCH, "fitsStretch"),
  };
  validateImageOptions(r);
  validateSplitOptions({ val: r.val, test: r.test, seed: r.splitSeed });
  if (!(r.shardMb > 0)) throw new Error(`--shard-mb must be positive, got ${r.shardMb}`);
  if (!(r.maxBad >= 0 && r.maxBad <= 1)) {
    throw new Error(`--max-bad must be a fraction in [0, 1], got ${r.maxBad}`);
  }
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit >= 1)) {
    throw new Error(`--limit must be a positive integer, got ${o.limit}`);
  }
  return r;
}

/** Picks the scheme for a source, checking the source has what the scheme reads. */
export function schemeFor(source: Source, name?: string): LabelScheme {
  const chosen = name ?? (source.layout === "kaggle" ? "gz5" : "csv");
  const entry = LABEL_SCHEMES[chosen];
  if (!entry) {
    throw new Error(`unknown label scheme '${chosen}': use one of ${SCHEME_NAMES.join(", ")}`);
  }
  if (entry.needs === "votes" && !source.hasVotes) {
    throw new Error(
      `scheme '${chosen}' needs the 37 vote fractions of the Kaggle layout; ` +
        `${source.dir} is a ${source.layout} folder (use --scheme csv)`,
    );
  }
  if (entry.needs === "label" && source.labels.length === 0) {
    throw new Error(
      `scheme '${chosen}' needs class labels; ${source.dir} (${source.layout}) has none` +
        (source.layout === "kaggle" ? " (use --scheme gz5, q1 or votes)" : ""),
    );
  }
  return getLabelScheme(chosen, source.labels);
}

/** Mode of the sizes of the first few images, as the size a source "should" have. */
async function probeImageSize(dir: string, items: SourceItem[]): Promise<[number, number] | null> {
  const counts = new Map<string, number>();
  for (const it of items.slice(0, 25)) {
    try {
      using f = await Deno.open(join(dir, it.file), { read: true });
      const head = new Uint8Array(1 << 16);
      const n = (await f.read(head)) ?? 0;
      const d = sniffImageSize(head.subarray(0, n));
      if (d) counts.set(`${d.width}x${d.height}`, (counts.get(`${d.width}x${d.height}`) ?? 0) + 1);
    } catch {
      // unreadable files are reported when decoded
    }
  }
  let best: string | null = null;
  for (const [k, c] of counts) if (best === null || c > counts.get(best)!) best = k;
  return best ? best.split("x").map(Number) as [number, number] : null;
}

async function cleanTempFiles(out: string): Promise<void> {
  for await (const e of Deno.readDir(out)) {
    if (e.isFile && e.name.startsWith(".") && e.name.endsWith(".tmp")) {
      await Deno.remove(join(out, e.name)).catch(() => {});
    }
  }
}

const SHARD_NAME = /^(train|val|test|unlabeled)-\d{5}\.bin$/;

async function removeDataset(out: string): Promise<void> {
  // The manifest goes first, so no manifest can list a shard being replaced.
  for (const f of [MANIFEST_FILE, PROGRESS_FILE, REPORT_FILE]) {
    await Deno.remove(join(out, f)).catch(() => {});
  }
  for await (const e of Deno.readDir(out)) {
    if (e.isFile && SHARD_NAME.test(e.name)) await Deno.remove(join(out, e.name));
  }
}

/** The options of a run with their defaults filled in and checked. */
type Settings = ReturnType<typeof checkOptions>;

/** What the run will produce: the items, their splits and shards, and the run's fingerprint. */
interface Plan {
  source: Source;
  scheme: LabelScheme;
  /** Class targets are written (a class scheme). */
  hasLabels: boolean;
  /** Vote fractions are written (the Kaggle layout). */
  hasVotes: boolean;
  /** Items the scheme left out, by reason. */
  leftOut: Map<string, string[]>;
  leftOutCount: number;
  /** Items per split, sorted by id. */
  bySplit: Record<Split, PlannedItem[]>;
  shards: PlannedShard[];
  /** SHA-256 over the options, the plan, every label and every image file's stamp. */
  fingerprint: string;
  /** Bytes of one image record (`size * size * 3`). */
  recordBytes: number;
}

/** The output folder as this run finds it, and the shards already done. */
interface Output {
  dir: string;
  manifestPath: string;
  progressPath: string;
  journal: Journal;
  /** When the dataset was first created (kept across resumed runs). */
  createdAt: string;
  /** Shards complete on disk, by file name (reused ones first, then those this run writes). */
  finished: Map<string, FinishedShard>;
  /** How many of `finished` an earlier run wrote. */
  reused: number;
}

/** One decoded image, in plan order. */
interface Decoded {
  shard: PlannedShard;
  item: PlannedItem;
  /** The shard's last item. */
  last: boolean;
  outcome: DecodeOutcome;
}

/** Runs the whole pipeline (see the module doc): plan, decode, write shards, report and manifest. */
export async function preprocess(opts: PreprocessOptions): Promise<PreprocessResult> {
  const t0 = performance.now();
  const o = checkOptions(opts);
  const log = opts.log ?? (() => {});
  const plan = await planDataset(opts, o, log);
  const output = await openOutput(plan, opts, log);
  if (opts.strict && plan.source.problems.length) {
    await writeReport(plan, o, output, plan.source.problems, [], 0);
    const p = plan.source.problems[0];
    throw new StrictError(
      `--strict: ${plan.source.problems.length} bad item(s), first: ` +
        `${p.file ?? ""}${p.id ? ` (id ${p.id})` : ""}: ${p.reason}`,
    );
  }
  const todo = plan.shards.filter((s) => !output.finished.has(s.file));
  const expected = plan.source.expectedImageSize ??
    await probeImageSize(plan.source.dir, SPLITS.flatMap((split) => plan.bySplit[split]));
  const written = await writeShards(plan, o, output, todo, expected, opts);
  const { manifest, report } = await writeManifestAndReport(plan, o, output, expected);

  const ok = report.badFraction <= o.maxBad;
  const counts = manifest.counts;
  const rate = written.decoded / Math.max(written.seconds, 1e-9);
  const splitText = SPLITS.filter((s) => counts[s].total).map((s) => `${s} ${counts[s].total}`)
    .join(" / ");
  const packed = report.totals.packed;
  const summary = `packed ${packed} images (${splitText || "none"}) into ${plan.shards.length} ` +
    `shards (${written.built} built, ${output.reused} reused); ${report.totals.skipped} bad ` +
    `(${(100 * report.badFraction).toFixed(2)}%), ${report.totals.warnings} warnings, ` +
    `${plan.leftOutCount} left out by ${plan.scheme.name}; ` +
    (written.decoded ? `${rate.toFixed(0)} images/s; ` : "") + `-> ${output.dir}`;
  const common = report.badFraction > 0.5 ? commonProblem(report.skipped) : null;
  if (common) {
    log(
      `most items are bad (${report.totals.skipped} of ${report.totals.items}); the most common ` +
        `reason (${common.count}) is: ${common.example.reason} — e.g. ` +
        `${common.example.file ?? ""}${common.example.id ? ` (id ${common.example.id})` : ""}`,
    );
  }
  return {
    manifest,
    report,
    ok,
    summary,
    shardsBuilt: written.built,
    shardsReused: output.reused,
    decoded: written.decoded,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The most common kind of problem (reasons compared with their numbers,
 * ids and file names blanked) with its first example, or null if none.
 */
export function commonProblem(
  problems: readonly ItemProblem[],
): { count: number; example: ItemProblem } | null {
  const kinds = new Map<string, { count: number; example: ItemProblem }>();
  for (const p of problems) {
    let kind = p.reason;
    if (p.id) kind = kind.split(p.id).join("<id>");
    kind = kind.replace(/'[^']*'|"[^"]*"|\([^)]*\)/g, "<x>").replace(/\d+/g, "#");
    const k = kinds.get(kind);
    if (k) k.count++;
    else kinds.set(kind, { count: 1, example: p });
  }
  let best: { count: number; example: ItemProblem } | null = null;
  for (const k of kinds.values()) if (!best || k.count > best.count) best = k;
  return best;
}

/**
 * Stage 1, plan: lists the source, labels each item with the scheme, assigns
 * its split, cuts each split into shards that fit `--shard-mb`, and takes the
 * run's fingerprint.
 */
async function planDataset(
  opts: PreprocessOptions,
  o: Settings,
  log: (line: string) => void,
): Promise<Plan> {
  const splitOpts: SplitOptions = { val: o.val, test: o.test, seed: o.splitSeed };
  const source = await readSource(opts.inDir, { unlabeled: opts.unlabeled, limit: opts.limit });
  const scheme = schemeFor(source, opts.scheme);
  const hasLabels = scheme.kind === "classes";
  const hasVotes = source.hasVotes;
  const leftOut = new Map<string, string[]>();
  const bySplit: Record<Split, PlannedItem[]> = { train: [], val: [], test: [], unlabeled: [] };
  for (const item of source.labeled) {
    const row = { id: item.id, label: item.label, votes: item.votes };
    const target = scheme.target(row);
    if (target === null) {
      const why = scheme.leftOutReason(row) ?? `${scheme.name}: left out`;
      const ids = leftOut.get(why);
      if (ids) ids.push(item.id);
      else leftOut.set(why, [item.id]);
      continue;
    }
    bySplit[assignSplit(item.id, splitOpts)].push({ ...item, target: hasLabels ? target : null });
  }
  for (const item of source.unlabeled) bySplit.unlabeled.push({ ...item, target: null });
  const leftOutCount = [...leftOut.values()].reduce((a, x) => a + x.length, 0);
  log(
    `source ${source.dir} (${source.layout}): ${source.labeled.length} labelled, ` +
      `${source.unlabeled.length} unlabeled, ${source.problems.length} bad; scheme ${scheme.name}` +
      (leftOutCount ? `, ${leftOutCount} left out` : ""),
  );
  for (const w of source.warnings) log(`warning: ${w.reason}`);

  const recordBytes = o.size * o.size * 3;
  const maxBytes = Math.floor(o.shardMb * 2 ** 20);
  const shards: PlannedShard[] = [];
  for (const split of SPLITS) {
    const items = bySplit[split]; // already sorted by id
    if (items.length === 0) continue;
    const labels = split !== "unlabeled" && hasLabels;
    const votes = split !== "unlabeled" && hasVotes;
    const idMax = items.reduce((a, x) => Math.max(a, jsonBytes(x.id)), 0);
    const fileMax = items.reduce((a, x) => Math.max(a, jsonBytes(x.file)), 0);
    const cap = shardCapacity(
      maxBytes,
      recordBytes,
      labels,
      votes,
      metaBytesPerItem(idMax, fileMax),
    );
    for (let k = 0; k * cap < items.length; k++) {
      shards.push({
        file: `${split}-${String(k).padStart(5, "0")}.bin`,
        split,
        index: k,
        items: items.slice(k * cap, (k + 1) * cap),
      });
    }
  }
  const fp = createHash("sha256");
  fp.update(JSON.stringify({
    format: DATASET_FORMAT_VERSION,
    // A different decoder would give different pixels: never mix its shards in.
    decoder: IMAGE_PIPELINE,
    layout: source.layout,
    scheme: scheme.name,
    classNames: scheme.classNames,
    size: o.size,
    crop: o.crop,
    fitsStretch: o.fitsStretch,
    val: o.val,
    test: o.test,
    seed: String(o.splitSeed),
    maxBytes,
    hasVotes,
  }));
  for (const s of shards) {
    fp.update(`#${s.file}\n`);
    for (const it of s.items) {
      fp.update(
        `${it.id}\t${it.file}\t${fileStamp(join(source.dir, it.file))}\t${it.target}\t` +
          `${it.votes ? it.votes.join(",") : ""}\n`,
      );
    }
  }
  return {
    source,
    scheme,
    hasLabels,
    hasVotes,
    leftOut,
    leftOutCount,
    bySplit,
    shards,
    fingerprint: fp.digest("hex"),
    recordBytes,
  };
}

/**
 * The output folder: the same fingerprint resumes (shards in the journal,
 * or renamed but not yet journaled, are reused), another one is refused or,
 * with `overwrite`, replaced.
 */
async function openOutput(
  plan: Plan,
  opts: PreprocessOptions,
  log: (line: string) => void,
): Promise<Output> {
  const { fingerprint } = plan;
  const dir = resolve(opts.outDir);
  await Deno.mkdir(dir, { recursive: true });
  const manifestPath = join(dir, MANIFEST_FILE);
  const progressPath = join(dir, PROGRESS_FILE);
  const oldManifest = await tryJson<Manifest>(manifestPath);
  let journal = await tryJson<Journal>(progressPath);
  const foreign = (oldManifest && oldManifest.fingerprint !== fingerprint) ||
    (journal && journal.fingerprint !== fingerprint);
  if (foreign) {
    if (!opts.overwrite) {
      throw new Error(
        `${dir} holds a dataset built from other input or options (images or labels ` +
          "added, removed or changed since, or other preprocessing flags); " +
          "use another --out, or --overwrite to replace it",
      );
    }
    log(`replacing the dataset in ${dir} (other input or options)`);
    await removeDataset(dir);
    journal = null;
  }
  await cleanTempFiles(dir);
  journal ??= { fingerprint, done: {} };
  const createdAt = oldManifest && !foreign ? oldManifest.createdAt : new Date().toISOString();

  const finished = new Map<string, FinishedShard>();
  let reused = 0;
  for (const s of plan.shards) {
    const path = join(dir, s.file);
    const size = await fileSize(path);
    if (size === null) continue;
    const noted = journal.done[s.file];
    try {
      if (noted && noted.bytes === size) {
        const { meta } = await readShardMeta(path);
        finished.set(s.file, {
          entry: { file: s.file, split: s.split, count: meta.count, ...noted },
          meta,
        });
        reused++;
      } else {
        // Renamed into place but killed before the journal noted it: adopt if it is ours.
        const { meta } = await readShardMeta(path);
        if (meta.fingerprint !== fingerprint || meta.file !== s.file) continue;
        const sha256 = await sha256File(path);
        journal.done[s.file] = { bytes: size, sha256 };
        finished.set(s.file, {
          entry: { file: s.file, split: s.split, count: meta.count, bytes: size, sha256 },
          meta,
        });
        reused++;
        log(`adopted ${s.file} (complete but not yet in ${PROGRESS_FILE})`);
      }
    } catch {
      // Not a readable shard of this plan: rebuild it.
    }
  }
  if (reused) {
    await writeJsonAtomic(progressPath, journal);
    log(`resuming: ${reused} of ${plan.shards.length} shards already done`);
  }
  return { dir, manifestPath, progressPath, journal, createdAt, finished, reused };
}

/**
 * Stage 2, decode: the images of the shards `todo`, in plan order, decoded
 * in a pool of decoder processes. Batches of consecutive items of one shard
 * go out, a few per decoder in flight, and are taken back in plan order (so
 * the output is the same however the decoding interleaves). The pool is
 * closed when the last image is out, and killed if the consumer stops early.
 */
async function* decodeImages(
  plan: Plan,
  o: Settings,
  todo: PlannedShard[],
): AsyncGenerator<Decoded> {
  const total = todo.reduce((a, s) => a + s.items.length, 0);
  const pool = DecodePool.start({
    size: o.size,
    crop: o.crop,
    stretch: o.fitsStretch,
    processes: total > 0 ? o.processes : 0,
    lanes: o.concurrency,
  });
  const batchSize = Math.max(1, Math.min(32, Math.ceil(total / (4 * Math.max(1, o.processes)))));
  function* batches() {
    for (const shard of todo) {
      for (let k = 0; k < shard.items.length; k += batchSize) {
        yield { shard, items: shard.items.slice(k, k + batchSize), from: k };
      }
    }
  }
  type Batch = ReturnType<typeof batches> extends Generator<infer B> ? B : never;
  const start = (b: Batch) =>
    pool.decode(b.items.map((it) => ({ path: resolve(plan.source.dir, it.file), name: it.file })))
      .then((outcomes) => ({ ...b, outcomes }));
  const iter = batches();
  const inflight: ReturnType<typeof start>[] = [];
  const startNext = () => {
    const n = iter.next();
    if (n.done) return;
    const p = start(n.value);
    // Awaited in order below; a later batch may fail first, or be left when the loop stops
    // early (the pool is then killed), which must not go unhandled.
    p.catch(() => {});
    inflight.push(p);
  };
  let complete = false;
  try {
    for (let k = 0; k < 2 * Math.max(1, o.processes); k++) startNext();
    while (inflight.length) {
      const b = await inflight.shift()!;
      startNext();
      for (let k = 0; k < b.items.length; k++) {
        yield {
          shard: b.shard,
          item: b.items[k],
          last: b.from + k === b.shard.items.length - 1,
          outcome: b.outcomes[k],
        };
      }
    }
    complete = true;
  } finally {
    if (complete) await pool.close();
    else await pool.kill();
  }
}

/**
 * Stage 3, write shards: each decoded image goes into its shard's writer
 * (a failed one is listed as skipped, an odd-sized one warned about); a
 * shard complete is renamed into place and noted in the journal.
 */
async function writeShards(
  plan: Plan,
  o: Settings,
  output: Output,
  todo: PlannedShard[],
  expected: [number, number] | null,
  opts: PreprocessOptions,
): Promise<{ built: number; decoded: number; seconds: number }> {
  const { hasLabels, hasVotes, scheme } = plan;
  const total = todo.reduce((a, s) => a + s.items.length, 0);
  const t0 = performance.now();
  let done = 0;
  let built = 0;
  let writer: ShardWriter | null = null;
  try {
    for await (const d of decodeImages(plan, o, todo)) {
      const s = d.shard;
      const r = d.outcome;
      writer ??= await ShardWriter.create({
        path: join(output.dir, s.file),
        fingerprint: plan.fingerprint,
        split: s.split,
        shardIndex: s.index,
        height: o.size,
        width: o.size,
        hasLabels: s.split !== "unlabeled" && hasLabels,
        hasVotes: s.split !== "unlabeled" && hasVotes,
        numClasses: s.split !== "unlabeled" && hasLabels ? scheme.classNames.length : 0,
      });
      if (!r.ok) {
        const p = { id: d.item.id, file: d.item.file, reason: cut(r.message) };
        if (opts.strict) {
          const before = [...output.finished.values()].flatMap((f) => f.meta.skipped);
          await writeReport(plan, o, output, [...plan.source.problems, ...before, p], [], 0);
          throw new StrictError(
            `--strict: bad image ${d.item.file} (id ${d.item.id}): ${r.message}`,
          );
        }
        writer.skip(p);
      } else {
        if (expected && (r.width !== expected[0] || r.height !== expected[1])) {
          writer.warn({
            id: d.item.id,
            file: d.item.file,
            reason:
              `unexpected size ${r.width}x${r.height} (expected ${expected[0]}x${expected[1]}); ` +
              "cropped by fraction",
          });
        }
        const odd = aspectWarning(r.width, r.height);
        if (odd) writer.warn({ id: d.item.id, file: d.item.file, reason: odd });
        await writer.add({
          id: d.item.id,
          pixels: r.pixels,
          label: d.item.target ?? undefined,
          votes: d.item.votes,
        });
      }
      done++;
      if (opts.onProgress) {
        const secs = (performance.now() - t0) / 1000;
        const rate = done / Math.max(secs, 1e-9);
        opts.onProgress({
          done,
          total,
          imagesPerSecond: rate,
          etaSeconds: (total - done) / rate,
          shard: s.file,
        });
      }
      if (d.last) {
        const f = await writer.finish();
        writer = null;
        output.finished.set(s.file, f);
        output.journal.done[s.file] = { bytes: f.entry.bytes, sha256: f.entry.sha256 };
        await writeJsonAtomic(output.progressPath, output.journal);
        built++;
      }
    }
  } catch (e) {
    await (writer as ShardWriter | null)?.abort();
    throw e;
  }
  return { built, decoded: done, seconds: (performance.now() - t0) / 1000 };
}

/** Writes `report.json` (atomically) and returns it. */
async function writeReport(
  plan: Plan,
  o: Settings,
  output: Output,
  skipped: ItemProblem[],
  warnings: ItemProblem[],
  packed: number,
): Promise<PreprocessReport> {
  const { source } = plan;
  const report: PreprocessReport = {
    source: source.dir,
    layout: source.layout,
    scheme: plan.scheme.name,
    createdAt: output.createdAt,
    totals: {
      items: source.itemCount,
      packed,
      skipped: skipped.length,
      warnings: warnings.length,
      leftOut: plan.leftOutCount,
    },
    badFraction: source.itemCount ? skipped.length / source.itemCount : 0,
    maxBad: o.maxBad,
    skipped,
    warnings,
    leftOut: Object.fromEntries(
      [...plan.leftOut].map(([k, ids]) => [k, { count: ids.length, ids }]),
    ),
    ignoredFiles: source.ignoredFiles,
  };
  await writeJsonAtomic(join(output.dir, REPORT_FILE), report);
  return report;
}

/**
 * Stage 4, report and manifest: counts per split and class, the train
 * split's pixel statistics, dataset-level warnings; `report.json` first,
 * `manifest.json` last (its presence means the dataset is complete).
 */
async function writeManifestAndReport(
  plan: Plan,
  o: Settings,
  output: Output,
  expected: [number, number] | null,
): Promise<{ manifest: Manifest; report: PreprocessReport }> {
  const { source, scheme, hasLabels, hasVotes } = plan;
  const shards = plan.shards.map((s) => output.finished.get(s.file)!);
  const metas: ShardMeta[] = shards.map((f) => f.meta);
  const skipped = [...source.problems, ...metas.flatMap((m) => m.skipped)];
  const warnings = [...source.warnings, ...metas.flatMap((m) => m.warnings)];
  const counts = {} as Manifest["counts"];
  for (const split of SPLITS) {
    const ms = metas.filter((m) => m.split === split);
    const perClass = split !== "unlabeled" && hasLabels
      ? scheme.classNames.map((_, c) => ms.reduce((a, m) => a + (m.classCounts[c] ?? 0), 0))
      : [];
    counts[split] = { total: ms.reduce((a, m) => a + m.count, 0), perClass };
  }
  if (hasLabels) {
    const splitOpts: SplitOptions = { val: o.val, test: o.test, seed: o.splitSeed };
    for (
      const sf of splitShortfalls(
        { train: counts.train.perClass, val: counts.val.perClass, test: counts.test.perClass },
        splitOpts,
      )
    ) {
      warnings.push({
        reason: `class '${scheme.classNames[sf.classIndex]}' has no image in ${sf.split} ` +
          `(expected ${sf.expected.toFixed(1)}): the split hash is not an exact per-class quota`,
      });
    }
  }
  const train = metas.filter((m) => m.split === "train");
  const pixels = train.reduce((a, m) => a + m.stats.pixels, 0);
  let stats: Manifest["stats"] = null;
  if (pixels > 0) {
    const mean = [0, 1, 2].map((c) => train.reduce((a, m) => a + m.stats.sum[c], 0) / pixels);
    const std = [0, 1, 2].map((c) => {
      const sq = train.reduce((a, m) => a + m.stats.sumSq[c], 0) / pixels;
      return Math.sqrt(Math.max(0, sq - mean[c] * mean[c]));
    });
    stats = { mean, std, pixels };
  } else {
    warnings.push({ reason: "the train split is empty: no pixel statistics" });
  }
  const packed = SPLITS.reduce((a, s) => a + counts[s].total, 0);
  const report = await writeReport(plan, o, output, skipped, warnings, packed);
  const manifest: Manifest = validateManifest({
    format: DATASET_FORMAT,
    formatVersion: DATASET_FORMAT_VERSION,
    tool: TOOL,
    createdAt: output.createdAt,
    source: { path: source.dir, layout: source.layout, expectedImageSize: expected },
    scheme: {
      name: scheme.name,
      kind: scheme.kind,
      classNames: scheme.classNames,
      flipPairs: scheme.flipPairs,
    },
    image: {
      height: o.size,
      width: o.size,
      channels: 3,
      crop: o.crop,
      recordBytes: plan.recordBytes,
      decoder: IMAGE_PIPELINE,
      fitsStretch: o.fitsStretch,
    },
    hasVotes,
    hasLabels,
    split: {
      val: o.val,
      test: o.test,
      seed: o.splitSeed,
      method: "u = first 48 bits of SHA-256('<seed>:<id>') / 2^48; test if u < test, " +
        "val if u < test + val, else train",
    },
    counts,
    stats,
    problems: { skipped: skipped.length, warnings: warnings.length, leftOut: plan.leftOutCount },
    fingerprint: plan.fingerprint,
    shards: shards.map((f): ShardEntry => f.entry),
  }, output.manifestPath);
  await writeJsonAtomic(output.manifestPath, manifest);
  return { manifest, report };
}
