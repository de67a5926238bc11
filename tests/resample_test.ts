import assert from "node:assert/strict";
import sharp from "sharp";
import { jpegShrinkOnLoad } from "../lib/data/crop.ts";
import { type ImageOptions, loadImage } from "../lib/data/image.ts";
import { cropResize, isJpegBytes } from "../lib/web/resample.ts";
import { encodeImage, type ImageKind } from "./fixtures_images.ts";
import { realGalaxyJpegs } from "./fixtures_web.ts";

/** Mean and largest absolute difference between the page's pixels and loadImage's. */
async function difference(
  bytes: Uint8Array,
  o: ImageOptions,
): Promise<{ mean: number; max: number }> {
  const want = (await loadImage(bytes, o)).pixels;
  // Full-size RGBA, as a browser canvas hands it over.
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const got = cropResize(
    { data, width: info.width, height: info.height, channels: 4 },
    o,
    isJpegBytes(bytes),
  );
  assert.equal(got.length, want.length);
  let sum = 0, max = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / got.length, max };
}

Deno.test("jpegShrinkOnLoad picks sharp's libjpeg scale", () => {
  assert.equal(jpegShrinkOnLoad(424, 424, 128, 128), 2); // 64 px at crop 0.5: the default
  assert.equal(jpegShrinkOnLoad(424, 424, 256, 256), 1);
  assert.equal(jpegShrinkOnLoad(424, 424, 212, 212), 1); // shrink 2 exactly: halved
  assert.equal(jpegShrinkOnLoad(424, 424, 53, 53), 4); // shrink 8 exactly: halved
  assert.equal(jpegShrinkOnLoad(1000, 800, 100, 80), 8);
  assert.equal(jpegShrinkOnLoad(600, 300, 150, 100), 2); // the smaller shrink of the two axes
});

Deno.test("cropResize equals loadImage exactly where nothing is resampled", async () => {
  for (const kind of ["rgb", "png", "grey"] as ImageKind[]) {
    const bytes = await encodeImage(96, 80, 5, kind);
    const d = await difference(bytes, { size: 40, crop: 0.5 });
    assert.deepEqual(d, { mean: 0, max: 0 }, kind);
  }
});

Deno.test("cropResize follows sharp's Lanczos-3 resize closely (no JPEG shrink-on-load)", async () => {
  for (
    const [kind, w, h, o] of [
      ["png", 300, 200, { size: 40, crop: 0.8 }],
      ["png", 150, 150, { size: 64, crop: 0.9 }],
      ["rgb", 200, 260, { size: 64, crop: 0.5 }],
    ] as [ImageKind, number, number, ImageOptions][]
  ) {
    const d = await difference(await encodeImage(w, h, 11, kind), o);
    assert.ok(
      d.mean < 0.1 && d.max <= 3,
      `${kind} ${w}x${h} ${JSON.stringify(o)}: ${JSON.stringify(d)}`,
    );
  }
});

Deno.test("cropResize stays within a grey level on average where sharp shrinks JPEGs on load", async () => {
  const real = realGalaxyJpegs(6);
  const inputs = Array.isArray(real)
    ? await Promise.all(real.map((p) => Deno.readFile(p)))
    : await Promise.all([1, 2, 3].map((s) => encodeImage(424, 424, s)));
  if (!Array.isArray(real)) console.log(`generated images instead of real ones: ${real.skip}`);
  for (const bytes of inputs) {
    const d = await difference(bytes, { size: 64, crop: 0.5 });
    assert.ok(d.mean < 0.6 && d.max <= 12, JSON.stringify(d));
  }
});

Deno.test("cropResize enlarges small images approximately", async () => {
  const d = await difference(await encodeImage(30, 30, 11, "png"), { size: 48, crop: 1 });
  assert.ok(d.mean < 3, JSON.stringify(d));
});

Deno.test("cropResize composites alpha over black as loadImage does", async () => {
  const d = await difference(await encodeImage(64, 64, 3, "png-alpha"), { size: 32, crop: 1 });
  assert.ok(d.mean < 0.6, JSON.stringify(d));
});
