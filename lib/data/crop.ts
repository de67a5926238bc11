/**
 * The geometry of the toolkit's centre crop, free of any decoder, so that
 * the browser pages (lib/web/) compute exactly the crop that
 * {@linkcode loadImage} in lib/data/image.ts cuts with sharp.
 *
 * @module
 */

/** Output geometry: side of the square crop as a fraction of the shorter side, and output side. */
export interface ImageOptions {
  /** Output height and width in pixels. */
  size: number;
  /** Fraction of the shorter side kept, centred, in (0, 1]. */
  crop: number;
}

/** How a `width` x `height` source is scaled and cut to give the output. */
export interface CropGeometry {
  /** The whole image is first resized to this. */
  resizeWidth: number;
  resizeHeight: number;
  /** Then this `size` x `size` window is extracted. */
  left: number;
  top: number;
}

/** The resize and extract that turn a `width` x `height` image into the centre crop. */
export function cropGeometry(width: number, height: number, o: ImageOptions): CropGeometry {
  const scale = o.size / (o.crop * Math.min(width, height));
  const resizeWidth = Math.max(o.size, Math.round(width * scale));
  const resizeHeight = Math.max(o.size, Math.round(height * scale));
  return {
    resizeWidth,
    resizeHeight,
    left: Math.floor((resizeWidth - o.size) / 2),
    top: Math.floor((resizeHeight - o.size) / 2),
  };
}

/**
 * The factor (1, 2, 4 or 8) by which sharp lets libjpeg decode a JPEG
 * resized from `width` x `height` to `resizeWidth` x `resizeHeight` with
 * `fastShrinkOnLoad` (sharp 0.35 pipeline.cc: the largest power of two not
 * above the common shrink, halved when it equals the shrink's integer part,
 * to dodge libjpeg's rounding).
 */
export function jpegShrinkOnLoad(
  width: number,
  height: number,
  resizeWidth: number,
  resizeHeight: number,
): number {
  const shrink = Math.min(width / resizeWidth, height / resizeHeight);
  let f = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (f > 1 && Math.trunc(shrink) === f) f /= 2;
  return f;
}
