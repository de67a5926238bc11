/**
 * 2-D convolution on oneDNN for the wasm backend: forward (with bias and
 * ReLU fused), the input gradient and the filter gradient, reading and
 * writing the wasm heap in place. TF.js' NHWC activations are oneDNN's
 * `nhwc` and its `[kh, kw, in, out]` filters `hwio`; the filters are
 * reordered into the blocked layout oneDNN prefers (`format_tag_any`),
 * which wins on most ResNet layers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OneDnn } from "./library.ts";
import {
  ARG,
  type Data,
  dims,
  DNNL,
  memoryDesc,
  opDesc,
  Primitive,
  PrimitiveCache,
  PrimitiveDesc,
  Relayout,
} from "./primitive.ts";
import { check } from "./library.ts";
import { type ConvGeometry, nhwcConvGeometry } from "../conv_geometry.ts";

/** The geometry TF.js computes for these attributes, or null when oneDNN is not used for it. */
export function convGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: tf.Conv2DAttrs["pad"],
  dataFormat: string | undefined,
  dilations: number | [number, number] | undefined,
  dimRoundingMode: "floor" | "round" | "ceil" | undefined,
): ConvGeometry | null {
  if ((dataFormat ?? "NHWC") !== "NHWC") return null;
  if (!tf.backend_util.tupleValuesAreOne(dilations ?? 1)) return null;
  const g = nhwcConvGeometry(xShape, filterShape, strides, pad, dimRoundingMode);
  // Empty tensors, and output sizes oneDNN would compute differently
  // (TF.js' rounding modes), stay on wasm.
  const expected = (i: number, k: number, p: number, s: number) => Math.floor((i - k + p) / s) + 1;
  if (
    g.batch === 0 || g.inChannels === 0 || g.outChannels === 0 || g.outHeight <= 0 ||
    g.outWidth <= 0 ||
    expected(g.inHeight, g.filterHeight, g.padTop + g.padBottom, g.strideHeight) !==
      g.outHeight ||
    expected(g.inWidth, g.filterWidth, g.padLeft + g.padRight, g.strideWidth) !== g.outWidth
  ) return null;
  return g;
}

function key(g: ConvGeometry): string {
  return [
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
    g.padBottom,
    g.padRight,
  ].join(",");
}

/** The descriptors every direction shares. */
function plainDescs(dnnl: OneDnn, g: ConvGeometry) {
  return {
    src: memoryDesc(dnnl, [g.batch, g.inChannels, g.inHeight, g.inWidth], DNNL.nhwc),
    weights: memoryDesc(
      dnnl,
      [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth],
      DNNL.hwio,
    ),
    weightsAny: memoryDesc(
      dnnl,
      [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth],
      DNNL.tagAny,
    ),
    bias: memoryDesc(dnnl, [g.outChannels], DNNL.tagA),
    dst: memoryDesc(dnnl, [g.batch, g.outChannels, g.outHeight, g.outWidth], DNNL.nhwc),
    strides: dims([g.strideHeight, g.strideWidth]),
    padL: dims([g.padTop, g.padLeft]),
    padR: dims([g.padBottom, g.padRight]),
  };
}

/** The forward primitive descriptor (also the hint of both backward ones). */
function forwardDesc(
  dnnl: OneDnn,
  g: ConvGeometry,
  options: { bias: boolean; relu: boolean },
): PrimitiveDesc {
  const d = plainDescs(dnnl, g);
  const op = opDesc();
  check(
    dnnl.api.dnnl_convolution_forward_desc_init(
      op,
      DNNL.forwardTraining,
      DNNL.convolutionDirect,
      d.src,
      d.weightsAny,
      options.bias ? d.bias : null,
      d.dst,
      d.strides,
      d.padL,
      d.padR,
    ),
    "dnnl_convolution_forward_desc_init",
  );
  if (!options.relu) return PrimitiveDesc.create(dnnl, op);
  const { api } = dnnl;
  const out = new BigUint64Array(1);
  check(api.dnnl_post_ops_create(out), "dnnl_post_ops_create");
  const postOps = Deno.UnsafePointer.create(out[0])!;
  check(api.dnnl_post_ops_append_eltwise(postOps, 1, DNNL.eltwiseRelu, 0, 0), "append_eltwise");
  check(api.dnnl_primitive_attr_create(out), "dnnl_primitive_attr_create");
  const attr = Deno.UnsafePointer.create(out[0])!;
  try {
    check(api.dnnl_primitive_attr_set_post_ops(attr, postOps), "set_post_ops");
    return PrimitiveDesc.create(dnnl, op, { attr });
  } finally {
    api.dnnl_primitive_attr_destroy(attr);
    api.dnnl_post_ops_destroy(postOps);
  }
}

/** Forward convolution `y = act(x * w + b)`. */
export class ConvForward {
  private readonly conv: Primitive;
  private readonly weights: Relayout;

  constructor(dnnl: OneDnn, g: ConvGeometry, readonly bias: boolean, relu: boolean) {
    const d = plainDescs(dnnl, g);
    const pd = forwardDesc(dnnl, g, { bias, relu });
    try {
      const chosen = pd.md(DNNL.queryWeightsMd)!;
      this.weights = new Relayout(dnnl, d.weights, chosen, "toChosen");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: d.src },
        { arg: ARG.weights, md: chosen },
        ...(bias ? [{ arg: ARG.bias, md: d.bias }] : []),
        { arg: ARG.dst, md: d.dst },
      ]);
    } finally {
      pd.destroy();
    }
  }

  /** `filterId`: the filter's data id, so a filter seen last time is not reordered again. */
  run(x: Data, filter: Data, bias: Data | null, y: Data, filterId?: object): void {
    const w = this.weights.into(filter, filterId);
    this.conv.execute(this.bias ? [x, w, bias!, y] : [x, w, y]);
  }

  destroy(): void {
    this.conv.destroy();
    this.weights.destroy();
  }
}

/** Input gradient `dx` from `dy` and the filter. */
export class ConvBackwardData {
  private readonly conv: Primitive;
  private readonly weights: Relayout;

  constructor(dnnl: OneDnn, g: ConvGeometry) {
    const d = plainDescs(dnnl, g);
    const hint = forwardDesc(dnnl, g, { bias: false, relu: false });
    const op = opDesc();
    let pd: PrimitiveDesc | null = null;
    try {
      check(
        dnnl.api.dnnl_convolution_backward_data_desc_init(
          op,
          DNNL.convolutionDirect,
          d.src,
          d.weightsAny,
          d.dst,
          d.strides,
          d.padL,
          d.padR,
        ),
        "dnnl_convolution_backward_data_desc_init",
      );
      pd = PrimitiveDesc.create(dnnl, op, { hint });
      const chosen = pd.md(DNNL.queryWeightsMd)!;
      this.weights = new Relayout(dnnl, d.weights, chosen, "toChosen");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.diffDst, md: d.dst },
        { arg: ARG.weights, md: chosen },
        { arg: ARG.diffSrc, md: d.src },
      ]);
    } finally {
      pd?.destroy();
      hint.destroy();
    }
  }

  run(dy: Data, filter: Data, dx: Data, filterId?: object): void {
    this.conv.execute([dy, this.weights.into(filter, filterId), dx]);
  }

  destroy(): void {
    this.conv.destroy();
    this.weights.destroy();
  }
}

/** Filter gradient `dw` from `x` and `dy`. */
export class ConvBackwardWeights {
  private readonly conv: Primitive;
  private readonly weights: Relayout;

  constructor(dnnl: OneDnn, g: ConvGeometry) {
    const d = plainDescs(dnnl, g);
    const hint = forwardDesc(dnnl, g, { bias: false, relu: false });
    const op = opDesc();
    let pd: PrimitiveDesc | null = null;
    try {
      check(
        dnnl.api.dnnl_convolution_backward_weights_desc_init(
          op,
          DNNL.convolutionDirect,
          d.src,
          d.weightsAny,
          null,
          d.dst,
          d.strides,
          d.padL,
          d.padR,
        ),
        "dnnl_convolution_backward_weights_desc_init",
      );
      pd = PrimitiveDesc.create(dnnl, op, { hint });
      const chosen = pd.md(DNNL.queryDiffWeightsMd)!;
      this.weights = new Relayout(dnnl, d.weights, chosen, "toPlain");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: d.src },
        { arg: ARG.diffDst, md: d.dst },
        { arg: ARG.diffWeights, md: chosen },
      ]);
    } finally {
      pd?.destroy();
      hint.destroy();
    }
  }

  run(x: Data, dy: Data, dw: Data): void {
    this.conv.execute([x, dy, this.weights.target(dw)]);
    this.weights.outOf(dw);
  }

  destroy(): void {
    this.conv.destroy();
    this.weights.destroy();
  }
}

/** The convolution primitives of one process, cached by direction and geometry. */
export class ConvPrimitives {
  private readonly forward = new PrimitiveCache<ConvForward>();
  private readonly data = new PrimitiveCache<ConvBackwardData>();
  private readonly weights = new PrimitiveCache<ConvBackwardWeights>();

  constructor(private readonly dnnl: OneDnn) {}

  forwardFor(g: ConvGeometry, bias: boolean, relu: boolean): ConvForward {
    return this.forward.get(
      `${key(g)}|${bias}|${relu}`,
      () => new ConvForward(this.dnnl, g, bias, relu),
    );
  }

  backwardDataFor(g: ConvGeometry): ConvBackwardData {
    return this.data.get(key(g), () => new ConvBackwardData(this.dnnl, g));
  }

  backwardWeightsFor(g: ConvGeometry): ConvBackwardWeights {
    return this.weights.get(key(g), () => new ConvBackwardWeights(this.dnnl, g));
  }

  /** Cached primitives, all directions. */
  get size(): number {
    return this.forward.size + this.data.size + this.weights.size;
  }

  clear(): void {
    this.forward.clear();
    this.data.clear();
    this.weights.clear();
  }
}
