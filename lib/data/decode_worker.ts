/**
 * A decoder process of {@linkcode ./decode_pool.ts}: reads batches from
 * stdin, decodes each image with {@linkcode loadImage} (so its pixels are
 * those of an in-process decode), `lanes` images at a time across all
 * batches it holds, and writes each batch's reply to stdout when the batch
 * is complete (format in {@linkcode ./decode_protocol.ts}). It exits when
 * stdin closes and the last reply is written.
 *
 * Usage: deno run --allow-read --allow-env --allow-ffi decode_worker.ts SIZE CROP LANES STRETCH
 * (STRETCH: the FITS stretch as JSON, lib/data/stretch.ts)
 *
 * @module
 */
import { configureSharp, ImageError, loadImage, type LoadOptions } from "./image.ts";
import { checkFitsStretch } from "./stretch.ts";
import {
  type DecodeItem,
  type DecodeOutcome,
  type DecodeRequest,
  encodeReady,
  encodeReply,
} from "./decode_protocol.ts";
import { textLines } from "../io/lines.ts";

/** Decodes one image, turning any failure into its outcome. */
export async function decodeOutcome(item: DecodeItem, o: LoadOptions): Promise<DecodeOutcome> {
  try {
    const img = await loadImage(item.path, o, item.name);
    return { ok: true, width: img.width, height: img.height, pixels: img.pixels };
  } catch (e) {
    const message = e instanceof ImageError
      ? e.reason
      : `decoder failed: ${e instanceof Error ? e.message : String(e)}`;
    return { ok: false, message };
  }
}

/** Runs tasks at most `n` at a time, in the order they were given. */
export class Lanes {
  #busy = 0;
  #queue: (() => void)[] = [];

  constructor(private readonly n: number) {}

  /** Runs `task` when a lane is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#busy >= this.n) await new Promise<void>((go) => this.#queue.push(go));
    else this.#busy++;
    try {
      return await task();
    } finally {
      // Hand the lane straight to the next task, or free it.
      const next = this.#queue.shift();
      if (next) next();
      else this.#busy--;
    }
  }
}

/** Decodes a batch, its images sharing `lanes` with every other batch in flight. */
export function decodeBatch(
  items: DecodeItem[],
  o: LoadOptions,
  lanes: Lanes,
): Promise<DecodeOutcome[]> {
  return Promise.all(items.map((item) => lanes.run(() => decodeOutcome(item, o))));
}

/** Serves the batches read from `input` until it ends, writing replies to `output`. */
export async function serveDecodes(
  input: ReadableStream<Uint8Array>,
  output: WritableStream<Uint8Array>,
  o: LoadOptions & { lanes: number },
): Promise<void> {
  const pixelBytes = o.size * o.size * 3;
  const lanes = new Lanes(o.lanes);
  const writer = output.getWriter();
  // One write per reply, in completion order, so frames never interleave.
  let writing = writer.write(encodeReady());
  const pending = new Set<Promise<void>>();
  const serve = async (req: DecodeRequest) => {
    const outcomes = await decodeBatch(req.items, o, lanes);
    writing = writing.then(() => writer.write(encodeReply({ id: req.id, outcomes }, pixelBytes)));
    await writing;
  };
  for await (const line of textLines(input)) {
    if (!line) continue;
    const p = serve(JSON.parse(line) as DecodeRequest);
    pending.add(p);
    const forget = () => pending.delete(p);
    p.then(forget, forget);
  }
  await Promise.all([...pending]);
  await writing;
  await writer.close();
}

if (import.meta.main) {
  const [size, crop, lanes] = Deno.args.slice(0, 3).map(Number);
  const stretch = checkFitsStretch(JSON.parse(Deno.args[3]), "decoder argument STRETCH");
  configureSharp();
  await serveDecodes(Deno.stdin.readable, Deno.stdout.writable, { size, crop, lanes, stretch });
}
