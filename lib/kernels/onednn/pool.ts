/**
 * Max and average pooling and their gradients on oneDNN, NHWC on the wasm
 * heap. Padding is excluded as TensorFlow excludes it (max ignores padded
 * cells, average divides by the cells inside the image). The max-pool
 * gradient reruns the forward pass for oneDNN's workspace (where each
 * maximum was) rather than keeping it between kernels: TF.js hands
 * `MaxPoolGrad` the input, and one pooling pass costs far less than the
 * scalar routing it replaces.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OneDnn } from "./library.ts";
import {
  ARG,
  byteSize,
  type Data,
  dims,
  DNNL,
  memoryDesc,
  Primitive,
  PrimitiveCache,
  PrimitiveDesc,
} from "./primitive.ts";

/** Pooling geometry, NHWC. */
export interface PoolGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

/** The geometry TF.js computes, or null when oneDNN is not used for it. */
export function poolGeometry(
  xShape: readonly number[],
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: tf.MaxPoolAttrs["pad"],
  dimRoundingMode: "floor" | "round" | "ceil" | undefined,
): PoolGeometry | null {
  const info = tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g: PoolGeometry = {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    channels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    padBottom: info.padInfo.bottom,
    padRight: info.padInfo.right,
  };
  const expected = (i: number, k: number, p: number, s: number) => Math.floor((i - k + p) / s) + 1;
  if (
    g.batch === 0 || g.channels === 0 || g.outHeight <= 0 || g.outWidth <= 0 ||
    expected(g.inHeight, g.filterHeight, g.padTop + g.padBottom, g.strideHeight) !==
      g.outHeight ||
    expected(g.inWidth, g.filterWidth, g.padLeft + g.padRight, g.strideWidth) !== g.outWidth ||
    // oneDNN requires each window to overlap the image.
    g.padTop >= g.filterHeight || g.padBottom >= g.filterHeight ||
    g.padLeft >= g.filterWidth || g.padRight >= g.filterWidth
  ) return null;
  return g;
}

type Kind = "max" | "avg";

function descs(dnnl: OneDnn, g: PoolGeometry, kind: Kind) {
  return {
    src: memoryDesc(dnnl, [g.batch, g.channels, g.inHeight, g.inWidth], "nhwc"),
    dst: memoryDesc(dnnl, [g.batch, g.channels, g.outHeight, g.outWidth], "nhwc"),
    params: {
      strides: dims([g.strideHeight, g.strideWidth]),
      kernel: dims([g.filterHeight, g.filterWidth]),
      padL: dims([g.padTop, g.padLeft]),
      padR: dims([g.padBottom, g.padRight]),
      alg: kind,
    },
  };
}

/** Forward pooling (inference: no workspace). */
export class PoolForward {
  private readonly pool: Primitive;

  constructor(dnnl: OneDnn, g: PoolGeometry, kind: Kind) {
    const d = descs(dnnl, g, kind);
    const pd = PrimitiveDesc.of(
      dnnl,
      (abi) => abi.poolForwardPd("inference", d.src, d.dst, d.params),
    );
    try {
      this.pool = new Primitive(dnnl, pd, [{ arg: ARG.src, md: d.src }, {
        arg: ARG.dst,
        md: d.dst,
      }]);
    } finally {
      pd.destroy();
    }
  }

  run(x: Data, y: Data): void {
    this.pool.execute([x, y]);
  }

  destroy(): void {
    this.pool.destroy();
  }
}

/** The gradient of pooling; for max, with the forward pass that finds the maxima. */
export class PoolBackward {
  private readonly forward: Primitive | null = null;
  private readonly backward: Primitive;
  /** Forward output and workspace of the max-pool rerun, which oneDNN writes and reads. */
  private readonly scratchDst: Uint8Array | null = null;
  private readonly workspace: Uint8Array | null = null;

  constructor(dnnl: OneDnn, g: PoolGeometry, readonly kind: Kind) {
    const d = descs(dnnl, g, kind);
    const fpd = PrimitiveDesc.of(
      dnnl,
      (abi) => abi.poolForwardPd("training", d.src, d.dst, d.params),
    );
    let bpd: PrimitiveDesc | null = null;
    try {
      bpd = PrimitiveDesc.of(dnnl, (abi) => abi.poolBackwardPd(d.src, d.dst, d.params, fpd.handle));
      if (kind === "max") {
        const ws = fpd.md(DNNL.queryWorkspaceMd)!;
        this.workspace = new Uint8Array(byteSize(dnnl, ws));
        this.scratchDst = new Uint8Array(byteSize(dnnl, d.dst));
        this.forward = new Primitive(dnnl, fpd, [
          { arg: ARG.src, md: d.src },
          { arg: ARG.dst, md: d.dst },
          { arg: ARG.workspace, md: ws },
        ]);
        this.backward = new Primitive(dnnl, bpd, [
          { arg: ARG.diffDst, md: d.dst },
          { arg: ARG.workspace, md: ws },
          { arg: ARG.diffSrc, md: d.src },
        ]);
      } else {
        this.backward = new Primitive(dnnl, bpd, [
          { arg: ARG.diffDst, md: d.dst },
          { arg: ARG.diffSrc, md: d.src },
        ]);
      }
    } finally {
      bpd?.destroy();
      fpd.destroy();
    }
  }

  /** `x` (the forward input) is needed for max pooling only. */
  run(x: Data | null, dy: Data, dx: Data): void {
    if (this.forward !== null) {
      this.forward.execute([x!, this.scratchDst!, this.workspace!]);
      this.backward.execute([dy, this.workspace!, dx]);
    } else {
      this.backward.execute([dy, dx]);
    }
  }

  destroy(): void {
    this.forward?.destroy();
    this.backward.destroy();
  }
}

/** The pooling primitives of one process, by direction, kind and geometry. */
export class PoolPrimitives {
  private readonly forward = new PrimitiveCache<PoolForward>();
  private readonly backward = new PrimitiveCache<PoolBackward>();

  constructor(private readonly dnnl: OneDnn) {}

  forwardFor(g: PoolGeometry, kind: Kind): PoolForward {
    return this.forward.get(
      `${kind}|${Object.values(g).join(",")}`,
      () => new PoolForward(this.dnnl, g, kind),
    );
  }

  backwardFor(g: PoolGeometry, kind: Kind): PoolBackward {
    return this.backward.get(
      `${kind}|${Object.values(g).join(",")}`,
      () => new PoolBackward(this.dnnl, g, kind),
    );
  }

  get size(): number {
    return this.forward.size + this.backward.size;
  }

  clear(): void {
    this.forward.clear();
    this.backward.clear();
  }
}
