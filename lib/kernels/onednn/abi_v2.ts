/**
 * oneDNN's 2.x C API (2.3 on, for `dnnl_pooling_v2`): an op descriptor
 * filled in our memory by `dnnl_*_desc_init`, then a primitive descriptor
 * from it by `dnnl_primitive_desc_create`. Enum values from dnnl_types.h of
 * 2.6.
 *
 * @module
 */
import {
  ALG,
  type AttrSymbols,
  check,
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

/** The 2.x-only calls. */
export const V2_SYMBOLS = {
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_backward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

type V2Symbols = Deno.DynamicLibrary<typeof V2_SYMBOLS>["symbols"];

/** `sizeof(dnnl_memory_desc_t)` in 2.x (checked against dnnl_types.h 2.6). */
const MD_SIZE = 696;
/** Bytes reserved for a `dnnl_memory_desc_t`. */
const MD_BYTES = 1024;
/** Bytes reserved for an op descriptor (`dnnl_convolution_desc_t` is 5976 in 2.x, the largest used). */
const OP_DESC_BYTES = 8192;

/** `dnnl_format_tag_t` values of 2.x. */
const TAG: Record<LayoutTag, number> = { any: 1, a: 2, nhwc: 20, hwio: 30 };
const ELTWISE_RELU = 31;
const USE_GLOBAL_STATS = 0x1;
const USE_SCALE = 0x8;
const USE_SHIFT = 0x10;

/** The 2.x layer over the 2.x-only calls `v2`, the attribute calls and the CPU `engine`. */
export function abiV2(v2: V2Symbols, attrs: AttrSymbols, engine: Deno.PointerObject): DnnlAbi {
  const zero = dims([0, 0]);
  /** The primitive descriptor of a filled op descriptor. */
  const create = (
    op: Uint8Array,
    what: string,
    attr: Deno.PointerObject | null = null,
    hint: Deno.PointerObject | null = null,
  ): Deno.PointerObject => {
    const out = handleOut();
    check(v2.dnnl_primitive_desc_create(out, op, attr, engine, hint), `primitive_desc(${what})`);
    return handleOf(out, `primitive_desc(${what})`);
  };
  /** `init(op)` then its primitive descriptor. */
  const make = (
    what: string,
    init: (op: Uint8Array) => number,
    hint: Deno.PointerObject | null = null,
  ): Deno.PointerObject => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(init(op), what);
    return create(op, what, null, hint);
  };
  /** The descriptor as the buffer a 2.x call takes (a struct inside a primitive descriptor is viewed in place). */
  const b = (md: MdRef): Uint8Array =>
    md instanceof Uint8Array
      ? md
      : new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointerOf(md), MD_SIZE));
  return {
    major: 2,
    memoryDesc(shape, tag) {
      const md = new Uint8Array(MD_BYTES);
      check(
        v2.dnnl_memory_desc_init_by_tag(md, shape.length, dims(shape), F32, TAG[tag]),
        "dnnl_memory_desc_init_by_tag",
      );
      return md;
    },
    copyMd(md) {
      const out = new Uint8Array(MD_BYTES);
      out.set(
        md instanceof Uint8Array
          ? md.subarray(0, MD_SIZE)
          : new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointerOf(md), MD_SIZE)),
      );
      return out;
    },
    convForwardPd(prop, src, weights, bias, dst, p, { relu }) {
      const op = new Uint8Array(OP_DESC_BYTES);
      check(
        v2.dnnl_convolution_forward_desc_init(
          op,
          PROP[prop],
          ALG.convolutionDirect,
          b(src),
          b(weights),
          bias === null ? null : b(bias),
          b(dst),
          p.strides,
          p.padL,
          p.padR,
        ),
        "dnnl_convolution_forward_desc_init",
      );
      return withReluAttr(
        attrs,
        relu,
        (postOps) => v2.dnnl_post_ops_append_eltwise(postOps, 1, ELTWISE_RELU, 0, 0),
        (attr) => create(op, "convolution forward", attr),
      );
    },
    convBackwardDataPd(diffSrc, weights, diffDst, p, hint) {
      return make(
        "dnnl_convolution_backward_data_desc_init",
        (op) =>
          v2.dnnl_convolution_backward_data_desc_init(
            op,
            ALG.convolutionDirect,
            b(diffSrc),
            b(weights),
            b(diffDst),
            p.strides,
            p.padL,
            p.padR,
          ),
        hint,
      );
    },
    convBackwardWeightsPd(src, diffWeights, diffDst, p, hint) {
      return make(
        "dnnl_convolution_backward_weights_desc_init",
        (op) =>
          v2.dnnl_convolution_backward_weights_desc_init(
            op,
            ALG.convolutionDirect,
            b(src),
            b(diffWeights),
            null,
            b(diffDst),
            p.strides,
            p.padL,
            p.padR,
          ),
        hint,
      );
    },
    poolForwardPd(prop, src, dst, p) {
      return make("dnnl_pooling_v2_forward_desc_init", (op) =>
        v2.dnnl_pooling_v2_forward_desc_init(
          op,
          PROP[prop],
          poolAlgorithm(p),
          b(src),
          b(dst),
          p.strides,
          p.kernel,
          zero,
          p.padL,
          p.padR,
        ));
    },
    poolBackwardPd(diffSrc, diffDst, p, hint) {
      return make(
        "dnnl_pooling_v2_backward_desc_init",
        (op) =>
          v2.dnnl_pooling_v2_backward_desc_init(
            op,
            poolAlgorithm(p),
            b(diffSrc),
            b(diffDst),
            p.strides,
            p.kernel,
            zero,
            p.padL,
            p.padR,
          ),
        hint,
      );
    },
    batchNormForwardPd(prop, data, epsilon) {
      const flags = (prop === "inference" ? USE_GLOBAL_STATS : 0) | USE_SCALE | USE_SHIFT;
      return make(
        "dnnl_batch_normalization_forward_desc_init",
        (op) =>
          v2.dnnl_batch_normalization_forward_desc_init(op, PROP[prop], b(data), epsilon, flags),
      );
    },
    batchNormBackwardReadsShift: true,
    batchNormBackwardPd(data, epsilon, hint) {
      return make(
        "dnnl_batch_normalization_backward_desc_init",
        (op) =>
          v2.dnnl_batch_normalization_backward_desc_init(
            op,
            PROP.backward,
            b(data),
            b(data),
            epsilon,
            USE_SCALE | USE_SHIFT,
          ),
        hint,
      );
    },
    reluForwardPd(data) {
      return make(
        "dnnl_eltwise_forward_desc_init",
        (op) => v2.dnnl_eltwise_forward_desc_init(op, PROP.training, ELTWISE_RELU, b(data), 0, 0),
      );
    },
    reluBackwardPd(data, hint) {
      return make(
        "dnnl_eltwise_backward_desc_init",
        (op) => v2.dnnl_eltwise_backward_desc_init(op, ELTWISE_RELU, b(data), b(data), 0, 0),
        hint,
      );
    },
  };
}
