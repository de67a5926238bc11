/**
 * Test fixtures for preprocess and the dataset reader: small generated
 * images written with sharp (RGB, greyscale, CMYK, PNG with alpha), vote
 * fractions that obey the decision tree and hit a chosen `gz5` class, and
 * whole input folders in the Kaggle, labels.csv and class-folder layouts.
 *
 * @module
 */
import { join } from "node:path";
import sharp from "sharp";
import { KAGGLE_HEADER, NUM_VOTES, voteIndex } from "../lib/data/schema.ts";
import { type FitsWriteOptions, writeFits } from "../lib/io/fits.ts";

/** A xorshift32 generator in [0, 1) from `state` (its low 32 bits; 0 counts as 1), for replayable fixtures. */
export function xorshift32(state: number): () => number {
  let s = state >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** A smooth blob on a dark gradient plus noise, varied by `seed`, as raw RGB. */
export function patternPixels(width: number, height: number, seed: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const rand = xorshift32(seed * 2654435761 + 12345);
  const cx = width * (0.35 + 0.3 * rand()), cy = height * (0.35 + 0.3 * rand());
  const r = Math.min(width, height) * (0.08 + 0.15 * rand());
  const tint = [0.6 + 0.4 * rand(), 0.6 + 0.4 * rand(), 0.6 + 0.4 * rand()];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (r * r);
      const v = 230 * Math.exp(-d2) + 20 * (x / width) + 10 * rand();
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = Math.min(255, v * tint[c]);
    }
  }
  return out;
}

/** How a fixture image is encoded. */
export type ImageKind = "rgb" | "grey" | "cmyk" | "png" | "png-alpha";

/** Encodes a pattern image of the given kind. */
export async function encodeImage(
  width: number,
  height: number,
  seed: number,
  kind: ImageKind = "rgb",
): Promise<Uint8Array> {
  const s = sharp(patternPixels(width, height, seed), { raw: { width, height, channels: 3 } });
  switch (kind) {
    case "rgb":
      return await s.jpeg({ quality: 90 }).toBuffer();
    case "grey":
      return await s.toColourspace("b-w").jpeg({ quality: 90 }).toBuffer();
    case "cmyk":
      return await s.toColourspace("cmyk").jpeg({ quality: 90 }).toBuffer();
    case "png":
      return await s.png().toBuffer();
    case "png-alpha":
      return await s.ensureAlpha(0.75).png().toBuffer();
  }
}

/** The classes {@linkcode gzVotes} can produce: the five of `gz5` and "none". */
export type VoteKind = "round" | "in_between" | "cigar" | "edge_on" | "spiral" | "none";

/**
 * 37 vote fractions that obey the decision tree and satisfy exactly the
 * `gz5` class `kind` ("none": no class). `jitter` in [0, 1) varies them a
 * little without changing the class.
 */
export function gzVotes(kind: VoteKind, jitter = 0): Float64Array {
  const v = new Float64Array(NUM_VOTES);
  const set = (col: string, x: number) => (v[voteIndex(col)] = x);
  const j = 0.02 * jitter;
  const q1: Record<VoteKind, number[]> = {
    round: [0.8 - j, 0.15 + j, 0.05],
    in_between: [0.8 - j, 0.15 + j, 0.05],
    cigar: [0.8 - j, 0.15 + j, 0.05],
    edge_on: [0.1, 0.85 - j, 0.05 + j],
    spiral: [0.05, 0.9 - j, 0.05 + j],
    none: [0.45 - j, 0.4 + j, 0.15],
  };
  const [smooth, disk] = q1[kind];
  q1[kind].forEach((x, i) => set(`Class1.${i + 1}`, x));
  const q7: Record<VoteKind, number[]> = {
    round: [0.75, 0.2, 0.05],
    in_between: [0.1, 0.85, 0.05],
    cigar: [0.05, 0.1, 0.85],
    edge_on: [0.4, 0.4, 0.2],
    spiral: [0.4, 0.4, 0.2],
    none: [0.4, 0.4, 0.2],
  };
  q7[kind].forEach((x, i) => set(`Class7.${i + 1}`, x * smooth));
  const edge = kind === "edge_on" ? 0.8 : kind === "spiral" ? 0.05 : 0.5;
  set("Class2.1", edge * disk);
  set("Class2.2", (1 - edge) * disk);
  const notEdge = (1 - edge) * disk;
  const edgeFrac = edge * disk;
  set("Class3.1", 0.3 * notEdge);
  set("Class3.2", 0.7 * notEdge);
  const spiralFrac = kind === "spiral" ? 0.8 : 0.4;
  set("Class4.1", spiralFrac * notEdge);
  set("Class4.2", (1 - spiralFrac) * notEdge);
  [0.1, 0.4, 0.4, 0.1].forEach((x, i) => set(`Class5.${i + 1}`, x * notEdge));
  set("Class6.1", 0.2);
  set("Class6.2", 0.8);
  [0.1, 0.1, 0.2, 0.2, 0.1, 0.2, 0.1].forEach((x, i) => set(`Class8.${i + 1}`, x * 0.2));
  [0.5, 0.3, 0.2].forEach((x, i) => set(`Class9.${i + 1}`, x * edgeFrac));
  const arms = spiralFrac * notEdge;
  [0.3, 0.4, 0.3].forEach((x, i) => set(`Class10.${i + 1}`, x * arms));
  [0.1, 0.4, 0.2, 0.1, 0.1, 0.1].forEach((x, i) => set(`Class11.${i + 1}`, x * arms));
  return v;
}

/** One row of `training_solutions_rev1.csv`, with 6 decimals as Kaggle writes them. */
export function kaggleRow(id: string | number, votes: ArrayLike<number>): string {
  return [String(id), ...Array.from(votes, (x) => x.toFixed(6))].join(",");
}

/** Header line of `training_solutions_rev1.csv`. */
export const KAGGLE_HEADER_LINE = KAGGLE_HEADER.join(",");

/** A labelled fixture item of a Kaggle-layout folder. */
export interface KaggleFixtureItem {
  id: number;
  kind: VoteKind;
  votes: Float64Array;
}

/**
 * Writes a Kaggle-layout folder: `n` labelled images (cycling through the
 * vote kinds) and `unlabeled` test images, all 424x424 JPEG unless `side`.
 */
export async function makeKaggleFolder(
  dir: string,
  n: number,
  unlabeled = 0,
  side = 424,
): Promise<KaggleFixtureItem[]> {
  await Deno.mkdir(join(dir, "images_training_rev1"), { recursive: true });
  await Deno.mkdir(join(dir, "images_test_rev1"), { recursive: true });
  const kinds: VoteKind[] = ["round", "in_between", "cigar", "edge_on", "spiral", "none"];
  const items: KaggleFixtureItem[] = [];
  for (let i = 0; i < n; i++) {
    const id = 100000 + 7 * i;
    const kind = kinds[i % kinds.length];
    items.push({ id, kind, votes: gzVotes(kind, (i % 5) / 5) });
    await Deno.writeFile(
      join(dir, "images_training_rev1", `${id}.jpg`),
      await encodeImage(side, side, id),
    );
  }
  for (let i = 0; i < unlabeled; i++) {
    const id = 900000 + i;
    await Deno.writeFile(
      join(dir, "images_test_rev1", `${id}.jpg`),
      await encodeImage(side, side, id),
    );
  }
  const lines = [KAGGLE_HEADER_LINE, ...items.map((x) => kaggleRow(x.id, x.votes))];
  await Deno.writeTextFile(join(dir, "training_solutions_rev1.csv"), lines.join("\n") + "\n");
  return items;
}

/** Writes a labels.csv + images/ folder with `perClass[c]` images of each class. */
export async function makeLabelsCsvFolder(
  dir: string,
  perClass: Record<string, number>,
  side = 40,
): Promise<{ id: string; label: string; file: string }[]> {
  await Deno.mkdir(join(dir, "images"), { recursive: true });
  const rows: { id: string; label: string; file: string }[] = [];
  let k = 0;
  for (const [label, count] of Object.entries(perClass)) {
    for (let i = 0; i < count; i++, k++) {
      const id = `g${String(k).padStart(4, "0")}`;
      const ext = k % 3 === 2 ? "png" : k % 3 === 1 ? "jpeg" : "jpg";
      const file = `images/${id}.${ext}`;
      await Deno.writeFile(
        join(dir, file),
        await encodeImage(side, side, 7 + k, ext === "png" ? "png" : "rgb"),
      );
      rows.push({ id, label, file });
    }
  }
  await Deno.writeTextFile(
    join(dir, "labels.csv"),
    ["id,label", ...rows.map((r) => `${r.id},${r.label}`)].join("\n") + "\n",
  );
  return rows;
}

/**
 * A galaxy-like FITS image: a Gaussian blob on a faint, slightly uneven sky,
 * `planes` bands (1, or 3 for a cube) stored as `bitpix` values within that
 * BITPIX's range; `cards` adds header cards (BSCALE, BZERO, BLANK).
 */
export function galaxyFits(
  size: number,
  o: { bitpix?: FitsWriteOptions["bitpix"]; planes?: number; cards?: FitsWriteOptions["cards"] } =
    {},
): Uint8Array {
  const bitpix = o.bitpix ?? 16;
  const planes = o.planes ?? 1;
  const peak = bitpix === 8 ? 200 : 1000;
  const values: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const r2 = ((x - size / 2) ** 2 + (y - size / 3) ** 2) / (size * size / 25);
        const v = peak / 10 + (peak * (p + 2) / (planes + 2)) * Math.exp(-r2) +
          ((x * 7 + y * 3) % 5);
        values.push(bitpix > 0 ? Math.round(v) : v);
      }
    }
  }
  return writeFits({
    bitpix,
    axes: planes === 1 ? [size, size] : [size, size, planes],
    values,
    cards: o.cards,
  });
}

/**
 * A JPEG's bytes with an EXIF APP1 segment carrying `orientation` (1-8)
 * inserted after SOI: the stored pixels stay, what viewers show changes.
 */
export function withExifOrientation(jpeg: Uint8Array, orientation: number): Uint8Array {
  // TIFF structure, big-endian: header, IFD0 with one entry (0x0112 SHORT), no next IFD.
  const tiff = [
    0x4d,
    0x4d,
    0,
    42,
    0,
    0,
    0,
    8,
    0,
    1,
    0x01,
    0x12,
    0,
    3,
    0,
    0,
    0,
    1,
    0,
    orientation,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  const body = [..."Exif"].map((c) => c.charCodeAt(0)).concat([0, 0], tiff);
  const length = body.length + 2;
  const app1 = [0xff, 0xe1, length >> 8, length & 0xff, ...body];
  const out = new Uint8Array(jpeg.length + app1.length);
  out.set(jpeg.subarray(0, 2));
  out.set(app1, 2);
  out.set(jpeg.subarray(2), 2 + app1.length);
  return out;
}

/**
 * The image viewers show for `stored` RGB pixels (`width` x `height`) under
 * EXIF `orientation`, as the EXIF specification and Pillow's
 * `ImageOps.exif_transpose` define it (2 mirror, 3 rotate 180, 4 flip, 5
 * transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
 * anticlockwise); returns the pixels and their size.
 */
export function orientPixels(
  stored: Uint8Array,
  width: number,
  height: number,
  orientation: number,
): { pixels: Uint8Array; width: number; height: number } {
  const quarter = orientation >= 5;
  const W = quarter ? height : width, H = quarter ? width : height;
  const w = width, h = height;
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    1: (x, y) => [x, y],
    2: (x, y) => [w - 1 - x, y],
    3: (x, y) => [w - 1 - x, h - 1 - y],
    4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, h - 1 - x],
    7: (x, y) => [w - 1 - y, h - 1 - x],
    8: (x, y) => [w - 1 - y, x],
  };
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sx, sy] = source[orientation](x, y);
      out.set(stored.subarray((sy * w + sx) * 3, (sy * w + sx) * 3 + 3), (y * W + x) * 3);
    }
  }
  return { pixels: out, width: W, height: H };
}
