/**
 * Mirrored (synchronous data-parallel) training, as TensorFlow's
 * MirroredStrategy does it, for TF.js, which has neither that strategy nor
 * device placement: one replica process per GPU (replica i sees only GPU i
 * through CUDA_VISIBLE_DEVICES; on CPU the replicas simply share the cores).
 *
 * - Every replica starts from replica 0's weights (broadcast, not merely the
 *   same seed) and the same optimizer state.
 * - Each step the global batch is split evenly; each replica computes the
 *   gradients of its slice; the gradients are all-reduced (mean); every
 *   replica applies the identical update, so trainable weights stay
 *   bit-identical (checked with a hash after every epoch).
 * - Batch-norm statistics stay per replica, as in MirroredStrategy: each
 *   replica normalises with its own slice's statistics and keeps its own
 *   moving averages; replica 0's are the ones saved.
 * - Replica 0 alone writes checkpoints, metrics and the model, and prints.
 * - A replica that crashes or is killed stops the whole run within seconds,
 *   naming the replica and its error; checkpoints are atomic, so the last
 *   one stays intact and `--resume` continues from it.
 *
 * Beyond one machine: training across machines is not provided. The saved
 * model is in TF.js Layers format, which the TensorFlow.js converter turns
 * into a Keras model for TensorFlow's MultiWorkerMirroredStrategy;
 * prediction across machines is sharded (`deno task predict --shard i/n`).
 *
 * @module
 */
import { keepLastLines } from "../io/lines.ts";
import * as tf from "@tensorflow/tfjs";
import { basename } from "node:path";
import { availableParallelism } from "node:os";
import type { LossFn } from "../focal_loss.ts";
import type { Collective } from "./collective.ts";
import type { Optimizer } from "./optimizers.ts";
import { connectRing } from "./ring.ts";
import { unlinkShared } from "./shared_memory.ts";
import { computeGradients } from "./step.ts";

/** What a mirrored step works on. */
export interface MirroredContext {
  /** This replica's copy of the model. */
  model: tf.LayersModel;
  /** Its trainable variables, in the order gradients and optimizer slots use. */
  vars: readonly tf.Variable[];
  /** Optimizer over `vars`; every replica applies the same averaged update. */
  optimizer: Optimizer;
  /** Loss of the step. */
  loss: LossFn;
  /** Replica group the gradients are averaged over. */
  collective: Collective;
}

/** The outcome of a step, the same on every replica. */
export interface StepResult {
  /** Mean loss over the global batch. */
  loss: number;
  /** Correct top-1 predictions over the global batch (class heads; 0 otherwise). */
  correct: number;
  /** Whether the update was applied (it is not when the loss is not finite). */
  applied: boolean;
}

/**
 * One mirrored training step on this replica's slice `x`, `y` of the global
 * batch: gradients, all-reduce (mean), identical update with rate `lr`. A
 * group of one is an ordinary single-process step.
 */
export async function mirroredStep(
  ctx: MirroredContext,
  x: tf.Tensor,
  y: tf.Tensor,
  labels: Int32Array | null,
  lr: number,
  step: number,
): Promise<StepResult> {
  const { collective } = ctx;
  const g = await computeGradients(ctx.model, ctx.vars, ctx.loss, x, y, step, {
    replica: collective.rank,
    argmax: labels !== null,
  });
  let correct = 0;
  if (g.predicted && labels) {
    for (let i = 0; i < labels.length; i++) if (g.predicted[i] === labels[i]) correct++;
  }
  let grads = g.grads;
  let loss = g.loss;
  if (collective.size > 1) {
    const total = grads.reduce((n, t) => n + t.size, 0);
    const flat = collective.scratch(total);
    let off = 0;
    for (const t of grads) {
      flat.set(await t.data() as Float32Array, off);
      off += t.size;
    }
    tf.dispose(grads);
    await collective.allReduceMean(flat);
    off = 0;
    grads = ctx.vars.map((v) => {
      const t = tf.tensor(flat.subarray(off, off + v.size), v.shape, "float32");
      off += v.size;
      return t;
    });
    const losses = await collective.allGather(loss);
    loss = losses.reduce((a, b) => a + b, 0) / losses.length;
    correct = (await collective.allGather(correct)).reduce((a, b) => a + b, 0);
  }
  // Every replica sees the same mean loss, so all skip a non-finite step together.
  const applied = Number.isFinite(loss);
  if (applied) ctx.optimizer.apply(grads, lr);
  tf.dispose(grads);
  return { loss, correct, applied };
}

/** Number of GPUs `nvidia-smi -L` lists, or 1 where there is none (or no driver). */
export async function defaultReplicas(): Promise<number> {
  try {
    const out = await new Deno.Command("nvidia-smi", {
      args: ["-L"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (!out.success) return 1;
    const gpus = new TextDecoder().decode(out.stdout).split("\n").filter((l) =>
      /^GPU \d+:/.test(l)
    );
    return Math.max(1, gpus.length);
  } catch {
    return 1;
  }
}

/**
 * OpenMP threads of each replica (native CPU kernels): the cores shared
 * out, so replicas do not oversubscribe them; nothing when the user set it.
 */
function openMpShare(replicas: number): Record<string, string> {
  if (Deno.env.get("OMP_NUM_THREADS") !== undefined) return {};
  return { OMP_NUM_THREADS: String(Math.max(1, Math.floor(availableParallelism() / replicas))) };
}

/** The hidden flags by which the launcher tells a replica who it is. */
export interface ReplicaFlags {
  rank: number;
  count: number;
  dir: string;
}

/** Joins the replica group described by the launcher's flags. */
export function joinReplicas(flags: ReplicaFlags): Promise<Collective> {
  return connectRing({
    dir: flags.dir,
    rank: flags.rank,
    size: flags.count,
    sharedMemoryPath: `/dev/shm/galaxy-${basename(flags.dir)}`,
  });
}

/** Options of {@linkcode launchReplicas}. */
export interface LaunchOptions {
  /** The script every replica runs (the train script itself). */
  script: string;
  /** Its arguments, without the replica flags. */
  args: string[];
  /** Number of replica processes to start. */
  replicas: number;
  /** Deno permission flags of the replicas. */
  permissions: readonly string[];
  /** Seconds between asking a replica to stop and killing it. Default 3. */
  graceSeconds?: number;
  /**
   * Stops every replica when aborted (SIGTERM, then SIGKILL after the grace);
   * the launch then rejects with the signal's reason. For callers with a
   * deadline, such as tests.
   */
  signal?: AbortSignal;
}

/**
 * Permissions of a replica process: those of `deno task train` (the ring
 * between replicas uses loopback TCP).
 */
export const REPLICA_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-run",
  "--allow-sys",
  "--allow-net=127.0.0.1",
];

/** Keeps the last lines written to a stream, forwarding the stream to stderr if asked. */
function drain(
  stream: ReadableStream<Uint8Array>,
  forward: boolean,
  tail: string[],
): Promise<void> {
  const forwarded = forward
    ? stream.pipeThrough(
      new TransformStream({
        transform(chunk, out) {
          Deno.stderr.writeSync(chunk);
          out.enqueue(chunk);
        },
      }),
    )
    : stream;
  return keepLastLines(forwarded, tail);
}

/**
 * Starts `replicas` processes of `script`, replica i with
 * `CUDA_VISIBLE_DEVICES=i`, forwards replica 0's output, and waits. When
 * any replica fails, the others are stopped and the error names the
 * replica that failed first and its last error line.
 */
export async function launchReplicas(o: LaunchOptions): Promise<void> {
  o.signal?.throwIfAborted();
  const dir = await Deno.makeTempDir({ prefix: "galaxy-mirrored-" });
  const shm = `/dev/shm/galaxy-${basename(dir)}`;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const children = Array.from({ length: o.replicas }, (_, rank) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        config,
        ...o.permissions,
        o.script,
        ...o.args,
        `--replica-rank=${rank}`,
        `--replica-count=${o.replicas}`,
        `--replica-dir=${dir}`,
      ],
      // NO_COLOR: plain error lines, which the launcher quotes when a replica fails.
      env: { CUDA_VISIBLE_DEVICES: String(rank), NO_COLOR: "1", ...openMpShare(o.replicas) },
      stdin: "null",
      stdout: rank === 0 ? "inherit" : "null",
      stderr: "piped",
    }).spawn();
    const tail: string[] = [];
    const drained = drain(child.stderr, rank === 0, tail);
    const status = child.status.then(async (s) => {
      await drained.catch(() => {});
      return { rank, status: s, tail };
    });
    return { child, status };
  });
  const stopAll = async () => {
    for (const c of children) {
      try {
        c.child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    const grace = new Promise((r) => setTimeout(r, (o.graceSeconds ?? 3) * 1000));
    await Promise.race([Promise.all(children.map((c) => c.status)), grace]);
    for (const c of children) {
      try {
        c.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  };
  const onSignal = () => void stopAll();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  o.signal?.addEventListener("abort", onSignal, { once: true });
  try {
    type Exit = { rank: number; status: Deno.CommandStatus; tail: string[] };
    const pending = new Map(children.map((c, i) => [i, c.status]));
    const failures: Exit[] = [];
    let stopping = false;
    while (pending.size > 0) {
      const done = await Promise.race(pending.values());
      pending.delete(done.rank);
      if (!done.status.success) {
        failures.push(done);
        if (!stopping) {
          stopping = true;
          await stopAll();
        }
      }
    }
    o.signal?.throwIfAborted();
    if (failures.length > 0) {
      // When one replica dies its neighbours fail too ("closed its connection"), and the
      // others get our SIGTERM; which exit is seen first is a race. Name the root cause.
      const errorOf = (f: Exit) => {
        // Deno prints "error: Uncaught ... Error: msg" for a crash and the scripts "error: msg".
        const line = f.tail.find((l) => l.startsWith("error: ")) ?? f.tail[f.tail.length - 1] ?? "";
        return line.replace(/^error: (Uncaught (\(in promise\) )?)?(\w*Error: )?/, "");
      };
      const consequence = (f: Exit) =>
        f.status.signal === "SIGTERM" ||
        /closed its connection|lost the connection to replica/.test(errorOf(f));
      const root = failures.find((f) => !consequence(f)) ?? failures[0];
      const how = root.status.signal
        ? `was killed by ${root.status.signal}`
        : `exited with status ${root.status.code}`;
      const last = errorOf(root);
      throw new Error(
        `replica ${root.rank} ${how}${last ? `: ${last}` : ""}; ` +
          "all replicas stopped (the last checkpoint is intact: continue with --resume)",
      );
    }
  } finally {
    o.signal?.removeEventListener("abort", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      unlinkShared(shm);
    } catch { /* never created, or no FFI */ }
  }
}
