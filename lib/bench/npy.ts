/**
 * Writing NumPy `.npy` files (format version 1.0), so that a Python peer
 * reads exactly the pixels the toolkit's reader serves.
 *
 * @module
 */

/** Element types this writer supports, by NumPy `descr`. */
const DESCR = { uint8: "|u1", float32: "<f4", int32: "<i4" } as const;

/** An array to write: its data (C order) and shape. */
export type NpyArray =
  | { dtype: "uint8"; data: Uint8Array; shape: readonly number[] }
  | { dtype: "float32"; data: Float32Array; shape: readonly number[] }
  | { dtype: "int32"; data: Int32Array; shape: readonly number[] };

/**
 * The `.npy` header of an array: magic, version 1.0, the header length,
 * and the dict, padded with spaces and a newline so the data starts at a
 * multiple of 64 bytes, as NumPy writes it.
 */
export function npyHeader(dtype: NpyArray["dtype"], shape: readonly number[]): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`npy: bad shape (${shape.join(", ")})`);
  }
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': (${dims}), }`;
  const prefix = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - prefix - 1, " ") + "\n";
  if (header.length > 0xffff) throw new Error("npy: header too long for format 1.0");
  const out = new Uint8Array(total);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  out.set(new TextEncoder().encode(header), prefix);
  return out;
}

/** The bytes of a whole `.npy` file holding `array`. */
export function encodeNpy(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw new Error(
      `npy: ${array.data.length} values do not fill shape (${array.shape.join(", ")})`,
    );
  }
  const header = npyHeader(array.dtype, array.shape);
  const body = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}
