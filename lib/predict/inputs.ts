/**
 * What `predict` reads: a folder of images, one image, or a preprocessed
 * dataset folder; and the streams of batches it turns them into, with
 * several images decoding at once and memory bounded by the batch size.
 *
 * @module
 */
import { basename, join } from "node:path";
import { type Dataset, openDataset, type Split } from "../data/dataset.ts";
import {
  configureSharp,
  imageStem,
  isImageFile,
  loadImage,
  type LoadOptions,
  unsupportedFormat,
} from "../data/image.ts";
import { aspectWarning } from "../data/aspect.ts";
import { readEntries } from "../io/dir_entries.ts";
import { MANIFEST_FILE, SPLITS } from "../data/manifest.ts";
import type { ImageBatch } from "../inference.ts";

/** One image file and the id it is reported under (its name without extension). */
export interface ImageItem {
  /** The file name without extension. */
  id: string;
  /** Path of the image file. */
  path: string;
}

/** An input that could not be predicted, and why. */
export interface PredictError {
  /** Image id. */
  id: string;
  /** Path of the image file. */
  file: string;
  /** Why it could not be predicted. */
  reason: string;
}

/** A resolved `--in`. */
export type PredictInput =
  | {
    kind: "images";
    /** Image files to predict, sorted by id. */
    items: ImageItem[];
    /**
     * Files refused before decoding (several files with one id, a format not
     * read, a broken link, a name that is not UTF-8), sorted by id.
     */
    refused: PredictError[];
  }
  | { kind: "dataset"; dataset: Dataset; split: Split };

/** Ids sort by UTF-16 code units (byte order for ASCII ids), as preprocess sorts them. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An image's id: its file name without the image extension (`g1.fits.gz` -> `g1`), in Unicode NFC. */
export function imageId(path: string): string {
  const name = basename(path);
  return (imageStem(name) || name).normalize("NFC");
}

/**
 * Resolves `--in`: a dataset folder (it has `manifest.json`; the split is
 * `split`, else `unlabeled` when it has images, else `test`), a folder of
 * images (not recursive; hidden files skipped; symlinks followed), or one
 * image file. In a folder, a file whose format is not read
 * (lib/data/formats.ts), a broken link or a name that is not UTF-8 is
 * refused with the reason, as a single-file run of it would be.
 */
export async function resolveInput(
  path: string,
  o: { split?: string } = {},
): Promise<PredictInput> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new Error(`--in ${path} does not exist`);
  }
  if (info.isFile) {
    if (o.split) throw new Error(`--split applies to a dataset folder, not the file ${path}`);
    return { kind: "images", items: [{ id: imageId(path), path }], refused: [] };
  }
  const hasManifest = await Deno.stat(join(path, MANIFEST_FILE)).then(() => true, () => false);
  if (hasManifest) {
    const dataset = await openDataset(path);
    let split: Split;
    if (o.split !== undefined) {
      if (!(SPLITS as readonly string[]).includes(o.split)) {
        dataset.close();
        throw new Error(`--split must be one of ${SPLITS.join(", ")}, got '${o.split}'`);
      }
      split = o.split as Split;
    } else {
      split = dataset.size("unlabeled") > 0 ? "unlabeled" : "test";
    }
    if (dataset.size(split) === 0) {
      dataset.close();
      throw new Error(`split '${split}' of dataset ${path} has no images`);
    }
    return { kind: "dataset", dataset, split };
  }
  if (o.split) throw new Error(`--split applies to a dataset folder; ${path} has no manifest.json`);
  const byId = new Map<string, string[]>();
  const refused: PredictError[] = [];
  for (const e of await readEntries(path)) {
    if (e.kind === "dir") continue;
    const id = imageId(e.name);
    if (e.problem) refused.push({ id, file: join(path, e.name), reason: e.problem });
    else if (!isImageFile(e.name)) {
      refused.push({ id, file: join(path, e.name), reason: unsupportedFormat(e.name) });
    } else byId.set(id, [...(byId.get(id) ?? []), join(path, e.name)]);
  }
  const items: ImageItem[] = [];
  for (const [id, paths] of byId) {
    if (paths.length === 1) {
      items.push({ id, path: paths[0] });
      continue;
    }
    const names = paths.map((p) => basename(p)).sort();
    for (const p of paths.sort()) {
      refused.push({ id, file: p, reason: `duplicate id: ${names.join(" and ")} share it` });
    }
  }
  if (items.length === 0 && refused.length === 0) {
    throw new Error(`--in ${path} holds no files`);
  }
  items.sort((a, b) => compareIds(a.id, b.id));
  refused.sort((a, b) => compareIds(a.id, b.id) || compareIds(a.file, b.file));
  return { kind: "images", items, refused };
}

/** A batch of images to predict (null when every image of the stretch failed), the failures and warnings. */
export interface Chunk {
  batch: ImageBatch | null;
  errors: PredictError[];
  /** Images predicted with a warning (far from square; lib/data/aspect.ts). */
  warnings: PredictError[];
}

/** Maps `items` through `fn` with at most `limit` calls in flight, yielding results in input order. */
export async function* mapInOrder<T, R>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const it = items[Symbol.iterator]();
  const queue: Promise<R>[] = [];
  let exhausted = false;
  const fill = () => {
    while (!exhausted && queue.length < limit) {
      const next = it.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const p = fn(next.value);
      p.catch(() => {}); // surfaced when awaited in order
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    const head = queue.shift()!;
    fill();
    yield await head;
  }
}

/**
 * Decodes image files with {@linkcode loadImage} (the crop, resize and FITS
 * stretch the model was trained with), `concurrency` at a time, into
 * batches of `batchSize` readable images; unreadable ones come out as
 * errors, far-from-square ones as warnings.
 */
export async function* imageChunks(
  items: readonly ImageItem[],
  o: LoadOptions & { batchSize: number; concurrency: number },
): AsyncGenerator<Chunk> {
  configureSharp();
  const bytes = o.size * o.size * 3;
  let pixels = new Uint8Array(o.batchSize * bytes);
  let ids: string[] = [];
  let errors: PredictError[] = [];
  let warnings: PredictError[] = [];
  const decoded = mapInOrder(items, o.concurrency, async (item) => {
    try {
      const img = await loadImage(item.path, o);
      return { item, pixels: img.pixels, reason: aspectWarning(img.width, img.height) };
    } catch (e) {
      const msg = (e as Error).message;
      // ImageError prefixes the file name; the errors file has its own column for it.
      const reason = msg.startsWith(`${item.path}: `) ? msg.slice(item.path.length + 2) : msg;
      return { item, pixels: null, reason };
    }
  });
  for await (const d of decoded) {
    if (d.pixels === null) {
      errors.push({ id: d.item.id, file: d.item.path, reason: d.reason! });
      continue;
    }
    if (d.reason) warnings.push({ id: d.item.id, file: d.item.path, reason: d.reason });
    pixels.set(d.pixels, ids.length * bytes);
    ids.push(d.item.id);
    if (ids.length === o.batchSize) {
      yield { batch: { n: ids.length, ids, pixels }, errors, warnings };
      pixels = new Uint8Array(o.batchSize * bytes);
      ids = [];
      errors = [];
      warnings = [];
    }
  }
  if (ids.length > 0 || errors.length > 0) {
    const batch = ids.length > 0
      ? { n: ids.length, ids, pixels: pixels.subarray(0, ids.length * bytes) }
      : null;
    yield { batch, errors, warnings };
  }
}

/**
 * The records of a dataset split that `keep` accepts (given the id and its
 * position in the split), in stored order, in batches of `batchSize`.
 */
export async function* datasetChunks(
  ds: Dataset,
  split: Split,
  o: { batchSize: number; keep?: (id: string, position: number) => boolean },
): AsyncGenerator<Chunk> {
  const { height, width } = ds.manifest.image;
  const bytes = height * width * 3;
  let pixels = new Uint8Array(o.batchSize * bytes);
  let ids: string[] = [];
  let position = 0;
  for await (const b of ds.batches(split, { batchSize: o.batchSize })) {
    for (let i = 0; i < b.n; i++, position++) {
      if (o.keep && !o.keep(b.ids[i], position)) continue;
      pixels.set(b.pixels.subarray(i * bytes, (i + 1) * bytes), ids.length * bytes);
      ids.push(b.ids[i]);
      if (ids.length === o.batchSize) {
        yield { batch: { n: ids.length, ids, pixels }, errors: [], warnings: [] };
        pixels = new Uint8Array(o.batchSize * bytes);
        ids = [];
      }
    }
  }
  if (ids.length > 0) {
    yield {
      batch: { n: ids.length, ids, pixels: pixels.subarray(0, ids.length * bytes) },
      errors: [],
      warnings: [],
    };
  }
}
