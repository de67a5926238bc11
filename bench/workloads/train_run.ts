/**
 * Benchmark workload: a whole training run as `deno task train` does it
 * (lib/train/trainer.ts train(): data reading, augmentation, steps,
 * validation each epoch, checkpoints, the final test evaluation), in one
 * process, into a temporary run folder that is removed afterwards.
 *
 * Settings are the toolkit's training defaults except those given, and
 * patience 0 (every epoch runs, as in bench/torch_train_reference.py).
 *
 * Reports `{seconds, images_per_sec, epochs, accuracy, backend, kernels}`:
 * seconds is the wall clock of train() from start to its report.
 *
 * Usage: deno run ... bench/workloads/train_run.ts --data DATASET [--epochs 8]
 *   [--batch 32] [--no-native-kernels]
 *
 * @module
 */
import { setupBackend } from "../../lib/backend.ts";
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { numberFlag } from "../../lib/cli.ts";
import { train, TRAIN_DEFAULTS } from "../../lib/train/trainer.ts";

const a = workloadFlags({
  data: { type: "string" },
  epochs: { type: "string" },
  batch: { type: "string" },
  "no-native-kernels": { type: "boolean" },
});
if (!a.data) throw new Error("--data is required");
const epochs = numberFlag("epochs", a.epochs, 8);
const batch = numberFlag("batch", a.batch, 32);

const backend = await setupBackend({ nativeKernels: a["no-native-kernels"] ? false : undefined });
const out = await Deno.makeTempDir({ prefix: "galaxy-bench-train-" });
let trainImages = 0;
try {
  const t0 = performance.now();
  const report = await train({
    ...TRAIN_DEFAULTS,
    data: a.data,
    out,
    epochs,
    batch,
    patience: 0,
  }, (e) => {
    if (e.type === "start") trainImages = e.trainSize;
  });
  const seconds = (performance.now() - t0) / 1000;
  console.error(`train_run: ${epochs} epochs of ${trainImages} images in ${seconds.toFixed(1)} s`);
  printResult({
    seconds,
    images_per_sec: trainImages * epochs / seconds,
    epochs,
    batch,
    train_images: trainImages,
    accuracy: report?.metrics?.accuracy ?? null,
    backend: backend.name,
    kernels: backend.kernels ?? null,
  });
} finally {
  await Deno.remove(out, { recursive: true });
}
