/**
 * Reading the image of a FITS file (Flexible Image Transport System, the
 * astronomers' format; FITS Standard 4.0, IAU FITS Working Group 2018):
 * the primary HDU's array, or when it has none (NAXIS = 0) the first
 * `XTENSION = 'IMAGE'` extension. Gzipped files (`.fits.gz`) are read too.
 *
 * What is read (Standard sections 3-5, 7.1):
 * - the header: 2880-byte blocks of 80-character cards up to `END`;
 * - BITPIX 8 (unsigned), 16, 32 and 64 (signed two's complement), -32 and
 *   -64 (IEEE floats), all big-endian;
 * - NAXIS1 (columns, varying fastest), NAXIS2 (rows), NAXIS3 (planes);
 *   further axes of length 1 are allowed;
 * - the physical value `BZERO + BSCALE * stored`; an integer pixel equal to
 *   `BLANK`, and a float NaN, is undefined and comes out as NaN.
 *
 * Tile-compressed images (a BINTABLE with `ZIMAGE = T`) and random groups
 * are not read; they get an error saying so. Every error is a
 * {@linkcode FitsError} naming the file and, where one is at fault, the
 * keyword.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";

/** FITS logical record length, bytes (Standard 3.1). */
export const FITS_BLOCK = 2880;
/** Header card length, characters. */
const CARD = 80;
/** Largest decompressed size read from a gzipped file (bytes), against gzip bombs. */
export const FITS_MAX_BYTES = 1 << 30;

/** A FITS file or its header is unusable; the message names the file and keyword. */
export class FitsError extends Error {
  /** `keyword` is the header keyword at fault, or null. */
  constructor(readonly file: string, readonly keyword: string | null, readonly reason: string) {
    super(`${file}: ${keyword ? `FITS keyword ${keyword}: ` : "FITS: "}${reason}`);
    this.name = "FitsError";
  }
}

/** The array of one image HDU, in physical units. */
export interface FitsImage {
  /** NAXIS1: pixels per row. */
  width: number;
  /** NAXIS2: rows. */
  height: number;
  /** NAXIS3 (1 for a 2-D image). */
  planes: number;
  /** `planes * height * width` values, plane by plane, row by row, as stored (row 0 is FITS row 1, the bottom of the sky image); NaN where undefined. */
  data: Float64Array;
  /** BITPIX of the stored values. */
  bitpix: number;
  /** Which HDU held it: 0 the primary, k the k-th extension. */
  hdu: number;
}

/** A header value: logical, number, string, or null for a keyword without one. */
export type FitsValue = boolean | number | string | null;

/** One parsed header: keyword -> value (the first occurrence), and its size in bytes. */
export interface FitsHeader {
  cards: Map<string, FitsValue>;
  /** Bytes of the header, whole blocks. */
  bytes: number;
}

/** Whether `bytes` start like a FITS file (`SIMPLE  =`). */
export function looksLikeFits(bytes: Uint8Array): boolean {
  return new TextDecoder("latin1").decode(bytes.subarray(0, 9)) === "SIMPLE  =";
}

/** Whether `bytes` start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parses a fixed- or free-format value field (Standard 4.2). */
function parseValue(file: string, key: string, field: string): FitsValue {
  const s = field.trimStart();
  if (s.startsWith("'")) {
    // A string: '' is an escaped quote; trailing spaces are not significant.
    let out = "";
    for (let i = 1; i < s.length; i++) {
      if (s[i] !== "'") out += s[i];
      else if (s[i + 1] === "'") out += s[++i];
      else return out.trimEnd();
    }
    throw new FitsError(file, key, `string value has no closing quote: ${s.trim()}`);
  }
  const text = s.split("/")[0].trim();
  if (text === "") return null;
  if (text === "T") return true;
  if (text === "F") return false;
  const x = Number(text.replace(/[dD]/, "E"));
  if (!Number.isFinite(x)) throw new FitsError(file, key, `value '${text}' is not a number`);
  return x;
}

/** Reads the header starting at `offset`; throws when it has no END before the file ends. */
export function readHeader(bytes: Uint8Array, offset: number, file: string): FitsHeader {
  const cards = new Map<string, FitsValue>();
  const latin1 = new TextDecoder("latin1");
  for (let at = offset; at + FITS_BLOCK <= bytes.length; at += FITS_BLOCK) {
    for (let c = 0; c < FITS_BLOCK; c += CARD) {
      const card = latin1.decode(bytes.subarray(at + c, at + c + CARD));
      const key = card.slice(0, 8).trimEnd();
      if (key === "END") return { cards, bytes: at + FITS_BLOCK - offset };
      if (!/^[A-Z0-9_-]*$/.test(key)) {
        throw new FitsError(
          file,
          key,
          `not a valid keyword (card ${(at + c - offset) / CARD + 1})`,
        );
      }
      if (key === "" || key === "COMMENT" || key === "HISTORY" || card.slice(8, 10) !== "= ") {
        continue;
      }
      if (!cards.has(key)) cards.set(key, parseValue(file, key, card.slice(10)));
    }
  }
  throw new FitsError(
    file,
    "END",
    `header truncated: no END card before the end of the file (${bytes.length} bytes` +
      (bytes.length % FITS_BLOCK ? `, not a whole number of ${FITS_BLOCK}-byte blocks` : "") + ")",
  );
}

function integer(h: FitsHeader, file: string, key: string, fallback?: number): number {
  const v = h.cards.get(key);
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw new FitsError(file, key, "missing");
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new FitsError(file, key, `must be an integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function real(h: FitsHeader, file: string, key: string, fallback: number): number {
  const v = h.cards.get(key);
  if (v === undefined) return fallback;
  if (typeof v !== "number") {
    throw new FitsError(file, key, `must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

const BITPIXES = [8, 16, 32, 64, -32, -64];

/** The axes and data size of an HDU's header. */
function layout(h: FitsHeader, file: string) {
  const bitpix = integer(h, file, "BITPIX");
  if (!BITPIXES.includes(bitpix)) {
    throw new FitsError(file, "BITPIX", `must be one of ${BITPIXES.join(", ")}, got ${bitpix}`);
  }
  const naxis = integer(h, file, "NAXIS");
  if (naxis < 0 || naxis > 999) {
    throw new FitsError(file, "NAXIS", `must be in [0, 999], got ${naxis}`);
  }
  const axes: number[] = [];
  for (let k = 1; k <= naxis; k++) {
    const n = integer(h, file, `NAXIS${k}`);
    if (n < 0) throw new FitsError(file, `NAXIS${k}`, `must not be negative, got ${n}`);
    axes.push(n);
  }
  const pcount = integer(h, file, "PCOUNT", 0);
  const gcount = integer(h, file, "GCOUNT", 1);
  // Random groups (NAXIS1 = 0, GROUPS = T) count axes from NAXIS2 (Standard 6).
  const counted = axes.length && axes[0] === 0 && h.cards.get("GROUPS") === true
    ? axes.slice(1)
    : axes;
  const values = naxis === 0 ? 0 : counted.reduce((a, n) => a * n, 1);
  const dataBytes = (Math.abs(bitpix) / 8) * gcount * (pcount + values);
  return { bitpix, axes, dataBytes };
}

/** Whole blocks holding `n` bytes. */
const padded = (n: number) => Math.ceil(n / FITS_BLOCK) * FITS_BLOCK;

/** The stored values of the data unit at `offset` as physical values (BZERO + BSCALE * x; BLANK -> NaN). */
function physical(
  bytes: Uint8Array,
  offset: number,
  count: number,
  h: FitsHeader,
  bitpix: number,
  file: string,
): Float64Array {
  const bscale = real(h, file, "BSCALE", 1);
  const bzero = real(h, file, "BZERO", 0);
  const blank = bitpix > 0 && h.cards.has("BLANK") ? integer(h, file, "BLANK") : null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, count * Math.abs(bitpix) / 8);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let x: number;
    switch (bitpix) {
      case 8:
        x = dv.getUint8(i);
        break;
      case 16:
        x = dv.getInt16(i * 2);
        break;
      case 32:
        x = dv.getInt32(i * 4);
        break;
      case 64: {
        const b = dv.getBigInt64(i * 8);
        x = blank !== null && b === BigInt(blank) ? NaN : Number(b);
        break;
      }
      case -32:
        x = dv.getFloat32(i * 4);
        break;
      default:
        x = dv.getFloat64(i * 8);
    }
    out[i] = x === blank ? NaN : bzero + bscale * x;
  }
  return out;
}

/** The image of an HDU with this header, checked to be 2-D or a cube; throws naming the keyword. */
function imageShape(
  axes: number[],
  file: string,
): { width: number; height: number; planes: number } {
  if (axes.length < 2) {
    throw new FitsError(
      file,
      "NAXIS",
      `an image needs at least 2 axes, this HDU has ${axes.length}`,
    );
  }
  for (let k = 3; k < axes.length; k++) {
    if (axes[k] !== 1) {
      throw new FitsError(file, `NAXIS${k + 1}`, `axes beyond the third must be 1, got ${axes[k]}`);
    }
  }
  const [width, height] = axes;
  if (width === 0 || height === 0) {
    throw new FitsError(file, width === 0 ? "NAXIS1" : "NAXIS2", "the image is empty (axis of 0)");
  }
  return { width, height, planes: axes[2] ?? 1 };
}

/**
 * Reads the first image of a FITS file's bytes (gunzipping them first if
 * they are gzip): the primary array, else the first IMAGE extension.
 * `file` names the file in errors. Throws {@linkcode FitsError}.
 */
export function readFitsImage(input: Uint8Array, file: string): FitsImage {
  let bytes = input;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: FITS_MAX_BYTES });
    } catch (e) {
      throw new FitsError(file, null, `cannot gunzip: ${(e as Error).message}`);
    }
  }
  if (!looksLikeFits(bytes)) {
    throw new FitsError(file, "SIMPLE", "the file does not start with the card SIMPLE  = T");
  }
  let offset = 0;
  for (let hdu = 0; offset < bytes.length; hdu++) {
    const h = readHeader(bytes, offset, file);
    if (hdu === 0 && h.cards.get("SIMPLE") !== true) {
      throw new FitsError(file, "SIMPLE", "must be T (a file that conforms to the standard)");
    }
    const { bitpix, axes, dataBytes } = layout(h, file);
    const dataAt = offset + h.bytes;
    const xtension = h.cards.get("XTENSION");
    const isImage = hdu === 0 ? axes.length > 0 && axes[0] !== 0 : xtension === "IMAGE";
    if (hdu > 0 && xtension === "BINTABLE" && h.cards.get("ZIMAGE") === true) {
      throw new FitsError(
        file,
        "ZIMAGE",
        `HDU ${hdu} is a tile-compressed image, which is not read; uncompress it (funpack) first`,
      );
    }
    if (isImage && dataBytes > 0) {
      const shape = imageShape(axes, file);
      const count = shape.width * shape.height * shape.planes;
      if (dataAt + dataBytes > bytes.length) {
        throw new FitsError(
          file,
          "NAXIS",
          `data truncated: HDU ${hdu} needs ${dataBytes} bytes of data, the file has ` +
            `${Math.max(0, bytes.length - dataAt)}`,
        );
      }
      return { ...shape, data: physical(bytes, dataAt, count, h, bitpix, file), bitpix, hdu };
    }
    if (hdu === 0 && axes.length > 0 && axes[0] === 0 && h.cards.get("GROUPS") === true) {
      throw new FitsError(file, "GROUPS", "random-groups data is not an image");
    }
    offset = dataAt + padded(dataBytes);
  }
  throw new FitsError(
    file,
    "NAXIS",
    "no image: the primary HDU has no data and no IMAGE extension follows",
  );
}

/** Options of {@linkcode writeFits}. */
export interface FitsWriteOptions {
  bitpix: 8 | 16 | 32 | 64 | -32 | -64;
  /** NAXIS1, NAXIS2[, NAXIS3]. */
  axes: number[];
  /** Stored values (before BSCALE/BZERO), NAXIS1 fastest. */
  values: ArrayLike<number>;
  /** Extra cards, e.g. `{ BSCALE: 2, BZERO: 10, BLANK: -1 }`. */
  cards?: Record<string, FitsValue>;
  /** Put the image in an IMAGE extension after an empty primary HDU. */
  extension?: boolean;
}

function card(key: string, value: FitsValue): string {
  const v = typeof value === "boolean"
    ? (value ? "T" : "F").padStart(20)
    : typeof value === "number"
    ? String(value).padStart(20)
    : typeof value === "string"
    ? `'${value.replaceAll("'", "''").padEnd(8)}'`
    : "";
  return `${key.padEnd(8)}= ${v}`.padEnd(CARD).slice(0, CARD);
}

function headerBytes(cards: [string, FitsValue][]): Uint8Array {
  const text = [...cards.map(([k, v]) => card(k, v)), "END".padEnd(CARD)].join("");
  const out = new Uint8Array(padded(text.length)).fill(0x20);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Writes a small standard FITS file (tests and fixtures): one image HDU,
 * primary or (with `extension`) the first extension. Values are stored as
 * given, big-endian, rounded for integer BITPIX.
 */
export function writeFits(o: FitsWriteOptions): Uint8Array {
  const dims: [string, FitsValue][] = o.axes.map((n, k) => [`NAXIS${k + 1}`, n]);
  const shape: [string, FitsValue][] = [["BITPIX", o.bitpix], ["NAXIS", o.axes.length], ...dims];
  const extra = Object.entries(o.cards ?? {});
  const bpp = Math.abs(o.bitpix) / 8;
  const data = new Uint8Array(padded(o.values.length * bpp));
  const dv = new DataView(data.buffer);
  for (let i = 0; i < o.values.length; i++) {
    const x = o.values[i];
    if (o.bitpix === 8) dv.setUint8(i, x);
    else if (o.bitpix === 16) dv.setInt16(i * 2, x);
    else if (o.bitpix === 32) dv.setInt32(i * 4, x);
    else if (o.bitpix === 64) dv.setBigInt64(i * 8, BigInt(Math.round(x)));
    else if (o.bitpix === -32) dv.setFloat32(i * 4, x);
    else dv.setFloat64(i * 8, x);
  }
  // An extension carries PCOUNT and GCOUNT after the axes (Standard 7.1.1).
  const parts = o.extension
    ? [
      headerBytes([["SIMPLE", true], ["BITPIX", 8], ["NAXIS", 0], ["EXTEND", true]]),
      headerBytes([["XTENSION", "IMAGE"], ...shape, ["PCOUNT", 0], ["GCOUNT", 1], ...extra]),
    ]
    : [headerBytes([["SIMPLE", true], ...shape, ...extra])];
  const total = parts.reduce((a, p) => a + p.length, 0) + data.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of [...parts, data]) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
