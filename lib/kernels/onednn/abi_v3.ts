/**
 * oneDNN's 3.x C API (3.1 on: Ubuntu 24.04's `libdnnl3`, Homebrew's
 * `onednn`): primitive descriptors made directly by
 * `dnnl_*_primitive_desc_create` (engine first, attributes last), memory
 * descriptors as opaque handles the library allocates. Enum values from
 * dnnl_types.h of 3.1.1.
 *
 * The memory descriptors made here are freed when the garbage collector
 * drops their handle object (a `FinalizationRegistry`): oneDNN copies a
 * descriptor into every memory and primitive descriptor made from it, so
 * nothing native points at one after the call that used it.
 *
 * @module
 */
import {
  ALG,
  type AttrSymbols,
  check,
  type ConvParams,
  dims,
  type DnnlAbi,
  F32,
  handleOf,
  handleOut,
  type LayoutTag,
  type MdRef,
  pointerOf,
  poolAlgorithm,
  PROP,
  withReluAttr,
} from "./abi.ts";

const P = "pointer" as const;
const B = "buffer" as const;

/** The 3.x-only calls. */
export const V3_SYMBOLS = {
  dnnl_memory_desc_create_with_tag: { parameters: [B, "i32", B, "i32", "i32"], result: "i32" },
  dnnl_memory_desc_clone: { parameters: [B, P], result: "i32" },
  dnnl_memory_desc_destroy: { parameters: [P], result: "i32" },
  dnnl_convolution_forward_primitive_desc_create: {
    parameters: [B, P, "i32", "i32", P, P, P, P, B, B, B, B, P],
    result: "i32",
  },
  dnnl_convolution_backward_data_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, P, B, B, B, B, P, P],
    result: "i32",
  },
  dnnl_convolution_backward_weights_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, P, P, B, B, B, B, P, P],
    result: "i32",
  },
  dnnl_pooling_forward_primitive_desc_create: {
    parameters: [B, P, "i32", "i32", P, P, B, B, B, B, B, P],
    result: "i32",
  },
  dnnl_pooling_backward_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, B, B, B, B, B, P, P],
    result: "i32",
  },
  dnnl_batch_normalization_forward_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, "f32", "u32", P],
    result: "i32",
  },
  dnnl_batch_normalization_backward_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, P, "f32", "u32", P, P],
    result: "i32",
  },
  dnnl_eltwise_forward_primitive_desc_create: {
    parameters: [B, P, "i32", "i32", P, P, "f32", "f32", P],
    result: "i32",
  },
  dnnl_eltwise_backward_primitive_desc_create: {
    parameters: [B, P, "i32", P, P, P, "f32", "f32", P, P],
    result: "i32",
  },
  dnnl_post_ops_append_eltwise: { parameters: [P, "i32", "f32", "f32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type V3Symbols = Deno.DynamicLibrary<typeof V3_SYMBOLS>["symbols"];

/** `dnnl_format_tag_t` values of 3.1. */
const TAG: Record<LayoutTag, number> = { any: 1, a: 2, nhwc: 22, hwio: 28 };
const ELTWISE_RELU = 0x20;
const USE_GLOBAL_STATS = 0x1;
const USE_SCALE = 0x2;
const USE_SHIFT = 0x4;

/** The 3.x layer over the 3.x-only calls `v3`, the attribute calls and the CPU `engine`. */
export function abiV3(v3: V3Symbols, attrs: AttrSymbols, engine: Deno.PointerObject): DnnlAbi {
  const freed = new FinalizationRegistry<bigint>((handle) => {
    v3.dnnl_memory_desc_destroy(Deno.UnsafePointer.create(handle));
  });
  /** The handle written by `create(out)`, freed with its object. */
  const owned = (what: string, create: (out: BigUint64Array) => number): Deno.PointerObject => {
    const out = handleOut();
    check(create(out), what);
    const md = handleOf(out, what);
    freed.register(md, out[0]);
    return md;
  };
  /** `create(out)` then the primitive descriptor it wrote. */
  const pd = (what: string, create: (out: BigUint64Array) => number): Deno.PointerObject => {
    const out = handleOut();
    check(create(out), what);
    return handleOf(out, what);
  };
  const zero = dims([0, 0]);
  const m = pointerOf;
  return {
    major: 3,
    memoryDesc(shape, tag) {
      return owned(
        "dnnl_memory_desc_create_with_tag",
        (out) => v3.dnnl_memory_desc_create_with_tag(out, shape.length, dims(shape), F32, TAG[tag]),
      );
    },
    copyMd(md: MdRef) {
      return owned("dnnl_memory_desc_clone", (out) => v3.dnnl_memory_desc_clone(out, m(md)));
    },
    convForwardPd(prop, src, weights, bias, dst, p: ConvParams, { relu }) {
      return withReluAttr(
        attrs,
        relu,
        (postOps) => v3.dnnl_post_ops_append_eltwise(postOps, ELTWISE_RELU, 0, 0),
        (attr) =>
          pd(
            "dnnl_convolution_forward_primitive_desc_create",
            (out) =>
              v3.dnnl_convolution_forward_primitive_desc_create(
                out,
                engine,
                PROP[prop],
                ALG.convolutionDirect,
                m(src),
                m(weights),
                bias === null ? null : m(bias),
                m(dst),
                p.strides,
                zero,
                p.padL,
                p.padR,
                attr,
              ),
          ),
      );
    },
    convBackwardDataPd(diffSrc, weights, diffDst, p, hint) {
      return pd(
        "dnnl_convolution_backward_data_primitive_desc_create",
        (out) =>
          v3.dnnl_convolution_backward_data_primitive_desc_create(
            out,
            engine,
            ALG.convolutionDirect,
            m(diffSrc),
            m(weights),
            m(diffDst),
            p.strides,
            zero,
            p.padL,
            p.padR,
            hint,
            null,
          ),
      );
    },
    convBackwardWeightsPd(src, diffWeights, diffDst, p, hint) {
      return pd(
        "dnnl_convolution_backward_weights_primitive_desc_create",
        (out) =>
          v3.dnnl_convolution_backward_weights_primitive_desc_create(
            out,
            engine,
            ALG.convolutionDirect,
            m(src),
            m(diffWeights),
            null,
            m(diffDst),
            p.strides,
            zero,
            p.padL,
            p.padR,
            hint,
            null,
          ),
      );
    },
    poolForwardPd(prop, src, dst, p) {
      return pd(
        "dnnl_pooling_forward_primitive_desc_create",
        (out) =>
          v3.dnnl_pooling_forward_primitive_desc_create(
            out,
            engine,
            PROP[prop],
            poolAlgorithm(p),
            m(src),
            m(dst),
            p.strides,
            p.kernel,
            zero,
            p.padL,
            p.padR,
            null,
          ),
      );
    },
    poolBackwardPd(diffSrc, diffDst, p, hint) {
      return pd(
        "dnnl_pooling_backward_primitive_desc_create",
        (out) =>
          v3.dnnl_pooling_backward_primitive_desc_create(
            out,
            engine,
            poolAlgorithm(p),
            m(diffSrc),
            m(diffDst),
            p.strides,
            p.kernel,
            zero,
            p.padL,
            p.padR,
            hint,
            null,
          ),
      );
    },
    batchNormForwardPd(prop, data, epsilon) {
      const flags = (prop === "inference" ? USE_GLOBAL_STATS : 0) | USE_SCALE | USE_SHIFT;
      return pd(
        "dnnl_batch_normalization_forward_primitive_desc_create",
        (out) =>
          v3.dnnl_batch_normalization_forward_primitive_desc_create(
            out,
            engine,
            PROP[prop],
            m(data),
            m(data),
            epsilon,
            flags,
            null,
          ),
      );
    },
    batchNormBackwardReadsShift: false,
    batchNormBackwardPd(data, epsilon, hint) {
      return pd(
        "dnnl_batch_normalization_backward_primitive_desc_create",
        (out) =>
          v3.dnnl_batch_normalization_backward_primitive_desc_create(
            out,
            engine,
            PROP.backward,
            m(data),
            m(data),
            m(data),
            epsilon,
            USE_SCALE | USE_SHIFT,
            hint,
            null,
          ),
      );
    },
    reluForwardPd(data) {
      return pd(
        "dnnl_eltwise_forward_primitive_desc_create",
        (out) =>
          v3.dnnl_eltwise_forward_primitive_desc_create(
            out,
            engine,
            PROP.training,
            ELTWISE_RELU,
            m(data),
            m(data),
            0,
            0,
            null,
          ),
      );
    },
    reluBackwardPd(data, hint) {
      return pd(
        "dnnl_eltwise_backward_primitive_desc_create",
        (out) =>
          v3.dnnl_eltwise_backward_primitive_desc_create(
            out,
            engine,
            ELTWISE_RELU,
            m(data),
            m(data),
            m(data),
            0,
            0,
            hint,
            null,
          ),
      );
    },
  };
}
