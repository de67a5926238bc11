/**
 * The inputs the benchmarks run on, made once and cached outside the
 * repository: the real Kaggle JPEGs of `../shared/data` where present
 * (read in place, never copied), generated Kaggle-layout folders of a given
 * size, preprocessed datasets, and `.npy` exports for the Python peers.
 *
 * The cache is `$GALAXY_BENCH_CACHE`, else `<tmp>/galaxy-bench-cache`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openDataset, type Split } from "../data/dataset.ts";
import {
  SYNTHETIC_VERSION,
  syntheticGalaxyIds,
  TRAINING_IMAGES_DIR,
  writeSyntheticKaggle,
} from "../data/synthetic.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { preprocess } from "../preprocess.ts";
import { encodeNpy, npyHeader } from "./npy.ts";

/** The project root (the folder holding deno.json). */
export const PROJECT_ROOT: string = resolve(fileURLToPath(new URL("../../", import.meta.url)));

/** Seed of every generated benchmark input. */
export const BENCH_SEED = 42;

/** The shared real-data folder: `$GALAXY_SHARED_DATA`, else `../shared/data` from the project. */
export function sharedDataDir(): string {
  return Deno.env.get("GALAXY_SHARED_DATA") ?? join(PROJECT_ROOT, "..", "shared", "data");
}

/** The benchmark cache folder (see the module doc). */
export function cacheDir(): string {
  return Deno.env.get("GALAXY_BENCH_CACHE") ?? join(tmpdir(), "galaxy-bench-cache");
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** An input folder a preprocess benchmark reads. */
export interface InputFolder {
  dir: string;
  /** Images in it. */
  count: number;
  /** Label scheme that keeps every image (`csv` for labels.csv, `votes` for Kaggle). */
  scheme: "csv" | "votes";
  /** Where it came from, for the table. */
  description: string;
  real: boolean;
}

/** Number of data rows of a CSV file (lines after the header, ignoring blank ones). */
export function countCsvRows(text: string): number {
  return text.split("\n").slice(1).filter((l) => l.trim() !== "").length;
}

/** A labels.csv + images/ folder of ../shared/data when present, else null; `describe` names it by its size. */
function sharedCsvSample(name: string, describe: (count: string) => string): InputFolder | null {
  const dir = join(sharedDataDir(), name);
  const csv = join(dir, "labels.csv");
  if (!isFile(csv) || !isDir(join(dir, "images"))) return null;
  const count = countCsvRows(Deno.readTextFileSync(csv));
  return {
    dir,
    count,
    scheme: "csv",
    description: describe(count.toLocaleString("en")),
    real: true,
  };
}

/** The real Kaggle sample (labels.csv + images/) when present, else null. */
export function realKaggleSample(): InputFolder | null {
  return sharedCsvSample("kaggle-spiral-sample", (n) => `${n} real Kaggle 424 px JPEGs`);
}

/** The real Galaxy Zoo 1 sample (labels.csv + images/, six classes) when present, else null. */
export function gz1Sample(): InputFolder | null {
  return sharedCsvSample("gz1-sample", (n) => `gz1-sample (${n} real SDSS cutouts)`);
}

/**
 * A labels.csv folder with the first `n` rows of `source` (a labels.csv
 * folder), its images symlinked (not copied) from the source.
 */
export async function labelsCsvSubset(source: InputFolder, n: number): Promise<InputFolder> {
  if (n >= source.count) return source;
  const key = createHash("sha256").update(`${source.dir}\n${n}`).digest("hex").slice(0, 12);
  const dir = join(cacheDir(), `subset-${n}-${key}`);
  const lines = (await Deno.readTextFile(join(source.dir, "labels.csv"))).split("\n")
    .filter((l) => l.trim() !== "");
  const rows = lines.slice(1, n + 1);
  await Deno.mkdir(join(dir, "images"), { recursive: true });
  const names = new Map<string, string>();
  for (const e of Deno.readDirSync(join(source.dir, "images"))) {
    const dot = e.name.lastIndexOf(".");
    names.set(dot > 0 ? e.name.slice(0, dot) : e.name, e.name);
  }
  for (const row of rows) {
    const id = row.split(",")[0];
    const name = names.get(id);
    if (!name) throw new Error(`${join(source.dir, "labels.csv")}: no image for id ${id}`);
    const link = join(dir, "images", name);
    if (!isFile(link)) await Deno.symlink(join(source.dir, "images", name), link);
  }
  await writeFileAtomic(join(dir, "labels.csv"), [lines[0], ...rows].join("\n") + "\n");
  return {
    dir,
    count: rows.length,
    scheme: "csv",
    description: `${rows.length.toLocaleString("en")} of ${source.description}`,
    real: true,
  };
}

/**
 * A generated Kaggle-layout folder of `count` training images (no test
 * images), cached. The images of a smaller folder are hard links to those
 * of a larger one already made (the first k GalaxyIDs of a seed never
 * change as the count grows), so asking for the largest size first renders
 * each image once.
 */
export async function syntheticInput(
  count: number,
  log: (line: string) => void = () => {},
): Promise<InputFolder> {
  // The generator's version is in the name: a folder marked complete is not checked again,
  // and a smaller size hard-links the images of a larger one by GalaxyID.
  const root = join(cacheDir(), `synthetic-v${SYNTHETIC_VERSION}-seed${BENCH_SEED}`);
  const dir = join(root, `n${count}`);
  const done = join(dir, ".complete");
  const result: InputFolder = {
    dir,
    count,
    scheme: "votes",
    description: `${count.toLocaleString("en")} generated 424 px JPEGs`,
    real: false,
  };
  if (isFile(done)) return result;
  await Deno.mkdir(join(dir, TRAINING_IMAGES_DIR), { recursive: true });
  // Borrow images already rendered for a larger size.
  const larger = isDir(root)
    ? [...Deno.readDirSync(root)].map((e) => /^n(\d+)$/.exec(e.name)).filter((m) => m !== null)
      .map((m) => Number(m![1])).filter((k) =>
        k > count && isFile(join(root, `n${k}`, ".complete"))
      )
    : [];
  if (larger.length) {
    const from = join(root, `n${Math.min(...larger)}`, TRAINING_IMAGES_DIR);
    for (const id of syntheticGalaxyIds(BENCH_SEED, "train", count)) {
      const target = join(dir, TRAINING_IMAGES_DIR, `${id}.jpg`);
      if (!isFile(target)) await Deno.link(join(from, `${id}.jpg`), target);
    }
  }
  log(`generating ${count} synthetic galaxies in ${dir} (once; cached)`);
  let last = 0;
  await writeSyntheticKaggle(dir, {
    count,
    testCount: 0,
    seed: BENCH_SEED,
    onProgress: (d, total) => {
      if (d - last >= 500 || d === total) {
        last = d;
        log(`  ${d}/${total}`);
      }
    },
  });
  await writeFileAtomic(done, new Date().toISOString() + "\n");
  return result;
}

/** The folder a preprocess benchmark reads: the real sample (capped at `cap`), else generated. */
export async function preprocessInput(
  cap: number,
  log: (line: string) => void,
): Promise<InputFolder> {
  const real = realKaggleSample();
  if (real) return await labelsCsvSubset(real, cap);
  log(`no real sample under ${sharedDataDir()}: using generated images`);
  return await syntheticInput(Math.min(cap, 2000), log);
}

/** Reads every file under `dir` once, so the first measured run does not pay for a cold page cache. */
export async function warmPageCache(dir: string): Promise<number> {
  let bytes = 0;
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    const info = await Deno.stat(path).catch(() => null);
    if (info?.isDirectory) bytes += await warmPageCache(path);
    else if (info?.isFile) bytes += (await Deno.readFile(path)).length;
  }
  return bytes;
}

/**
 * A preprocessed dataset of `input` (64 px unless `size` says otherwise),
 * cached; re-running checks the cached one against its fingerprint and
 * rebuilds what differs.
 */
export async function preprocessedDataset(
  input: InputFolder,
  log: (line: string) => void,
  size = 64,
): Promise<string> {
  const key = createHash("sha256").update(input.dir).digest("hex").slice(0, 12);
  const out = join(cacheDir(), size === 64 ? `dataset-${key}` : `dataset-${key}-${size}px`);
  const r = await preprocess({
    inDir: input.dir,
    outDir: out,
    size,
    scheme: input.scheme,
    unlabeled: false,
    overwrite: true,
  });
  if (r.decoded > 0) log(`preprocessed ${input.dir} -> ${out} (once; cached)`);
  if (!r.ok) throw new Error(`preprocessing ${input.dir} for the benchmark failed: ${r.summary}`);
  return out;
}

/**
 * Writes a split's pixels as an `.npy` (N, H, W, 3) uint8 file beside the
 * dataset, once per dataset fingerprint.
 */
export async function exportSplitNpy(datasetDir: string, split: Split): Promise<string> {
  const ds = await openDataset(datasetDir);
  const path = join(datasetDir, `bench-${split}-${ds.manifest.fingerprint.slice(0, 12)}.npy`);
  try {
    const { height, width } = ds.manifest.image;
    const n = ds.size(split);
    if (n === 0) throw new Error(`dataset ${datasetDir} has no ${split} images`);
    const expected = npyHeader("uint8", [n, height, width, 3]).length + n * height * width * 3;
    if (isFile(path) && Deno.statSync(path).size === expected) return path;
    const pixels = new Uint8Array(n * height * width * 3);
    let at = 0;
    for await (const b of ds.batches(split, { batchSize: 256 })) {
      pixels.set(b.pixels, at);
      at += b.pixels.length;
    }
    const bytes = encodeNpy({ dtype: "uint8", data: pixels, shape: [n, height, width, 3] });
    if (bytes.length !== expected) throw new Error(`npy export of ${split}: unexpected size`);
    await writeFileAtomic(path, bytes);
    return path;
  } finally {
    ds.close();
  }
}
