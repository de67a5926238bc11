/**
 * Has anything arrived since the last retraining? A fingerprint of the
 * input folder that is cheap enough to take every night on 140k images.
 *
 * - The label CSV (`training_solutions_rev1.csv` or `labels.csv`) is hashed
 *   whole (SHA-256): it is a few MB, and a corrected label can keep the
 *   file's size and even its mtime second.
 * - Images are only stat'ed: relative path, size and mtime. Hashing 61k
 *   training JPEGs (~2 GB) would read every byte nightly; a copy, `rsync` or
 *   re-download that replaces an image changes its mtime (and almost always
 *   its size), which is what the job needs to notice.
 *
 * Only what preprocessing for retraining reads is covered, by layout (see
 * {@linkcode ../data/sources.ts}): Kaggle `images_training_rev1/*` (not the
 * unlabeled `images_test_rev1/`, which training never uses), labels-csv
 * `images/*`, or the image files in each class folder. Hidden files and
 * non-image files are ignored, as preprocessing ignores them.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { isImageFile } from "../data/image.ts";
import {
  detectLayout,
  KAGGLE_SOLUTIONS,
  KAGGLE_TRAIN_IMAGES,
  type SourceLayout,
} from "../data/sources.ts";

/** The fingerprint of an input folder. */
export interface InputFingerprint {
  /** SHA-256 over the label CSV's hash and every image's path, size and mtime. */
  digest: string;
  layout: SourceLayout;
  /** Image files covered. */
  images: number;
  /** Their total size in bytes. */
  bytes: number;
  /** The label CSV and its SHA-256 (class-folders: none). */
  labels: { file: string; sha256: string } | null;
  /** Latest image mtime (ISO), or null without images. */
  newestImage: string | null;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

/** Image files directly inside `dir/rel`, as paths relative to `dir`, sorted. */
async function imagesIn(dir: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, rel))) {
      if (e.name.startsWith(".") || !(e.isFile || e.isSymlink) || !isImageFile(e.name)) continue;
      out.push(rel ? `${rel}/${e.name}` : e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/** Takes the fingerprint of the input folder `dir`. */
export async function fingerprintInputs(dir: string): Promise<InputFingerprint> {
  const layout = await detectLayout(dir);
  let labelsFile: string | null = null;
  let files: string[] = [];
  if (layout === "kaggle") {
    labelsFile = KAGGLE_SOLUTIONS;
    files = await imagesIn(dir, KAGGLE_TRAIN_IMAGES);
  } else if (layout === "labels-csv") {
    labelsFile = "labels.csv";
    files = await imagesIn(dir, "images");
  } else {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && !e.name.startsWith(".")) files.push(...await imagesIn(dir, e.name));
    }
  }
  files.sort();
  const h = createHash("sha256");
  const labels = labelsFile
    ? { file: labelsFile, sha256: await sha256File(join(dir, labelsFile)) }
    : null;
  h.update(`layout\t${layout}\nlabels\t${labels?.file ?? ""}\t${labels?.sha256 ?? ""}\n`);
  let bytes = 0;
  let newest = -Infinity;
  // Stat in batches: one await per file would be slow over 100k files, all at once too many handles.
  const BATCH = 256;
  for (let i = 0; i < files.length; i += BATCH) {
    const part = files.slice(i, i + BATCH);
    const infos = await Promise.all(part.map((f) => Deno.stat(join(dir, f))));
    infos.forEach((st, k) => {
      const mtime = st.mtime?.getTime() ?? 0;
      bytes += st.size;
      newest = Math.max(newest, mtime);
      h.update(`${part[k]}\t${st.size}\t${mtime}\n`);
    });
  }
  return {
    digest: h.digest("hex"),
    layout,
    images: files.length,
    bytes,
    labels,
    newestImage: Number.isFinite(newest) ? new Date(newest).toISOString() : null,
  };
}

/** A short account of what differs between two fingerprints, for the job's output. */
export function describeChange(before: InputFingerprint | null, now: InputFingerprint): string {
  if (!before) return `no earlier successful run: ${now.images} images`;
  if (before.digest === now.digest) return `images and labels unchanged (${now.images} images)`;
  const parts: string[] = [];
  if (before.images !== now.images) parts.push(`images ${before.images} -> ${now.images}`);
  else parts.push(`${now.images} images`);
  if (before.bytes !== now.bytes) {
    const d = now.bytes - before.bytes;
    parts.push(`${d > 0 ? "+" : ""}${d} bytes`);
  }
  if (before.labels?.sha256 !== now.labels?.sha256) parts.push("labels changed");
  if (before.layout !== now.layout) parts.push(`layout ${before.layout} -> ${now.layout}`);
  if (
    before.images === now.images && before.bytes === now.bytes &&
    before.labels?.sha256 === now.labels?.sha256
  ) {
    parts.push("same count and size, but some image was replaced or renamed");
  }
  return parts.join(", ");
}
