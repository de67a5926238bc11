/**
 * A predictions CSV from `deno task predict` (the `classes` format:
 * `id,label,probability,p_<class>...`) opened for browsing: one pass over
 * the file keeps, per row, only its byte range, its label and its
 * probability (14 bytes a row, about 1 MiB for 80,000 rows), so filtering
 * and sorting never parse the file again, and a page of rows is read from
 * disk by its byte ranges when it is asked for.
 *
 * @module
 */
import { parseCsvRows } from "../io/csv.ts";

/** One row as the predictions page shows it. */
export interface PredictionRow {
  /** Image id (file name without extension). */
  id: string;
  /** Predicted class. */
  label: string;
  /** Its probability. */
  probability: number;
  /** Every `p_` column, in header order. */
  values: number[];
}

/** Orders the rows can be listed in. */
export type PredictionSort = "id" | "probability-desc" | "probability-asc";

/** The orders {@linkcode PredictionTable.query} accepts. */
export const PREDICTION_SORTS: readonly PredictionSort[] = [
  "id",
  "probability-desc",
  "probability-asc",
];

/** Which rows a query selects, and in what order. */
export interface PredictionFilter {
  /** Only rows predicted as this class (default: all). */
  label?: string;
  /** Only rows whose probability is at least this (default 0). */
  min?: number;
  /** Only rows whose probability is at most this (default 1). */
  max?: number;
  /** Order (default `id`, the file's order). */
  sort?: PredictionSort;
}

/** A page of a query. */
export interface PredictionPage {
  /** Rows matching the filter. */
  total: number;
  /** Index of the first row of this page among them. */
  offset: number;
  /** The page's rows, in the query's order. */
  rows: PredictionRow[];
}

const NEWLINE = 0x0a;

/** An indexed predictions CSV; see the module doc. */
export class PredictionTable {
  /** Column names of the file's header. */
  readonly header: string[];
  /** Class names of the `p_` columns, in order. */
  readonly classes: string[];
  /** Predicted rows per class name. */
  readonly counts: Record<string, number>;
  #start: Float64Array;
  #length: Uint32Array;
  #label: Uint16Array;
  #prob: Float32Array;
  #labels: string[];
  #cache: { key: string; order: Int32Array } | null = null;

  private constructor(
    readonly path: string,
    header: string[],
    index: { start: Float64Array; length: Uint32Array; label: Uint16Array; prob: Float32Array },
    labels: string[],
  ) {
    this.header = header;
    this.classes = header.filter((h) => h.startsWith("p_")).map((h) => h.slice(2));
    this.#start = index.start;
    this.#length = index.length;
    this.#label = index.label;
    this.#prob = index.prob;
    this.#labels = labels;
    this.counts = Object.fromEntries(labels.map((l) => [l, 0]));
    for (const k of index.label) this.counts[labels[k]]++;
  }

  /** Rows in the file. */
  get size(): number {
    return this.#prob.length;
  }

  /**
   * Reads `path` once and indexes it. Throws naming the file and line for a
   * file that is not a `classes`-format predictions CSV or has a bad row.
   */
  static async open(path: string): Promise<PredictionTable> {
    using file = await Deno.open(path, { read: true });
    const decoder = new TextDecoder();
    let header: string[] | null = null;
    let cap = 1024, n = 0;
    let start = new Float64Array(cap), length = new Uint32Array(cap);
    let label = new Uint16Array(cap), prob = new Float32Array(cap);
    const labels: string[] = [];
    const labelIndex = new Map<string, number>();
    let lineNo = 0;
    let pending: Uint8Array = new Uint8Array(0);
    let pendingAt = 0; // file offset of pending[0]
    const buf = new Uint8Array(1 << 16);
    const take = (bytes: Uint8Array, at: number) => {
      lineNo++;
      let end = bytes.length;
      if (end > 0 && bytes[end - 1] === 0x0d) end--;
      const text = decoder.decode(bytes.subarray(0, end));
      if (text.trim() === "") return;
      const fields = parseCsvRows(text, `${path}:${lineNo}`)[0]?.fields ?? [];
      if (header === null) {
        if (fields[0] === "GalaxyID") {
          throw new Error(
            `${path} is a Kaggle submission (GalaxyID,Class1.1,...): predict it with ` +
              "--format classes (the default) to browse it",
          );
        }
        if (fields[0] !== "id" || fields[1] !== "label" || fields[2] !== "probability") {
          throw new Error(
            `${path}:${lineNo}: not a predictions file of deno task predict ` +
              `(header should start id,label,probability; got ${fields.slice(0, 3).join(",")})`,
          );
        }
        header = fields;
        return;
      }
      if (fields.length !== header.length) {
        throw new Error(
          `${path}:${lineNo}: ${fields.length} fields, the header has ${header.length}`,
        );
      }
      const p = Number(fields[2]);
      if (fields[2] === "" || !Number.isFinite(p)) {
        throw new Error(`${path}:${lineNo}: probability '${fields[2]}' is not a number`);
      }
      let k = labelIndex.get(fields[1]);
      if (k === undefined) {
        k = labels.length;
        labels.push(fields[1]);
        labelIndex.set(fields[1], k);
      }
      if (n === cap) {
        cap *= 2;
        const grow = <T extends Float64Array | Uint32Array | Uint16Array | Float32Array>(
          a: T,
        ): T => {
          const b = new (a.constructor as new (n: number) => T)(cap);
          b.set(a);
          return b;
        };
        [start, length, label, prob] = [grow(start), grow(length), grow(label), grow(prob)];
      }
      start[n] = at;
      length[n] = end;
      label[n] = k;
      prob[n] = p;
      n++;
    };
    let offset = 0;
    for (;;) {
      const r = await file.read(buf);
      if (r === null) break;
      const chunk = buf.subarray(0, r);
      let from = 0;
      for (let i = 0; i < r; i++) {
        if (chunk[i] !== NEWLINE) continue;
        const piece = chunk.subarray(from, i);
        if (pending.length) {
          const line = new Uint8Array(pending.length + piece.length);
          line.set(pending);
          line.set(piece, pending.length);
          take(line, pendingAt);
          pending = new Uint8Array(0);
        } else {
          take(piece, offset + from);
        }
        from = i + 1;
      }
      if (from < r) {
        const rest = chunk.subarray(from);
        if (!pending.length) pendingAt = offset + from;
        const joined = new Uint8Array(pending.length + rest.length);
        joined.set(pending);
        joined.set(rest, pending.length);
        pending = joined;
      }
      offset += r;
    }
    if (pending.length) take(pending, pendingAt);
    if (header === null) throw new Error(`${path} is empty: no header row`);
    return new PredictionTable(path, header, {
      start: start.slice(0, n),
      length: length.slice(0, n),
      label: label.slice(0, n),
      prob: prob.slice(0, n),
    }, labels);
  }

  /** Indices of the rows `f` selects, in its order (the last answer is cached for paging). */
  select(f: PredictionFilter): Int32Array {
    const sort = f.sort ?? "id";
    const min = f.min ?? 0, max = f.max ?? 1;
    const key = JSON.stringify([f.label ?? null, min, max, sort]);
    if (this.#cache?.key === key) return this.#cache.order;
    const want = f.label === undefined ? -1 : this.#labels.indexOf(f.label);
    const picked: number[] = [];
    if (f.label === undefined || want >= 0) {
      for (let i = 0; i < this.#prob.length; i++) {
        const p = this.#prob[i];
        if ((want < 0 || this.#label[i] === want) && p >= min && p <= max) picked.push(i);
      }
    }
    const order = Int32Array.from(picked);
    const prob = this.#prob;
    // Ties keep the file's (id) order, so pages are stable.
    if (sort === "probability-desc") order.sort((a, b) => prob[b] - prob[a] || a - b);
    if (sort === "probability-asc") order.sort((a, b) => prob[a] - prob[b] || a - b);
    this.#cache = { key, order };
    return order;
  }

  /** The raw CSV lines (without line ends) of rows `indices`, read by their byte ranges. */
  async lines(indices: ArrayLike<number>): Promise<string[]> {
    using file = await Deno.open(this.path, { read: true });
    const decoder = new TextDecoder();
    const out: string[] = [];
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      const bytes = new Uint8Array(this.#length[i]);
      await file.seek(this.#start[i], Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const r = await file.read(bytes.subarray(got));
        if (r === null) throw new Error(`${this.path} changed while it was being browsed`);
        got += r;
      }
      out.push(decoder.decode(bytes));
    }
    return out;
  }

  /** One page (`limit` rows from `offset`) of the rows `f` selects. */
  async query(f: PredictionFilter, offset: number, limit: number): Promise<PredictionPage> {
    const order = this.select(f);
    const slice = order.subarray(Math.max(0, offset), Math.max(0, offset) + Math.max(0, limit));
    const rows = (await this.lines(slice)).map((line) => {
      const fields = parseCsvRows(line)[0].fields;
      return {
        id: fields[0],
        label: fields[1],
        probability: Number(fields[2]),
        values: fields.slice(3).map(Number),
      };
    });
    return { total: order.length, offset, rows };
  }

  /** The selected rows as a CSV file (the header, then the rows), read in batches. */
  csvStream(f: PredictionFilter): ReadableStream<Uint8Array> {
    const order = this.select(f);
    const enc = new TextEncoder();
    const header = this.header.map((h) => (/[",\n]/.test(h) ? `"${h.replace(/"/g, '""')}"` : h))
      .join(",");
    let at = -1;
    return new ReadableStream({
      pull: async (controller) => {
        if (at < 0) {
          controller.enqueue(enc.encode(header + "\n"));
          at = 0;
          return;
        }
        if (at >= order.length) {
          controller.close();
          return;
        }
        const batch = order.subarray(at, at + 2000);
        at += batch.length;
        controller.enqueue(enc.encode((await this.lines(batch)).map((l) => l + "\n").join("")));
      },
    });
  }
}
