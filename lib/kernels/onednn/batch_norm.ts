/**
 * Batch normalisation on oneDNN, NHWC on the wasm heap. In training mode
 * the forward pass (output, batch mean and biased variance) is one call,
 * and the backward pass (input, scale and shift gradients, through the
 * batch statistics) is one call; in inference mode (moving statistics) the
 * pass is one call. Both run on one OpenMP thread
 * ({@linkcode singleThreaded}): they are memory-bound, and their barriers
 * cost far more than a second thread gains on a shared machine.
 *
 * @module
 */
import { type OneDnn, singleThreaded } from "./library.ts";
import {
  ARG,
  type Data,
  type MdRef,
  memoryDesc,
  Primitive,
  PrimitiveCache,
  PrimitiveDesc,
} from "./primitive.ts";

/** `[batch, height, width, channels]` and epsilon. */
export interface BatchNormGeometry {
  shape: readonly [number, number, number, number];
  epsilon: number;
}

function descs(dnnl: OneDnn, g: BatchNormGeometry) {
  const [n, h, w, c] = g.shape;
  return {
    data: memoryDesc(dnnl, [n, c, h, w], "nhwc"),
    channel: memoryDesc(dnnl, [c], "a"),
  };
}

/** The forward pass: training (batch statistics computed) or inference (statistics given). */
function forwardDesc(
  dnnl: OneDnn,
  g: BatchNormGeometry,
  data: MdRef,
  mode: "training" | "inference",
): PrimitiveDesc {
  return PrimitiveDesc.of(dnnl, (abi) => abi.batchNormForwardPd(mode, data, g.epsilon));
}

/** Both directions of one geometry. */
export class BatchNormPrimitives {
  private readonly forward: Primitive;
  private readonly backward: Primitive;
  private readonly backwardReadsShift: boolean;

  constructor(dnnl: OneDnn, g: BatchNormGeometry) {
    this.backwardReadsShift = dnnl.abi.batchNormBackwardReadsShift;
    const d = descs(dnnl, g);
    const fpd = forwardDesc(dnnl, g, d.data, "training");
    let bpd: PrimitiveDesc | null = null;
    try {
      this.forward = new Primitive(dnnl, fpd, [
        { arg: ARG.src, md: d.data },
        { arg: ARG.scale, md: d.channel },
        { arg: ARG.shift, md: d.channel },
        { arg: ARG.dst, md: d.data },
        { arg: ARG.mean, md: d.channel },
        { arg: ARG.variance, md: d.channel },
      ]);
      bpd = PrimitiveDesc.of(dnnl, (abi) => abi.batchNormBackwardPd(d.data, g.epsilon, fpd.handle));
      this.backward = new Primitive(dnnl, bpd, [
        { arg: ARG.src, md: d.data },
        { arg: ARG.mean, md: d.channel },
        { arg: ARG.variance, md: d.channel },
        { arg: ARG.diffDst, md: d.data },
        { arg: ARG.scale, md: d.channel },
        // oneDNN 2.x lists the shift among the backward inputs (unused by
        // the math); 3.x refuses it there (invalid arguments).
        ...(this.backwardReadsShift ? [{ arg: ARG.shift, md: d.channel }] : []),
        { arg: ARG.diffSrc, md: d.data },
        { arg: ARG.diffScale, md: d.channel },
        { arg: ARG.diffShift, md: d.channel },
      ]);
    } finally {
      bpd?.destroy();
      fpd.destroy();
    }
  }

  /** y, mean and variance (biased) from x, gamma and beta. */
  runForward(x: Data, gamma: Data, beta: Data, y: Data, mean: Data, variance: Data): void {
    singleThreaded(() => this.forward.execute([x, gamma, beta, y, mean, variance]));
  }

  /** dx, dgamma and dbeta, through the batch statistics. */
  runBackward(
    x: Data,
    mean: Data,
    variance: Data,
    dy: Data,
    gamma: Data,
    beta: Data,
    dx: Data,
    dgamma: Data,
    dbeta: Data,
  ): void {
    const inputs = this.backwardReadsShift
      ? [x, mean, variance, dy, gamma, beta]
      : [x, mean, variance, dy, gamma];
    singleThreaded(() => this.backward.execute([...inputs, dx, dgamma, dbeta]));
  }

  destroy(): void {
    this.forward.destroy();
    this.backward.destroy();
  }
}

/** Inference mode: `y = gamma (x - mean) / sqrt(variance + epsilon) + beta` with given statistics. */
export class BatchNormInference {
  private readonly forward: Primitive;

  constructor(dnnl: OneDnn, g: BatchNormGeometry) {
    const d = descs(dnnl, g);
    const pd = forwardDesc(dnnl, g, d.data, "inference");
    try {
      this.forward = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: d.data },
        { arg: ARG.mean, md: d.channel },
        { arg: ARG.variance, md: d.channel },
        { arg: ARG.scale, md: d.channel },
        { arg: ARG.shift, md: d.channel },
        { arg: ARG.dst, md: d.data },
      ]);
    } finally {
      pd.destroy();
    }
  }

  /** y from x, the statistics, gamma and beta. */
  run(x: Data, mean: Data, variance: Data, gamma: Data, beta: Data, y: Data): void {
    singleThreaded(() => this.forward.execute([x, mean, variance, gamma, beta, y]));
  }

  destroy(): void {
    this.forward.destroy();
  }
}

/** Batch-norm primitives by geometry. */
export class BatchNormCache {
  private readonly training = new PrimitiveCache<BatchNormPrimitives>();
  private readonly inference = new PrimitiveCache<BatchNormInference>();
  constructor(private readonly dnnl: OneDnn) {}

  /** Training mode, both directions. */
  for(g: BatchNormGeometry): BatchNormPrimitives {
    return this.training.get(
      `${g.shape.join(",")}|${g.epsilon}`,
      () => singleThreaded(() => new BatchNormPrimitives(this.dnnl, g)),
    );
  }

  /** Inference mode. */
  inferenceFor(g: BatchNormGeometry): BatchNormInference {
    return this.inference.get(
      `${g.shape.join(",")}|${g.epsilon}`,
      () => singleThreaded(() => new BatchNormInference(this.dnnl, g)),
    );
  }

  get size(): number {
    return this.training.size + this.inference.size;
  }

  clear(): void {
    this.training.clear();
    this.inference.clear();
  }
}
