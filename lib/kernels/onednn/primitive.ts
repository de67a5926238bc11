/**
 * oneDNN primitives made once per geometry and run on memory the caller
 * names per call: a primitive owns its descriptor, one `dnnl_memory` per
 * argument (with no buffer of its own) and the argument list, and points
 * each memory at the call's data (the wasm heap, or a native scratch buffer
 * the primitive keeps) just before executing.
 *
 * Hazard: oneDNN keeps raw pointers. Every buffer it may read after a call
 * returns (descriptors, argument lists, scratch) is held by the object that
 * uses it, never left to the garbage collector.
 *
 * @module
 */
import { check, handleOf, type OneDnn } from "./library.ts";
import { dims, type DnnlAbi, type LayoutTag, type MdRef, pointerOf } from "./abi.ts";

export { dims, type LayoutTag, type MdRef };

/** `dnnl_query_t` values, the same in 2.x and 3.x (dnnl_types.h). */
export const DNNL = {
  queryImplInfoStr: 8,
  queryExecArgMd: 255,
  querySrcMd: 129,
  queryDiffSrcMd: 130,
  queryWeightsMd: 131,
  queryDiffWeightsMd: 132,
  queryDstMd: 133,
  queryDiffDstMd: 134,
  queryWorkspaceMd: 135,
} as const;

/** `DNNL_ARG_*` values (dnnl_types.h). */
export const ARG = {
  src: 1,
  dst: 17,
  weights: 33,
  bias: 41,
  mean: 49,
  variance: 50,
  scale: 51,
  shift: 52,
  workspace: 64,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  diffScale: 255,
  diffShift: 256,
} as const;

/** A new f32 memory descriptor of logical `shape` (oneDNN's dims order) in layout `tag`. */
export function memoryDesc(dnnl: OneDnn, shape: readonly number[], tag: LayoutTag): MdRef {
  return dnnl.abi.memoryDesc(shape, tag);
}

/** A copy of memory descriptor `md` that outlives the primitive descriptor it may live in. */
export function copyMd(dnnl: OneDnn, md: MdRef): MdRef {
  return dnnl.abi.copyMd(md);
}

/** Whether two memory descriptors describe the same layout. */
export function sameLayout(dnnl: OneDnn, a: MdRef, b: MdRef): boolean {
  return dnnl.api.dnnl_memory_desc_equal(pointerOf(a), pointerOf(b)) !== 0;
}

/** Bytes a memory of descriptor `md` takes. */
export function byteSize(dnnl: OneDnn, md: MdRef): number {
  return Number(dnnl.api.dnnl_memory_desc_get_size(pointerOf(md)));
}

/** A primitive descriptor (`dnnl_primitive_desc_t`), to be destroyed by its owner. */
export class PrimitiveDesc {
  private constructor(readonly dnnl: OneDnn, readonly handle: Deno.PointerObject) {}

  /**
   * The descriptor `make` creates through the version layer
   * (`dnnl.abi.*Pd`), e.g. `PrimitiveDesc.of(dnnl, (abi) => abi.reluForwardPd(md))`.
   */
  static of(dnnl: OneDnn, make: (abi: DnnlAbi) => Deno.PointerObject): PrimitiveDesc {
    return new PrimitiveDesc(dnnl, make(dnnl.abi));
  }

  /** A reorder from layout `from` to layout `to`. */
  static reorder(dnnl: OneDnn, from: MdRef, to: MdRef): PrimitiveDesc {
    const out = new BigUint64Array(1);
    check(
      dnnl.api.dnnl_reorder_primitive_desc_create(
        out,
        pointerOf(from),
        dnnl.engine,
        pointerOf(to),
        dnnl.engine,
        null,
      ),
      "dnnl_reorder_primitive_desc_create",
    );
    return new PrimitiveDesc(dnnl, handleOf(out, "dnnl_reorder_primitive_desc_create"));
  }

  /**
   * The implementation oneDNN picked (`brgconv:avx512_core`, `x64:gemm:jit`,
   * `ref:any`, ...), as `DNNL_VERBOSE` names it.
   */
  get implementation(): string {
    const out = new BigUint64Array(1);
    check(
      this.dnnl.api.dnnl_primitive_desc_query(this.handle, DNNL.queryImplInfoStr, 0, out),
      "dnnl_primitive_desc_query(impl_info_str)",
    );
    const p = Deno.UnsafePointer.create(out[0]);
    return p === null ? "" : Deno.UnsafePointerView.getCString(p);
  }

  /** The memory descriptor the primitive chose for a query (`DNNL.query*Md`), or null. */
  md(query: number, index = 0): Deno.PointerObject | null {
    return this.dnnl.api.dnnl_primitive_desc_query_md(this.handle, query, index);
  }

  destroy(): void {
    this.dnnl.api.dnnl_primitive_desc_destroy(this.handle);
  }
}

/** A data buffer the caller hands to {@linkcode Primitive.execute}: a heap view or scratch. */
export type Data = ArrayBufferView;

/**
 * A created primitive and its argument memories. `args` pairs each
 * `DNNL_ARG_*` with the layout its data has; {@linkcode execute} takes the
 * data in the same order.
 */
export class Primitive {
  private readonly handle: Deno.PointerObject;
  private readonly memories: Deno.PointerObject[] = [];
  /** The `dnnl_exec_arg_t` array: `{ int arg; dnnl_memory_t memory; }`, 16 bytes each. */
  private readonly argList: Uint8Array;

  constructor(
    readonly dnnl: OneDnn,
    pd: PrimitiveDesc,
    args: readonly { arg: number; md: MdRef }[],
  ) {
    const out = new BigUint64Array(1);
    check(dnnl.api.dnnl_primitive_create(out, pd.handle), "dnnl_primitive_create");
    this.handle = handleOf(out, "dnnl_primitive_create");
    this.argList = new Uint8Array(16 * args.length);
    const view = new DataView(this.argList.buffer);
    args.forEach(({ arg, md }, i) => {
      check(
        dnnl.api.dnnl_memory_create(out, pointerOf(md), dnnl.engine, null),
        "dnnl_memory_create",
      );
      const memory = handleOf(out, "dnnl_memory_create");
      this.memories.push(memory);
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(memory)), true);
    });
  }

  /**
   * Runs on `data` (one buffer per argument, in the constructor's order).
   * Views of the wasm heap must be taken after the call's last allocation.
   */
  execute(data: readonly Data[]): void {
    const { api, stream } = this.dnnl;
    for (let i = 0; i < this.memories.length; i++) {
      check(
        api.dnnl_memory_set_data_handle(this.memories[i], Deno.UnsafePointer.of(data[i])),
        "dnnl_memory_set_data_handle",
      );
    }
    check(
      api.dnnl_primitive_execute(this.handle, stream, this.memories.length, this.argList),
      "dnnl_primitive_execute",
    );
    check(api.dnnl_stream_wait(stream), "dnnl_stream_wait");
  }

  destroy(): void {
    for (const m of this.memories) this.dnnl.api.dnnl_memory_destroy(m);
    this.dnnl.api.dnnl_primitive_destroy(this.handle);
  }
}

/**
 * Primitives by geometry key, least recently used dropped past `capacity`
 * (a model has a few dozen geometries; the bound keeps a stream of new
 * shapes from growing native memory without end).
 */
export class PrimitiveCache<T extends { destroy(): void }> {
  private readonly entries = new Map<string, T>();
  constructor(private readonly capacity = 256) {}

  /** The entry for `key`, made by `make` on first use. */
  get(key: string, make: () => T): T {
    let entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry;
    }
    entry = make();
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) {
      const [oldest, old] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      old.destroy();
    }
    return entry;
  }

  /** Number of cached entries. */
  get size(): number {
    return this.entries.size;
  }

  /** Destroys every entry. */
  clear(): void {
    for (const e of this.entries.values()) e.destroy();
    this.entries.clear();
  }
}

/**
 * Moves data between a plain layout and the (blocked) one a primitive
 * chose, through a scratch buffer this object owns; a no-op when they match.
 */
export class Relayout {
  /** Scratch in the primitive's layout, or null when the layouts match. */
  readonly scratch: Uint8Array | null;
  private readonly reorder: Primitive | null;

  constructor(dnnl: OneDnn, plain: MdRef, chosen: MdRef, direction: "toChosen" | "toPlain") {
    if (sameLayout(dnnl, plain, chosen)) {
      this.scratch = null;
      this.reorder = null;
      return;
    }
    this.scratch = new Uint8Array(byteSize(dnnl, chosen));
    const [from, to] = direction === "toChosen" ? [plain, chosen] : [chosen, plain];
    const pd = PrimitiveDesc.reorder(dnnl, from, to);
    try {
      this.reorder = new Primitive(dnnl, pd, [{ arg: ARG.src, md: from }, {
        arg: ARG.dst,
        md: to,
      }]);
    } finally {
      pd.destroy();
    }
  }

  /** The tensor data (TF.js data id) the scratch holds, if any. */
  private held: object | null = null;

  /**
   * Plain data -> the buffer the primitive reads (the scratch, or `plain`
   * itself). With `dataId`, the tensor data `plain` belongs to, a second call
   * for the same data skips the reorder: TF.js never writes a tensor's data
   * after its kernel made it (the optimizers write new weights into fresh
   * data), so inference reorders each filter once.
   */
  into(plain: Data, dataId?: object): Data {
    if (this.reorder === null) return plain;
    if (dataId !== undefined && dataId === this.held) return this.scratch!;
    this.reorder.execute([plain, this.scratch!]);
    this.held = dataId ?? null;
    return this.scratch!;
  }

  /** Whether the scratch holds tensor data `dataId` (see {@linkcode into}). */
  holds(dataId: object | undefined): boolean {
    return dataId !== undefined && dataId === this.held;
  }

  /** Runs `reorder` from `src` into the scratch, which then holds tensor data `dataId`. */
  fillFrom(reorder: Primitive, src: Data, dataId: object): Data {
    reorder.execute([src, this.scratch!]);
    this.held = dataId;
    return this.scratch!;
  }

  /** Reorders `plain` into `out` (a buffer of the scratch's size), not touching the scratch. */
  reorderInto(plain: Data, out: Data): void {
    this.reorder!.execute([plain, out]);
  }

  /** Where the primitive writes: the scratch, or `plain` itself. */
  target(plain: Data): Data {
    return this.scratch ?? plain;
  }

  /** After the primitive wrote {@linkcode target}: the scratch -> `plain`. */
  outOf(plain: Data): void {
    if (this.reorder !== null) this.reorder.execute([this.scratch!, plain]);
  }

  destroy(): void {
    this.reorder?.destroy();
  }
}
