/**
 * A convolution whose filter has dead taps (taps that meet only zero
 * padding, lib/kernels/conv_geometry.ts {@linkcode liveTaps}) run as the
 * smaller convolution without them: at 32 px, ResNet-34's last stage runs
 * 3x3 "same" convolutions on 1x1 maps, where eight of the nine taps of its
 * 512x512 filters (8 of every 9 multiply-adds, and of every filter byte
 * reordered) only ever multiply zeros.
 *
 * TF.js' filters are `hwio` (`[kh, kw, in, out]`, `out` fastest), so the
 * live block is contiguous there when it is one row of taps or whole rows:
 * then the cropped filter is a view, else a gathered copy. The filter
 * gradient of a dead tap is exactly zero (its inputs are all padding); the
 * live block's is the cropped convolution's.
 *
 * @module
 */
import {
  allTapsLive,
  type ConvGeometry,
  cropTaps,
  type LiveTaps,
  liveTaps,
} from "../conv_geometry.ts";

/** The cropped form of one convolution geometry. */
export class CroppedFilter {
  /** The geometry without the dead taps (same batch, input and output sizes). */
  readonly geometry: ConvGeometry;
  private readonly taps: LiveTaps;
  /** Floats of one tap (`in * out`). */
  private readonly tap: number;
  private readonly contiguous: boolean;
  private gathered: Float32Array | null = null;
  private readonly ids = new WeakMap<object, object>();

  /**
   * The crop of `g`, or null when every tap is live (nothing to gain) or
   * none is (no smaller convolution: the full one computes the bias-only
   * output).
   */
  static of(g: ConvGeometry): CroppedFilter | null {
    const taps = liveTaps(g);
    const none = taps.height === 0 || taps.width === 0;
    return none || allTapsLive(g, taps) ? null : new CroppedFilter(g, taps);
  }

  private constructor(private readonly full: ConvGeometry, taps: LiveTaps) {
    this.taps = taps;
    this.geometry = cropTaps(full, taps);
    this.tap = full.inChannels * full.outChannels;
    this.contiguous = taps.height === 1 || taps.width === full.filterWidth;
  }

  /** Float offset in the full `hwio` filter of the live block's row `r` (0-based in the block). */
  private rowStart(r: number): number {
    return ((this.taps.top + r) * this.full.filterWidth + this.taps.left) * this.tap;
  }

  /** Floats of the cropped filter. */
  get size(): number {
    return this.taps.height * this.taps.width * this.tap;
  }

  /**
   * The key under which the cropped copy of filter data `dataId` is cached
   * (lib/kernels/onednn/filter_copies.ts): one per filter data and crop,
   * so a blocked copy made for this crop is never taken for the full
   * filter, or for another crop of it, whose dimensions differ.
   */
  idOf(dataId: object): object {
    let id = this.ids.get(dataId);
    if (id === undefined) this.ids.set(dataId, id = {});
    return id;
  }

  /**
   * The cropped `hwio` filter of `filter` (the full one): a view of it, or
   * its live taps gathered into a buffer this object reuses (valid until
   * the next call).
   */
  filter(filter: Float32Array): Float32Array {
    if (this.contiguous) return filter.subarray(this.rowStart(0), this.rowStart(0) + this.size);
    const out = this.gathered ??= new Float32Array(this.size);
    const row = this.taps.width * this.tap;
    for (let r = 0; r < this.taps.height; r++) {
      out.set(filter.subarray(this.rowStart(r), this.rowStart(r) + row), r * row);
    }
    return out;
  }

  /**
   * Fills `gradient` (the full filter's) from `write`, which computes the
   * cropped filter's gradient into the buffer it is given: the live block
   * from it, zeros at every dead tap.
   */
  gradient(gradient: Float32Array, write: (cropped: Float32Array) => void): void {
    if (this.contiguous) {
      const [start, end] = [this.rowStart(0), this.rowStart(0) + this.size];
      write(gradient.subarray(start, end));
      gradient.fill(0, 0, start);
      gradient.fill(0, end);
      return;
    }
    const block = this.gathered ??= new Float32Array(this.size);
    write(block);
    gradient.fill(0);
    const row = this.taps.width * this.tap;
    for (let r = 0; r < this.taps.height; r++) {
      gradient.set(block.subarray(r * row, (r + 1) * row), this.rowStart(r));
    }
  }
}
