/**
 * `POST /api/predict`: one image in, the model's outputs out, as JSON. The
 * image is the body itself (`curl --data-binary @g.jpg`), or, for a
 * `multipart/form-data` body (`curl -F file=@g.jpg`, an HTML form), its
 * first file part; the size limit is that of the whole body either way. The image goes through {@linkcode loadImage} and
 * {@linkcode predictBatch} exactly as in `deno task predict`, so the numbers
 * are the ones its CSV holds (there rounded to 6 decimals).
 *
 * Bounds: a body larger than `maxBytes` is refused (413) before or while it
 * is read, and one not received within `bodySeconds` (a stalled client) is a
 * 408; at most `maxConcurrent` images decode and predict at once and at
 * most `maxQueued` more wait (else 503, with `Retry-After`). An empty body
 * is a 400, bytes that are not an image of a format read (lib/data/formats.ts)
 * a 415, an image that cannot be decoded (or whose aspect ratio is above
 * the limit) a 422; each answer's JSON says why in `error`. FITS files are
 * stretched as the run's training data was (config.json `fitsStretch`).
 *
 * @module
 */
import { IMAGE_EXTENSIONS_TEXT, ImageError, loadImage } from "../data/image.ts";
import { formatOfBytes, type ImageFormat } from "../data/formats.ts";
import { Q1_CLASSES } from "../data/label_schemes.ts";
import { voteIndex } from "../data/schema.ts";
import { predictBatch } from "../inference.ts";
import { argmaxAt } from "../metrics.ts";
import type { Run } from "../run/open.ts";

/** Limits of the API. */
export interface PredictApiLimits {
  /** Largest accepted body, bytes (default 20 MiB). */
  maxBytes: number;
  /** Images decoded and predicted at once (default 2). */
  maxConcurrent: number;
  /** Requests waiting for a slot before new ones get a 503 (default 16). */
  maxQueued: number;
  /** Seconds a request's body may take to arrive before a 408 (default 60). */
  bodySeconds: number;
}

/** Defaults of {@linkcode PredictApiLimits}. */
export const PREDICT_API_LIMITS: PredictApiLimits = {
  maxBytes: 20 * 1024 * 1024,
  maxConcurrent: 2,
  maxQueued: 16,
  bodySeconds: 60,
};

/** The JSON answer of a successful prediction. */
export interface PredictAnswer {
  /** `classes`: class probabilities; `votes`: the 37 vote fractions. */
  kind: "classes" | "votes";
  /** The run's label scheme. */
  scheme: string;
  /** Whether the 8 rotations and flips were averaged (`?tta=1`). */
  tta: boolean;
  /** Output names in order (class names, or `Class1.1` ... `Class11.6`). */
  names: string[];
  /** The model's outputs, in `names` order (float32 values). */
  values: number[];
  /** The predicted class (votes: the question 1 answer with the largest fraction). */
  label: string;
  /** Its probability (votes: that fraction). */
  probability: number;
  /** Width of the image received, pixels. */
  width: number;
  /** Height of the image received, pixels. */
  height: number;
}

/** An API error: HTTP status and the reason sent as `{ "error": reason }`. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * Reads a request body up to `max` bytes within `seconds`; throws a 413
 * {@linkcode ApiError} past the size, a 408 past the time (the body is then
 * cancelled, so a stalled client holds nothing).
 */
export async function readBody(
  req: Request,
  max: number,
  seconds = PREDICT_API_LIMITS.bodySeconds,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    throw new ApiError(413, `body of ${declared} bytes exceeds the limit of ${max} bytes`);
  }
  if (!req.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ApiError(408, `the body did not arrive within ${seconds} s`)),
      seconds * 1000,
    );
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), expired]);
      if (done) break;
      total += value.length;
      if (total > max) throw new ApiError(413, `body exceeds the limit of ${max} bytes`);
      parts.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The image format of a body from its first bytes (lib/data/formats.ts), or null. */
export function imageType(b: Uint8Array): ImageFormat | null {
  return formatOfBytes(b);
}

/**
 * The first file part of a `multipart/form-data` body (already read within
 * the size limit): its bytes and file name. A 400 {@linkcode ApiError} when
 * the body does not parse or has no file part.
 */
export async function firstFilePart(
  body: Uint8Array,
  contentType: string,
): Promise<{ bytes: Uint8Array; name: string }> {
  let form: FormData;
  try {
    const headers = { "content-type": contentType };
    form = await new Response(body as Uint8Array<ArrayBuffer>, { headers }).formData();
  } catch (e) {
    throw new ApiError(400, `malformed multipart/form-data body: ${(e as Error).message}`);
  }
  for (const [, value] of form) {
    if (typeof value !== "string") {
      return { bytes: new Uint8Array(await value.arrayBuffer()), name: value.name || "image" };
    }
  }
  throw new ApiError(
    400,
    "the multipart/form-data body has no file part: send the image as a file field " +
      "(curl -F file=@galaxy.jpg)",
  );
}

/** A counting semaphore with a bounded queue. */
class Slots {
  #busy = 0;
  #waiting: (() => void)[] = [];
  constructor(readonly size: number, readonly queue: number) {}
  /** Waits for a slot; null when the queue is full (the caller answers 503). */
  async acquire(): Promise<(() => void) | null> {
    if (this.#busy >= this.size) {
      if (this.#waiting.length >= this.queue) return null;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#busy++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.#busy--;
    };
  }
}

/** Predicts one image of a request; see the module doc. */
export class PredictApi {
  readonly limits: PredictApiLimits;
  #slots: Slots;
  constructor(readonly run: Run, limits: Partial<PredictApiLimits> = {}) {
    this.limits = { ...PREDICT_API_LIMITS, ...limits };
    this.#slots = new Slots(this.limits.maxConcurrent, this.limits.maxQueued);
  }

  /** The outputs of one image's bytes (errors as {@linkcode ApiError}); `name` is for messages. */
  async predict(bytes: Uint8Array, tta: boolean, name = "image"): Promise<PredictAnswer> {
    if (bytes.length === 0) throw new ApiError(400, "empty body: send the image file's bytes");
    if (imageType(bytes) === null) {
      throw new ApiError(
        415,
        `the body is not an image of a format read (${IMAGE_EXTENSIONS_TEXT})`,
      );
    }
    const release = await this.#slots.acquire();
    if (!release) {
      throw new ApiError(503, "too many images in progress; try again shortly", {
        "retry-after": "1",
      });
    }
    try {
      const d = this.run.dataset;
      let img;
      try {
        img = await loadImage(bytes, { size: d.size, crop: d.crop, stretch: d.fitsStretch }, name);
      } catch (e) {
        if (e instanceof ImageError) {
          throw new ApiError(422, `cannot decode the image: ${e.reason}`);
        }
        throw e;
      }
      const out = await predictBatch(this.run.model, { n: 1, ids: ["image"], pixels: img.pixels }, {
        tta,
        flipPairs: d.flipPairs,
      });
      const values = Array.from(out);
      let label: string, probability: number;
      if (d.kind === "votes") {
        const q1 = voteIndex("Class1.1");
        const k = argmaxAt(values, q1, Q1_CLASSES.length);
        label = Q1_CLASSES[k];
        probability = values[q1 + k];
      } else {
        const k = argmaxAt(values, 0, values.length);
        label = d.classes[k];
        probability = values[k];
      }
      return {
        kind: d.kind,
        scheme: d.scheme,
        tta,
        names: [...d.classes],
        values,
        label,
        probability,
        width: img.width,
        height: img.height,
      };
    } finally {
      release();
    }
  }

  /** Handles `POST /api/predict[?tta=1]`. */
  async handle(req: Request): Promise<Response> {
    try {
      if (req.method !== "POST") {
        throw new ApiError(405, "use POST with the image file as the body", { allow: "POST" });
      }
      const tta = ["1", "true", "yes"].includes(new URL(req.url).searchParams.get("tta") ?? "");
      const body = await readBody(req, this.limits.maxBytes, this.limits.bodySeconds);
      const type = req.headers.get("content-type") ?? "";
      if (/^multipart\/form-data\b/i.test(type)) {
        const file = await firstFilePart(body, type);
        return json(await this.predict(file.bytes, tta, file.name));
      }
      return json(await this.predict(body, tta));
    } catch (e) {
      if (e instanceof ApiError) return json({ error: e.message }, e.status, e.headers);
      return json({ error: `internal error: ${(e as Error).message}` }, 500);
    }
  }
}
