/**
 * Importing competition archives into the layout: the single zips, the
 * all-files zip holding them (nested zips are extracted to a temporary file
 * and read in turn), a bare `training_solutions_rev1.csv`, or a folder of
 * any of these. Used by `--from PATH` and after each download.
 *
 * @module
 */
import { basename, extname, join } from "node:path";
import { commitTemp, tempFileFor } from "../io/atomic.ts";
import { DEFAULT_ZIP_LIMITS, looksLikeZip, SafeZip, ZipBudget, ZipError } from "../io/zip.ts";
import type { ZipLimits } from "../io/zip.ts";
import { FetchError, isDiskFull } from "./errors.ts";
import { hashFile } from "./hash.ts";
import {
  checkSolutionsCsv,
  measureTarget,
  routeEntry,
  SOLUTIONS_FILE,
  type TargetName,
  targetOfName,
  targetPath,
  TARGETS,
} from "./layout.ts";
import { type FetchState, loadState, saveState, targetComplete } from "./state.ts";

/** Files extracted per target. */
export type TargetCounts = Partial<Record<TargetName, number>>;

/** What importing reports while it works. */
export type ImportEvent =
  | { type: "archive-start"; archive: string; entries: number }
  | { type: "extract-progress"; archive: string; entriesDone: number; entries: number }
  | { type: "archive-done"; archive: string; counts: TargetCounts }
  | { type: "archive-skip"; archive: string; reason: string }
  | { type: "warning"; message: string };

/** Options shared by the import functions. */
export interface ImportOptions {
  /** Output folder (the layout's root). */
  outDir: string;
  /** Zip bomb limits (default {@linkcode DEFAULT_ZIP_LIMITS}). */
  limits?: ZipLimits;
  onEvent?: (e: ImportEvent) => void;
  /** Least time between two extract-progress events (default 1000 ms). */
  progressIntervalMs?: number;
}

/** Entries extracted at once from one archive. */
const EXTRACT_CONCURRENCY = 4;

/** Nested zips deeper than this are refused (the competition nests one level). */
const MAX_DEPTH = 3;

/** Folder for nested zips being read, inside the output folder. */
function tmpDir(outDir: string): string {
  return join(outDir, ".fetch-tmp");
}

function add(into: TargetCounts, from: TargetCounts): void {
  for (const [t, n] of Object.entries(from) as [TargetName, number][]) {
    into[t] = (into[t] ?? 0) + n;
  }
}

function diskFull(what: string, outDir: string): FetchError {
  return new FetchError(
    "disk-full",
    `disk full while ${what} into ${outDir}: the unfinished file was removed; free space and run ` +
      `again (what is complete is kept and skipped)`,
  );
}

async function copyAtomic(src: string, dest: string): Promise<number> {
  const tmp = tempFileFor(dest);
  try {
    await Deno.copyFile(src, tmp);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await commitTemp(tmp, dest);
  return (await Deno.stat(dest)).size;
}

/**
 * Extracts from one archive (zip, or the bare CSV) the entries of the
 * targets `want` accepts into `options.outDir`, and returns how many files
 * each target received. Damaged or unsafe archives throw a `ZipError`
 * naming them; a full disk throws a {@linkcode FetchError}.
 */
export async function importArchive(
  path: string,
  want: (t: TargetName) => boolean,
  options: ImportOptions,
  budget: ZipBudget = new ZipBudget(options.limits ?? DEFAULT_ZIP_LIMITS),
  depth = 0,
  hint: TargetName | undefined = targetOfName(path),
): Promise<TargetCounts> {
  const { outDir } = options;
  const name = basename(path);
  if (!(await looksLikeZip(path))) {
    if (
      name === SOLUTIONS_FILE || (hint === "training_solutions_rev1" && extname(name) === ".csv")
    ) {
      if (!want("training_solutions_rev1")) return {};
      try {
        await copyAtomic(path, targetPath(outDir, "training_solutions_rev1"));
      } catch (e) {
        if (isDiskFull(e)) throw diskFull(`copying ${name}`, outDir);
        throw e;
      }
      return { training_solutions_rev1: 1 };
    }
    throw new ZipError(
      "corrupt",
      name,
      `${path} is not a zip archive (it does not start with a zip header): download or copy it again`,
    );
  }
  if (depth >= MAX_DEPTH) {
    throw new ZipError(
      "too-large",
      name,
      `refusing ${path}: zips nested more than ${MAX_DEPTH} deep`,
    );
  }
  const zip = await SafeZip.open(path, budget);
  const counts: TargetCounts = {};
  try {
    const files = zip.entries.filter((e) => !e.directory);
    options.onEvent?.({ type: "archive-start", archive: name, entries: files.length });
    const interval = options.progressIntervalMs ?? 1000;
    let last = performance.now();
    let done = 0;
    const progress = () => {
      const now = performance.now();
      if (now - last < interval) return;
      last = now;
      options.onEvent?.({
        type: "extract-progress",
        archive: name,
        entriesDone: done,
        entries: files.length,
      });
    };
    const routed = files.map((entry) => ({ entry, route: routeEntry(entry.name, hint) }));
    done = routed.filter(({ route }) => route.kind === "skip" || !want(route.target)).length;

    // Small files: a few at once, since per-file overhead (streams, open, rename)
    // dominates; the first failure stops the others from taking new entries.
    const queue = routed.filter(({ route }) => route.kind === "file" && want(route.target));
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < queue.length) {
        const { entry, route } = queue[next++];
        if (route.kind !== "file") continue;
        try {
          await zip.extract(entry.name, join(outDir, route.rel));
        } catch (e) {
          failure ??= isDiskFull(e) ? diskFull(`extracting ${name}`, outDir) : e;
          return;
        }
        counts[route.target] = (counts[route.target] ?? 0) + 1;
        done++;
        progress();
      }
    };
    await Promise.all(Array.from({ length: EXTRACT_CONCURRENCY }, worker));
    if (failure !== undefined) throw failure;

    // Nested zips: one at a time (each is large and fans out itself).
    for (const { entry, route } of routed) {
      if (route.kind !== "nested" || !want(route.target)) continue;
      await Deno.mkdir(tmpDir(outDir), { recursive: true });
      const inner = join(tmpDir(outDir), basename(entry.name));
      try {
        try {
          await zip.extract(entry.name, inner);
        } catch (e) {
          if (isDiskFull(e)) throw diskFull(`extracting ${entry.name} from ${name}`, outDir);
          throw e;
        }
        add(counts, await importArchive(inner, want, options, budget, depth + 1, route.target));
      } finally {
        await Deno.remove(inner).catch(() => {});
      }
      done++;
      progress();
    }
  } finally {
    await zip.close();
  }
  if (depth === 0) await Deno.remove(tmpDir(outDir)).catch(() => {});
  return counts;
}

/** The zip and CSV files `path` names: itself, or those directly inside the folder. */
export async function listArchives(path: string): Promise<string[]> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FetchError("missing-data", `--from ${path}: no such file or folder`);
    }
    throw e;
  }
  if (st.isFile) return [path];
  const found: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (!e.isFile || e.name.startsWith(".")) continue;
    if (/\.(zip|csv)$/i.test(e.name)) found.push(join(path, e.name));
  }
  if (found.length === 0) {
    throw new FetchError(
      "missing-data",
      `${path} holds no .zip or .csv file: copy the competition's archives there ` +
        `(images_training_rev1.zip, images_test_rev1.zip, training_solutions_rev1.zip, or the ` +
        `all-files zip)`,
    );
  }
  return found.sort();
}

/**
 * Marker `lib/data/synthetic.ts` leaves in a folder of generated data
 * (its SYNTHETIC_MANIFEST; not imported, to keep sharp out of this path).
 */
const SYNTHETIC_MARKER = "synthetic_manifest.json";

/** Refuses to mix real data into a folder of generated data. */
export async function assertNotSynthetic(outDir: string): Promise<void> {
  try {
    await Deno.stat(join(outDir, SYNTHETIC_MARKER));
  } catch {
    return;
  }
  throw new FetchError(
    "missing-data",
    `${outDir} holds synthetic data (${SYNTHETIC_MARKER}): choose another --out for the real ` +
      `data, or remove that folder first`,
  );
}

/** Targets not yet complete in `outDir` according to `state`. */
export async function missingTargets(outDir: string, state: FetchState): Promise<TargetName[]> {
  const out: TargetName[] = [];
  for (const t of TARGETS) if (!(await targetComplete(outDir, state, t))) out.push(t);
  return out;
}

/**
 * Imports one archive file unless the state shows it was already imported
 * (same size and mtime, or same SHA-256) and its targets are intact, or
 * every target it could give is already complete. Updates and saves the
 * state. Returns the counts, or undefined when skipped.
 */
export async function importRecorded(
  path: string,
  state: FetchState,
  options: ImportOptions,
  sha256?: string,
): Promise<TargetCounts | undefined> {
  const { outDir } = options;
  const name = basename(path);
  const missing = await missingTargets(outDir, state);
  const named = targetOfName(name);
  if (missing.length === 0 || (named !== undefined && !missing.includes(named))) {
    options.onEvent?.({ type: "archive-skip", archive: name, reason: "its data is complete" });
    return undefined;
  }
  const st = await Deno.stat(path);
  const rec = state.archives[name];
  const intact = async () => {
    for (const t of rec!.targets) if (!(await targetComplete(outDir, state, t))) return false;
    return true;
  };
  if (rec && rec.size === st.size && rec.mtimeMs === st.mtime?.getTime() && await intact()) {
    options.onEvent?.({ type: "archive-skip", archive: name, reason: "already imported" });
    return undefined;
  }
  const digest = sha256 ?? (await hashFile(path)).sha256;
  if (rec && rec.sha256 === digest && await intact()) {
    state.archives[name] = { ...rec, mtimeMs: st.mtime?.getTime() };
    await saveState(outDir, state);
    options.onEvent?.({ type: "archive-skip", archive: name, reason: "already imported" });
    return undefined;
  }
  const wanted = new Set(missing);
  const counts = await importArchive(path, (t) => wanted.has(t), options);
  for (const t of Object.keys(counts) as TargetName[]) {
    if (t === "training_solutions_rev1") {
      try {
        await checkSolutionsCsv(targetPath(outDir, t));
      } catch (e) {
        // Leave no wrong labels behind for the next step to read.
        await Deno.remove(targetPath(outDir, t)).catch(() => {});
        throw e;
      }
    }
    const m = await measureTarget(outDir, t);
    state.targets[t] = {
      files: t === "training_solutions_rev1" ? 1 : counts[t]!,
      bytes: m?.bytes,
      archive: name,
    };
  }
  state.archives[name] = {
    size: st.size,
    sha256: digest,
    mtimeMs: st.mtime?.getTime(),
    targets: Object.keys(counts) as TargetName[],
    completedAt: new Date().toISOString(),
  };
  await saveState(outDir, state);
  options.onEvent?.({ type: "archive-done", archive: name, counts });
  return counts;
}

/** What the layout holds at the end of a run. */
export interface FetchSummary {
  outDir: string;
  /** Files per target (1 for the CSV). */
  files: Record<TargetName, number>;
  /** Data rows of the labels CSV. */
  trainingRows: number;
  /** Archives extracted in this run. */
  imported: string[];
  /** Archives skipped as already done. */
  skipped: string[];
}

/**
 * Checks that every target is complete and the CSV is sound, and returns
 * the summary; throws a "missing-data" {@linkcode FetchError} naming what
 * is missing and `whereLooked`.
 */
export async function finishLayout(
  outDir: string,
  state: FetchState,
  whereLooked: string,
  imported: string[],
  skipped: string[],
  onEvent?: (e: ImportEvent) => void,
): Promise<FetchSummary> {
  const missing = await missingTargets(outDir, state);
  if (missing.length > 0) {
    throw new FetchError(
      "missing-data",
      `${whereLooked} did not provide ${missing.join(", ")}: expected ` +
        `training_solutions_rev1.zip (or .csv), images_training_rev1.zip and images_test_rev1.zip, ` +
        `or the competition's all-files zip holding them`,
    );
  }
  const files = {} as Record<TargetName, number>;
  for (const t of TARGETS) files[t] = (await measureTarget(outDir, t))!.files;
  const trainingRows = await checkSolutionsCsv(targetPath(outDir, "training_solutions_rev1"));
  if (trainingRows !== files.images_training_rev1) {
    onEvent?.({
      type: "warning",
      message: `${SOLUTIONS_FILE} has ${trainingRows} rows but images_training_rev1/ holds ` +
        `${files.images_training_rev1} images`,
    });
  }
  return { outDir, files, trainingRows, imported, skipped };
}

/**
 * `--from PATH`: imports the archives at `from` (a file, or a folder of
 * them) into the layout, skipping what an earlier run completed.
 */
export async function importFrom(from: string, options: ImportOptions): Promise<FetchSummary> {
  const { outDir } = options;
  await assertNotSynthetic(outDir);
  await Deno.mkdir(outDir, { recursive: true });
  const state = await loadState(outDir);
  const imported: string[] = [];
  const skipped: string[] = [];
  for (const path of await listArchives(from)) {
    const counts = await importRecorded(path, state, options);
    (counts && Object.keys(counts).length > 0 ? imported : skipped).push(basename(path));
  }
  return finishLayout(outDir, state, from, imported, skipped, options.onEvent);
}
