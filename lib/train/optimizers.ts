/**
 * Optimizers that update a fixed, ordered list of variables from gradients
 * handed to them, so that a mirrored step can all-reduce the gradients in
 * between, and whose state is plain arrays that a checkpoint stores by
 * position (TF.js' optimizers key state by variable name, which changes
 * between processes that build more than one model).
 *
 * On the wasm and cpu backends each variable is updated in one pass over
 * its storage (lib/train/tensor_storage.ts): the slots in place, the
 * weights into fresh storage; on wasm that pass is a SIMD loop in float32
 * (lib/kernels/optimizer_simd.ts), on cpu a JavaScript loop. Elsewhere
 * (native TensorFlow) the same formulas run as TF.js ops. All keep float32 storage; the JavaScript pass
 * computes in float64 and rounds once per stored value, the SIMD pass and
 * the ops round every operation to float32, so they agree to float32
 * rounding, and a run resumes bit-exactly on the same kind of backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { tensorStorage } from "./tensor_storage.ts";

/** An optimizer over an ordered list of variables. */
export interface Optimizer {
  /** Which update rule: Adam or SGD with Nesterov momentum. */
  readonly kind: "adam" | "sgd";
  /** Number of updates applied so far. */
  step: number;
  /** Applies one update with learning rate `lr`; `grads[i]` belongs to `vars[i]`. */
  apply(grads: readonly tf.Tensor[], lr: number): void;
  /** The state (slot variables) as arrays, in a fixed order. */
  getState(): Float32Array[];
  /** The slot variables themselves, in {@linkcode Optimizer.getState}'s order (not to be modified). */
  stateTensors(): readonly tf.Variable[];
  /** Restores state saved by {@linkcode Optimizer.getState}. */
  setState(state: readonly Float32Array[], step: number): void;
  /** Frees the slot variables. */
  dispose(): void;
}

function slots(vars: readonly tf.Variable[], count: number): tf.Variable[][] {
  return Array.from(
    { length: count },
    // tidy: a variable shares its initial tensor's data, which would otherwise leak.
    () => vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false))),
  );
}

function checkGrads(vars: readonly tf.Variable[], grads: readonly tf.Tensor[]): void {
  if (grads.length !== vars.length) {
    throw new Error(`optimizer: ${grads.length} gradients for ${vars.length} variables`);
  }
}

class SlotState {
  constructor(readonly slots: tf.Variable[][]) {}
  get(): Float32Array[] {
    return this.slots.flat().map((s) => s.dataSync() as Float32Array).map((a) => a.slice());
  }
  set(state: readonly Float32Array[]): void {
    const flat = this.slots.flat();
    if (state.length !== flat.length) {
      throw new Error(`optimizer state has ${state.length} arrays, expected ${flat.length}`);
    }
    flat.forEach((s, i) => {
      if (state[i].length !== s.size) {
        throw new Error(
          `optimizer state array ${i} has ${state[i].length} values, expected ${s.size}`,
        );
      }
      tf.tidy(() => s.assign(tf.tensor(state[i], s.shape)));
    });
  }
  dispose(): void {
    this.slots.flat().forEach((s) => s.dispose());
  }
}

/**
 * Adam (Kingma & Ba 2015) with bias correction, as PyTorch and Keras
 * implement it. `fused: false` runs the update as TF.js ops on every backend.
 */
export function adam(
  vars: readonly tf.Variable[],
  options: { beta1?: number; beta2?: number; epsilon?: number; fused?: boolean } = {},
): Optimizer {
  const { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, fused = true } = options;
  const [m, v] = slots(vars, 2);
  const state = new SlotState([m, v]);
  return {
    kind: "adam",
    step: 0,
    apply(grads, lr) {
      checkGrads(vars, grads);
      this.step++;
      const c1 = 1 - beta1 ** this.step;
      const c2 = 1 - beta2 ** this.step;
      const storage = fused ? tensorStorage() : null;
      if (storage) {
        vars.forEach((w, i) => {
          storage.exclusive(m[i]);
          storage.exclusive(v[i]);
          const fresh = storage.allocate(w.shape);
          // Views after the last allocation (the wasm heap may have grown).
          const W = storage.view(w);
          const G = storage.view(grads[i]);
          const M = storage.view(m[i]);
          const V = storage.view(v[i]);
          const out = storage.view(fresh.info);
          // One division and one square root per weight: the bias corrections fold into constants.
          const [a1, a2, s1, s2] = [1 - beta1, 1 - beta2, lr / c1, 1 / c2];
          if (storage.kernels) {
            storage.kernels.adam(W, G, M, V, out, { beta1, beta2, s1, s2, epsilon });
          } else {
            for (let k = 0; k < W.length; k++) {
              const g = G[k];
              M[k] = beta1 * M[k] + a1 * g;
              V[k] = beta2 * V[k] + a2 * g * g;
              out[k] = W[k] - s1 * M[k] / (Math.sqrt(V[k] * s2) + epsilon);
            }
          }
          storage.commit(w, fresh);
        });
        return;
      }
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const g = grads[i];
          const mi = tf.add(tf.mul(m[i], beta1), tf.mul(g, 1 - beta1));
          const vi = tf.add(tf.mul(v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
          m[i].assign(mi);
          v[i].assign(vi);
          const update = tf.div(tf.div(mi, c1), tf.add(tf.sqrt(tf.div(vi, c2)), epsilon));
          w.assign(tf.sub(w, tf.mul(update, lr)));
        });
      });
    },
    getState: () => state.get(),
    stateTensors: () => state.slots.flat(),
    setState(s, step) {
      state.set(s);
      this.step = step;
    },
    dispose: () => state.dispose(),
  };
}

/**
 * SGD with Nesterov momentum, in PyTorch's form: `b = mu b + g; w -= lr (g + mu b)`.
 * `fused: false` runs the update as TF.js ops on every backend.
 */
export function sgdNesterov(
  vars: readonly tf.Variable[],
  options: { momentum?: number; fused?: boolean } = {},
): Optimizer {
  const { momentum = 0.9, fused = true } = options;
  const [b] = slots(vars, 1);
  const state = new SlotState([b]);
  return {
    kind: "sgd",
    step: 0,
    apply(grads, lr) {
      checkGrads(vars, grads);
      this.step++;
      const storage = fused ? tensorStorage() : null;
      if (storage) {
        vars.forEach((w, i) => {
          storage.exclusive(b[i]);
          const fresh = storage.allocate(w.shape);
          const W = storage.view(w);
          const G = storage.view(grads[i]);
          const B = storage.view(b[i]);
          const out = storage.view(fresh.info);
          if (storage.kernels) {
            storage.kernels.sgdNesterov(W, G, B, out, momentum, lr);
          } else {
            for (let k = 0; k < W.length; k++) {
              const g = G[k];
              B[k] = momentum * B[k] + g;
              out[k] = W[k] - lr * (g + momentum * B[k]);
            }
          }
          storage.commit(w, fresh);
        });
        return;
      }
      tf.tidy(() => {
        vars.forEach((w, i) => {
          const bi = tf.add(tf.mul(b[i], momentum), grads[i]);
          b[i].assign(bi);
          w.assign(tf.sub(w, tf.mul(tf.add(grads[i], tf.mul(bi, momentum)), lr)));
        });
      });
    },
    getState: () => state.get(),
    stateTensors: () => state.slots.flat(),
    setState(s, step) {
      state.set(s);
      this.step = step;
    },
    dispose: () => state.dispose(),
  };
}

/**
 * Learning rate at `step` (0-based) of `total`: linear warm-up from
 * `base / warmup` to `base` over `warmup` steps, then cosine decay to 0.
 */
export function warmupCosine(step: number, total: number, base: number, warmup: number): number {
  if (step < warmup) return base * (step + 1) / warmup;
  const span = Math.max(1, total - warmup);
  const t = Math.min(1, (step - warmup) / span);
  return base * 0.5 * (1 + Math.cos(Math.PI * t));
}
