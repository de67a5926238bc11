/**
 * The thin version layer between the kernels and oneDNN's two C APIs. The
 * kernels name what they want (a memory layout by tag name, a convolution
 * of these descriptors, ReLU as a post-op); a {@linkcode DnnlAbi} builds it
 * with the calls and enum values of the library that was opened:
 *
 * - 2.x (2.3 on): op descriptors (`dnnl_*_desc_init`) in caller memory,
 *   then `dnnl_primitive_desc_create`; memory descriptors are structs in
 *   caller memory (`dnnl_memory_desc_init_by_tag`).
 * - 3.x (3.1 on): primitive descriptors made directly
 *   (`dnnl_*_primitive_desc_create`, attributes last); memory descriptors
 *   are opaque handles the library allocates (`dnnl_memory_desc_create_with_tag`,
 *   freed by `dnnl_memory_desc_destroy`); post-ops lost their scale; some
 *   enum values moved (format tags, `eltwise_relu`, batch-norm flags).
 *
 * Everything else (engines, streams, memories, reorders, queries,
 * execution) is the same call in both and lives in library.ts.
 *
 * @module
 */

/** Where a memory descriptor lives: a 2.x struct in our buffer, or a handle (3.x, or inside a primitive descriptor). */
export type MdRef = Uint8Array | Deno.PointerObject;

/** The memory layouts the kernels use, by oneDNN's format tag names. */
export type LayoutTag = "any" | "a" | "nhwc" | "hwio";

/** `dnnl_dims_t` values (12 int64) for strides, paddings, kernel sizes. */
export type Dims = BigInt64Array;

/** The prop kinds the kernels use (the same values in 2.x and 3.x). */
export type PropKind = "training" | "inference";

/** Convolution geometry in oneDNN's terms: strides and left/right (top-left / bottom-right) padding. */
export interface ConvParams {
  strides: Dims;
  padL: Dims;
  padR: Dims;
}

/** Pooling geometry in oneDNN's terms. */
export interface PoolParams extends ConvParams {
  kernel: Dims;
  /** `max`, or average excluding padding (TF.js' AvgPool). */
  alg: "max" | "avg";
}

/**
 * How one oneDNN API version makes memory and primitive descriptors. Every
 * `*Pd` returns a primitive descriptor handle the caller destroys, or
 * throws `OneDnnUnavailable` naming the call that failed.
 */
export interface DnnlAbi {
  /** 2 or 3. */
  readonly major: number;
  /** A new f32 memory descriptor of logical `shape` (oneDNN's dims order) in layout `tag`. */
  memoryDesc(shape: readonly number[], tag: LayoutTag): MdRef;
  /** A copy of `md` that outlives the primitive descriptor it may live in. */
  copyMd(md: MdRef): MdRef;
  convForwardPd(
    prop: PropKind,
    src: MdRef,
    weights: MdRef,
    bias: MdRef | null,
    dst: MdRef,
    p: ConvParams,
    options: { relu: boolean },
  ): Deno.PointerObject;
  convBackwardDataPd(
    diffSrc: MdRef,
    weights: MdRef,
    diffDst: MdRef,
    p: ConvParams,
    hint: Deno.PointerObject,
  ): Deno.PointerObject;
  convBackwardWeightsPd(
    src: MdRef,
    diffWeights: MdRef,
    diffDst: MdRef,
    p: ConvParams,
    hint: Deno.PointerObject,
  ): Deno.PointerObject;
  poolForwardPd(prop: PropKind, src: MdRef, dst: MdRef, p: PoolParams): Deno.PointerObject;
  poolBackwardPd(
    diffSrc: MdRef,
    diffDst: MdRef,
    p: PoolParams,
    hint: Deno.PointerObject,
  ): Deno.PointerObject;
  /** Batch norm with scale and shift; `inference` uses the given (global) statistics. */
  batchNormForwardPd(prop: PropKind, data: MdRef, epsilon: number): Deno.PointerObject;
  batchNormBackwardPd(data: MdRef, epsilon: number, hint: Deno.PointerObject): Deno.PointerObject;
  /** Whether the batch-norm backward primitive takes the shift among its arguments (2.x: unused but listed; 3.x: refused). */
  readonly batchNormBackwardReadsShift: boolean;
  reluForwardPd(data: MdRef): Deno.PointerObject;
  reluBackwardPd(data: MdRef, hint: Deno.PointerObject): Deno.PointerObject;
}

/** `dnnl_prop_kind_t` values, the same in 2.x and 3.x (dnnl_types.h). */
export const PROP = { training: 64, inference: 96, backward: 128, backwardData: 160 } as const;

/** `dnnl_alg_kind_t` values the same in 2.x and 3.x. */
export const ALG = {
  convolutionDirect: 1,
  poolingMax: 0x1ff,
  poolingAvgExcludePadding: 0x3ff,
} as const;

/** The `dnnl_alg_kind_t` of pooling `p`. */
export function poolAlgorithm(p: PoolParams): number {
  return p.alg === "max" ? ALG.poolingMax : ALG.poolingAvgExcludePadding;
}

/** `dnnl_f32`, the same in both. */
export const F32 = 3;

/** A pointer to `md`'s bytes or the handle itself. */
export function pointerOf(md: MdRef): Deno.PointerObject {
  return md instanceof Uint8Array ? Deno.UnsafePointer.of(md)! : md;
}

/** A `dnnl_dims_t` (12 int64) holding `values`. */
export function dims(values: readonly number[]): Dims {
  const out = new BigInt64Array(12);
  values.forEach((v, i) => out[i] = BigInt(v));
  return out;
}

/** An out-parameter for one handle. */
export function handleOut(): BigUint64Array {
  return new BigUint64Array(1);
}

/** Why oneDNN cannot be used here (or a call failed); the message is the one line a script prints. */
export class OneDnnUnavailable extends Error {
  override name = "OneDnnUnavailable";
}

/** Throws {@linkcode OneDnnUnavailable} naming the call when a oneDNN status is not success. */
export function check(status: number, what: string): void {
  if (status !== 0) {
    throw new OneDnnUnavailable(`oneDNN ${what} failed with status ${status}`);
  }
}

/** The handle written to an out-parameter. */
export function handleOf(out: BigUint64Array, what: string): Deno.PointerObject {
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new OneDnnUnavailable(`oneDNN ${what} returned a null handle`);
  return p;
}

/** The attribute calls, the same in 2.x and 3.x. */
export const ATTR_SYMBOLS = {
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound attribute calls. */
export type AttrSymbols = Deno.DynamicLibrary<typeof ATTR_SYMBOLS>["symbols"];

/**
 * Runs `make(attr)` with a primitive attribute holding one post-op that
 * `appendRelu(postOps)` appends (the call differs by version), or with a
 * null attribute when `relu` is false; the attribute is destroyed after
 * (oneDNN copies it into the primitive descriptor).
 */
export function withReluAttr<T>(
  api: AttrSymbols,
  relu: boolean,
  appendRelu: (postOps: Deno.PointerObject) => number,
  make: (attr: Deno.PointerObject | null) => T,
): T {
  if (!relu) return make(null);
  const out = handleOut();
  check(api.dnnl_post_ops_create(out), "dnnl_post_ops_create");
  const postOps = handleOf(out, "dnnl_post_ops_create");
  try {
    check(appendRelu(postOps), "dnnl_post_ops_append_eltwise");
    check(api.dnnl_primitive_attr_create(out), "dnnl_primitive_attr_create");
    const attr = handleOf(out, "dnnl_primitive_attr_create");
    try {
      check(
        api.dnnl_primitive_attr_set_post_ops(attr, postOps),
        "dnnl_primitive_attr_set_post_ops",
      );
      return make(attr);
    } finally {
      api.dnnl_primitive_attr_destroy(attr);
    }
  } finally {
    api.dnnl_post_ops_destroy(postOps);
  }
}
