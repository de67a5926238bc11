/**
 * The toolkit's centre crop and resize in plain TypeScript, for pages that
 * classify images in the browser (where sharp cannot run): the browser
 * decodes the file, this module cuts and scales the pixels the way
 * {@linkcode loadImage} (lib/data/image.ts) has sharp do it.
 *
 * Stages, as sharp 0.35 and libvips 8.18 run them for
 * `resize(w, h, { fit: "fill", fastShrinkOnLoad: true })`:
 * 1. JPEG shrink-on-load: libjpeg decodes at 1/2, 1/4 or 1/8 scale in the
 *    DCT domain. A browser cannot, so a box average of the same blocks
 *    stands in for it (the largest difference from sharp: about 1 grey
 *    level on galaxy images).
 * 2. Alpha is composited over black (the sky).
 * 3. Per axis, vertical first: an integer box shrink that leaves at least
 *    a factor of 2 to the kernel (libvips `vips_resize`, gap 2), then a
 *    Lanczos-3 reduction with libvips' centre convention
 *    (`x_in = (x_out + 0.5) s - 0.5`), 64 sub-pixel positions, 12-bit
 *    weights and edge pixels repeated, each stage rounded to 8 bits. Where
 *    no JPEG shrink is involved this is within 0.04 grey levels of sharp on
 *    average (at most 2 levels). Enlarging (an image smaller than
 *    `size / crop`) uses the same kernel, which libvips does not: about 2
 *    grey levels off on average there.
 * 5. The centre `size` x `size` window of the resized image is cut out.
 *
 * @module
 */
import { cropGeometry, type ImageOptions, jpegShrinkOnLoad } from "../data/crop.ts";

/** Decoded pixels as a browser canvas gives them. */
export interface DecodedImage {
  /** `width * height * channels` bytes, row-major. */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA, not premultiplied). */
  channels: 3 | 4;
}

/** RGB over black: an RGBA image's colour scaled by its alpha, as floats. */
function flattenRgb(img: DecodedImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  const c = img.channels;
  for (let i = 0; i < n; i++) {
    const a = c === 4 ? img.data[i * 4 + 3] / 255 : 1;
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round(img.data[i * c + k] * a);
  }
  return out;
}

/** Average of `f` x `f` blocks (partial blocks at the edges averaged over what they hold). */
function boxShrink(
  src: Float32Array,
  w: number,
  h: number,
  fx: number,
  fy: number,
  ceil: boolean,
): { px: Float32Array; w: number; h: number } {
  const ow = ceil ? Math.ceil(w / fx) : Math.max(1, Math.floor(w / fx));
  const oh = ceil ? Math.ceil(h / fy) : Math.max(1, Math.floor(h / fy));
  const out = new Float32Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    const y1 = Math.min(h, (y + 1) * fy);
    for (let x = 0; x < ow; x++) {
      const x1 = Math.min(w, (x + 1) * fx);
      let r = 0, g = 0, b = 0, n = 0;
      for (let sy = y * fy; sy < y1; sy++) {
        for (let sx = x * fx; sx < x1; sx++) {
          const i = (sy * w + sx) * 3;
          r += src[i];
          g += src[i + 1];
          b += src[i + 2];
          n++;
        }
      }
      const o = (y * ow + x) * 3;
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(b / n);
    }
  }
  return { px: out, w: ow, h: oh };
}

/** Average of `f` samples along one axis, rounded (libvips `shrinkh`/`shrinkv`); `floor` output size. */
function boxShrinkAxis(
  src: Float32Array,
  w: number,
  h: number,
  f: number,
  vertical: boolean,
): { px: Float32Array; w: number; h: number } {
  const ow = vertical ? w : Math.max(1, Math.floor(w / f));
  const oh = vertical ? Math.max(1, Math.floor(h / f)) : h;
  const out = new Float32Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < f; k++) {
          const sy = vertical ? Math.min(h - 1, y * f + k) : y;
          const sx = vertical ? x : Math.min(w - 1, x * f + k);
          sum += src[(sy * w + sx) * 3 + c];
        }
        out[(y * ow + x) * 3 + c] = Math.floor((sum + f / 2) / f);
      }
    }
  }
  return { px: out, w: ow, h: oh };
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** Taps and weights of a Lanczos-3 resampling of `n` samples to `m`. */
function kernelRows(n: number, m: number): { first: number[]; weights: Float64Array[] } {
  const s = n / m;
  const stretch = Math.max(1, s);
  const points = 2 * Math.round(3 * stretch) + 1;
  const first: number[] = [];
  const weights: Float64Array[] = [];
  for (let o = 0; o < m; o++) {
    const centre = (o + 0.5) * s - 0.5;
    let base = Math.floor(centre);
    // libvips keeps 64 sub-pixel positions and 12-bit weights.
    let frac = Math.round((centre - base) * 64) / 64;
    if (frac >= 1) {
      frac -= 1;
      base += 1;
    }
    const start = base - (points - 1) / 2;
    const w = new Float64Array(points);
    let sum = 0;
    for (let k = 0; k < points; k++) {
      w[k] = lanczos3((k - (points - 1) / 2 - frac) / stretch);
      sum += w[k];
    }
    for (let k = 0; k < points; k++) w[k] = Math.round((w[k] / sum) * 4096) / 4096;
    first.push(start);
    weights.push(w);
  }
  return { first, weights };
}

/** Lanczos-3 resize along one axis, rounded and clamped to 0-255. */
function resampleAxis(
  src: Float32Array,
  w: number,
  h: number,
  ow: number,
  oh: number,
  vertical: boolean,
): Float32Array {
  const out = new Float32Array(ow * oh * 3);
  const { first, weights } = vertical ? kernelRows(h, oh) : kernelRows(w, ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = vertical ? y : x;
      const wt = weights[o];
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < wt.length; k++) {
        const t = first[o] + k;
        const sx = vertical ? x : Math.min(w - 1, Math.max(0, t));
        const sy = vertical ? Math.min(h - 1, Math.max(0, t)) : y;
        const i = (sy * w + sx) * 3;
        r += wt[k] * src[i];
        g += wt[k] * src[i + 1];
        b += wt[k] * src[i + 2];
      }
      const q = (y * ow + x) * 3;
      out[q] = Math.min(255, Math.max(0, Math.round(r)));
      out[q + 1] = Math.min(255, Math.max(0, Math.round(g)));
      out[q + 2] = Math.min(255, Math.max(0, Math.round(b)));
    }
  }
  return out;
}

/**
 * The network input of a decoded image: the centre crop of `o.crop` times
 * the shorter side, at `o.size` x `o.size`, RGB uint8 (H x W x 3).
 * `isJpeg` selects sharp's JPEG shrink-on-load stage.
 */
export function cropResize(img: DecodedImage, o: ImageOptions, isJpeg: boolean): Uint8Array {
  const g = cropGeometry(img.width, img.height, o);
  let px = flattenRgb(img);
  let w = img.width, h = img.height;
  const f = isJpeg ? jpegShrinkOnLoad(w, h, g.resizeWidth, g.resizeHeight) : 1;
  if (f > 1) ({ px, w, h } = boxShrink(px, w, h, f, f, true));
  if (w !== g.resizeWidth || h !== g.resizeHeight) {
    const ix = Math.max(1, Math.floor(w / g.resizeWidth / 2));
    const iy = Math.max(1, Math.floor(h / g.resizeHeight / 2));
    // Each axis is box-shrunk, then reduced, vertical first (libvips reducev, reduceh).
    if (iy > 1) ({ px, w, h } = boxShrinkAxis(px, w, h, iy, true));
    if (h !== g.resizeHeight) px = resampleAxis(px, w, h, w, g.resizeHeight, true);
    h = g.resizeHeight;
    if (ix > 1) ({ px, w, h } = boxShrinkAxis(px, w, h, ix, false));
    if (w !== g.resizeWidth) px = resampleAxis(px, w, h, g.resizeWidth, h, false);
    w = g.resizeWidth;
  }
  const out = new Uint8Array(o.size * o.size * 3);
  for (let y = 0; y < o.size; y++) {
    const row = ((g.top + y) * w + g.left) * 3;
    for (let k = 0; k < o.size * 3; k++) out[y * o.size * 3 + k] = px[row + k];
  }
  return out;
}

/**
 * Whether the crop of a `width` x `height` image needs no resampling (the
 * centre window is cut as it is), where the page's pixels are sharp's
 * exactly; elsewhere they are close but not identical.
 */
export function isExactCrop(width: number, height: number, o: ImageOptions): boolean {
  const g = cropGeometry(width, height, o);
  return g.resizeWidth === width && g.resizeHeight === height;
}

/** Whether `bytes` start like a JPEG file. */
export function isJpegBytes(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0xff && bytes[1] === 0xd8;
}
