import assert from "node:assert/strict";
import { seededValues } from "./fixtures_kernels.ts";
import {
  compileOptimizerKernels,
  optimizerKernelsCompiled,
  optimizerKernelsFor,
} from "../lib/kernels/optimizer_simd.ts";

await compileOptimizerKernels();

const f = Math.fround;

/** Adam on one element, every operation rounded to float32 as the kernel computes it. */
function adamElement(w: number, g: number, m: number, v: number, c: typeof ADAM) {
  const m1 = f(f(c.beta1 * m) + f(f(1 - c.beta1) * g));
  const v1 = f(f(c.beta2 * v) + f(f(f(f(1 - c.beta2) * g)) * g));
  const out = f(w - f(f(c.s1 * m1) / f(f(Math.sqrt(f(c.s2 * v1))) + c.epsilon)));
  return { m: m1, v: v1, out };
}

const ADAM = {
  beta1: f(0.9),
  beta2: f(0.999),
  s1: f(0.01 / 0.1),
  s2: f(1 / 0.001),
  epsilon: f(1e-8),
};

/** Float32 views of `length` values at `offset` floats into consecutive regions of `memory`. */
function regions(memory: WebAssembly.Memory, count: number, length: number, offset: number) {
  return Array.from(
    { length: count },
    (_, i) => new Float32Array(memory.buffer, 4 * (offset + i * (length + 8)), length),
  );
}

// Lengths around the 4-lane vector width, at offsets that are not 16-byte aligned.
for (const length of [0, 1, 3, 4, 5, 7, 33]) {
  Deno.test(`simd adam: ${length} values match the float32 formula element by element`, () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const kernels = optimizerKernelsFor(memory)!;
    const [w, g, m, v, out] = regions(memory, 5, length, 3);
    w.set(seededValues(length, 1));
    g.set(seededValues(length, 2));
    m.set(seededValues(length, 3));
    v.set(seededValues(length, 4).map(Math.abs));
    const expected = Array.from(w, (_, k) => adamElement(w[k], g[k], m[k], v[k], ADAM));
    kernels.adam(w, g, m, v, out, ADAM);
    expected.forEach((e, k) => {
      assert.equal(m[k], e.m, `m[${k}]`);
      assert.equal(v[k], e.v, `v[${k}]`);
      assert.equal(out[k], e.out, `out[${k}]`);
    });
  });

  Deno.test(`simd sgd-nesterov: ${length} values match the float32 formula`, () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const kernels = optimizerKernelsFor(memory)!;
    const [w, g, b, out] = regions(memory, 4, length, 1);
    w.set(seededValues(length, 5));
    g.set(seededValues(length, 6));
    b.set(seededValues(length, 7));
    const [mu, lr] = [f(0.9), f(0.05)];
    const expected = Array.from(w, (_, k) => {
      const b1 = f(f(mu * b[k]) + g[k]);
      return { b: b1, out: f(w[k] - f(lr * f(g[k] + f(mu * b1)))) };
    });
    kernels.sgdNesterov(w, g, b, out, mu, lr);
    expected.forEach((e, k) => {
      assert.equal(b[k], e.b, `b[${k}]`);
      assert.equal(out[k], e.out, `out[${k}]`);
    });
  });
}

Deno.test("simd kernels: an element's result does not depend on its lane or alignment", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = optimizerKernelsFor(memory)!;
  const results = [0, 1, 2, 3].map((offset) => {
    const [w, g, m, v, out] = regions(memory, 5, 9, offset);
    w.set(seededValues(9, 1));
    g.set(seededValues(9, 2));
    m.fill(0);
    v.fill(0);
    kernels.adam(w, g, m, v, out, ADAM);
    return Array.from(out);
  });
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
});

Deno.test("simd kernels: still right after the memory grows", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = optimizerKernelsFor(memory)!;
  memory.grow(11); // 768 KiB in all, the kernels instantiated on 64 KiB
  const n = 40_000; // four arrays of 160 KB, far beyond the first page
  const [w, g, b, out] = regions(memory, 4, n, 0);
  w.fill(1);
  g.fill(2);
  kernels.sgdNesterov(w, g, b, out, 0, 0.5);
  assert.equal(out[n - 1], 0);
  assert.equal(b[n - 1], 2);
});

Deno.test("simd kernels: arrays outside the memory or of other lengths are refused", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = optimizerKernelsFor(memory)!;
  const [w, g, b, out] = regions(memory, 4, 8, 0);
  assert.throws(
    () => kernels.sgdNesterov(w, new Float32Array(8), b, out, 0.9, 0.1),
    /g is not in its memory/,
  );
  assert.throws(
    () => kernels.sgdNesterov(w, g.subarray(0, 7), b, out, 0.9, 0.1),
    /g has 7 values, not 8/,
  );
});

Deno.test("simd kernels: one instance per memory; none on a shared memory", () => {
  assert.ok(optimizerKernelsCompiled());
  const memory = new WebAssembly.Memory({ initial: 1 });
  assert.equal(optimizerKernelsFor(memory), optimizerKernelsFor(memory));
  const shared = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
  assert.equal(optimizerKernelsFor(shared), null);
});
