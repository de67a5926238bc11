/**
 * Blocked copies of filters, by the TF.js data id of the filter they were
 * reordered from, shared by the forward and backward-data convolutions.
 *
 * Training reorders every filter in the forward pass and, with new weights
 * every step, again for backward-data, into another blocked layout. With
 * the forward's copy kept until backward-data of the same filter data takes
 * it, that second reorder runs blocked-to-blocked (oneDNN's `jit:blk`,
 * about twice as fast as from `hwio`), and inference reuses each filter's
 * copy over batches. TF.js never writes a tensor's data after its kernel
 * made it (optimizers write new weights into fresh data), so a copy keyed
 * by data id is never stale.
 *
 * @module
 */
import type { MdRef } from "./abi.ts";

/** One filter's copy: its layout (a memory descriptor) and data. */
export interface FilterCopy {
  readonly md: MdRef;
  readonly data: Uint8Array;
}

/**
 * Copies held up to `capacity` bytes (the least recently used dropped
 * first: a copy whose filter was freed is never asked for again), and the
 * buffers of copies done with kept, up to `capacity` bytes more, for reuse
 * by size, so a training step allocates none.
 */
export class FilterCopies {
  private readonly held = new Map<object, FilterCopy>();
  private readonly spare = new Map<number, Uint8Array[]>();
  private heldBytes = 0;
  private spareBytes = 0;

  /** Default 256 MiB: three times ResNet-34's filters (85 MB). */
  constructor(readonly capacity = 256 * 2 ** 20) {}

  /** The copy of filter data `id`, if one is held (marked recently used). */
  get(id: object): FilterCopy | undefined {
    const copy = this.held.get(id);
    if (copy !== undefined) {
      this.held.delete(id);
      this.held.set(id, copy);
    }
    return copy;
  }

  /**
   * Holds a copy of filter data `id` in layout `md`, `bytes` long, filled by
   * `fill` (a buffer recycled or new); returns its data.
   */
  put(id: object, md: MdRef, bytes: number, fill: (out: Uint8Array) => void): Uint8Array {
    this.drop(id);
    const list = this.spare.get(bytes);
    const reused = list?.pop();
    if (list?.length === 0) this.spare.delete(bytes);
    if (reused !== undefined) this.spareBytes -= bytes;
    const data = reused ?? new Uint8Array(bytes);
    fill(data);
    this.held.set(id, { md, data });
    this.heldBytes += bytes;
    while (this.heldBytes > this.capacity && this.held.size > 1) {
      this.drop(this.held.keys().next().value!);
    }
    return data;
  }

  /** Removes the copy of filter data `id` and recycles its buffer (a no-op when none is held). */
  drop(id: object): void {
    const copy = this.held.get(id);
    if (copy === undefined) return;
    this.held.delete(id);
    this.heldBytes -= copy.data.byteLength;
    this.recycle(copy.data);
  }

  /** Bytes held in copies, and in spare buffers. */
  get bytes(): { held: number; spare: number } {
    return { held: this.heldBytes, spare: this.spareBytes };
  }

  /** Drops every copy and spare buffer. */
  clear(): void {
    this.held.clear();
    this.spare.clear();
    this.heldBytes = 0;
    this.spareBytes = 0;
  }

  private recycle(data: Uint8Array): void {
    // Spare buffers are bounded like copies: past the capacity they go to the GC.
    if (this.spareBytes + data.byteLength > this.capacity) return;
    const list = this.spare.get(data.byteLength) ?? [];
    list.push(data);
    this.spare.set(data.byteLength, list);
    this.spareBytes += data.byteLength;
  }
}
