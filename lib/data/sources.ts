/**
 * Finding the images and labels in an input folder. Three layouts:
 *
 * - `kaggle`: `training_solutions_rev1.csv` (`GalaxyID` + 37 fractions) and
 *   `images_training_rev1/<GalaxyID>.jpg`, optionally `images_test_rev1/`
 *   (unlabeled);
 * - `labels-csv`: `labels.csv` (`id,label`) and `images/<id>.<ext>` (any
 *   format of lib/data/formats.ts);
 * - `class-folders`: one sub-folder per class holding its images, like Keras
 *   `image_dataset_from_directory` or torchvision `ImageFolder`; the id is the
 *   file name without extension.
 *
 * The layout is chosen in that order by which files exist. Problems found
 * here (bad CSV rows, duplicate ids, a row without an image, an image
 * without a row) are returned, one per id, never thrown; only an unusable
 * folder or CSV header is an error. An id with any problem is left out
 * whole: for a duplicated id no occurrence is trusted over another. A row
 * and an image whose ids differ only in writing (`g1.jpg` and `g1`, `007`
 * and `7`) are one galaxy with one problem, not two.
 *
 * Folders and files reached through symlinks are followed (a link back to a
 * folder already read is reported, not read twice); broken links and names
 * that are not valid UTF-8 are reported by name (lib/io/dir_entries.ts).
 * Ids and class names are compared in Unicode NFC, so `éliptica` typed on
 * Linux and the same name from a macOS file system (NFD) are one class; a
 * merge of two spellings is warned about. A class folder is never left out
 * without a warning saying why.
 *
 * Kaggle GalaxyIDs written as integral floats (`100008.0`, what pandas
 * writes for an integer column once it held a missing value) are read as
 * the integer. Labels that differ only in case or spacing, and class folders
 * without images, are kept as they are but warned about
 * ({@linkcode Source.warnings}).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { type CsvRow, readCsv } from "../io/csv.ts";
import { readEntries, realFolder } from "../io/dir_entries.ts";
import { IMAGE_EXTENSIONS_TEXT, imageStem, isImageFile } from "./formats.ts";
import type { ItemProblem } from "./manifest.ts";
import { checkTree, describeViolations, NUM_VOTES, VOTE_COLUMNS } from "./schema.ts";
import { splitHash } from "./split.ts";

/** How the input folder is organised. */
export type SourceLayout = "kaggle" | "labels-csv" | "class-folders";

/** Kaggle file and folder names. */
export const KAGGLE_SOLUTIONS = "training_solutions_rev1.csv";
/** Kaggle folder of labelled images. */
export const KAGGLE_TRAIN_IMAGES = "images_training_rev1";
/** Kaggle folder of unlabeled (competition test) images. */
export const KAGGLE_TEST_IMAGES = "images_test_rev1";
/** Size of every Kaggle image. */
export const KAGGLE_IMAGE_SIZE: [number, number] = [424, 424];

/** One image the source offers. */
export interface SourceItem {
  /** Item id (Kaggle GalaxyID, labels.csv `id`, or the file name without extension). */
  id: string;
  /** Image path relative to the source folder. */
  file: string;
  /** Class name (labels-csv and class-folders). */
  label?: string;
  /** The 37 vote fractions (kaggle). */
  votes?: Float64Array;
}

/** Everything found in an input folder. */
export interface Source {
  /** Absolute path of the folder. */
  dir: string;
  /** How the folder is organised. */
  layout: SourceLayout;
  /** Labelled items with an image, sorted by id. */
  labeled: SourceItem[];
  /** Unlabeled items (Kaggle test images when asked for), sorted by id. */
  unlabeled: SourceItem[];
  /** Distinct class labels of the valid label rows, sorted. */
  labels: string[];
  /** Whether items carry vote fractions. */
  hasVotes: boolean;
  /** Items that cannot be used, one per id (or per CSV row without an id). */
  problems: ItemProblem[];
  /** Items considered: ids seen plus id-less bad rows (the denominator of the bad fraction). */
  itemCount: number;
  /** Files that are not images by extension, ignored. */
  ignoredFiles: number;
  /** Image size the layout prescribes (Kaggle: 424x424), else null. */
  expectedImageSize: [number, number] | null;
  /** Dataset-level warnings (labels differing only in case, empty class folders); no id. */
  warnings: ItemProblem[];
}

/** Options of {@linkcode readSource}. */
export interface SourceOptions {
  /** Also list the Kaggle unlabeled test images. Default true. */
  unlabeled?: boolean;
  /**
   * Keep only this many labelled ids (and as many unlabeled), chosen by a
   * fixed hash of the id so the subset is a deterministic mixed sample.
   */
  limit?: number;
}

async function exists(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/** Decides the layout of `dir`, or throws naming what was expected. */
export async function detectLayout(dir: string): Promise<SourceLayout> {
  const info = await exists(dir);
  if (!info?.isDirectory) throw new Error(`input folder ${dir} does not exist`);
  if ((await exists(join(dir, KAGGLE_SOLUTIONS)))?.isFile) return "kaggle";
  if ((await exists(join(dir, "labels.csv")))?.isFile) return "labels-csv";
  for (const e of await readEntries(dir)) {
    if (e.kind !== "dir") continue;
    for (const f of await readEntries(e.path)) {
      if (f.kind === "file" && isImageFile(f.name)) return "class-folders";
    }
  }
  throw new Error(
    `no known layout in ${dir}: expected ${KAGGLE_SOLUTIONS} + ${KAGGLE_TRAIN_IMAGES}/, ` +
      "labels.csv + images/, or one sub-folder of images per class",
  );
}

/** An id or class name as compared: Unicode NFC (macOS file systems hand out NFD). */
export function nfc(name: string): string {
  return name.normalize("NFC");
}

/** A file's id: its name without the image extension, in NFC. */
function stem(name: string): string {
  return nfc(imageStem(name));
}

/** Whether an id can name a file: no path separators, not hidden, not empty. */
function usableId(id: string): boolean {
  return id.length > 0 && !/[/\\\0]/.test(id) && !id.startsWith(".");
}

/**
 * A Kaggle GalaxyID as written in the CSV: an integer, or an integral float
 * (`100008.0`) read as that integer. Anything else is returned trimmed, to be
 * reported when it matches no image.
 */
export function kaggleId(raw: string): string {
  const s = raw.trim();
  const m = /^(\d+)\.0*$/.exec(s);
  return m ? m[1] : s;
}

/** How an id may be written differently for the same galaxy: case, an image extension, a float or leading zeros. */
function looseId(id: string): string {
  let s = id.trim().toLowerCase();
  if (isImageFile(s)) s = stem(s);
  const m = /^0*(\d+?)(\.0*)?$/.exec(s);
  return m ? m[1] : s;
}

/** Where the images of a required image folder are, when they sit one level deeper. */
async function nestedImages(
  dir: string,
  rel: string,
): Promise<{ folder: string; count: number } | null> {
  const here = join(dir, rel);
  if (!(await exists(here))?.isDirectory) return null;
  for (const e of await readEntries(here)) {
    if (e.kind !== "dir") continue;
    let count = 0;
    for (const f of await readEntries(e.path)) {
      if (f.kind === "file" && isImageFile(f.name)) count++;
    }
    if (count > 0) return { folder: `${rel}/${e.name}`, count };
  }
  return null;
}

/**
 * Lists a folder that must hold the images itself; when it holds none but a
 * sub-folder does (an archive unzipped one level too deep), throws naming it.
 */
async function listRequiredImages(dir: string, rel: string): Promise<Listing> {
  const listing = await listImages(dir, rel);
  if (listing.byId.size > 0) return listing;
  const nested = await nestedImages(dir, rel);
  if (nested) {
    throw new Error(
      `${join(dir, rel)} holds no images, but ${join(dir, nested.folder)} holds ${nested.count}: ` +
        `the images are nested one level too deep (as some unzip tools make it); move them up, ` +
        `e.g. mv '${join(dir, nested.folder)}'/* '${join(dir, rel)}/'`,
    );
  }
  return listing;
}

/** The header as read, for an error message (cut if long). */
function headerText(header: string[]): string {
  const text = header.join(",");
  return text.length > 160 ? text.slice(0, 157) + "..." : text;
}

/** A hint when a CSV header was read as one field holding `;`: saved by a European-locale spreadsheet. */
function semicolonHint(header: string[]): string {
  if (!header.some((h) => h.includes(";"))) return "";
  return "; the file looks ';'-separated (as a spreadsheet with a European locale saves it, " +
    "often with decimal commas): save it comma-separated, with '.' as the decimal point";
}

interface Listing {
  /** id (NFC) -> relative image paths (more than one = duplicate). */
  byId: Map<string, string[]>;
  /** Files left out because their format is not read (names relative to the source). */
  ignored: string[];
  /** Broken links, link loops and non-UTF-8 names met, by name (with the id when it has one). */
  problems: ItemProblem[];
  /** Image paths whose names are not in NFC (their ids were normalised). */
  respelled: string[];
}

const emptyListing = (): Listing => ({ byId: new Map(), ignored: [], problems: [], respelled: [] });

/**
 * The warning for files left out because their format is not read, by
 * extension (`3 files: 2 '.txt', 1 '.bmp'`), or none.
 */
export function ignoredWarning(names: readonly string[]): ItemProblem[] {
  if (names.length === 0) return [];
  const byExt = new Map<string, number>();
  for (const n of names) {
    const base = n.slice(n.lastIndexOf("/") + 1);
    const dot = base.lastIndexOf(".");
    const ext = dot > 0 ? `'.${base.slice(dot + 1).toLowerCase()}'` : "without extension";
    byExt.set(ext, (byExt.get(ext) ?? 0) + 1);
  }
  const counts = [...byExt].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([e, c]) =>
    `${c} ${e}`
  );
  return [{
    file: names[0],
    reason: `${names.length} file(s) left out, not in a format read (${counts.join(", ")}), ` +
      `e.g. ${names[0]}; the formats read are ${IMAGE_EXTENSIONS_TEXT}`,
  }];
}

/** The warning that ids of image names were normalised to NFC, if any were. */
function respelledWarning(listing: Listing, against: string): ItemProblem[] {
  const n = listing.respelled.length;
  if (n === 0) return [];
  return [{
    file: listing.respelled[0],
    reason: `${n} image file name(s) are not in Unicode NFC (as a macOS file system writes ` +
      `them), e.g. ${JSON.stringify(listing.respelled[0])}: their ids were normalised to NFC ` +
      `to be compared with ${against}`,
  }];
}

async function listImages(dir: string, rel: string, into?: Listing): Promise<Listing> {
  const out = into ?? emptyListing();
  const info = await exists(join(dir, rel));
  if (!info?.isDirectory) return out;
  for (const e of await readEntries(join(dir, rel))) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.problem) {
      const id = e.kind === "bad-name" || !isImageFile(e.name) ? undefined : stem(e.name);
      out.problems.push({ id, file: path, reason: e.problem });
      continue;
    }
    if (e.kind !== "file" || !isImageFile(e.name)) {
      out.ignored.push(path);
      continue;
    }
    const id = stem(e.name);
    if (id !== imageStem(e.name)) out.respelled.push(path);
    const list = out.byId.get(id);
    if (list) list.push(path);
    else out.byId.set(id, [path]);
  }
  return out;
}

/** Collects problems, at most one per id. */
class Problems {
  readonly byId = new Map<string, ItemProblem>();
  readonly anonymous: ItemProblem[] = [];
  add(p: ItemProblem): void {
    if (p.id === undefined) this.anonymous.push(p);
    else if (!this.byId.has(p.id)) this.byId.set(p.id, p);
  }
  has(id: string): boolean {
    return this.byId.has(id);
  }
  /** Sets the problem of `id`, replacing any it had. */
  replace(id: string, p: ItemProblem): void {
    this.byId.set(id, p);
  }
}

function checkFraction(column: string, raw: string): string | null {
  const s = raw.trim();
  if (s === "") return `missing value in column ${column}`;
  if (/^[+-]?nan$/i.test(s)) return `NaN in column ${column}`;
  const x = Number(s);
  if (!Number.isFinite(x)) return `non-numeric value '${raw}' in column ${column}`;
  if (x < 0) return `negative value ${s} in column ${column}`;
  if (x > 1) return `value ${s} above 1 in column ${column}`;
  return null;
}

interface Row {
  id: string;
  line: number;
  label?: string;
  votes?: Float64Array;
}

/** Validates rows against the header; bad ones go to `problems`, duplicates too. */
function validRows(
  csvName: string,
  rows: Iterable<CsvRow>,
  width: number,
  idCol: number,
  parse: (r: CsvRow) => { id: string; error?: string; label?: string; votes?: Float64Array },
  problems: Problems,
): Map<string, Row> {
  const byId = new Map<string, Row[]>();
  const bad = new Map<string, ItemProblem>();
  for (const r of rows) {
    const where = `${csvName}:${r.line}`;
    if (r.fields.length !== width) {
      const id = r.fields[idCol]?.trim() || undefined;
      const p = {
        id,
        file: where,
        reason: `wrong number of columns (expected ${width}, got ${r.fields.length})`,
      };
      if (id === undefined) problems.add(p);
      else {
        byId.set(id, [...(byId.get(id) ?? []), { id, line: r.line }]);
        if (!bad.has(id)) bad.set(id, p);
      }
      continue;
    }
    const parsed = parse(r);
    if (!parsed.id) {
      problems.add({ file: where, reason: parsed.error ?? "missing id" });
      continue;
    }
    byId.set(parsed.id, [...(byId.get(parsed.id) ?? []), { line: r.line, ...parsed }]);
    if (parsed.error && !bad.has(parsed.id)) {
      bad.set(parsed.id, { id: parsed.id, file: where, reason: parsed.error });
    }
  }
  const out = new Map<string, Row>();
  for (const [id, list] of byId) {
    if (list.length > 1) {
      problems.add({
        id,
        file: `${csvName}:${list[0].line}`,
        reason: `duplicate id: ${list.length} rows (lines ${list.map((x) => x.line).join(", ")})`,
      });
    } else if (bad.has(id)) {
      problems.add(bad.get(id)!);
    } else if (!usableId(id)) {
      problems.add({ id, file: `${csvName}:${list[0].line}`, reason: "id is not a file name" });
    } else {
      out.set(id, list[0]);
    }
  }
  return out;
}

async function readKaggleRows(dir: string, problems: Problems): Promise<Map<string, Row>> {
  const table = await readCsv(join(dir, KAGGLE_SOLUTIONS));
  const idCol = table.header.indexOf("GalaxyID");
  const cols = VOTE_COLUMNS.map((c) => table.header.indexOf(c));
  const missing = [
    ...(idCol < 0 ? ["GalaxyID"] : []),
    ...VOTE_COLUMNS.filter((_, k) => cols[k] < 0),
  ];
  if (missing.length) {
    const hint = semicolonHint(table.header);
    const what = missing.length > 4
      ? `${missing.slice(0, 4).join(", ")} and ${missing.length - 4} more`
      : missing.join(", ");
    throw new Error(
      `${table.file}:1: header lacks column(s) ${what}${hint} (header read: ` +
        `'${headerText(table.header)}')`,
    );
  }
  return validRows(KAGGLE_SOLUTIONS, table.rows, table.header.length, idCol, (r) => {
    const id = kaggleId(r.fields[idCol]);
    if (!id) return { id, error: "missing value in column GalaxyID" };
    const votes = new Float64Array(NUM_VOTES);
    const errors: string[] = [];
    cols.forEach((c, k) => {
      const err = checkFraction(VOTE_COLUMNS[k], r.fields[c]);
      if (err) errors.push(err);
      else votes[k] = Number(r.fields[c]);
    });
    if (errors.length) {
      const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : "";
      return { id, error: errors.slice(0, 3).join("; ") + more };
    }
    const v = checkTree(votes);
    if (v.length) {
      return { id, error: `vote fractions break the decision tree: ${describeViolations(v)}` };
    }
    return { id, votes };
  }, problems);
}

async function readLabelRows(
  dir: string,
  problems: Problems,
  warnings: ItemProblem[],
): Promise<Map<string, Row>> {
  const table = await readCsv(join(dir, "labels.csv"));
  const h = table.header.map((x) => x.toLowerCase());
  const idCol = h.indexOf("id");
  const labelCol = h.indexOf("label");
  if (idCol < 0 || labelCol < 0) {
    throw new Error(
      `${table.file}:1: header must have columns id,label${semicolonHint(table.header)} ` +
        `(header read: '${headerText(table.header)}')`,
    );
  }
  const labels = new Map<string, Set<string>>();
  const rows = validRows("labels.csv", table.rows, table.header.length, idCol, (r) => {
    const id = nfc(r.fields[idCol].trim());
    if (!id) return { id, error: "missing value in column id" };
    const label = r.fields[labelCol].trim();
    if (!label) return { id, error: "missing value in column label" };
    return { id, label: noteSpelling(labels, label) };
  }, problems);
  warnings.push(...spellingMerges("labels", labels));
  return rows;
}

function duplicateProblem(id: string, files: string[]): ItemProblem {
  return {
    id,
    file: files[0],
    reason: `duplicate id: ${files.length} images (${files.join(", ")})`,
  };
}

/** Pairs label rows with images; unmatched ones on either side become problems. */
function match(
  rows: Map<string, Row>,
  images: Listing,
  imageDirHint: string,
  csvName: string,
  problems: Problems,
): SourceItem[] {
  const items: SourceItem[] = [];
  for (const [id, row] of rows) {
    const files = images.byId.get(id);
    if (!files) {
      problems.add({
        id,
        file: `${csvName}:${row.line}`,
        reason:
          `label row has no image (${imageDirHint}/${id} with one of ${IMAGE_EXTENSIONS_TEXT})`,
      });
    } else if (files.length > 1) {
      problems.add(duplicateProblem(id, files));
    } else {
      items.push({ id, file: files[0], label: row.label, votes: row.votes });
    }
  }
  // A row and an image left unmatched whose ids differ only in writing are one item, one problem.
  const rowless = new Map<string, string>();
  for (const [id] of rows) {
    if (!images.byId.has(id)) rowless.set(looseId(id), id);
  }
  for (const [id, files] of images.byId) {
    if (rows.has(id)) continue;
    const twin = rowless.get(looseId(id));
    if (twin !== undefined) {
      const row = rows.get(twin)!;
      problems.replace(twin, {
        id: twin,
        file: `${csvName}:${row.line}`,
        reason: `label row id '${twin}' matches no image, but ${files[0]} looks like the same ` +
          `item: its id is '${id}' (write the id as the file name without extension)`,
      });
      continue;
    }
    if (problems.has(id)) continue;
    problems.add({ id, file: files[0], reason: `image has no label row in ${csvName}` });
  }
  return items;
}

/** Warnings for names written in several Unicode spellings (NFC and NFD) that were merged into one. */
export function spellingMerges(
  what: string,
  spellings: Map<string, Set<string>>,
): ItemProblem[] {
  const out: ItemProblem[] = [];
  for (const [name, raw] of spellings) {
    if (raw.size < 2) continue;
    const forms = [...raw].sort().map((r) => `${JSON.stringify(r)} (${escapeCodePoints(r)})`);
    out.push({
      reason: `${what} ${forms.join(" and ")} are one name in different Unicode spellings ` +
        `(NFC and NFD, e.g. from a macOS file system): merged into one, ${JSON.stringify(name)}`,
    });
  }
  return out;
}

/** The code points of a name beyond ASCII, as U+XXXX, so that two look-alike spellings differ visibly. */
function escapeCodePoints(s: string): string {
  return [...s].map((c) =>
    c.charCodeAt(0) < 0x80
      ? c
      : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`
  )
    .join("");
}

/** Adds `raw` to the spellings of its NFC form. */
function noteSpelling(spellings: Map<string, Set<string>>, raw: string): string {
  const name = nfc(raw);
  spellings.set(name, (spellings.get(name) ?? new Set()).add(raw));
  return name;
}

async function readClassFolders(dir: string, problems: Problems): Promise<{
  items: SourceItem[];
  ignored: string[];
  warnings: ItemProblem[];
}> {
  const listing = emptyListing();
  const warnings: ItemProblem[] = [];
  const subdirs: { raw: string; path: string; link: boolean }[] = [];
  for (const e of await readEntries(dir)) {
    if (e.problem) {
      // Not a class: say so, whatever it was meant to be.
      warnings.push({
        file: e.name,
        reason: `${e.problem}; left out (not read as a class folder)`,
      });
    } else if (e.kind === "dir") subdirs.push({ raw: e.name, path: e.path, link: e.link });
    else if (e.kind === "file" && isImageFile(e.name)) {
      problems.add({ id: stem(e.name), file: e.name, reason: "image is not in a class folder" });
    } else if (e.kind === "file") listing.ignored.push(e.name);
  }
  // Loop protection: a folder reached twice (a link to the dataset itself, or two links to
  // one folder) is read once; the other name is reported.
  const read = new Map<string, string>([[await realFolder(dir), "."]]);
  const spellings = new Map<string, Set<string>>();
  const labelOf = new Map<string, string>();
  for (const sub of subdirs) {
    const real = await realFolder(sub.path);
    const first = read.get(real);
    if (first !== undefined) {
      warnings.push({
        file: sub.raw,
        reason: `class folder '${sub.raw}' is a symlink to ${
          first === "." ? "the dataset folder itself (a loop)" : `'${first}', already read`
        }: left out`,
      });
      continue;
    }
    read.set(real, sub.raw);
    const label = noteSpelling(spellings, sub.raw);
    const before = [...listing.byId.values()].reduce((a, f) => a + f.length, 0);
    await listImages(dir, sub.raw, listing);
    const after = [...listing.byId.values()].reduce((a, f) => a + f.length, 0);
    for (const files of listing.byId.values()) {
      for (const f of files) if (!labelOf.has(f)) labelOf.set(f, label);
    }
    if (after === before) {
      warnings.push({
        file: sub.raw,
        reason: `class folder '${sub.raw}' holds no images, so it is not a class of this ` +
          `dataset (formats read: ${IMAGE_EXTENSIONS_TEXT}); ` +
          "the class set will change when it gets some",
      });
    }
  }
  warnings.push(...spellingMerges("class folders", spellings));
  warnings.push(...respelledWarning(listing, "one another"));
  for (const p of listing.problems) problems.add(p);
  const items: SourceItem[] = [];
  for (const [id, files] of listing.byId) {
    if (problems.has(id)) continue;
    if (files.length > 1) {
      problems.add(duplicateProblem(id, files));
      continue;
    }
    if (!usableId(id)) {
      problems.add({ id, file: files[0], reason: "id is not a file name" });
      continue;
    }
    items.push({ id, file: files[0], label: labelOf.get(files[0])! });
  }
  return { items, ignored: listing.ignored, warnings };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The `limit` ids of `ids` with the smallest fixed hash (a deterministic mixed sample). */
function sampleIds(ids: Iterable<string>, limit: number): Set<string> {
  return new Set(
    [...ids].map((id) => ({ id, h: splitHash(id, "limit") }))
      .sort((a, b) => a.h - b.h || byId(a, b)).slice(0, limit).map((x) => x.id),
  );
}

/**
 * Lists the labelled (and optionally unlabeled) images of an input folder
 * with their labels, and every problem found without decoding an image.
 */
export async function readSource(inputDir: string, opts: SourceOptions = {}): Promise<Source> {
  const dir = resolve(inputDir);
  const layout = await detectLayout(dir);
  const problems = new Problems();
  let labeled: SourceItem[];
  const ignored: string[] = [];
  // Class names come from every valid label (before --limit), so a sample or
  // a class whose images are missing does not renumber the classes.
  const labelSet = new Set<string>();
  const warnings: ItemProblem[] = [];
  if (layout === "kaggle") {
    const rows = await readKaggleRows(dir, problems);
    const images = await listRequiredImages(dir, KAGGLE_TRAIN_IMAGES);
    for (const p of images.problems) problems.add(p);
    ignored.push(...images.ignored);
    labeled = match(rows, images, KAGGLE_TRAIN_IMAGES, KAGGLE_SOLUTIONS, problems);
  } else if (layout === "labels-csv") {
    const rows = await readLabelRows(dir, problems, warnings);
    for (const r of rows.values()) labelSet.add(r.label!);
    const images = await listRequiredImages(dir, "images");
    for (const p of images.problems) problems.add(p);
    warnings.push(...respelledWarning(images, "the ids of labels.csv"));
    ignored.push(...images.ignored);
    labeled = match(rows, images, "images", "labels.csv", problems);
  } else {
    const r = await readClassFolders(dir, problems);
    labeled = r.items;
    for (const x of labeled) labelSet.add(x.label!);
    ignored.push(...r.ignored);
    warnings.push(...r.warnings);
  }
  warnings.push(...caseTwins([...labelSet]));
  const labeledProblems = new Map(problems.byId);
  const unlabeledProblems = new Problems();
  let unlabeled: SourceItem[] = [];
  if (layout === "kaggle" && (opts.unlabeled ?? true)) {
    const test = await listRequiredImages(dir, KAGGLE_TEST_IMAGES);
    for (const p of test.problems) unlabeledProblems.add(p);
    ignored.push(...test.ignored);
    for (const [id, files] of test.byId) {
      if (files.length > 1) unlabeledProblems.add(duplicateProblem(id, files));
      else if (!usableId(id)) {
        unlabeledProblems.add({ id, file: files[0], reason: "id is not a file name" });
      } else unlabeled.push({ id, file: files[0] });
    }
  }
  let anonymous = [...problems.anonymous];
  let keptLabeledProblems = [...labeledProblems.values()];
  let keptUnlabeledProblems = [...unlabeledProblems.byId.values()];
  if (opts.limit !== undefined) {
    const keepL = sampleIds(
      [...labeled.map((x) => x.id), ...labeledProblems.keys()],
      opts.limit,
    );
    const keepU = sampleIds(
      [...unlabeled.map((x) => x.id), ...unlabeledProblems.byId.keys()],
      opts.limit,
    );
    labeled = labeled.filter((x) => keepL.has(x.id));
    unlabeled = unlabeled.filter((x) => keepU.has(x.id));
    keptLabeledProblems = keptLabeledProblems.filter((p) => keepL.has(p.id!));
    keptUnlabeledProblems = keptUnlabeledProblems.filter((p) => keepU.has(p.id!));
    anonymous = [];
  }
  labeled.sort(byId);
  unlabeled.sort(byId);
  const all = [...anonymous, ...keptLabeledProblems, ...keptUnlabeledProblems];
  warnings.push(...ignoredWarning(ignored));
  return {
    dir,
    layout,
    labeled,
    unlabeled,
    labels: [...labelSet].sort(),
    hasVotes: layout === "kaggle",
    problems: all,
    itemCount: labeled.length + unlabeled.length + all.length,
    ignoredFiles: ignored.length,
    expectedImageSize: layout === "kaggle" ? KAGGLE_IMAGE_SIZE : null,
    warnings,
  };
}

/**
 * Warnings for labels that differ only in case or spacing (`spiral`,
 * `Spiral`, `spiral `): each is a class of its own, which is seldom meant.
 */
export function caseTwins(labels: readonly string[]): ItemProblem[] {
  const groups = new Map<string, string[]>();
  for (const l of labels) {
    const key = l.trim().replace(/\s+/g, " ").toLowerCase();
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...groups.values()].filter((g) => g.length > 1).map((g) => g.sort(byCodePoint)).map((
    g,
  ) => ({
    reason: `labels ${g.map((l) => JSON.stringify(l)).join(", ")} differ only in case or ` +
      `spacing: they are ${g.length} different classes; make them one label if they mean one class`,
  }));
}
