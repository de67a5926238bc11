/**
 * The safetensors file format (Hugging Face), written and read per its
 * specification: an unsigned little-endian 64-bit header length N, N bytes
 * of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}`, padded with spaces so the data starts
 * 8-byte aligned), then the tensors' little-endian bytes back to back, with
 * offsets relative to the end of the header.
 *
 * @module
 */

/** A tensor to store: float32 values, or int64 (e.g. batch norm's `num_batches_tracked`). */
export interface SafeTensor {
  dtype: "F32" | "I64";
  shape: number[];
  data: Float32Array | BigInt64Array;
}

const BYTES = { F32: 4, I64: 8 } as const;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checked(name: string, t: SafeTensor): SafeTensor {
  const size = t.shape.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) {
    throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape}]`);
  }
  if ((t.dtype === "F32") !== (t.data instanceof Float32Array)) {
    throw new Error(`safetensors: ${name}'s data does not match dtype ${t.dtype}`);
  }
  return t;
}

function littleEndian(t: SafeTensor): Uint8Array {
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (HOST_LITTLE_ENDIAN) return raw;
  const out = new Uint8Array(raw.length);
  const view = new DataView(out.buffer);
  t.data.forEach((x: number | bigint, i: number) =>
    typeof x === "bigint" ? view.setBigInt64(i * 8, x, true) : view.setFloat32(i * 4, x, true)
  );
  return out;
}

/**
 * The bytes of a safetensors file holding `tensors` (in this order) and the
 * string `metadata`. Throws for a tensor whose data does not fit its shape.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    checked(name, t);
    const end = offset + t.data.length * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    const bytes = littleEndian(t);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** What {@linkcode decodeSafetensors} returns. */
export interface DecodedSafetensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/**
 * Reads a safetensors file's F32 and I64 tensors and its metadata; throws,
 * saying what is wrong, for a malformed file or another dtype.
 */
export function decodeSafetensors(bytes: Uint8Array, name = "<safetensors>"): DecodedSafetensors {
  const fail = (why: string): never => {
    throw new Error(`${name}: not a valid safetensors file (${why})`);
  };
  if (bytes.length < 8) fail("shorter than 8 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) fail(`header of ${n} bytes exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`header is not JSON: ${(e as Error).message}`);
  }
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, SafeTensor>();
  for (const [key, v] of Object.entries(header)) {
    if (key === "__metadata__") continue;
    const { dtype, shape, data_offsets: [a, b] } = v as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (dtype !== "F32" && dtype !== "I64") fail(`${key} has dtype ${dtype}`);
    if (!(a >= 0 && b >= a && b <= data.length)) {
      fail(`${key}'s offsets [${a}, ${b}] are out of range`);
    }
    const chunk = data.slice(a, b);
    const dv = new DataView(chunk.buffer);
    const t = dtype === "F32"
      ? Float32Array.from({ length: (b - a) / 4 }, (_, i) => dv.getFloat32(i * 4, true))
      : BigInt64Array.from({ length: (b - a) / 8 }, (_, i) => dv.getBigInt64(i * 8, true));
    tensors.set(key, checked(key, { dtype: dtype as SafeTensor["dtype"], shape, data: t }));
  }
  return { tensors, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}
