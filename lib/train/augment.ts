/**
 * On-the-fly augmentation of uint8 image batches: the 8 rotations and flips
 * of the square (a galaxy has no preferred orientation), brightness/contrast
 * jitter, and small translations (off by default: the cutouts are centred).
 *
 * A mirror image of a clockwise spiral is an anticlockwise one, so where a
 * label scheme has handed classes, a flip swaps their labels: without that
 * the augmentation would teach wrong labels.
 *
 * Every draw is a pure function of (seed, epoch, position in the epoch), so
 * resumed and mirrored runs see the same augmented images.
 *
 * @module
 */
import { mixSeed, mulberry32 } from "../random.ts";

/** Augmentation settings; `false`/0 turns a part off. */
export interface AugmentOptions {
  /** Random rotation by a multiple of 90 degrees and random mirror. Default true. */
  dihedral?: boolean;
  /** Largest shift in pixels along each axis (edges replicated). Default 0. */
  maxShift?: number;
  /** Largest additive brightness change, as a fraction of 255. Default 0.05. */
  brightness?: number;
  /** Largest relative contrast change around the image mean. Default 0.1. */
  contrast?: number;
}

/**
 * The default augmentation of `deno task train`. No shifts: Galaxy Zoo
 * cutouts are centred on their galaxy, so a shifted galaxy is one the model
 * never meets; shifts of 3 px at 32 px cost 0.006 RMSE on votes over 5 seeds
 * (docs/quality.md).
 */
export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  dihedral: true,
  maxShift: 0,
  brightness: 0.05,
  contrast: 0.1,
};

/** Whether dihedral transform `t` (0..7) includes a mirror, i.e. reverses handedness. */
export function isMirror(t: number): boolean {
  return t >= 4;
}

/**
 * Source pixel of output pixel (y, x) under dihedral transform `t` of a
 * side-`n` square: t & 3 quarter turns counter-clockwise, after a
 * left-right mirror when t >= 4.
 */
export function dihedralSource(t: number, n: number, y: number, x: number): [number, number] {
  for (let k = 0; k < (t & 3); k++) [y, x] = [x, n - 1 - y];
  if (t >= 4) x = n - 1 - x;
  return [y, x];
}

/**
 * Writes image `i` of `src` (NHWC uint8 or float) to `dst` as float32 under
 * dihedral transform `t`, shifted by (dy, dx), with contrast `c` and
 * brightness `b` applied as `(v - mean) c + mean + b`.
 */
function transformImage(
  src: ArrayLike<number>,
  dst: Float32Array,
  i: number,
  side: number,
  channels: number,
  t: number,
  dy: number,
  dx: number,
  c: number,
  b: number,
): void {
  const size = side * side * channels;
  const base = i * size;
  let mean = 0;
  if (c !== 1) {
    for (let k = 0; k < size; k++) mean += src[base + k];
    mean /= size;
  }
  for (let y = 0; y < side; y++) {
    const sy = Math.min(side - 1, Math.max(0, y - dy));
    for (let x = 0; x < side; x++) {
      const sx = Math.min(side - 1, Math.max(0, x - dx));
      const [py, px] = dihedralSource(t, side, sy, sx);
      const from = base + (py * side + px) * channels;
      const to = base + (y * side + x) * channels;
      for (let ch = 0; ch < channels; ch++) {
        const v = (src[from + ch] - mean) * c + mean + b;
        dst[to + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
}

/**
 * Applies dihedral transform `t` to every image of a square NHWC batch,
 * without other changes (test-time augmentation uses this).
 */
export function dihedralBatch(
  pixels: ArrayLike<number>,
  n: number,
  side: number,
  t: number,
  channels = 3,
): Float32Array {
  const out = new Float32Array(n * side * side * channels);
  for (let i = 0; i < n; i++) transformImage(pixels, out, i, side, channels, t, 0, 0, 1, 0);
  return out;
}

/** Where a batch sits in its epoch, which keys every random draw. */
export interface AugmentKey {
  /** Run seed. */
  seed: number;
  /** Epoch number. */
  epoch: number;
  /** Position of the batch's first image in the epoch's order. */
  offset: number;
}

/** The augmented batch, with labels swapped where a mirror reversed handedness. */
export interface AugmentedBatch {
  /** Augmented images, NHWC float32 in 0-255 units. */
  pixels: Float32Array;
  /** Class indices after flip swaps; null when the batch had none. */
  labels: Int32Array | null;
  /** The dihedral transform each image received (for tests and diagnostics). */
  transforms: Uint8Array;
}

/**
 * Augments a square NHWC uint8 batch. `flipPairs` lists class pairs a
 * mirror swaps (e.g. clockwise and anticlockwise spirals).
 */
export function augmentBatch(
  pixels: Uint8Array,
  n: number,
  side: number,
  labels: Int32Array | null,
  flipPairs: readonly (readonly [number, number])[],
  key: AugmentKey,
  options: AugmentOptions = DEFAULT_AUGMENT,
  channels = 3,
): AugmentedBatch {
  const o = { ...DEFAULT_AUGMENT, ...options };
  if (pixels.length !== n * side * side * channels) {
    throw new Error(
      `augment: ${pixels.length} bytes is not ${n} images of ${side}x${side}x${channels}`,
    );
  }
  const swap = new Map<number, number>();
  for (const [a, b] of flipPairs) {
    swap.set(a, b);
    swap.set(b, a);
  }
  const out = new Float32Array(pixels.length);
  const outLabels = labels ? labels.slice() : null;
  const transforms = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const rand = mulberry32(mixSeed(key.seed, key.epoch, key.offset + i));
    const t = o.dihedral ? Math.floor(rand() * 8) : 0;
    const dy = Math.round((rand() * 2 - 1) * o.maxShift);
    const dx = Math.round((rand() * 2 - 1) * o.maxShift);
    const c = 1 + (rand() * 2 - 1) * o.contrast;
    const b = (rand() * 2 - 1) * o.brightness * 255;
    transformImage(pixels, out, i, side, channels, t, dy, dx, c, b);
    transforms[i] = t;
    if (outLabels && isMirror(t)) outLabels[i] = swap.get(outLabels[i]) ?? outLabels[i];
  }
  return { pixels: out, labels: outLabels, transforms };
}
