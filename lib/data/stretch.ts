/**
 * Turning a FITS image (physical values, any range) into 8-bit RGB: the
 * asinh stretch of Lupton et al. (2004, PASP 116, 133, "Preparing
 * Red-Green-Blue Images from CCD Data"), which SDSS and Legacy Survey colour
 * images use, with percentile clipping.
 *
 * 1. Black and white points: the `low` and `high` percentiles of every
 *    defined value of every band pooled (one pair for all bands, so that
 *    colours keep their ratios). Each value becomes `x = (v - black) /
 *    (white - black)`; undefined values (NaN, BLANK) become 0, black.
 * 2. Intensity `I = mean of the bands' x` per pixel; the stretch is
 *    `F(I) = asinh(Q I) / asinh(Q)` (so I = 1, the white point, maps to 1;
 *    large Q is nearly logarithmic, small Q nearly linear).
 * 3. Each band is scaled by the same factor `F(I) / I` (Lupton's
 *    colour-preserving stretch), negatives clipped to 0; a pixel whose
 *    largest band exceeds 1 is divided by it (Lupton's saturation rule,
 *    which keeps the hue of bright cores), then `round(255 x)`.
 *
 * Bands: a 2-D image is one band, repeated to R, G and B. A cube of 3
 * planes is taken as bands in increasing wavelength (g, r, i or g, r, z, as
 * surveys stack them): plane 1 -> blue, plane 2 -> green, plane 3 -> red,
 * the mapping of the SDSS and Legacy Survey colour images. Rows are flipped
 * so that FITS row 1 (the bottom of the sky image) is the last row, as
 * ds9 and astropy (`origin="lower"`) display it.
 *
 * @module
 */
import type { FitsImage } from "../io/fits.ts";

/** How FITS values become 8-bit RGB; recorded in the dataset manifest and the run's config.json. */
export interface FitsStretch {
  /** The stretch function: Lupton et al. (2004) asinh. */
  kind: "asinh";
  /** Softening Q of `asinh(Q I) / asinh(Q)`; > 0. */
  q: number;
  /** Percentile (0-100) of the defined values that becomes black. */
  low: number;
  /** Percentile (0-100) that becomes white; above `low`. */
  high: number;
  /** Cube planes 1, 2, 3 map to blue, green, red (bands in increasing wavelength). */
  bands: "blue-green-red";
}

/** The default stretch: Q = 10, black at the 0.5th percentile, white at the 99.5th. */
export const DEFAULT_FITS_STRETCH: FitsStretch = Object.freeze({
  kind: "asinh",
  q: 10,
  low: 0.5,
  high: 99.5,
  bands: "blue-green-red",
}) as FitsStretch;

/** Checks a stretch read from a file or flags; throws saying which field is wrong. */
export function checkFitsStretch(s: unknown, where: string): FitsStretch {
  const o = s as Partial<FitsStretch> | null;
  const bad = (what: string) => new Error(`${where}: FITS stretch ${what}`);
  if (!o || typeof o !== "object") throw bad("is not an object");
  if (o.kind !== "asinh") throw bad(`kind must be "asinh", got ${JSON.stringify(o.kind)}`);
  if (!(typeof o.q === "number" && o.q > 0 && Number.isFinite(o.q))) {
    throw bad(`q must be a positive number, got ${o.q}`);
  }
  if (
    !(typeof o.low === "number" && typeof o.high === "number" && 0 <= o.low && o.low < o.high &&
      o.high <= 100)
  ) {
    throw bad(`percentiles must satisfy 0 <= low < high <= 100, got ${o.low} and ${o.high}`);
  }
  if (o.bands !== "blue-green-red") {
    throw bad(`bands must be "blue-green-red", got ${JSON.stringify(o.bands)}`);
  }
  return { kind: o.kind, q: o.q, low: o.low, high: o.high, bands: o.bands };
}

/** Parses `--fits-stretch Q,LOW,HIGH` (e.g. `10,0.5,99.5`). */
export function parseFitsStretch(text: string): FitsStretch {
  const parts = text.split(",").map((x) => Number(x.trim()));
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x))) {
    throw new Error(`--fits-stretch must be Q,LOW,HIGH (e.g. 10,0.5,99.5), got '${text}'`);
  }
  const [q, low, high] = parts;
  return checkFitsStretch(
    { kind: "asinh", q, low, high, bands: "blue-green-red" },
    "--fits-stretch",
  );
}

/** The `p`-th percentile (0-100) of sorted values, by linear interpolation between ranks. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const r = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(r);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (r - lo);
}

/**
 * The 8-bit RGB (`height * width * 3`, row-major, top row first) of a 2-D
 * image or 3-plane cube under stretch `s`. Throws for another number of
 * planes, naming NAXIS3. An image with no defined value, or one value
 * only, comes out black.
 */
export function stretchToRgb(img: FitsImage, s: FitsStretch, file: string): Uint8Array {
  if (img.planes !== 1 && img.planes !== 3) {
    throw new Error(
      `${file}: FITS keyword NAXIS3: a cube must have 3 planes (bands mapped to blue, green, red), ` +
        `got ${img.planes}`,
    );
  }
  const n = img.width * img.height;
  const defined = img.data.filter((v) => Number.isFinite(v)).sort();
  const black = percentile(defined, s.low);
  const white = percentile(defined, s.high);
  const span = white - black;
  const out = new Uint8Array(n * 3);
  if (!(span > 0)) return out;
  const norm = Math.asinh(s.q);
  // Planes 1, 2, 3 are blue, green, red: band b of output channel c.
  const bandOf = img.planes === 1 ? [0, 0, 0] : [2, 1, 0];
  const x = [0, 0, 0];
  for (let y = 0; y < img.height; y++) {
    const row = img.height - 1 - y; // flip: FITS row 1 is the bottom
    for (let col = 0; col < img.width; col++) {
      const p = row * img.width + col;
      let sum = 0;
      for (let c = 0; c < 3; c++) {
        const v = img.data[bandOf[c] * n + p];
        x[c] = Number.isFinite(v) ? (v - black) / span : 0;
        sum += x[c];
      }
      const i = sum / 3;
      const at = (y * img.width + col) * 3;
      if (!(i > 0)) continue; // black
      const k = Math.asinh(s.q * i) / norm / i;
      const r = Math.max(0, x[0] * k), g = Math.max(0, x[1] * k), b = Math.max(0, x[2] * k);
      const top = Math.max(1, r, g, b);
      out[at] = Math.round((255 * r) / top);
      out[at + 1] = Math.round((255 * g) / top);
      out[at + 2] = Math.round((255 * b) / top);
    }
  }
  return out;
}
