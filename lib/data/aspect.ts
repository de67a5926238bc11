/**
 * The aspect-ratio rule, one for preprocess, predict and the API. The
 * network sees a centre square of the shorter side, so a far-from-square
 * image loses most of itself: a 424x2 strip becomes a 2x2 patch blown up.
 *
 * - ratio (longer side / shorter side) above {@linkcode ASPECT_WARN} (1.5):
 *   used, with a warning naming the file;
 * - above {@linkcode ASPECT_LIMIT} (4): refused with the reason, never
 *   predicted or packed.
 *
 * @module
 */

/** Longer / shorter side above which an image is used with a warning. */
export const ASPECT_WARN = 1.5;
/** Longer / shorter side above which an image is refused. */
export const ASPECT_LIMIT = 4;

/** Longer side / shorter side (>= 1). */
export function aspectRatio(width: number, height: number): number {
  return Math.max(width, height) / Math.min(width, height);
}

function describe(width: number, height: number): string {
  const r = aspectRatio(width, height);
  return `${width}x${height} is ${r >= 10 ? Math.round(r) : r.toFixed(2)}:1`;
}

/** The warning for a `width` x `height` image, or null when it is near enough square. */
export function aspectWarning(width: number, height: number): string | null {
  const r = aspectRatio(width, height);
  if (!(r > ASPECT_WARN) || r > ASPECT_LIMIT) return null;
  return `far from square: ${describe(width, height)} (above ${ASPECT_WARN}:1), so the centre ` +
    "square the model sees leaves much of the image out";
}

/** The reason to refuse a `width` x `height` image, or null when its ratio is within the limit. */
export function aspectRefusal(width: number, height: number): string | null {
  if (!(aspectRatio(width, height) > ASPECT_LIMIT)) return null;
  return `refused: ${describe(width, height)}, above the limit ${ASPECT_LIMIT}:1 ` +
    "(the centre square would be a small part of it, not a galaxy cutout)";
}
