/**
 * The toolkit's built-in data set: generated galaxies written in exactly the
 * layout of Kaggle's "Galaxy Zoo - The Galaxy Challenge":
 *
 * - `training_solutions_rev1.csv`: header `GalaxyID,Class1.1,...,Class11.6`,
 *   one row per training galaxy, sorted by GalaxyID;
 * - `images_training_rev1/<GalaxyID>.jpg`: 424x424 RGB JPEGs;
 * - `images_test_rev1/<GalaxyID>.jpg`: unlabelled images.
 *
 * Each galaxy's true morphology is drawn first (lib/data/synthetic/morphology.ts),
 * rendered as an SDSS-like gri composite (render.ts) and voted on by simulated
 * volunteers walking the decision tree (votes.ts). Everything is a function of
 * (seed, GalaxyID), so the same seed gives byte-identical files, and a re-run
 * into a folder skips the images already there. A small
 * `synthetic_manifest.json` beside them records the seed so a re-run with a
 * different one fails instead of mixing two data sets.
 *
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { readJson, writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { mixSeed } from "../random.ts";
import { checkTree, describeViolations, KAGGLE_HEADER } from "./schema.ts";
import { sampleScene } from "./synthetic/morphology.ts";
import { DEFAULT_SEED, permuteIndex, Rng } from "./synthetic/prng.ts";
import { IMAGE_SIZE, renderScene } from "./synthetic/render.ts";
import { GALAXY_KINDS, type GalaxyKind, type Scene } from "./synthetic/scene.ts";
import { votesFor } from "./synthetic/votes.ts";

export { IMAGE_SIZE } from "./synthetic/render.ts";
export type { GalaxyKind, Morphology, Scene } from "./synthetic/scene.ts";

/** File name of the training labels, as in the competition. */
export const TRAINING_CSV = "training_solutions_rev1.csv";
/** Folder of the training images, as in the competition. */
export const TRAINING_IMAGES_DIR = "images_training_rev1";
/** Folder of the unlabelled test images, as in the competition. */
export const TEST_IMAGES_DIR = "images_test_rev1";
/** Generator record written beside the data (not part of the Kaggle layout). */
export const SYNTHETIC_MANIFEST = "synthetic_manifest.json";
/**
 * Bumped whenever the same seed would produce different files (2: seeds
 * mixed by lib/random.ts's mixSeed, so GalaxyIDs and images changed).
 */
export const SYNTHETIC_VERSION = 2;
/** JPEG quality of the written images. */
export const JPEG_QUALITY = 90;

export { DEFAULT_SEED } from "./synthetic/prng.ts";
/** GalaxyIDs are six-digit integers, like the competition's (100008 ... 999967). */
const ID_BASE = 100000;
const ID_SPACE = 900000;

/** Options of {@linkcode writeSyntheticKaggle}. */
export interface SyntheticOptions {
  /** Number of labelled training galaxies. */
  count: number;
  /** Number of unlabelled test galaxies; default 10% of `count` (rounded, at least 1). */
  testCount?: number;
  /** Seed of everything generated; default {@linkcode DEFAULT_SEED}. */
  seed?: number;
  /** Called after each image is written or found complete. */
  onProgress?: (done: number, total: number) => void;
  /** Images encoded and written at once; default 6. */
  concurrency?: number;
}

/** What {@linkcode writeSyntheticKaggle} did. */
export interface SyntheticSummary {
  /** The folder written. */
  outDir: string;
  /** Seed used. */
  seed: number;
  /** Labelled training galaxies (`count`). */
  trainCount: number;
  /** Unlabelled test galaxies. */
  testCount: number;
  /** Images rendered and written by this run. */
  rendered: number;
  /** Images already present and left as they were. */
  skipped: number;
  /** Whether the CSV was (re)written; false when an identical one was already there. */
  csvWritten: boolean;
  /** True morphology of the training galaxies, by kind. */
  kinds: Record<GalaxyKind, number>;
  /** Wall-clock seconds. */
  seconds: number;
}

/** One generated galaxy. */
export interface SyntheticGalaxy {
  galaxyId: number;
  scene: Scene;
  /** The 37 vote fractions, in `VOTE_COLUMNS` order (training galaxies only). */
  votes: Float64Array | null;
}

function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`seed must be an integer in [0, 4294967295], got ${seed}`);
  }
  return seed;
}

/**
 * The GalaxyIDs of a split: unique six-digit integers, disjoint between the
 * splits, and stable as `count` grows (the first k IDs never change).
 */
export function syntheticGalaxyIds(seed: number, split: "train" | "test", count: number): number[] {
  checkSeed(seed);
  if (!Number.isInteger(count) || count < 0 || count > ID_SPACE / 2) {
    throw new Error(`${split} count must be an integer in [0, ${ID_SPACE / 2}], got ${count}`);
  }
  const key = mixSeed(seed, 0x1d5);
  const parity = split === "train" ? 0 : 1;
  const ids: number[] = new Array(count);
  for (let k = 0; k < count; k++) ids[k] = ID_BASE + permuteIndex(2 * k + parity, ID_SPACE, key);
  return ids;
}

/** The scene (and, when `labelled`, the votes) of one galaxy: a pure function of (seed, GalaxyID). */
export function syntheticGalaxy(
  seed: number,
  galaxyId: number,
  labelled: boolean,
): SyntheticGalaxy {
  const scene = sampleScene(new Rng(mixSeed(checkSeed(seed), galaxyId, 1)));
  const votes = labelled ? votesFor(scene.morphology, new Rng(mixSeed(seed, galaxyId, 2))) : null;
  return { galaxyId, scene, votes };
}

/** A vote fraction as the competition's CSV writes it: at most 6 decimals, e.g. `0.425532`, `0.0`. */
export function formatVote(x: number): string {
  const s = x.toFixed(6).replace(/0+$/, "");
  return s.endsWith(".") ? s + "0" : s;
}

/** The training CSV for these galaxies (sorted by GalaxyID), checked against the tree. */
export function syntheticCsv(
  galaxies: readonly Pick<SyntheticGalaxy, "galaxyId" | "votes">[],
): string {
  const rows = [...galaxies].sort((a, b) => a.galaxyId - b.galaxyId);
  const lines = [KAGGLE_HEADER.join(",")];
  for (const g of rows) {
    if (!g.votes) throw new Error(`galaxy ${g.galaxyId} has no votes: it is not a training galaxy`);
    const violations = checkTree(g.votes);
    if (violations.length) {
      throw new Error(
        `generated votes of galaxy ${g.galaxyId} break the tree: ${describeViolations(violations)}`,
      );
    }
    lines.push(`${g.galaxyId},${Array.from(g.votes, formatVote).join(",")}`);
  }
  return lines.join("\n") + "\n";
}

/** Renders a galaxy and encodes it as the competition's 424x424 RGB JPEG. */
export async function renderSyntheticJpeg(galaxy: SyntheticGalaxy): Promise<Uint8Array> {
  const rgb = renderScene(galaxy.scene);
  const buf = await sharp(rgb, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } })
    .jpeg({ quality: JPEG_QUALITY, optimiseCoding: false })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

interface Manifest {
  generator: string;
  version: number;
  seed: number;
  count: number;
  testCount: number;
}

async function checkManifest(outDir: string, manifest: Manifest): Promise<void> {
  const path = join(outDir, SYNTHETIC_MANIFEST);
  const old = await isCompleteFile(path) ? await readJson<Manifest>(path) : null;
  if (
    old && (old.generator !== manifest.generator || old.version !== manifest.version ||
      old.seed !== manifest.seed)
  ) {
    throw new Error(
      `${path} records a data set from generator ${old.generator} v${old.version} with seed ` +
        `${old.seed}; this run is v${manifest.version} with seed ${manifest.seed}. ` +
        `Use another output folder (or delete this one) rather than mixing two data sets.`,
    );
  }
  if (!old || old.count !== manifest.count || old.testCount !== manifest.testCount) {
    await writeJsonAtomic(path, manifest);
  }
}

async function isCompleteFile(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && st.size > 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Writes `count` labelled and `testCount` unlabelled generated galaxies to
 * `outDir` in the Kaggle Galaxy Zoo layout. Every file is written
 * atomically; images already present are skipped (a re-run resumes), and the
 * CSV is written last, only when its content changes.
 */
export async function writeSyntheticKaggle(
  outDir: string,
  options: SyntheticOptions,
): Promise<SyntheticSummary> {
  const start = performance.now();
  const { count } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`count must be a positive integer, got ${count}`);
  }
  const testCount = options.testCount ?? Math.max(1, Math.round(count * 0.1));
  if (!Number.isInteger(testCount) || testCount < 0) {
    throw new Error(`testCount must be a non-negative integer, got ${testCount}`);
  }
  const seed = checkSeed(options.seed ?? DEFAULT_SEED);
  const concurrency = options.concurrency ?? 6;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const trainIds = syntheticGalaxyIds(seed, "train", count);
  const testIds = syntheticGalaxyIds(seed, "test", testCount);

  await Deno.mkdir(join(outDir, TRAINING_IMAGES_DIR), { recursive: true });
  await Deno.mkdir(join(outDir, TEST_IMAGES_DIR), { recursive: true });
  await checkManifest(outDir, {
    generator: "galaxy-synthetic",
    version: SYNTHETIC_VERSION,
    seed,
    count,
    testCount,
  });

  const kinds = Object.fromEntries(GALAXY_KINDS.map((k) => [k, 0])) as Record<GalaxyKind, number>;
  // Only IDs and votes are kept for the CSV: scenes are dropped once rendered.
  const labelled: Pick<SyntheticGalaxy, "galaxyId" | "votes">[] = [];
  const total = count + testCount;
  let done = 0, rendered = 0, skipped = 0;
  let failure: unknown = null;
  const inFlight: Promise<void>[] = [];

  const jobs: [number, boolean][] = [
    ...trainIds.map((id): [number, boolean] => [id, true]),
    ...testIds.map((id): [number, boolean] => [id, false]),
  ];
  for (const [id, isTrain] of jobs) {
    if (failure) break;
    const galaxy = syntheticGalaxy(seed, id, isTrain);
    if (isTrain) {
      labelled.push({ galaxyId: id, votes: galaxy.votes });
      kinds[galaxy.scene.morphology.kind]++;
    }
    const path = join(outDir, isTrain ? TRAINING_IMAGES_DIR : TEST_IMAGES_DIR, `${id}.jpg`);
    if (await isCompleteFile(path)) {
      skipped++;
      options.onProgress?.(++done, total);
      continue;
    }
    // Rendering runs here on the main thread; encoding and writing overlap it on libuv's pool.
    const encoded = renderSyntheticJpeg(galaxy);
    inFlight.push(
      encoded.then((jpg) => writeFileAtomic(path, jpg)).then(() => {
        rendered++;
        options.onProgress?.(++done, total);
      }).catch((e) => {
        failure ??= new Error(`writing ${path} failed: ${e instanceof Error ? e.message : e}`);
      }),
    );
    if (inFlight.length >= concurrency) await inFlight.shift();
  }
  await Promise.all(inFlight);
  if (failure) throw failure;

  const csvPath = join(outDir, TRAINING_CSV);
  const csv = syntheticCsv(labelled);
  const csvWritten = (await readTextOrNull(csvPath)) !== csv;
  if (csvWritten) await writeFileAtomic(csvPath, csv);

  return {
    outDir,
    seed,
    trainCount: count,
    testCount,
    rendered,
    skipped,
    csvWritten,
    kinds,
    seconds: (performance.now() - start) / 1000,
  };
}
