/**
 * `deno task doctor --smoke`: proves that the active backend computes what
 * the reference computes. A narrow ResNet-34 (width 0.25, 32 px, 5 classes)
 * runs one forward pass and one training step with focal loss on the active
 * backend and on the pure-JS cpu backend from the same weights and batch of
 * 8; the outputs, the loss, every gradient and the change of every weight
 * in one SGD (Nesterov) update must agree within {@linkcode SMOKE_TOLERANCE}. Then the model is
 * saved, reloaded and must predict the same values, and, where /dev/shm
 * works, two replicas take one mirrored step and must end bit-identical.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { categoricalFocalLoss } from "../focal_loss.ts";
import { loadModel, saveModel } from "../io/model_io.ts";
import { resnet34, type ResNetOptions } from "../model/resnet.ts";
import { mulberry32 } from "../random.ts";
import type { Collective } from "../train/collective.ts";
import { connectRing } from "../train/ring.ts";
import { mirroredStep } from "../train/mirrored.ts";
import { adam, sgdNesterov } from "../train/optimizers.ts";
import { sharedMemoryAvailable, unlinkShared } from "../train/shared_memory.ts";
import { computeGradients, trainableVariables } from "../train/step.ts";

/**
 * How close two backends must agree: every value of a tensor within
 * `atol + rtol * max|reference|` of the reference. Kernels that sum in
 * another order differ by ~1e-7 (outputs) to ~5e-5 (gradients, through batch
 * norm) relative, as measured for wasm against cpu on this batch of 8; a
 * wrong kernel is off by O(1). Batch norm over fewer images amplifies
 * rounding: at 4, the deepest stage normalises 4 values per channel and wasm
 * and cpu gradients differ by 5e-3, hence the batch of 8.
 */
export const SMOKE_TOLERANCE = {
  /** Outputs (probabilities) and loss. */
  outputs: { rtol: 1e-4, atol: 1e-6 },
  /** Gradients, and the change of the weights in one update. */
  gradients: { rtol: 1e-3, atol: 1e-6 },
  /** The same backend before and after save/reload. */
  reload: { rtol: 0, atol: 1e-6 },
} as const;

/** The network the smoke check trains. */
export const SMOKE_MODEL: ResNetOptions = {
  inputSize: 32,
  width: 0.25,
  outputs: 5,
  seed: 13,
  name: "smoke",
};

/** One check's outcome. */
export interface SmokeCheck {
  /**
   * Its name, as printed: `forward`, `loss`, `gradients`, `update`, `save/reload`, `mirrored`;
   * `reference` when the cpu backend itself fails to compute the reference.
   */
  name: string;
  /** Passed, failed, or could not run here (e.g. no /dev/shm). */
  status: "ok" | "FAIL" | "skip";
  /** What was compared and by how much it differed, or why it failed or was skipped. */
  detail: string;
}

/** Options of {@linkcode smokeTest}. */
export interface SmokeOptions {
  /** Images in the batch (even: the mirrored step halves it). Default 8. */
  batch?: number;
  /** Folder for the saved model; default a new temporary folder, removed afterwards. */
  workDir?: string;
  /** Run the mirrored step where /dev/shm works. Default true. */
  mirrored?: boolean;
  /** Called with each check as soon as it is known. */
  onCheck?: (check: SmokeCheck) => void;
}

/** What one backend computed for the batch. */
interface Computed {
  outputs: Float32Array;
  loss: number;
  grads: Float32Array[];
  /** New minus old value of each trainable weight after one SGD step. */
  deltas: Float32Array[];
  names: string[];
}

/** A deterministic batch: pixels in 0-255 and one-hot labels cycling over the classes. */
function smokeBatch(n: number): { x: Float32Array; y: Float32Array; shape: number[] } {
  const side = SMOKE_MODEL.inputSize as number;
  const classes = SMOKE_MODEL.outputs!;
  const rand = mulberry32(2026);
  const x = Float32Array.from({ length: n * side * side * 3 }, () => Math.floor(rand() * 256));
  const y = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) y[i * classes + (i % classes)] = 1;
  return { x, y, shape: [n, side, side, 3] };
}

/** Builds the smoke model on the active backend with the given weight values. */
function buildWith(weights: readonly Float32Array[]): tf.LayersModel {
  const model = resnet34(SMOKE_MODEL);
  const current = model.getWeights();
  model.setWeights(current.map((w, i) => tf.tensor(weights[i], w.shape, "float32")));
  return model;
}

const LR = 1e-3;
/**
 * Learning rate of the compared update: SGD, whose change of a weight is
 * proportional to its gradient. Adam's first step is lr * sign(gradient),
 * which two correct backends legitimately flip where a gradient is ~0.
 */
const SGD_LR = 0.1;

/** A copy of a tensor's values, read asynchronously (webgpu has no synchronous download). */
async function values(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data() as Float32Array).slice();
}

/** Forward pass, gradients and one SGD update on the active backend. */
async function compute(
  weights: readonly Float32Array[],
  batch: ReturnType<typeof smokeBatch>,
): Promise<Computed> {
  const model = buildWith(weights);
  const classes = SMOKE_MODEL.outputs!;
  const x = tf.tensor(batch.x, batch.shape, "float32");
  const y = tf.tensor(batch.y, [batch.shape[0], classes], "float32");
  try {
    const out = tf.tidy(() => model.predict(x) as tf.Tensor);
    const outputs = await values(out);
    out.dispose();
    const vars = trainableVariables(model);
    const g = await computeGradients(model, vars, categoricalFocalLoss({ gamma: 2 }), x, y, 0);
    const grads = await Promise.all(g.grads.map(values));
    const before = await Promise.all(vars.map(values));
    const optimizer = sgdNesterov(vars);
    optimizer.apply(g.grads, SGD_LR);
    tf.dispose(g.grads);
    const after = await Promise.all(vars.map(values));
    const deltas = after.map((a, i) => a.map((v, j) => v - before[i][j]));
    optimizer.dispose();
    const names = model.trainableWeights.map((w) => w.originalName);
    return { outputs, loss: g.loss, grads, deltas, names };
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
}

/** Largest |a - b| and whether every value is within `atol + rtol * max|b|`. */
export function compareArrays(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  tol: { rtol: number; atol: number },
): { ok: boolean; maxDiff: number; bound: number } {
  if (a.length !== b.length) return { ok: false, maxDiff: Infinity, bound: 0 };
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    // NaN on either side is a failure, never "within tolerance".
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  const bound = tol.atol + tol.rtol * maxRef;
  return { ok: maxDiff <= bound, maxDiff, bound };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(1) : String(x));

/** Compares per-variable arrays; the failure names the worst variable. */
function compareVariables(
  name: string,
  got: readonly Float32Array[],
  ref: readonly Float32Array[],
  names: readonly string[],
  against: string,
): SmokeCheck {
  let worst = { ratio: 0, i: 0, maxDiff: 0, bound: 0 };
  const failed: string[] = [];
  got.forEach((g, i) => {
    const c = compareArrays(g, ref[i], SMOKE_TOLERANCE.gradients);
    const ratio = c.bound > 0 ? c.maxDiff / c.bound : c.maxDiff;
    if (!c.ok) failed.push(names[i]);
    if (ratio >= worst.ratio) worst = { ratio, i, maxDiff: c.maxDiff, bound: c.bound };
  });
  const where = `${names[worst.i]} (max diff ${fmt(worst.maxDiff)}, bound ${fmt(worst.bound)})`;
  return failed.length === 0
    ? {
      name,
      status: "ok",
      detail:
        `${got.length} tensors within tolerance of ${against}; closest to the bound: ${where}`,
    }
    : {
      name,
      status: "FAIL",
      detail: `${failed.length} of ${got.length} tensors differ from ${against} beyond ` +
        `${SMOKE_TOLERANCE.gradients.rtol} relative: worst ${where}` +
        (failed.length > 1
          ? `; also ${failed.slice(0, 3).filter((n) => n !== names[worst.i]).join(", ")}`
          : ""),
    };
}

/** Save, reload and predict on the active backend: the same values as before saving. */
async function saveReload(
  weights: readonly Float32Array[],
  batch: ReturnType<typeof smokeBatch>,
  dir: string,
): Promise<SmokeCheck> {
  const model = buildWith(weights);
  const x = tf.tensor(batch.x, batch.shape, "float32");
  try {
    const predicted = async (m: tf.LayersModel) => {
      const y = tf.tidy(() => m.predict(x) as tf.Tensor);
      try {
        return await values(y);
      } finally {
        y.dispose();
      }
    };
    const before = await predicted(model);
    await saveModel(model, dir);
    const loaded = await loadModel(dir);
    const after = await predicted(loaded);
    loaded.dispose();
    const c = compareArrays(after, before, SMOKE_TOLERANCE.reload);
    return {
      name: "save/reload",
      status: c.ok ? "ok" : "FAIL",
      detail: c.ok
        ? `reloaded model predicts the same ${after.length} values (max diff ${fmt(c.maxDiff)})`
        : `reloaded model predicts differently: max diff ${fmt(c.maxDiff)} > ${fmt(c.bound)}`,
    };
  } finally {
    x.dispose();
    model.dispose();
  }
}

/**
 * Two replicas in this process, joined by the trainer's ring with shared
 * memory, take one mirrored step on the two halves of the batch; their
 * trainable weights must come out bit-identical.
 */
async function mirroredCheck(
  weights: readonly Float32Array[],
  batch: ReturnType<typeof smokeBatch>,
  dir: string,
): Promise<SmokeCheck> {
  const name = "mirrored";
  if (!sharedMemoryAvailable()) {
    return { name, status: "skip", detail: "/dev/shm cannot be mapped here" };
  }
  const shm = `/dev/shm/galaxy-smoke-${Deno.pid}-${Date.now()}`;
  const classes = SMOKE_MODEL.outputs!;
  const half = batch.shape[0] / 2;
  const per = batch.x.length / batch.shape[0];
  const models = [0, 1].map(() => buildWith(weights));
  const tensors: tf.Tensor[] = [];
  try {
    const joined = await Promise.allSettled(
      [0, 1].map((rank) =>
        connectRing({ dir, rank, size: 2, sharedMemoryPath: shm, connectTimeoutMs: 30_000 })
      ),
    );
    const failed = joined.find((j) => j.status === "rejected");
    if (failed) {
      // Close the replica that did connect: its socket and mapping would outlive the check.
      await Promise.all(
        joined.map((j) => (j.status === "fulfilled" ? j.value.close().catch(() => {}) : null)),
      );
      throw failed.reason;
    }
    const groups = joined.map((j) => (j as PromiseFulfilledResult<Collective>).value);
    try {
      const steps = groups.map((collective, rank) => {
        const vars = trainableVariables(models[rank]);
        const x = tf.tensor(
          batch.x.subarray(rank * half * per, (rank + 1) * half * per),
          [half, ...batch.shape.slice(1)],
          "float32",
        );
        const y = tf.tensor(
          batch.y.subarray(rank * half * classes, (rank + 1) * half * classes),
          [half, classes],
        );
        tensors.push(x, y);
        const optimizer = adam(vars);
        const ctx = {
          model: models[rank],
          vars,
          optimizer,
          loss: categoricalFocalLoss({ gamma: 2 }),
          collective,
        };
        return mirroredStep(ctx, x, y, null, LR, 0).finally(() => optimizer.dispose());
      });
      const results = await Promise.all(steps);
      const transport = groups[0].transport;
      const [w0, w1] = await Promise.all(
        models.map((m) => Promise.all(trainableVariables(m).map(values))),
      );
      const differing = w0.map((w, i) => (w.every((v, j) => Object.is(v, w1[i][j])) ? -1 : i))
        .filter((i) => i >= 0);
      if (!results.every((r) => r.applied)) {
        return {
          name,
          status: "FAIL",
          detail: `the update was not applied (loss ${results[0].loss})`,
        };
      }
      return differing.length === 0
        ? {
          name,
          status: "ok",
          detail:
            `2 replicas (${transport}), one step: all ${w0.length} weight tensors bit-identical`,
        }
        : {
          name,
          status: "FAIL",
          detail: `replica weights differ after one step (${transport}) in ${differing.length} ` +
            `tensors, first ${models[0].trainableWeights[differing[0]].originalName}`,
        };
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  } finally {
    tf.dispose(tensors);
    models.forEach((m) => m.dispose());
    try {
      unlinkShared(shm);
    } catch { /* never created */ }
  }
}

/**
 * Runs the smoke checks on the active backend against the pure-JS cpu
 * backend, and leaves the active backend as it found it. Returns every
 * check; none throws (a check that crashes fails with its error). Throws
 * only for a `batch` that is not an even number >= 2.
 */
export async function smokeTest(options: SmokeOptions = {}): Promise<SmokeCheck[]> {
  const target = tf.getBackend();
  const n = options.batch ?? 8;
  if (!(Number.isInteger(n) && n >= 2 && n % 2 === 0)) {
    throw new Error(`smoke batch must be an even number >= 2, got ${n}`);
  }
  const checks: SmokeCheck[] = [];
  const report = (c: SmokeCheck) => {
    checks.push(c);
    options.onCheck?.(c);
  };
  const attempt = async (name: string, f: () => Promise<SmokeCheck | SmokeCheck[]>) => {
    try {
      const r = await f();
      (Array.isArray(r) ? r : [r]).forEach(report);
    } catch (e) {
      report({ name, status: "FAIL", detail: (e as Error).message.split("\n")[0] });
    }
  };
  const ownDir = options.workDir === undefined;
  const dir = options.workDir ?? await Deno.makeTempDir({ prefix: "galaxy-smoke-" });
  const batch = smokeBatch(n);
  try {
    // The weights: built once on the active backend (seeded), then copied to each side.
    const init = resnet34(SMOKE_MODEL);
    const weights = await Promise.all(init.getWeights().map(values));
    init.dispose();
    let got: Computed | null = null;
    let ref: Computed | null = null;
    await attempt("forward", async () => {
      got = await compute(weights, batch);
      return [];
    });
    // On cpu the reference is the run itself: nothing to compute twice.
    const against = target === "cpu" ? "itself (cpu is the reference)" : "the cpu backend";
    if (got && target === "cpu") ref = got;
    else if (got) {
      await attempt("reference", async () => {
        await tf.setBackend("cpu");
        try {
          ref = await compute(weights, batch);
        } finally {
          await tf.setBackend(target);
        }
        return [];
      });
    }
    if (got && ref) {
      const g: Computed = got, r: Computed = ref;
      const out = compareArrays(g.outputs, r.outputs, SMOKE_TOLERANCE.outputs);
      report({
        name: "forward",
        status: out.ok ? "ok" : "FAIL",
        detail: `${n}x${SMOKE_MODEL.outputs} probabilities vs ${against}: max diff ` +
          `${fmt(out.maxDiff)} (bound ${fmt(out.bound)})`,
      });
      const loss = compareArrays([g.loss], [r.loss], SMOKE_TOLERANCE.outputs);
      report({
        name: "loss",
        status: loss.ok && Number.isFinite(g.loss) ? "ok" : "FAIL",
        detail: `focal loss ${g.loss.toPrecision(6)} vs ${r.loss.toPrecision(6)} on ${against}`,
      });
      report(compareVariables("gradients", g.grads, r.grads, g.names, against));
      report(compareVariables("update", g.deltas, r.deltas, g.names, against));
    }
    await attempt("save/reload", () => saveReload(weights, batch, join(dir, "model")));
    if (options.mirrored ?? true) {
      await attempt("mirrored", async () => {
        const ringDir = join(dir, "ring");
        await Deno.mkdir(ringDir, { recursive: true });
        return await mirroredCheck(weights, batch, ringDir);
      });
    }
  } finally {
    if (tf.getBackend() !== target) await tf.setBackend(target);
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return checks;
}

/** One line per check: `ok   forward: ...`, `FAIL gradients: ...`, `skip mirrored: ...`. */
export function formatCheck(c: SmokeCheck): string {
  return `${c.status.padEnd(4)} ${c.name}: ${c.detail}`;
}
