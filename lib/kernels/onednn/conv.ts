/**
 * 2-D convolution on oneDNN for the wasm backend: forward (with bias and
 * ReLU fused), the input gradient and the filter gradient, reading and
 * writing the wasm heap in place. TF.js' NHWC activations are oneDNN's
 * `nhwc` and its `[kh, kw, in, out]` filters `hwio`. Each direction
 * reorders the filter into (or its gradient out of) the blocked layout
 * oneDNN prefers (`format_tag_any`), which wins on most ResNet layers, or
 * reads and writes `hwio` in place where the blocked layout would pad the
 * filter (see {@linkcode preferredLayout}). The forward keeps its blocked
 * copy of each filter (by TF.js data id) until backward-data of the same
 * filter data reorders from it, blocked to blocked (see
 * {@linkcode sharedFilterLayout} and lib/kernels/onednn/filter_copies.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OneDnn } from "./library.ts";
import { FilterCopies } from "./filter_copies.ts";
import { CroppedFilter } from "./cropped_filter.ts";
import {
  ARG,
  byteSize,
  copyMd,
  type Data,
  dims,
  DNNL,
  type MdRef,
  memoryDesc,
  Primitive,
  PrimitiveCache,
  PrimitiveDesc,
  Relayout,
  sameLayout,
} from "./primitive.ts";
import { OneDnnUnavailable } from "./library.ts";
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
    src: memoryDesc(dnnl, [g.batch, g.inChannels, g.inHeight, g.inWidth], "nhwc"),
    weights: memoryDesc(dnnl, [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth], "hwio"),
    weightsAny: memoryDesc(
      dnnl,
      [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth],
      "any",
    ),
    bias: memoryDesc(dnnl, [g.outChannels], "a"),
    dst: memoryDesc(dnnl, [g.batch, g.outChannels, g.outHeight, g.outWidth], "nhwc"),
    params: {
      strides: dims([g.strideHeight, g.strideWidth]),
      padL: dims([g.padTop, g.padLeft]),
      padR: dims([g.padBottom, g.padRight]),
    },
  };
}

/**
 * How a primitive holds the filter (or its gradient): `blocked`, the layout
 * oneDNN prefers, reordered from (or to) TF.js' `hwio` on every new filter;
 * `plain`, TF.js' `hwio` read or written in place, no reorder.
 */
export type FilterLayout = "blocked" | "plain";

/** What the layout rule sees of a direction's blocked candidate. */
export interface BlockedCandidate {
  /** Bytes of the blocked filter over bytes of the plain one (above 1 when blocks pad channels). */
  padding: number;
}

/**
 * Padding of the blocked filter (its bytes over the plain filter's) from
 * which plain `hwio` is taken instead. oneDNN's blocked kernels round
 * channels up to their 16-lane blocks, so a filter with few input channels
 * (the stem's 3) runs mostly on zeros: with the ResNet stem's backward-data
 * on `hwio` (gemm) instead of blocked (3 channels padded to 16, 5.3x), a
 * ResNet-34 training step at batch 16 spent 3-4 ms less in convolutions at
 * 64 px (7.3 -> 4.3 ms), 15 ms less at 128 px, the same at 32 px. Everywhere else the
 * blocked kernels stayed ahead even after paying the reorder, also on the
 * 1x1 and 2x2 pixel layers where gemm came closest (32, 64 and 128 px:
 * gemm at best within noise, up to 5x slower for the filter gradient).
 */
export const PLAIN_FILTER_PADDING = 2;

/**
 * The filter layout to run on, from what the blocked candidate wastes:
 * plain `hwio` where the blocked filter is padded
 * {@linkcode PLAIN_FILTER_PADDING} times or more, else blocked. It depends on
 * the geometry alone (not on timings), so a run, and a resumed run, always
 * computes with the same kernels.
 */
export function preferredLayout(blocked: BlockedCandidate): FilterLayout {
  return blocked.padding >= PLAIN_FILTER_PADDING ? "plain" : "blocked";
}

/** oneDNN's reference implementations (`ref:any`, `gemm:ref`): correct, but orders of magnitude slower. */
const REFERENCE = /(^|:)ref(:|$)/;

/**
 * The primitive descriptor `make` gives for the filter layout `layout`
 * picks (default {@linkcode preferredLayout}); `query` names the filter's
 * memory descriptor (weights, or diff weights); `blockedLayout`, a blocked
 * layout to take instead of oneDNN's own pick where an optimised
 * implementation runs on it. Plain `hwio` is only taken where oneDNN runs it
 * on an optimised implementation: where it would fall to a reference one
 * the blocked candidate stays. Where oneDNN's own pick for "any layout" is
 * plain `hwio` (its gemm implementation, e.g. the stem's backward-data on
 * AVX2, or every backward pass on SSE4.1) there is no blocked candidate:
 * `blockedPadding` is then null and the layout plain, whatever was asked.
 */
function withFilterLayout(
  dnnl: OneDnn,
  g: ConvGeometry,
  query: number,
  make: (weights: MdRef) => PrimitiveDesc,
  layout?: FilterLayout,
  blockedLayout?: MdRef,
): { pd: PrimitiveDesc; blockedPadding: number | null } {
  const d = plainDescs(dnnl, g);
  const blocked = (blockedLayout && tryMake(make, blockedLayout)) || make(d.weightsAny);
  const chosen = blocked.md(query)!;
  if (sameLayout(dnnl, chosen, d.weights)) return { pd: blocked, blockedPadding: null };
  const padding = byteSize(dnnl, chosen) / byteSize(dnnl, d.weights);
  const result = (pd: PrimitiveDesc) => ({ pd, blockedPadding: padding });
  if ((layout ?? preferredLayout({ padding })) === "blocked") return result(blocked);
  const plain = tryMake(make, d.weights);
  if (plain === null) return result(blocked);
  blocked.destroy();
  return result(plain);
}

/** `make(weights)`, or null where only a reference implementation (or none) takes that layout. */
function tryMake(
  make: (weights: MdRef) => PrimitiveDesc,
  weights: MdRef,
): PrimitiveDesc | null {
  let pd: PrimitiveDesc;
  try {
    pd = make(weights);
  } catch (e) {
    if (e instanceof OneDnnUnavailable) return null;
    throw e;
  }
  if (!REFERENCE.test(pd.implementation)) return pd;
  pd.destroy();
  return null;
}

/** The forward primitive descriptor for filter layout `weights` (also the hint of both backward ones). */
function forwardDesc(
  dnnl: OneDnn,
  g: ConvGeometry,
  options: { bias: boolean; relu: boolean },
  weights: MdRef,
): PrimitiveDesc {
  const d = plainDescs(dnnl, g);
  return PrimitiveDesc.of(dnnl, (abi) =>
    abi.convForwardPd(
      "training",
      d.src,
      weights,
      options.bias ? d.bias : null,
      d.dst,
      d.params,
      { relu: options.relu },
    ));
}

/** The forward descriptor oneDNN would pick on its own: the hint a backward descriptor needs. */
function hintDesc(dnnl: OneDnn, g: ConvGeometry): PrimitiveDesc {
  return forwardDesc(dnnl, g, { bias: false, relu: false }, plainDescs(dnnl, g).weightsAny);
}

/** What every convolution primitive tells about itself. */
export interface ConvPrimitive {
  /** The implementation oneDNN runs (`DNNL_VERBOSE`'s name). */
  readonly implementation: string;
  /** Whether the filter is reordered or read in place. */
  readonly filterLayout: FilterLayout;
  /**
   * The blocked candidate's bytes over the plain filter's (what
   * {@linkcode preferredLayout} judged), or null where oneDNN offered no
   * blocked layout for this direction on this CPU.
   */
  readonly blockedPadding: number | null;
}

function describe(
  made: { pd: PrimitiveDesc; blockedPadding: number | null },
  relayout: Relayout,
): ConvPrimitive {
  return {
    implementation: made.pd.implementation,
    filterLayout: relayout.scratch === null ? "plain" : "blocked",
    blockedPadding: made.blockedPadding,
  };
}

/**
 * The layout a forward keeps its filter copies in for backward-data, or
 * null where backward-data would not read them (it runs on plain `hwio`).
 * It is the layout the filter gradient comes out in: the blocks
 * backward-data reads transposed (`OIhw16i16o` against `OIhw16o16i` on
 * AVX-512), so its reorder from the copy is a blockwise transpose (oneDNN
 * `jit:blk`, about twice as fast) instead of a gather from `hwio`. With
 * that, backward-data of a ResNet-34 training step (batch 16) took 7-8 ms
 * less at 32, 64 and 128 px, with the forward (on `jit` instead of
 * `brgconv`) as fast as before.
 */
function sharedFilterLayout(dnnl: OneDnn, g: ConvGeometry): MdRef | null {
  const data = new ConvBackwardData(dnnl, g);
  const weights = new ConvBackwardWeights(dnnl, g, "blocked");
  try {
    if (data.filterLayout === "plain" || weights.filterLayout === "plain") return null;
    return weights.chosen;
  } finally {
    data.destroy();
    weights.destroy();
  }
}

/** Forward convolution `y = act(x * w + b)`. */
export class ConvForward implements ConvPrimitive {
  private readonly conv: Primitive;
  private readonly weights: Relayout;
  /** The filter layout the primitive reads. */
  private readonly chosen: MdRef;
  private readonly copies: FilterCopies | null;
  readonly implementation: string;
  readonly filterLayout: FilterLayout;
  readonly blockedPadding: number | null;

  /**
   * `layout`: force a filter layout (tests); default {@linkcode preferredLayout}.
   * `copies`: where the blocked filter is kept, by filter data, for
   * backward-data and for later forwards of the same filter data, in the
   * layout of {@linkcode sharedFilterLayout} where backward-data can read
   * it. Layers of the same geometry share one primitive, so without it a
   * model's five 512-channel 3x3 layers took turns in one scratch buffer
   * and inference reordered each of their filters on every batch (where
   * backward-data reads `hwio`, as on AVX2 at 2x2 pixels).
   */
  constructor(
    dnnl: OneDnn,
    g: ConvGeometry,
    readonly bias: boolean,
    relu: boolean,
    layout?: FilterLayout,
    copies: FilterCopies | null = null,
  ) {
    const d = plainDescs(dnnl, g);
    const shared = copies === null ? null : sharedFilterLayout(dnnl, g);
    this.copies = copies;
    const made = withFilterLayout(
      dnnl,
      g,
      DNNL.queryWeightsMd,
      (w) => forwardDesc(dnnl, g, { bias, relu }, w),
      layout,
      shared ?? undefined,
    );
    const pd = made.pd;
    try {
      this.chosen = copyMd(dnnl, pd.md(DNNL.queryWeightsMd)!);
      this.weights = new Relayout(dnnl, d.weights, this.chosen, "toChosen");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: d.src },
        { arg: ARG.weights, md: this.chosen },
        ...(bias ? [{ arg: ARG.bias, md: d.bias }] : []),
        { arg: ARG.dst, md: d.dst },
      ]);
      ({
        implementation: this.implementation,
        filterLayout: this.filterLayout,
        blockedPadding: this.blockedPadding,
      } = describe(made, this.weights));
    } finally {
      pd.destroy();
    }
  }

  /** `filterId`: the filter's data id, so a filter already reordered is not reordered again. */
  run(x: Data, filter: Data, bias: Data | null, y: Data, filterId?: object): void {
    const w = this.filterFor(filter, filterId);
    this.conv.execute(this.bias ? [x, w, bias!, y] : [x, w, y]);
  }

  private filterFor(filter: Data, id: object | undefined): Data {
    const { copies, weights } = this;
    if (copies === null || id === undefined || weights.scratch === null) {
      return weights.into(filter, id);
    }
    const held = copies.get(id);
    if (held !== undefined && sameLayout(this.conv.dnnl, held.md, this.chosen)) return held.data;
    return copies.put(
      id,
      this.chosen,
      weights.scratch.byteLength,
      (out) => weights.reorderInto(filter, out),
    );
  }

  destroy(): void {
    this.conv.destroy();
    this.weights.destroy();
  }
}

/** Input gradient `dx` from `dy` and the filter. */
export class ConvBackwardData implements ConvPrimitive {
  private readonly conv: Primitive;
  private readonly weights: Relayout;
  /** The filter layout the primitive reads. */
  private readonly chosen: MdRef;
  /** The reorder from a forward copy's layout (`from`) to {@linkcode chosen}, made on first use. */
  private fromCopy: { from: MdRef; reorder: Primitive } | null = null;
  readonly implementation: string;
  readonly filterLayout: FilterLayout;
  readonly blockedPadding: number | null;

  /**
   * `layout`: force a filter layout (tests); default {@linkcode preferredLayout}.
   * `copies`: the forward's blocked filters, reordered from (and released)
   * instead of the plain filter when one is held for the filter's data.
   */
  constructor(
    readonly dnnl: OneDnn,
    g: ConvGeometry,
    layout?: FilterLayout,
    private readonly copies: FilterCopies | null = null,
  ) {
    const d = plainDescs(dnnl, g);
    const hint = hintDesc(dnnl, g);
    let pd: PrimitiveDesc | null = null;
    let made: { pd: PrimitiveDesc; blockedPadding: number | null };
    try {
      made = withFilterLayout(
        dnnl,
        g,
        DNNL.queryWeightsMd,
        (w) =>
          PrimitiveDesc.of(
            dnnl,
            (abi) => abi.convBackwardDataPd(d.src, w, d.dst, d.params, hint.handle),
          ),
        layout,
      );
      pd = made.pd;
      this.chosen = copyMd(dnnl, pd.md(DNNL.queryWeightsMd)!);
      this.weights = new Relayout(dnnl, d.weights, this.chosen, "toChosen");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.diffDst, md: d.dst },
        { arg: ARG.weights, md: this.chosen },
        { arg: ARG.diffSrc, md: d.src },
      ]);
      ({
        implementation: this.implementation,
        filterLayout: this.filterLayout,
        blockedPadding: this.blockedPadding,
      } = describe(made, this.weights));
    } finally {
      pd?.destroy();
      hint.destroy();
    }
  }

  /** `filterId`: the filter's data id, to find the forward's copy or skip a repeated reorder. */
  run(dy: Data, filter: Data, dx: Data, filterId?: object): void {
    const { copies, weights } = this;
    const held = filterId === undefined || weights.holds(filterId)
      ? undefined
      : copies?.get(filterId);
    const reorder = held === undefined || weights.scratch === null
      ? null
      : this.reorderFrom(held.md);
    const w = reorder === null
      ? weights.into(filter, filterId)
      : weights.fillFrom(reorder, held!.data, filterId!);
    this.conv.execute([dy, w, dx]);
    // Training reads each copy once: its buffer goes to the next step's forward.
    if (held !== undefined) copies!.drop(filterId!);
  }

  /** The reorder from layout `from` into this primitive's, or null where oneDNN has none. */
  private reorderFrom(from: MdRef): Primitive | null {
    if (this.fromCopy !== null && sameLayout(this.dnnl, this.fromCopy.from, from)) {
      return this.fromCopy.reorder;
    }
    this.fromCopy?.reorder.destroy();
    this.fromCopy = null;
    let pd: PrimitiveDesc;
    try {
      pd = PrimitiveDesc.reorder(this.dnnl, from, this.chosen);
    } catch (e) {
      if (e instanceof OneDnnUnavailable) return null;
      throw e;
    }
    try {
      const reorder = new Primitive(this.dnnl, pd, [
        { arg: ARG.src, md: from },
        { arg: ARG.dst, md: this.chosen },
      ]);
      this.fromCopy = { from: copyMd(this.dnnl, from), reorder };
      return reorder;
    } finally {
      pd.destroy();
    }
  }

  destroy(): void {
    this.conv.destroy();
    this.weights.destroy();
    this.fromCopy?.reorder.destroy();
  }
}

/** Filter gradient `dw` from `x` and `dy`. */
export class ConvBackwardWeights implements ConvPrimitive {
  private readonly conv: Primitive;
  private readonly weights: Relayout;
  /** The layout the filter gradient comes out in. */
  readonly chosen: MdRef;
  readonly implementation: string;
  readonly filterLayout: FilterLayout;
  readonly blockedPadding: number | null;

  /** `layout`: force a filter layout (tests); default {@linkcode preferredLayout}. */
  constructor(dnnl: OneDnn, g: ConvGeometry, layout?: FilterLayout) {
    const d = plainDescs(dnnl, g);
    const hint = hintDesc(dnnl, g);
    let pd: PrimitiveDesc | null = null;
    let made: { pd: PrimitiveDesc; blockedPadding: number | null };
    try {
      made = withFilterLayout(
        dnnl,
        g,
        DNNL.queryDiffWeightsMd,
        (w) =>
          PrimitiveDesc.of(
            dnnl,
            (abi) => abi.convBackwardWeightsPd(d.src, w, d.dst, d.params, hint.handle),
          ),
        layout,
      );
      pd = made.pd;
      this.chosen = copyMd(dnnl, pd.md(DNNL.queryDiffWeightsMd)!);
      this.weights = new Relayout(dnnl, d.weights, this.chosen, "toPlain");
      this.conv = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: d.src },
        { arg: ARG.diffDst, md: d.dst },
        { arg: ARG.diffWeights, md: this.chosen },
      ]);
      ({
        implementation: this.implementation,
        filterLayout: this.filterLayout,
        blockedPadding: this.blockedPadding,
      } = describe(made, this.weights));
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
  private readonly crops = new Map<string, CroppedFilter | null>();
  /** The forward's blocked filters, for backward-data and repeated forwards. */
  readonly copies = new FilterCopies();

  constructor(private readonly dnnl: OneDnn) {}

  forwardFor(g: ConvGeometry, bias: boolean, relu: boolean): ConvForward {
    return this.forward.get(
      `${key(g)}|${bias}|${relu}`,
      () => new ConvForward(this.dnnl, g, bias, relu, undefined, this.copies),
    );
  }

  backwardDataFor(g: ConvGeometry): ConvBackwardData {
    return this.data.get(
      key(g),
      () => new ConvBackwardData(this.dnnl, g, undefined, this.copies),
    );
  }

  backwardWeightsFor(g: ConvGeometry): ConvBackwardWeights {
    return this.weights.get(key(g), () => new ConvBackwardWeights(this.dnnl, g));
  }

  /**
   * The crop that drops the dead taps of `g` (lib/kernels/onednn/cropped_filter.ts),
   * or null when all are live; the primitives are then asked for its geometry.
   */
  cropFor(g: ConvGeometry): CroppedFilter | null {
    const k = key(g);
    let crop = this.crops.get(k);
    if (crop === undefined) this.crops.set(k, crop = CroppedFilter.of(g));
    return crop;
  }

  /** Geometries seen that run cropped (have dead taps). */
  get croppedGeometries(): number {
    let n = 0;
    for (const crop of this.crops.values()) if (crop !== null) n++;
    return n;
  }

  /** Cached primitives, all directions. */
  get size(): number {
    return this.forward.size + this.data.size + this.weights.size;
  }

  clear(): void {
    this.forward.clear();
    this.data.clear();
    this.weights.clear();
    this.crops.clear();
    this.copies.clear();
  }
}
