/**
 * Adam and SGD-Nesterov weight updates as WebAssembly SIMD loops that run
 * on the wasm backend's own memory, four float32 lanes at a time.
 *
 * Why: the one-pass update in plain JavaScript (lib/train/optimizers.ts)
 * costs about 100 ms per ResNet-34 step (21.3 M weights): V8 computes it
 * scalar, in float64, with a division and a square root per weight. The
 * same pass as `f32x4` instructions is memory-bound and about 6x faster.
 *
 * The module is written below in the WebAssembly text format and assembled
 * once by wabt ({@linkcode compileOptimizerKernels}, async); after that,
 * {@linkcode optimizerKernelsFor} instantiates it synchronously on a
 * backend's `WebAssembly.Memory`, which it imports, so every array is read
 * and written where TF.js keeps it. Every element goes through the same
 * float32 operations whether it falls in a vector or in the scalar tail, so
 * results do not depend on an array's length or alignment.
 *
 * @module
 */
import wabtInit from "wabt";

/**
 * The kernels, with pointers as byte offsets into the imported memory and
 * `n` the element count. Formulas as lib/train/optimizers.ts documents them:
 *
 * adam: `m = b1 m + a1 g; v = b2 v + a2 g^2; out = w - s1 m / (sqrt(s2 v) + eps)`
 * with `a1 = 1 - b1`, `a2 = 1 - b2`, `s1 = lr / (1 - b1^t)`, `s2 = 1 / (1 - b2^t)`.
 *
 * sgd_nesterov: `b = mu b + g; out = w - lr (g + mu b)` (PyTorch's form).
 */
const OPTIMIZERS_WAT = `(module
  (import "env" "memory" (memory 1))

  (func (export "adam")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $out i32) (param $n i32)
    (param $b1 f32) (param $b2 f32) (param $a1 f32) (param $a2 f32)
    (param $s1 f32) (param $s2 f32) (param $eps f32)
    (local $i i32) (local $vend i32) (local $end i32)
    (local $gx v128) (local $mx v128) (local $vx v128)
    (local $B1 v128) (local $B2 v128) (local $A1 v128) (local $A2 v128)
    (local $S1 v128) (local $S2 v128) (local $E v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $A1 (f32x4.splat (local.get $a1)))
    (local.set $A2 (f32x4.splat (local.get $a2)))
    (local.set $S1 (f32x4.splat (local.get $s1)))
    (local.set $S2 (f32x4.splat (local.get $s2)))
    (local.set $E (f32x4.splat (local.get $eps)))
    ;; byte offsets: whole vectors up to $vend, single floats up to $end
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $vdone (loop $vnext
      (br_if $vdone (i32.ge_u (local.get $i) (local.get $vend)))
      (local.set $gx (v128.load (i32.add (local.get $g) (local.get $i))))
      (local.set $mx (f32x4.add
        (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (local.get $i))))
        (f32x4.mul (local.get $A1) (local.get $gx))))
      (local.set $vx (f32x4.add
        (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (local.get $i))))
        (f32x4.mul (f32x4.mul (local.get $A2) (local.get $gx)) (local.get $gx))))
      (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mx))
      (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vx))
      (v128.store (i32.add (local.get $out) (local.get $i))
        (f32x4.sub (v128.load (i32.add (local.get $w) (local.get $i)))
          (f32x4.div (f32x4.mul (local.get $S1) (local.get $mx))
            (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $S2) (local.get $vx))) (local.get $E)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vnext)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
      (local.set $ms (f32.add
        (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $i))))
        (f32.mul (local.get $a1) (local.get $gs))))
      (local.set $vs (f32.add
        (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $i))))
        (f32.mul (f32.mul (local.get $a2) (local.get $gs)) (local.get $gs))))
      (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $ms))
      (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vs))
      (f32.store (i32.add (local.get $out) (local.get $i))
        (f32.sub (f32.load (i32.add (local.get $w) (local.get $i)))
          (f32.div (f32.mul (local.get $s1) (local.get $ms))
            (f32.add (f32.sqrt (f32.mul (local.get $s2) (local.get $vs))) (local.get $eps)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next))))

  (func (export "sgd_nesterov")
    (param $w i32) (param $g i32) (param $b i32) (param $out i32) (param $n i32)
    (param $mu f32) (param $lr f32)
    (local $i i32) (local $vend i32) (local $end i32)
    (local $gx v128) (local $bx v128) (local $MU v128) (local $LR v128)
    (local $gs f32) (local $bs f32)
    (local.set $MU (f32x4.splat (local.get $mu)))
    (local.set $LR (f32x4.splat (local.get $lr)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $vdone (loop $vnext
      (br_if $vdone (i32.ge_u (local.get $i) (local.get $vend)))
      (local.set $gx (v128.load (i32.add (local.get $g) (local.get $i))))
      (local.set $bx (f32x4.add
        (f32x4.mul (local.get $MU) (v128.load (i32.add (local.get $b) (local.get $i))))
        (local.get $gx)))
      (v128.store (i32.add (local.get $b) (local.get $i)) (local.get $bx))
      (v128.store (i32.add (local.get $out) (local.get $i))
        (f32x4.sub (v128.load (i32.add (local.get $w) (local.get $i)))
          (f32x4.mul (local.get $LR)
            (f32x4.add (local.get $gx) (f32x4.mul (local.get $MU) (local.get $bx))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vnext)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
      (local.set $bs (f32.add
        (f32.mul (local.get $mu) (f32.load (i32.add (local.get $b) (local.get $i))))
        (local.get $gs)))
      (f32.store (i32.add (local.get $b) (local.get $i)) (local.get $bs))
      (f32.store (i32.add (local.get $out) (local.get $i))
        (f32.sub (f32.load (i32.add (local.get $w) (local.get $i)))
          (f32.mul (local.get $lr)
            (f32.add (local.get $gs) (f32.mul (local.get $mu) (local.get $bs))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $next))))
)`;

/** Adam's per-step constants (see the module's formulas). */
export interface AdamConstants {
  beta1: number;
  beta2: number;
  /** `lr / (1 - beta1^t)`. */
  s1: number;
  /** `1 / (1 - beta2^t)`. */
  s2: number;
  epsilon: number;
}

/**
 * The update kernels bound to one memory. Every array must be a float32
 * view of that memory, all of the same length; `m`, `v`, `b` are updated
 * in place and `out` receives the new weights (it may not alias `w`).
 */
export interface OptimizerKernels {
  adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    out: Float32Array,
    c: AdamConstants,
  ): void;
  sgdNesterov(
    w: Float32Array,
    g: Float32Array,
    b: Float32Array,
    out: Float32Array,
    momentum: number,
    lr: number,
  ): void;
}

let compiled: WebAssembly.Module | null = null;
const instances = new WeakMap<WebAssembly.Memory, OptimizerKernels>();

/**
 * Assembles the kernels' module once per process (about 25 ms, most of it
 * loading wabt). Throws if this runtime lacks WebAssembly SIMD.
 */
export async function compileOptimizerKernels(): Promise<void> {
  if (compiled) return;
  const wabt = await wabtInit();
  const parsed = wabt.parseWat("optimizers.wat", OPTIMIZERS_WAT, { simd: true });
  try {
    compiled = new WebAssembly.Module(parsed.toBinary({}).buffer as Uint8Array<ArrayBuffer>);
  } finally {
    parsed.destroy();
  }
}

/** Whether {@linkcode compileOptimizerKernels} has run in this process. */
export function optimizerKernelsCompiled(): boolean {
  return compiled !== null;
}

type Exports = {
  adam(...args: number[]): void;
  sgd_nesterov(...args: number[]): void;
};

/**
 * The kernels on `memory`, or null before {@linkcode compileOptimizerKernels}
 * or when `memory` is shared (the module imports an unshared memory).
 */
export function optimizerKernelsFor(memory: WebAssembly.Memory): OptimizerKernels | null {
  if (!compiled || memory.buffer instanceof SharedArrayBuffer) return null;
  const known = instances.get(memory);
  if (known) return known;
  const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as Exports;
  const offsetOf = (a: Float32Array, n: number, what: string): number => {
    if (a.buffer !== memory.buffer) {
      throw new Error(`optimizer kernel: ${what} is not in its memory`);
    }
    if (a.length !== n) {
      throw new Error(`optimizer kernel: ${what} has ${a.length} values, not ${n}`);
    }
    return a.byteOffset;
  };
  const kernels: OptimizerKernels = {
    adam(w, g, m, v, out, c) {
      const n = w.length;
      exports.adam(
        offsetOf(w, n, "w"),
        offsetOf(g, n, "g"),
        offsetOf(m, n, "m"),
        offsetOf(v, n, "v"),
        offsetOf(out, n, "out"),
        n,
        c.beta1,
        c.beta2,
        1 - c.beta1,
        1 - c.beta2,
        c.s1,
        c.s2,
        c.epsilon,
      );
    },
    sgdNesterov(w, g, b, out, momentum, lr) {
      const n = w.length;
      exports.sgd_nesterov(
        offsetOf(w, n, "w"),
        offsetOf(g, n, "g"),
        offsetOf(b, n, "b"),
        offsetOf(out, n, "out"),
        n,
        momentum,
        lr,
      );
    },
  };
  instances.set(memory, kernels);
  return kernels;
}
