/**
 * Benchmark workload: ResNet-34 inference on seeded random images.
 *
 * - `--mode model`: the bare forward pass, `model.predict` on a float
 *   batch (inference mode: batch norm uses its moving statistics, no
 *   dropout), outputs read back.
 * - `--mode predict`: `predictBatch` of lib/inference.ts (what predict,
 *   evaluate and validation call) on uint8 pixels, with or without
 *   `--tta` (the average over the 8 rotations and flips).
 *
 * `--warmup` batches, then `--batches` timed ones of `--batch` images.
 * Reports `{images_per_sec, images, seconds, backend, ...}`.
 *
 * Usage: deno run ... bench/workloads/infer.ts [--mode model|predict] [--tta]
 *   [--backend wasm|cpu|tensorflow|webgpu] [--size 64] [--batch 32] [--warmup 1] [--batches 5]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, setupBackend } from "../../lib/backend.ts";
import { adapterLabel } from "../../lib/webgpu.ts";
import { printResult, randomPixels, workloadFlags } from "../../lib/bench/workload.ts";
import { choiceFlag, numberFlag } from "../../lib/cli.ts";
import { predictBatch } from "../../lib/inference.ts";
import { resnet34 } from "../../lib/model/resnet.ts";

const a = workloadFlags({
  mode: { type: "string" },
  tta: { type: "boolean" },
  backend: { type: "string" },
  "no-native-kernels": { type: "boolean" },
  size: { type: "string" },
  batch: { type: "string" },
  warmup: { type: "string" },
  batches: { type: "string" },
});
const mode = choiceFlag("mode", a.mode, ["model", "predict"], "model");
if (a.tta && mode !== "predict") throw new Error("--tta needs --mode predict");
const size = numberFlag("size", a.size, 64);
const batch = numberFlag("batch", a.batch, 32);
const warmup = numberFlag("warmup", a.warmup, 1);
const batches = numberFlag("batches", a.batches, 5);

const backend = await setupBackend({
  requested: a.backend as BackendName | undefined,
  nativeKernels: a["no-native-kernels"] ? false : undefined,
});
const model = resnet34({ inputSize: size, outputs: 5, seed: 0 });
const pixels = randomPixels(batch * size * size * 3, 7);
const ids = Array.from({ length: batch }, (_, i) => String(i));

// Outputs read back asynchronously: webgpu has no synchronous download under Deno.
let once: () => Promise<Float32Array>;
if (mode === "model") {
  const x = tf.tensor4d(Float32Array.from(pixels), [batch, size, size, 3]);
  once = async () => {
    const y = tf.tidy(() => model.predict(x, { batchSize: batch }) as tf.Tensor);
    try {
      return await y.data() as Float32Array;
    } finally {
      y.dispose();
    }
  };
} else {
  once = () => predictBatch(model, { n: batch, ids, pixels }, { tta: a.tta === true });
}

const check = (out: Float32Array) => {
  if (out.length !== batch * 5 || !out.every(Number.isFinite)) {
    throw new Error(`unexpected outputs: ${out.length} values`);
  }
};
for (let i = 0; i < warmup; i++) check(await once());
const t0 = performance.now();
for (let i = 0; i < batches; i++) check(await once());
const seconds = (performance.now() - t0) / 1000;

console.error(
  `infer: ${backend.name}, ${mode}${a.tta ? " with TTA" : ""}, ${size} px, batch ${batch}: ` +
    `${batches} batches in ${seconds.toFixed(2)} s`,
);
printResult({
  images_per_sec: batch * batches / seconds,
  images: batch * batches,
  seconds,
  backend: backend.name,
  backend_label: backend.label,
  kernels: backend.kernels ?? null,
  adapter: backend.adapter ? adapterLabel(backend.adapter) : null,
  adapter_software: backend.adapter?.software ?? null,
  wasm_multithread: backend.name === "wasm"
    ? await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")
    : null,
  mode,
  tta: a.tta === true,
  size,
  batch,
});
