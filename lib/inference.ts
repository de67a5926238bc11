/**
 * Batched inference over a stream of image batches, with optional test-time
 * augmentation over the 8 rotations and flips of the square. Used by
 * train's validation, `predict` and `evaluate` alike.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { dihedralBatch, isMirror } from "./train/augment.ts";

/** A batch of square NHWC uint8 images and their ids. */
export interface ImageBatch {
  /** Number of images. */
  n: number;
  /** Image ids, one per image, in batch order. */
  ids: string[];
  /** `n * height * width * channels` bytes, NHWC, in the model's input size. */
  pixels: Uint8Array;
}

/** Options of {@linkcode predictBatch} and {@linkcode predictAll}. */
export interface PredictOptions {
  /** Average over the 8 dihedral transforms. Default false. */
  tta?: boolean;
  /** Class pairs a mirror swaps (handed classes); their outputs are swapped back on mirrored views. */
  flipPairs?: readonly (readonly [number, number])[];
}

/** Swaps the columns of `flipPairs` in an n x c matrix. */
function swapColumns(
  t: tf.Tensor2D,
  flipPairs: readonly (readonly [number, number])[],
): tf.Tensor2D {
  if (flipPairs.length === 0) return t;
  const c = t.shape[1];
  const order = Array.from({ length: c }, (_, i) => i);
  for (const [a, b] of flipPairs) [order[a], order[b]] = [b, a];
  return tf.gather(t, order, 1);
}

/**
 * Model outputs (n x outputs) for one batch of raw uint8 pixels, read back
 * asynchronously (a GPU backend, webgpu, has no synchronous download).
 */
export async function predictBatch(
  model: tf.LayersModel,
  batch: ImageBatch,
  options: PredictOptions = {},
): Promise<Float32Array> {
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  if (batch.pixels.length !== batch.n * h * w * c) {
    throw new Error(
      `images are not ${h}x${w}x${c} as the model expects (${batch.pixels.length} bytes for ${batch.n})`,
    );
  }
  const out = tf.tidy(() => {
    if (!options.tta) {
      const x = tf.tensor4d(batch.pixels, [batch.n, h, w, c], "int32");
      return model.predict(x) as tf.Tensor;
    }
    if (h !== w) throw new Error("test-time augmentation needs square images");
    let sum: tf.Tensor2D | null = null;
    for (let t = 0; t < 8; t++) {
      const x = tf.tensor4d(dihedralBatch(batch.pixels, batch.n, h, t, c), [batch.n, h, w, c]);
      let y = model.predict(x) as tf.Tensor2D;
      // A mirrored view of a clockwise spiral is predicted anticlockwise: swap back.
      if (isMirror(t)) y = swapColumns(y, options.flipPairs ?? []);
      sum = sum ? tf.add(sum, y) : y;
    }
    return tf.div(sum!, 8);
  });
  try {
    return await out.data() as Float32Array;
  } finally {
    out.dispose();
  }
}

/** Outputs for every batch of a stream, concatenated, with the ids in order. */
export async function predictAll(
  model: tf.LayersModel,
  batches: AsyncIterable<ImageBatch>,
  options: PredictOptions & { onBatch?: (done: number) => void } = {},
): Promise<{ ids: string[]; outputs: Float32Array }> {
  const ids: string[] = [];
  const parts: Float32Array[] = [];
  for await (const b of batches) {
    parts.push(await predictBatch(model, b, options));
    ids.push(...b.ids);
    options.onBatch?.(ids.length);
  }
  const outputs = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    outputs.set(p, off);
    off += p.length;
  }
  return { ids, outputs };
}
