/**
 * The ReLU gradient on oneDNN: `dx = x > 0 ? dy : 0` in one pass over the
 * wasm heap, where TF.js builds it from three kernels (`Step`, `Cast`,
 * `Multiply`) and two temporary tensors. Any shape: the data is seen as
 * one flat vector. One OpenMP thread, as for batch norm: the pass is
 * memory-bound and most of ResNet's activations are small, where waking a
 * second thread costs more than it gains.
 *
 * @module
 */
import { type OneDnn, singleThreaded } from "./library.ts";
import {
  ARG,
  type Data,
  memoryDesc,
  Primitive,
  PrimitiveCache,
  PrimitiveDesc,
} from "./primitive.ts";

/** `dx` from `x` and `dy`, all of `size` float32 values. */
export class ReluBackward {
  private readonly primitive: Primitive;

  constructor(dnnl: OneDnn, size: number) {
    const data = memoryDesc(dnnl, [size], "a");
    const hint = PrimitiveDesc.of(dnnl, (abi) => abi.reluForwardPd(data));
    let pd: PrimitiveDesc | null = null;
    try {
      pd = PrimitiveDesc.of(dnnl, (abi) => abi.reluBackwardPd(data, hint.handle));
      this.primitive = new Primitive(dnnl, pd, [
        { arg: ARG.src, md: data },
        { arg: ARG.diffDst, md: data },
        { arg: ARG.diffSrc, md: data },
      ]);
    } finally {
      pd?.destroy();
      hint.destroy();
    }
  }

  run(x: Data, dy: Data, dx: Data): void {
    singleThreaded(() => this.primitive.execute([x, dy, dx]));
  }

  destroy(): void {
    this.primitive.destroy();
  }
}

/** ReLU-gradient primitives by size. */
export class EltwisePrimitives {
  private readonly relu = new PrimitiveCache<ReluBackward>();
  constructor(private readonly dnnl: OneDnn) {}

  reluBackwardFor(size: number): ReluBackward {
    return this.relu.get(String(size), () => new ReluBackward(this.dnnl, size));
  }

  get size(): number {
    return this.relu.size;
  }

  clear(): void {
    this.relu.clear();
  }
}
