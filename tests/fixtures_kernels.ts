/**
 * Shared pieces of the kernel tests (wasm, oneDNN, batch norm, optimizers):
 * replayable inputs, running one computation on the cpu backend and on wasm,
 * and comparing the results relative to their scale.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { xorshift32 } from "./fixtures_images.ts";

/** `size` deterministic values in [-1, 1) from `seed` (xorshift), so every backend sees the same data. */
export function seededValues(size: number, seed: number): Float32Array {
  const next = xorshift32(seed * 2654435761);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = 2 * next() - 1;
  return out;
}

/** Runs `f` on the cpu backend, then on wasm (with whatever kernels it has); returns both results' values. */
export async function onCpuAndWasm(
  f: () => tf.Tensor | tf.Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const results: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    results.push(list.map((t) => Float32Array.from(t.dataSync())));
    tf.dispose(list);
  }
  await tf.setBackend("wasm");
  return [results[0], results[1]];
}

/**
 * Asserts every element of `got` is finite and within `tol` of `want`,
 * relative to `want`'s largest magnitude (with a floor of 1e-6 for all-zero
 * outputs). `label` names `got`'s side in messages.
 */
export function assertCloseRelative(
  want: Float32Array[],
  got: Float32Array[],
  what: string,
  tol: number,
  label: string,
): void {
  assert.equal(got.length, want.length, what);
  want.forEach((c, k) => {
    const w = got[k];
    assert.equal(w.length, c.length, `${what} [${k}] size`);
    let scale = 1e-6;
    for (const v of c) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < c.length; i++) {
      assert.ok(Number.isFinite(w[i]), `${what} [${k}] element ${i} is ${w[i]}`);
      const err = Math.abs(c[i] - w[i]) / scale;
      assert.ok(
        err <= tol,
        `${what} [${k}] element ${i}: cpu ${c[i]} ${label} ${w[i]} (rel ${err})`,
      );
    }
  });
}
