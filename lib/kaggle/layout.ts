/**
 * Where the "Galaxy Zoo - The Galaxy Challenge" data lands, and which
 * archive entries go where:
 *
 * ```
 * DIR/training_solutions_rev1.csv
 * DIR/images_training_rev1/<GalaxyID>.jpg
 * DIR/images_test_rev1/<GalaxyID>.jpg
 * ```
 *
 * The competition ships these as `training_solutions_rev1.zip`,
 * `images_training_rev1.zip` and `images_test_rev1.zip` (plus benchmark
 * files this project does not need), or all in one zip holding those zips.
 *
 * @module
 */
import { join } from "node:path";
import { KAGGLE_HEADER } from "../data/schema.ts";
import { FetchError } from "./errors.ts";

/** The competition's slug on Kaggle. */
export const COMPETITION = "galaxy-zoo-the-galaxy-challenge";

/** One piece of the layout: the labels CSV or one of the two image folders. */
export type TargetName = "training_solutions_rev1" | "images_training_rev1" | "images_test_rev1";

/** Every piece the layout needs, in the order they are fetched. */
export const TARGETS: readonly TargetName[] = [
  "training_solutions_rev1",
  "images_training_rev1",
  "images_test_rev1",
];

/** File name of the training labels. */
export const SOLUTIONS_FILE = "training_solutions_rev1.csv";

const IMAGE_TARGETS: ReadonlySet<string> = new Set(["images_training_rev1", "images_test_rev1"]);

/** Path of a target inside the output folder. */
export function targetPath(outDir: string, target: TargetName): string {
  return target === "training_solutions_rev1" ? join(outDir, SOLUTIONS_FILE) : join(outDir, target);
}

/**
 * The target an archive or data file is named after, e.g.
 * `images_training_rev1.zip` and `training_solutions_rev1.csv.zip` ->
 * their target; `all_ones_benchmark.zip` -> undefined.
 */
export function targetOfName(fileName: string): TargetName | undefined {
  const base = fileName.split(/[\\/]/).pop() ?? "";
  const stem = base.split(".")[0];
  return (TARGETS as readonly string[]).includes(stem) ? stem as TargetName : undefined;
}

/** What to do with one archive entry. */
export type EntryRoute =
  | { kind: "file"; target: TargetName; rel: string }
  | { kind: "nested"; target: TargetName }
  | { kind: "skip" };

/**
 * Routes an archive entry to its place in the layout. `hint` is the target
 * the archive itself is named after, so an `images_test_rev1.zip` holding
 * bare `<id>.jpg` files still lands them in `images_test_rev1/`.
 */
export function routeEntry(path: string, hint?: TargetName): EntryRoute {
  const parts = path.split("/").filter((p) => p !== "");
  const base = parts.at(-1) ?? "";
  // macOS resource forks and Finder litter, not data.
  if (parts.includes("__MACOSX") || base.startsWith(".")) return { kind: "skip" };
  if (base === SOLUTIONS_FILE) {
    return { kind: "file", target: "training_solutions_rev1", rel: base };
  }
  if (/\.jpe?g$/i.test(base)) {
    const dir = parts.at(-2);
    if (dir !== undefined && IMAGE_TARGETS.has(dir)) {
      return { kind: "file", target: dir as TargetName, rel: `${dir}/${base}` };
    }
    if (parts.length === 1 && hint !== undefined && IMAGE_TARGETS.has(hint)) {
      return { kind: "file", target: hint, rel: `${hint}/${base}` };
    }
    return { kind: "skip" };
  }
  if (/\.zip$/i.test(base)) {
    const target = targetOfName(base);
    if (target) return { kind: "nested", target };
  }
  return { kind: "skip" };
}

/** What is on disk for a target: file count (and bytes, for the CSV). */
export interface TargetMeasure {
  files: number;
  bytes?: number;
}

/** Measures a target in `outDir`, or undefined when it is absent. */
export async function measureTarget(
  outDir: string,
  target: TargetName,
): Promise<TargetMeasure | undefined> {
  const path = targetPath(outDir, target);
  try {
    const st = await Deno.stat(path);
    if (target === "training_solutions_rev1") {
      return st.isFile ? { files: 1, bytes: st.size } : undefined;
    }
    if (!st.isDirectory) return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let files = 0;
  for await (const e of Deno.readDir(path)) {
    if (e.isFile && !e.name.startsWith(".") && /\.jpe?g$/i.test(e.name)) files++;
  }
  return { files };
}

/**
 * Checks that the labels CSV starts with the competition's header and
 * returns its number of data rows; throws a {@linkcode FetchError} naming
 * the file otherwise.
 */
export async function checkSolutionsCsv(path: string): Promise<number> {
  const text = await Deno.readTextFile(path);
  const firstBreak = text.indexOf("\n");
  const header = (firstBreak < 0 ? text : text.slice(0, firstBreak)).replace(/^\uFEFF/, "")
    .replace(/\r$/, "");
  const expected = KAGGLE_HEADER.join(",");
  if (header !== expected) {
    throw new FetchError(
      "corrupt",
      `${path}: line 1 is not the header of ${SOLUTIONS_FILE} (expected '${
        expected.slice(0, 40)
      }...', got '${header.slice(0, 60)}'): the archive holds another file under that name`,
    );
  }
  let rows = 0;
  for (const line of text.slice(firstBreak + 1).split("\n")) if (line.trim() !== "") rows++;
  return rows;
}
