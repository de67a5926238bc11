import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { FITS_BLOCK, FitsError, readFitsImage, writeFits } from "../lib/io/fits.ts";
import {
  checkFitsStretch,
  DEFAULT_FITS_STRETCH,
  parseFitsStretch,
  percentile,
  stretchToRgb,
} from "../lib/data/stretch.ts";
import { loadImage } from "../lib/data/image.ts";
import { galaxyFits } from "./fixtures_images.ts";

/** Values 0..n-1 shaped as a ramp, within every BITPIX's range. */
const ramp = (n: number) => Array.from({ length: n }, (_, i) => i);

Deno.test("fits: every BITPIX reads back its values, row-major with NAXIS1 fastest", () => {
  for (const bitpix of [8, 16, 32, 64, -32, -64] as const) {
    const values = ramp(12).map((v) => (bitpix < 0 ? v + 0.25 : v));
    const img = readFitsImage(writeFits({ bitpix, axes: [4, 3], values }), `b${bitpix}.fits`);
    assert.equal(img.width, 4, `BITPIX ${bitpix}`);
    assert.equal(img.height, 3);
    assert.equal(img.planes, 1);
    assert.equal(img.bitpix, bitpix);
    assert.equal(img.hdu, 0);
    assert.deepEqual(Array.from(img.data), values, `BITPIX ${bitpix}`);
  }
});

Deno.test("fits: negative integers are two's complement, big-endian", () => {
  const values = [-32768, -1, 0, 32767];
  const img = readFitsImage(writeFits({ bitpix: 16, axes: [2, 2], values }), "s.fits");
  assert.deepEqual(Array.from(img.data), values);
});

Deno.test("fits: BSCALE and BZERO give physical values; BLANK and NaN are undefined", () => {
  // Unsigned 16-bit as the standard stores it: BZERO 32768.
  const u16 = readFitsImage(
    writeFits({ bitpix: 16, axes: [2, 1], values: [-32768, 32767], cards: { BZERO: 32768 } }),
    "u16.fits",
  );
  assert.deepEqual(Array.from(u16.data), [0, 65535]);
  const scaled = readFitsImage(
    writeFits({
      bitpix: 16,
      axes: [3, 1],
      values: [1, -99, 3],
      cards: { BSCALE: 0.5, BZERO: 10, BLANK: -99 },
    }),
    "scaled.fits",
  );
  assert.equal(scaled.data[0], 10.5);
  assert(Number.isNaN(scaled.data[1]), "BLANK becomes NaN");
  assert.equal(scaled.data[2], 11.5);
  const nan = readFitsImage(writeFits({ bitpix: -32, axes: [2, 1], values: [NaN, 2] }), "n.fits");
  assert(Number.isNaN(nan.data[0]));
  assert.equal(nan.data[1], 2);
});

Deno.test("fits: a cube, an image extension after an empty primary, and gzip", () => {
  const cube = readFitsImage(
    writeFits({ bitpix: -32, axes: [2, 2, 3], values: ramp(12) }),
    "cube.fits",
  );
  assert.equal(cube.planes, 3);
  assert.deepEqual(Array.from(cube.data.subarray(8)), [8, 9, 10, 11]);
  const ext = writeFits({ bitpix: 16, axes: [3, 2], values: ramp(6), extension: true });
  const fromExt = readFitsImage(ext, "ext.fits");
  assert.equal(fromExt.hdu, 1);
  assert.deepEqual(Array.from(fromExt.data), ramp(6));
  const gz = readFitsImage(gzipSync(ext), "ext.fits.gz");
  assert.deepEqual(Array.from(gz.data), ramp(6));
});

/** Replaces the card of `key` in the primary header with `text` (80 chars). */
function withCard(bytes: Uint8Array, key: string, text: string): Uint8Array {
  const out = bytes.slice();
  const head = new TextDecoder("latin1").decode(out.subarray(0, FITS_BLOCK));
  const at = head.indexOf(key.padEnd(8) + "=");
  assert(at >= 0 && at % 80 === 0, `card ${key}`);
  const card = text.padEnd(80).slice(0, 80);
  for (let i = 0; i < 80; i++) out[at + i] = card.charCodeAt(i);
  return out;
}

Deno.test("fits: truncated or malformed headers are errors naming the file and keyword", () => {
  const good = writeFits({ bitpix: 16, axes: [4, 4], values: ramp(16) });
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 1000), /^cut\.fits: FITS keyword END: header truncated/],
    [good.subarray(0, FITS_BLOCK + 10), /^cut\.fits: FITS keyword NAXIS: data truncated/],
    [
      withCard(good, "BITPIX", "BITPIX  =                   12"),
      /FITS keyword BITPIX: must be one of/,
    ],
    [
      withCard(good, "NAXIS1", "NAXIS1  =                 four"),
      /FITS keyword NAXIS1: value 'four'/,
    ],
    [
      withCard(good, "NAXIS2", "NAXIS2  =                  2.5"),
      /FITS keyword NAXIS2: must be an integer/,
    ],
    [withCard(good, "SIMPLE", "SIMPLE  =                    F"), /FITS keyword SIMPLE: must be T/],
    [
      new TextEncoder().encode("not a fits file at all"),
      /FITS keyword SIMPLE: the file does not start/,
    ],
    [gzipSync(good).subarray(0, 20), /^cut\.fits: FITS: cannot gunzip/],
  ];
  for (const [bytes, want] of cases) {
    assert.throws(() => readFitsImage(bytes, "cut.fits"), (e: unknown) => {
      assert(e instanceof FitsError, String(e));
      assert.match(e.message, want);
      assert.match(e.message, /^cut\.fits: /);
      return true;
    });
  }
  const noImage = writeFits({ bitpix: 8, axes: [], values: [] });
  assert.throws(() => readFitsImage(noImage, "empty.fits"), /FITS keyword NAXIS: no image/);
  const fourD = writeFits({ bitpix: 8, axes: [2, 2, 3, 2], values: ramp(24) });
  assert.throws(
    () => readFitsImage(fourD, "4d.fits"),
    /FITS keyword NAXIS4: axes beyond the third/,
  );
});

Deno.test("stretch: percentiles interpolate between ranks", () => {
  const s = Float64Array.from([0, 10, 20, 30, 40]);
  assert.equal(percentile(s, 0), 0);
  assert.equal(percentile(s, 100), 40);
  assert.equal(percentile(s, 50), 20);
  assert.equal(percentile(s, 12.5), 5);
});

Deno.test("stretch: asinh of the clipped intensity, black and white at the percentiles", () => {
  // One band 0..99: black at the 0th percentile (0), white at the 100th (99).
  const values = Float64Array.from(ramp(100));
  const img = { width: 100, height: 1, planes: 1, data: values, bitpix: -64, hdu: 0 };
  const s = { ...DEFAULT_FITS_STRETCH, low: 0, high: 100 };
  const rgb = stretchToRgb(img, s, "r.fits");
  for (const v of [0, 10, 50, 99]) {
    const x = v / 99;
    const want = Math.round(255 * Math.asinh(s.q * x) / Math.asinh(s.q));
    assert.deepEqual([...rgb.subarray(v * 3, v * 3 + 3)], [want, want, want], `value ${v}`);
  }
  // Clipping at the default percentiles saturates the top and blackens the bottom.
  const clipped = stretchToRgb(img, DEFAULT_FITS_STRETCH, "r.fits");
  assert.equal(clipped[0], 0);
  assert.equal(clipped[99 * 3], 255);
});

Deno.test("stretch: a cube maps planes 1, 2, 3 to blue, green, red, keeping colour ratios", () => {
  // Pixel 0: only plane 1 (bluest) bright; pixel 1: only plane 3; pixel 2: all equal.
  const data = Float64Array.from([
    ...[8, 0, 4, 0], // plane 1
    ...[0, 0, 4, 0], // plane 2
    ...[0, 8, 4, 0], // plane 3
  ]);
  const img = { width: 4, height: 1, planes: 3, data, bitpix: -32, hdu: 0 };
  const rgb = stretchToRgb(img, { ...DEFAULT_FITS_STRETCH, low: 0, high: 100 }, "c.fits");
  const px = (i: number) => [...rgb.subarray(i * 3, i * 3 + 3)];
  assert.equal(px(0)[0], 0);
  assert(px(0)[2] > 0, "plane 1 is blue");
  assert.equal(px(1)[2], 0);
  assert(px(1)[0] > 0, "plane 3 is red");
  const grey = px(2);
  assert(
    grey[0] > 0 && grey[0] === grey[1] && grey[1] === grey[2],
    `equal bands are grey: ${grey}`,
  );
  assert.deepEqual(px(3), [0, 0, 0]);
});

Deno.test("stretch: NaN is black, FITS row 1 becomes the bottom row, other cubes are refused", () => {
  const data = Float64Array.from([NaN, 1, 2, 3]); // row 1: NaN 1; row 2: 2 3
  const img = { width: 2, height: 2, planes: 1, data, bitpix: -32, hdu: 0 };
  const rgb = stretchToRgb(img, { ...DEFAULT_FITS_STRETCH, low: 0, high: 100 }, "n.fits");
  // Output row 0 is FITS row 2 (2, 3); output row 1 is FITS row 1 (NaN, 1).
  assert(rgb[0] > 0 && rgb[3] === 255);
  assert.equal(rgb[6], 0, "NaN is black");
  assert.equal(rgb[9], 0, "the black point is black");
  const two = { ...img, planes: 2, data: new Float64Array(8) };
  assert.throws(
    () => stretchToRgb(two, DEFAULT_FITS_STRETCH, "two.fits"),
    /two\.fits: FITS keyword NAXIS3/,
  );
  const flat = stretchToRgb(
    { ...img, data: new Float64Array(4).fill(5) },
    DEFAULT_FITS_STRETCH,
    "f",
  );
  assert(flat.every((v) => v === 0), "a constant image is black, not NaN");
});

Deno.test("stretch: settings are checked, and parsed from Q,LOW,HIGH", () => {
  assert.deepEqual(parseFitsStretch("8, 1, 99"), {
    ...DEFAULT_FITS_STRETCH,
    q: 8,
    low: 1,
    high: 99,
  });
  assert.throws(() => parseFitsStretch("8,1"), /--fits-stretch must be Q,LOW,HIGH/);
  assert.throws(() => parseFitsStretch("8,99,1"), /low < high/);
  assert.throws(() => checkFitsStretch({ ...DEFAULT_FITS_STRETCH, q: 0 }, "cfg"), /cfg: .*q must/);
});

Deno.test("loadImage reads FITS by name and by content, as its stretch gives it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = galaxyFits(32);
    const o = { size: 16, crop: 1 };
    for (const name of ["g.fits", "g.fit", "g.FTS", "g.fits.gz"]) {
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, name.endsWith(".gz") ? gzipSync(bytes) : bytes);
      const img = await loadImage(path, o);
      assert.equal(img.width, 32);
      assert.equal(img.pixels.length, 16 * 16 * 3);
      // Grey (one band); the blob sits a third of the way up from FITS row 1, the bottom, so
      // two thirds down the picture: the brightest output row is there.
      const rowSum = (y: number) =>
        Array.from({ length: 16 }, (_, x) => img.pixels[(y * 16 + x) * 3]).reduce((a, v) => a + v);
      const rows = Array.from({ length: 16 }, (_, y) => rowSum(y));
      assert.equal(rows.indexOf(Math.max(...rows)), 10, `${name}: ${rows}`);
      const mid = (10 * 16 + 8) * 3;
      assert.equal(img.pixels[mid], img.pixels[mid + 1]);
      assert.equal(img.pixels[mid + 1], img.pixels[mid + 2]);
    }
    const fromBytes = await loadImage(gzipSync(bytes), o, "upload");
    assert.deepEqual(fromBytes.pixels, (await loadImage(`${dir}/g.fits`, o)).pixels);
    const other = await loadImage(`${dir}/g.fits`, {
      ...o,
      stretch: { ...DEFAULT_FITS_STRETCH, q: 1 },
    });
    assert.notDeepEqual(other.pixels, fromBytes.pixels, "the stretch is applied");
    await Deno.writeFile(`${dir}/bad.fits`, bytes.subarray(0, 2000));
    await assert.rejects(
      loadImage(`${dir}/bad.fits`, o),
      /bad\.fits: not a readable FITS image: FITS keyword END/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
