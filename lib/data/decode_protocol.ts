/**
 * The wire format between {@linkcode ./decode_pool.ts} and its decoder
 * processes ({@linkcode ./decode_worker.ts}).
 *
 * Requests go to a decoder's stdin as JSON lines, each a batch of images
 * ({@linkcode DecodeRequest}). Replies come back on its stdout, in
 * completion order, as binary frames: a 16-byte little-endian header
 * `[batch id, kind, count, meta bytes]` (u32 each), then for a batch (kind 0)
 * `meta bytes` of UTF-8 JSON, one entry per image in request order (`[width,
 * height]` of the source, or the message saying why it failed), then the
 * `size * size * 3` RGB bytes of each decoded image in the same order. Kind
 * 1, with no body, is sent once when the decoder has started (its modules and
 * sharp are loaded), so the pool can tell a decoder that cannot start from one
 * that died on an image.
 *
 * A batch per message, not an image: the per-message cost (a pipe write and
 * a wake-up on each side) is then paid once per batch.
 *
 * @module
 */

/** One image of a request: `path` is read by the decoder, `name` goes into messages. */
export interface DecodeItem {
  /** Absolute path of the image file. */
  path: string;
  /** Name used in error messages (the file's name relative to the input). */
  name: string;
}

/** A batch of images to decode. */
export interface DecodeRequest {
  /** Batch number, unique per decoder while it is in flight. */
  id: number;
  /** The images. */
  items: DecodeItem[];
}

/** A decoded image (pixels and source size) or the reason it could not be decoded. */
export type DecodeOutcome =
  | { ok: true; width: number; height: number; pixels: Uint8Array }
  | { ok: false; message: string };

/** The outcomes of a batch, in request order. */
export interface DecodeReply {
  /** The request's batch number. */
  id: number;
  /** One outcome per requested image. */
  outcomes: DecodeOutcome[];
}

/** Anything a decoder sends: a reply, or that it is ready. */
export type DecoderMessage = DecodeReply | { ready: true };

const HEADER = 16;
const BATCH = 0;
const READY = 1;

function header(id: number, kind: number, count: number, metaBytes: number, total: number) {
  const frame = new Uint8Array(total);
  const dv = new DataView(frame.buffer);
  dv.setUint32(0, id, true);
  dv.setUint32(4, kind, true);
  dv.setUint32(8, count, true);
  dv.setUint32(12, metaBytes, true);
  return frame;
}

/** The frame a decoder sends once it has started. */
export function encodeReady(): Uint8Array {
  return header(0, READY, 0, 0, HEADER);
}

/** The frame that carries `r`; every decoded image must have `pixelBytes` bytes. */
export function encodeReply(r: DecodeReply, pixelBytes: number): Uint8Array {
  const meta = new TextEncoder().encode(
    JSON.stringify(r.outcomes.map((o) => o.ok ? [o.width, o.height] : o.message)),
  );
  const decoded = r.outcomes.filter((o) => o.ok);
  const frame = header(
    r.id,
    BATCH,
    r.outcomes.length,
    meta.length,
    HEADER + meta.length + decoded.length * pixelBytes,
  );
  frame.set(meta, HEADER);
  let at = HEADER + meta.length;
  for (const o of decoded) {
    if (o.pixels.length !== pixelBytes) {
      throw new Error(`decoded image has ${o.pixels.length} bytes, expected ${pixelBytes}`);
    }
    frame.set(o.pixels, at);
    at += pixelBytes;
  }
  return frame;
}

/**
 * Cuts a decoder's byte stream into messages. `pixelBytes` is the size of
 * one decoded image (`size * size * 3`), which the frames do not repeat.
 */
export class ReplyReader {
  #buf = new Uint8Array(1 << 20);
  #len = 0;

  constructor(private readonly pixelBytes: number) {}

  /** Appends `chunk` and returns every message it completes. */
  push(chunk: Uint8Array): DecoderMessage[] {
    if (this.#len + chunk.length > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const out: DecoderMessage[] = [];
    let at = 0;
    while (this.#len - at >= HEADER) {
      const dv = new DataView(this.#buf.buffer, at, HEADER);
      const id = dv.getUint32(0, true);
      const kind = dv.getUint32(4, true);
      const count = dv.getUint32(8, true);
      const metaBytes = dv.getUint32(12, true);
      if (kind === READY) {
        out.push({ ready: true });
        at += HEADER;
        continue;
      }
      if (kind !== BATCH) {
        throw new Error(`decoder sent a frame of unknown kind ${kind} (stream out of step)`);
      }
      if (this.#len - at < HEADER + metaBytes) break;
      const metaAt = at + HEADER;
      const meta = JSON.parse(
        new TextDecoder().decode(this.#buf.subarray(metaAt, metaAt + metaBytes)),
      ) as ([number, number] | string)[];
      if (meta.length !== count) {
        throw new Error(`decoder sent ${meta.length} outcomes for a batch of ${count}`);
      }
      const decoded = meta.filter((m) => typeof m !== "string").length;
      const end = metaAt + metaBytes + decoded * this.pixelBytes;
      if (this.#len < end) break;
      let p = metaAt + metaBytes;
      const outcomes = meta.map((m): DecodeOutcome => {
        if (typeof m === "string") return { ok: false, message: m };
        const pixels = this.#buf.slice(p, p + this.pixelBytes);
        p += this.pixelBytes;
        return { ok: true, width: m[0], height: m[1], pixels };
      });
      out.push({ id, outcomes });
      at = end;
    }
    this.#buf.copyWithin(0, at, this.#len);
    this.#len -= at;
    return out;
  }

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.#len;
  }
}
