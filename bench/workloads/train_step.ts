/**
 * Benchmark workload: ResNet-34 training steps, as `deno task train` takes
 * them, on seeded random images.
 *
 * Builds resnet34 (lib/model/resnet.ts, 5 softmax outputs), Adam
 * (lib/train/optimizers.ts) and the categorical focal loss
 * (lib/focal_loss.ts), then takes `--warmup` steps and times `--steps`
 * steps of `mirroredStep` (lib/train/mirrored.ts): gradients
 * (lib/train/step.ts computeGradients), the all-reduce when there are
 * several replicas, and the optimizer update. With one replica that is
 * computeGradients + optimizer.apply and nothing else.
 *
 * With `--replicas N` (N > 1) this process is only the launcher: it starts
 * N replica processes of this script through launchReplicas, each joins
 * the group with joinReplicas (the mirrored trainer's ring, through shared
 * memory where available, else over sockets) and computes `--batch / N` images of every
 * step's global batch; replica 0 prints the result.
 *
 * Reports `{images_per_sec, images, seconds, backend, params, ...}` where
 * images counts the global batch of every timed step.
 *
 * Usage: deno run ... bench/workloads/train_step.ts [--backend wasm|cpu|tensorflow|webgpu]
 *   [--size 64] [--batch 16] [--warmup 2] [--steps 5] [--replicas 1]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, setupBackend } from "../../lib/backend.ts";
import { adapterLabel } from "../../lib/webgpu.ts";
import {
  launchWorkloadReplicas,
  REPLICA_FLAG_OPTIONS,
  replicaOf,
} from "../../lib/bench/replicas.ts";
import {
  printResult,
  randomOneHot,
  randomPixels,
  workloadFlags,
} from "../../lib/bench/workload.ts";
import { numberFlag } from "../../lib/cli.ts";
import { categoricalFocalLoss } from "../../lib/focal_loss.ts";
import { countTrainableParams, resnet34 } from "../../lib/model/resnet.ts";
import { type Collective, singleProcess } from "../../lib/train/collective.ts";
import { joinReplicas, mirroredStep } from "../../lib/train/mirrored.ts";
import { adam } from "../../lib/train/optimizers.ts";
import { sharedMemoryAvailable } from "../../lib/train/shared_memory.ts";
import { trainableVariables } from "../../lib/train/step.ts";

const a = workloadFlags({
  backend: { type: "string" },
  "no-native-kernels": { type: "boolean" },
  size: { type: "string" },
  batch: { type: "string" },
  warmup: { type: "string" },
  steps: { type: "string" },
  replicas: { type: "string" },
  ...REPLICA_FLAG_OPTIONS,
});
const size = numberFlag("size", a.size, 64);
const globalBatch = numberFlag("batch", a.batch, 16);
const warmup = numberFlag("warmup", a.warmup, 2);
const steps = numberFlag("steps", a.steps, 5);
const replicas = numberFlag("replicas", a.replicas, 1);
const CLASSES = 5;

const replica = replicaOf(a);
if (replicas > 1 && replica === null) {
  await launchWorkloadReplicas(import.meta.url, replicas);
  Deno.exit(0);
}

const backend = await setupBackend({
  requested: a.backend as BackendName | undefined,
  nativeKernels: a["no-native-kernels"] ? false : undefined,
});
const collective: Collective = replica ? await joinReplicas(replica) : singleProcess();
const batch = globalBatch / collective.size;
if (!Number.isInteger(batch)) {
  throw new Error(`--batch ${globalBatch} does not split evenly over ${collective.size} replicas`);
}

const model = resnet34({ inputSize: size, outputs: CLASSES, seed: 0 });
const vars = trainableVariables(model);
const optimizer = adam(vars);
const loss = categoricalFocalLoss();
const ctx = { model, vars, optimizer, loss, collective };
const seed = 1000 + collective.rank;
const x = tf.tensor4d(
  Float32Array.from(randomPixels(batch * size * size * 3, seed)),
  [batch, size, size, 3],
);
const y = tf.tensor2d(randomOneHot(batch, CLASSES, seed), [batch, CLASSES]);

let step = 0;
const takeStep = async () => {
  const r = await mirroredStep(ctx, x, y, null, 1e-3, step++);
  if (!Number.isFinite(r.loss)) throw new Error(`step ${step}: loss is ${r.loss}`);
};
for (let i = 0; i < warmup; i++) await takeStep();
const tensorsBefore = tf.memory().numTensors;
const t0 = performance.now();
for (let i = 0; i < steps; i++) await takeStep();
// The last update must have finished before the clock stops.
await vars[0].data();
const seconds = (performance.now() - t0) / 1000;
const leaked = tf.memory().numTensors - tensorsBefore;
await collective.close();

if (collective.rank === 0) {
  console.error(
    `train_step: ${backend.name}, ${collective.size} replica(s), ${size} px, global batch ` +
      `${globalBatch}: ${steps} steps in ${seconds.toFixed(2)} s`,
  );
  printResult({
    images_per_sec: globalBatch * steps / seconds,
    images: globalBatch * steps,
    seconds,
    steps,
    backend: backend.name,
    backend_label: backend.label,
    kernels: backend.kernels ?? null,
    adapter: backend.adapter ? adapterLabel(backend.adapter) : null,
    adapter_software: backend.adapter?.software ?? null,
    wasm_multithread: backend.name === "wasm"
      ? await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")
      : null,
    replicas: collective.size,
    // What joinReplicas all-reduces through with this process's permissions.
    transport: collective.size === 1 ? null : sharedMemoryAvailable() ? "shared memory" : "sockets",
    size,
    global_batch: globalBatch,
    params: countTrainableParams(model),
    tensors_leaked_per_step: leaked / steps,
  });
}
