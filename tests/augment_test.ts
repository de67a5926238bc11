import assert from "node:assert/strict";
import {
  augmentBatch,
  DEFAULT_AUGMENT,
  dihedralBatch,
  dihedralSource,
  isMirror,
} from "../lib/train/augment.ts";
import { mulberry32 } from "../lib/random.ts";
import { TRAIN_DEFAULTS } from "../lib/train/trainer.ts";
import {
  FIXED_ON_RESUME,
  RECORDED_BEFORE,
  resumeConflict,
  type RunConfig,
} from "../lib/run/config.ts";

const SIDE = 9;
const N = 64;

/** N random RGB images: every pixel distinct enough that a shift is recognisable. */
function images(seed = 1): Uint8Array {
  const rand = mulberry32(seed);
  return Uint8Array.from({ length: N * SIDE * SIDE * 3 }, () => Math.floor(rand() * 256));
}

/** Image `i` of `batch` shifted by (dy, dx) with edges replicated, as augment defines it. */
function shifted(batch: Float32Array, i: number, dy: number, dx: number): Float32Array {
  const size = SIDE * SIDE * 3;
  const out = new Float32Array(size);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const sy = Math.min(SIDE - 1, Math.max(0, y - dy));
      const sx = Math.min(SIDE - 1, Math.max(0, x - dx));
      for (let c = 0; c < 3; c++) {
        out[(y * SIDE + x) * 3 + c] = batch[i * size + (sy * SIDE + sx) * 3 + c];
      }
    }
  }
  return out;
}

/** The shift (dy, dx) within +-range that turns image `i` of `rotated` into `got`, or null. */
function findShift(rotated: Float32Array, got: Float32Array, i: number, range: number) {
  const size = SIDE * SIDE * 3;
  const want = got.subarray(i * size, (i + 1) * size);
  for (let dy = 0 - range; dy <= range; dy++) {
    for (let dx = 0 - range; dx <= range; dx++) {
      if (shifted(rotated, i, dy, dx).every((v, k) => v === want[k])) return [dy, dx];
    }
  }
  return null;
}

const key = { seed: 7, epoch: 2, offset: 96 };
const noJitter = { brightness: 0, contrast: 0 };

Deno.test("the default augmentation does not shift: each image is exactly one of the 8 rotations and flips", () => {
  assert.equal(DEFAULT_AUGMENT.maxShift, 0);
  assert.equal(
    TRAIN_DEFAULTS.shift,
    DEFAULT_AUGMENT.maxShift,
    "train's --shift default is augment's",
  );
  const pixels = images();
  const out = augmentBatch(pixels, N, SIDE, null, [], key, { ...DEFAULT_AUGMENT, ...noJitter });
  for (let i = 0; i < N; i++) {
    const rotated = dihedralBatch(pixels, N, SIDE, out.transforms[i]);
    assert.deepEqual(findShift(rotated, out.pixels, i, 0), [0, 0], `image ${i}`);
  }
  assert.equal(new Set(out.transforms).size, 8, "all 8 transforms drawn over 64 images");
});

Deno.test("--shift K: each image is its rotation shifted by at most K px per axis, edges replicated", () => {
  const pixels = images(2);
  const out = augmentBatch(pixels, N, SIDE, null, [], key, { maxShift: 2, ...noJitter });
  const seen = new Set<string>();
  for (let i = 0; i < N; i++) {
    const rotated = dihedralBatch(pixels, N, SIDE, out.transforms[i]);
    const s = findShift(rotated, out.pixels, i, 2);
    assert.ok(s, `image ${i} is not a shift of its rotation within 2 px`);
    seen.add(s.join(","));
  }
  assert.ok(seen.size > 9, `shifts drawn over 64 images: ${[...seen].join(" ")}`);
});

Deno.test("augmentation is a pure function of (seed, epoch, position), and a mirror swaps handed labels", () => {
  const pixels = images(3);
  const labels = Int32Array.from({ length: N }, (_, i) => i % 3);
  const a = augmentBatch(pixels, N, SIDE, labels, [[1, 2]], key);
  const b = augmentBatch(pixels, N, SIDE, labels, [[1, 2]], key);
  assert.deepEqual(a.pixels, b.pixels);
  const c = augmentBatch(pixels, N, SIDE, labels, [[1, 2]], { ...key, epoch: 3 });
  assert.notDeepEqual(a.transforms, c.transforms, "another epoch draws other transforms");
  for (let i = 0; i < N; i++) {
    const want = isMirror(a.transforms[i]) && labels[i] > 0 ? 3 - labels[i] : labels[i];
    assert.equal(a.labels![i], want, `image ${i}, transform ${a.transforms[i]}`);
  }
});

Deno.test("dihedralSource: the 8 transforms of a square are distinct and each is a bijection", () => {
  const maps = new Set<string>();
  for (let t = 0; t < 8; t++) {
    const image: string[] = [];
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) image.push(dihedralSource(t, 4, y, x).join());
    }
    assert.equal(new Set(image).size, 16, `transform ${t} is a bijection`);
    maps.add(image.join(" "));
  }
  assert.equal(maps.size, 8);
});

Deno.test("resuming a run recorded before --shift existed (trained with 3 px shifts) asks for --shift 3", () => {
  assert.ok(FIXED_ON_RESUME.includes("shift"));
  assert.equal(RECORDED_BEFORE.shift, 3);
  const config = (options: Record<string, unknown>) =>
    ({ format: "galaxy-run", dataset: { manifestSha256: "x" }, options }) as unknown as RunConfig;
  const { shift: _, ...before } = { ...TRAIN_DEFAULTS };
  const now = { ...TRAIN_DEFAULTS };
  assert.match(
    resumeConflict(config(before), config(now), "RUN") ?? "",
    /RUN was started with --shift 3, not 0/,
  );
  assert.equal(resumeConflict(config(before), config({ ...now, shift: 3 }), "RUN"), null);
  assert.equal(resumeConflict(config(now), config(now), "RUN"), null);
});
