/**
 * Benchmark workload: the training input pipeline without the model, as
 * the trainer runs it: shuffled batches of a preprocessed dataset
 * (lib/data/dataset.ts `openDataset(...).batches`) each augmented with
 * `augmentBatch` (lib/train/augment.ts: dihedral transform, shift,
 * brightness and contrast, to float32).
 *
 * `--epochs` passes over the split, each with its own shuffle; the first
 * `--warmup-batches` batches are not timed. Reports
 * `{images_per_sec, images, seconds}`.
 *
 * Usage: deno run ... bench/workloads/reader.ts --data DIR [--split train]
 *   [--batch 32] [--epochs 3] [--warmup-batches 5]
 *
 * @module
 */
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { numberFlag } from "../../lib/cli.ts";
import { openDataset, type Split } from "../../lib/data/dataset.ts";
import { augmentBatch, DEFAULT_AUGMENT } from "../../lib/train/augment.ts";

const a = workloadFlags({
  data: { type: "string" },
  split: { type: "string" },
  batch: { type: "string" },
  epochs: { type: "string" },
  "warmup-batches": { type: "string" },
});
if (!a.data) throw new Error("--data is required");
const split = (a.split ?? "train") as Split;
const batchSize = numberFlag("batch", a.batch, 32);
const epochs = numberFlag("epochs", a.epochs, 3);
const warmupBatches = numberFlag("warmup-batches", a["warmup-batches"], 5);

const ds = await openDataset(a.data);
const side = ds.manifest.image.height;
const flipPairs = ds.manifest.scheme.flipPairs;
let images = 0;
let seen = 0;
// Every part, shifts of 3 px included, as the NumPy peer (bench/peer_numpy_reader.py) does.
const ALL_PARTS = { ...DEFAULT_AUGMENT, maxShift: 3 };
let checksum = 0;
let t0 = performance.now();
for (let epoch = 0; epoch < epochs; epoch++) {
  let offset = 0;
  for await (const b of ds.batches(split, { batchSize, shuffle: true, seed: 0, epoch })) {
    const key = { seed: 0, epoch, offset };
    const out = augmentBatch(b.pixels, b.n, side, b.labels, flipPairs, key, ALL_PARTS);
    offset += b.n;
    // Use the output, so no engine could skip the work.
    checksum += out.pixels[out.pixels.length - 1];
    if (++seen === warmupBatches) t0 = performance.now();
    else if (seen > warmupBatches) images += b.n;
  }
}
const seconds = (performance.now() - t0) / 1000;
ds.close();
if (images === 0) throw new Error("no timed batches: lower --warmup-batches or raise --epochs");
console.error(`reader: ${images} images in ${seconds.toFixed(2)} s (checksum ${checksum})`);
printResult({ images_per_sec: images / seconds, images, seconds, batch: batchSize, epochs });
