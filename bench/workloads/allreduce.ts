/**
 * Benchmark workload: the mirrored trainer's gradient all-reduce (mean) of
 * ResNet-34's gradients between replica processes, without the model.
 *
 * The launcher starts `--replicas` (2) processes of this script through
 * launchReplicas (lib/train/mirrored.ts). Each joins the ring
 * (lib/train/ring.ts connectRing), through shared memory under /dev/shm as
 * the trainer does (`--transport shm`) or over the socket ring alone
 * (`--transport socket`), fills `collective.scratch(n)` with its own
 * values, runs `--warmup` all-reduces, then times `--iterations` more;
 * replica 0 checks the result is the mean and prints it.
 *
 * Reports `{ms, gb_per_s, floats, bytes, iterations, transport}`, where
 * gb_per_s is the gradient's bytes (4 n) over the time of one all-reduce,
 * in 10^9 bytes per second.
 *
 * Usage: deno run ... bench/workloads/allreduce.ts [--floats 21287237]
 *   [--replicas 2] [--transport shm|socket] [--warmup 2] [--iterations 10]
 *
 * @module
 */
import { basename } from "node:path";
import {
  launchWorkloadReplicas,
  REPLICA_FLAG_OPTIONS,
  replicaOf,
} from "../../lib/bench/replicas.ts";
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { choiceFlag, numberFlag } from "../../lib/cli.ts";
import { connectRing } from "../../lib/train/ring.ts";
import { sharedMemoryAvailable } from "../../lib/train/shared_memory.ts";

/** Trainable scalars of resnet34 with 5 outputs (torchvision's count is the same). */
const RESNET34_PARAMS = 21_287_237;

const a = workloadFlags({
  floats: { type: "string" },
  replicas: { type: "string" },
  transport: { type: "string" },
  warmup: { type: "string" },
  iterations: { type: "string" },
  ...REPLICA_FLAG_OPTIONS,
});
const n = numberFlag("floats", a.floats, RESNET34_PARAMS);
const replicas = numberFlag("replicas", a.replicas, 2);
const transport = choiceFlag("transport", a.transport, ["shm", "socket"], "shm");
const warmup = numberFlag("warmup", a.warmup, 2);
const iterations = numberFlag("iterations", a.iterations, 10);

const replica = replicaOf(a);
if (replica === null) {
  if (replicas < 2) throw new Error("--replicas must be at least 2");
  if (transport === "shm" && !sharedMemoryAvailable()) {
    throw new Error("shared memory (/dev/shm + FFI) is not available here: use --transport socket");
  }
  await launchWorkloadReplicas(import.meta.url, replicas);
  Deno.exit(0);
}

const { rank, count: size, dir } = replica;
const collective = await connectRing({
  dir,
  rank,
  size,
  sharedMemoryPath: transport === "shm" ? `/dev/shm/galaxy-${basename(dir)}` : undefined,
});
const data = collective.scratch(n);
// Replica r holds r + 1 + i/n: the mean is (size + 1) / 2 + i/n.
const fill = () => {
  for (let i = 0; i < n; i++) data[i] = rank + 1 + i / n;
};
for (let i = 0; i < warmup; i++) {
  fill();
  await collective.allReduceMean(data);
}
let seconds = 0;
for (let i = 0; i < iterations; i++) {
  fill();
  // Line the replicas up, so one's fill is not timed as the other's wait.
  await collective.allGather(0);
  const t0 = performance.now();
  await collective.allReduceMean(data);
  seconds += (performance.now() - t0) / 1000;
}
const expect = (k: number) => (size + 1) / 2 + k / n;
for (const k of [0, n >> 1, n - 1]) {
  if (Math.abs(data[k] - expect(k)) > 1e-5 * expect(k)) {
    throw new Error(`all-reduce is wrong at ${k}: ${data[k]}, expected ${expect(k)}`);
  }
}
await collective.close();
if (rank === 0) {
  const ms = seconds * 1000 / iterations;
  console.error(`allreduce: ${transport}, ${size} replicas, ${n} floats: ${ms.toFixed(1)} ms`);
  printResult({
    ms,
    gb_per_s: n * 4 / (seconds / iterations) / 1e9,
    floats: n,
    bytes: n * 4,
    replicas: size,
    iterations,
    transport,
  });
}
