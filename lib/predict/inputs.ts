/**
 * What `predict` reads: a folder of images, one image, or a preprocessed
 * dataset folder; and the streams of batches it turns them into, with
 * several images decoding at once and memory bounded by the batch size.
 *
 * @module
 */
import { basename, extname, join } from "node:path";
import { type Dataset, openDataset, type Split } from "../data/dataset.ts";
import { configureSharp, type ImageOptions, isImageFile, loadImage } from "../data/image.ts";
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
    /** Files refused before decoding (several files with one id), sorted by id. */
    refused: PredictError[];
  }
  | { kind: "dataset"; dataset: Dataset; split: Split };

/** Ids sort by UTF-16 code units (byte order for ASCII ids), as preprocess sorts them. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An image's id: its file name without the extension. */
export function imageId(path: string): string {
  const name = basename(path);
  return name.slice(0, name.length - extname(name).length) || name;
}

/**
 * Resolves `--in`: a dataset folder (it has `manifest.json`; the split is
 * `split`, else `unlabeled` when it has images, else `test`), a folder of
 * JPEG/PNG images (not recursive; hidden files skipped), or one image file.
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
  for await (const e of Deno.readDir(path)) {
    if (e.name.startsWith(".") || !(e.isFile || e.isSymlink) || !isImageFile(e.name)) continue;
    const id = imageId(e.name);
    byId.set(id, [...(byId.get(id) ?? []), join(path, e.name)]);
  }
  const items: ImageItem[] = [];
  const refused: PredictError[] = [];
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
    throw new Error(`--in ${path} holds no .jpg, .jpeg or .png images`);
  }
  items.sort((a, b) => compareIds(a.id, b.id));
  refused.sort((a, b) => compareIds(a.id, b.id) || compareIds(a.file, b.file));
  return { kind: "images", items, refused };
}

/** A batch of images to predict (null when every image of the stretch failed) and the failures. */
export interface Chunk {
  batch: ImageBatch | null;
  errors: PredictError[];
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
 * Decodes image files with {@linkcode loadImage} (the crop and resize the
 * model was trained with), `concurrency` at a time, into batches of
 * `batchSize` readable images; unreadable ones come out as errors.
 */
export async function* imageChunks(
  items: readonly ImageItem[],
  o: ImageOptions & { batchSize: number; concurrency: number },
): AsyncGenerator<Chunk> {
  configureSharp();
  const bytes = o.size * o.size * 3;
  let pixels = new Uint8Array(o.batchSize * bytes);
  let ids: string[] = [];
  let errors: PredictError[] = [];
  const decoded = mapInOrder(items, o.concurrency, async (item) => {
    try {
      return { item, pixels: (await loadImage(item.path, o)).pixels, reason: null };
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
    pixels.set(d.pixels, ids.length * bytes);
    ids.push(d.item.id);
    if (ids.length === o.batchSize) {
      yield { batch: { n: ids.length, ids, pixels }, errors };
      pixels = new Uint8Array(o.batchSize * bytes);
      ids = [];
      errors = [];
    }
  }
  if (ids.length > 0 || errors.length > 0) {
    const batch = ids.length > 0
      ? { n: ids.length, ids, pixels: pixels.subarray(0, ids.length * bytes) }
      : null;
    yield { batch, errors };
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
        yield { batch: { n: ids.length, ids, pixels }, errors: [] };
        pixels = new Uint8Array(o.batchSize * bytes);
        ids = [];
      }
    }
  }
  if (ids.length > 0) {
    yield {
      batch: { n: ids.length, ids, pixels: pixels.subarray(0, ids.length * bytes) },
      errors: [],
    };
  }
}
