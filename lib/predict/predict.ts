/**
 * `predict`: runs a trained model over a folder of images, one image, or a
 * dataset split, streaming rows to a CSV in id order.
 *
 * Memory does not grow with the number of images: images are decoded a few
 * at a time into batches, each batch's rows are appended to
 * `<out>.partial` as soon as it is predicted, and the file is renamed to
 * `<out>` at the end (the ids, a few bytes each, are the only per-image
 * state held).
 *
 * Resuming: `<out>.partial.json` records the settings (model weights,
 * input, split, format, TTA, shard, header). A later run with the same
 * settings keeps the rows already written (a partly written last line is
 * dropped) and carries on after them, provided they are exactly the first
 * rows of the current input; otherwise it starts over.
 *
 * Images that cannot be read go to `<out minus .csv>.errors.csv` (`id`,
 * `file`, `reason`, sorted by id); every other image is still predicted.
 *
 * @module
 */
import { resolve } from "node:path";
import { readJson, writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { csvLine } from "../io/csv.ts";
import { predictBatch } from "../inference.ts";
import { ERRORS_HEADER, lineId, type PredictFormat, rowFormatter } from "./format.ts";
import {
  type Chunk,
  compareIds,
  datasetChunks,
  imageChunks,
  type PredictError,
  type PredictInput,
} from "./inputs.ts";
import { readLines, truncateToLastLine } from "./lines.ts";
import type { Run } from "../run/open.ts";
import { inShard, type Shard } from "./shard.ts";

/** Settings of {@linkcode predict}. */
export interface PredictOptions {
  /** The opened run whose model predicts. */
  run: Run;
  /** What to predict: images or a dataset split. */
  input: PredictInput;
  /** What `--in` said (recorded for resuming). */
  inPath: string;
  /** Output CSV. */
  out: string;
  /** Columns of the CSV (default `classes`). */
  format?: PredictFormat;
  /** Average over the 8 rotations and flips. */
  tta?: boolean;
  /** Images per model call (default 32). */
  batchSize?: number;
  /** Images decoding at once (folder input). */
  concurrency?: number;
  /** Predict only the ids of this slice (default null: all). */
  shard?: Shard | null;
  /** Write the header row (default true). */
  header?: boolean;
  /** Continue a matching unfinished run (default true). */
  resume?: boolean;
  /** Called at the start and after each chunk of images (predicted or failed). */
  onProgress?: (p: PredictProgress) => void;
  /** Informational lines (resuming or not, and why). */
  log?: (line: string) => void;
}

/** Progress of a running {@linkcode predict}. */
export interface PredictProgress {
  /** Images handled (predicted or failed), including those of a resumed run. */
  done: number;
  /** Images to handle (of the shard, when there is one). */
  total: number;
  /** Images that could not be read so far, including those of a resumed run. */
  failed: number;
  /** Images per second in this session. */
  imagesPerSecond: number;
}

/** What {@linkcode predict} did. */
export interface PredictSummary {
  /** The predictions CSV written. */
  out: string;
  /** The errors file, or null when every image was predicted. */
  errorsFile: string | null;
  /** Rows in the CSV, including those kept from an earlier run. */
  predicted: number;
  /** Images that could not be read (rows of the errors file). */
  failed: number;
  /** Rows kept from an earlier, interrupted run. */
  resumedRows: number;
  /** Images of this session predicted with a warning (far from square), each also logged. */
  warnings: PredictError[];
  /** Wall-clock seconds of this session. */
  seconds: number;
}

/** Defaults of {@linkcode predict}. */
export const PREDICT_DEFAULTS = { batchSize: 32, concurrency: 8 } as const;

/** `predictions.csv` -> `predictions.errors.csv` (beside it). */
export function errorsPathFor(out: string): string {
  return out.toLowerCase().endsWith(".csv")
    ? `${out.slice(0, -4)}.errors.csv`
    : `${out}.errors.csv`;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function writeAll(file: Deno.FsFile, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

interface ResumePoint {
  /** Images of the work list already done. */
  skip: number;
  rows: number;
  /** Error lines (decode failures) of those images. */
  errorLines: string[];
}

/**
 * How far an interrupted run with the same settings got: the first `skip`
 * ids of `todo`, or null when its files do not match (start over).
 */
async function findResumePoint(
  partial: string,
  errPartial: string,
  headerLine: string | null,
  todo: readonly string[],
  log: (line: string) => void,
): Promise<ResumePoint | null> {
  await truncateToLastLine(partial);
  const position = new Map(todo.map((id, i) => [id, i]));
  const rowIds: string[] = [];
  let first = true;
  for await (const line of readLines(partial)) {
    if (first && headerLine !== null) {
      first = false;
      if (line !== headerLine) return null;
      continue;
    }
    first = false;
    if (line !== "") rowIds.push(lineId(line));
  }
  if (headerLine !== null && first) return null; // not even the header was written
  const errorLines: { id: string; line: string }[] = [];
  if (await exists(errPartial)) {
    await truncateToLastLine(errPartial);
    let head = true;
    for await (const line of readLines(errPartial)) {
      if (head) {
        head = false;
        continue;
      }
      if (line !== "") errorLines.push({ id: lineId(line), line });
    }
  }
  const skip = rowIds.length ? (position.get(rowIds[rowIds.length - 1]) ?? -2) + 1 : 0;
  if (skip < 0) {
    log(`not resuming: ${partial} holds ids that are not in the input any more`);
    return null;
  }
  // The earlier run's rows and failures must be exactly the first `skip` ids.
  const kept = errorLines.filter((e) => (position.get(e.id) ?? Infinity) < skip);
  const done = new Set([...rowIds, ...kept.map((e) => e.id)]);
  const ok = done.size === rowIds.length + kept.length && done.size === skip &&
    [...done].every((id) => (position.get(id) ?? Infinity) < skip);
  if (!ok) {
    log(`not resuming: the rows in ${partial} are not the first images of the current input`);
    return null;
  }
  return { skip, rows: rowIds.length, errorLines: kept.map((e) => e.line) };
}

/** Predicts every image of `o.input` (or of its shard) and writes the CSV. */
export async function predict(o: PredictOptions): Promise<PredictSummary> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const { run, input } = o;
  const format = o.format ?? "classes";
  const header = o.header ?? true;
  const batchSize = o.batchSize ?? PREDICT_DEFAULTS.batchSize;
  const concurrency = o.concurrency ?? PREDICT_DEFAULTS.concurrency;
  const shard = o.shard ?? null;
  const formatter = rowFormatter(run.dataset, format);
  const headerLine = header ? csvLine(formatter.header) : null;

  if (input.kind === "dataset") {
    const img = input.dataset.manifest.image;
    if (img.height !== run.dataset.size || img.width !== run.dataset.size) {
      throw new Error(
        `dataset ${input.dataset.dir} holds ${img.width}x${img.height} images; the model takes ` +
          `${run.dataset.size}x${run.dataset.size}: predict on the original images instead`,
      );
    }
    if (Math.abs(img.crop - run.dataset.crop) > 1e-9) {
      throw new Error(
        `dataset ${input.dataset.dir} was cropped at ${img.crop}; the model was trained at ` +
          `crop ${run.dataset.crop}: predict on the original images instead`,
      );
    }
  }
  const todo = input.kind === "images"
    ? input.items.filter((it) => inShard(it.id, shard)).map((it) => it.id)
    : input.dataset.ids(input.split).filter((id) => inShard(id, shard));
  const refused = input.kind === "images" ? input.refused.filter((e) => inShard(e.id, shard)) : [];
  const total = todo.length + refused.length;

  const partial = `${o.out}.partial`;
  const stateFile = `${o.out}.partial.json`;
  const errorsFile = errorsPathFor(o.out);
  const errPartial = `${errorsFile}.partial`;
  const fingerprint = {
    version: 1,
    model: run.modelDigest,
    input: resolve(o.inPath),
    split: input.kind === "dataset" ? input.split : null,
    format,
    tta: !!o.tta,
    shard: shard ? `${shard.index}/${shard.count}` : null,
    header,
  };

  let point: ResumePoint | null = null;
  if ((o.resume ?? true) && await exists(stateFile) && await exists(partial)) {
    const old = await readJson(stateFile).catch(() => null);
    if (JSON.stringify(old) === JSON.stringify(fingerprint)) {
      point = await findResumePoint(partial, errPartial, headerLine, todo, log);
    } else {
      log(`not resuming: ${stateFile} records other settings`);
    }
  }
  if (point) log(`resuming after ${point.skip} of ${todo.length} images (${point.rows} rows kept)`);
  else {
    await writeJsonAtomic(stateFile, fingerprint);
    await Deno.writeTextFile(partial, headerLine !== null ? headerLine + "\n" : "");
  }
  const skip = point?.skip ?? 0;
  const earlierErrors = [...refused.map(errorLine), ...(point?.errorLines ?? [])];
  await Deno.writeTextFile(
    errPartial,
    [csvLine(ERRORS_HEADER), ...earlierErrors].map((l) => l + "\n").join(""),
  );

  let chunks: AsyncIterable<Chunk>;
  if (input.kind === "images") {
    const items = input.items.filter((it) => inShard(it.id, shard)).slice(skip);
    chunks = imageChunks(items, {
      size: run.dataset.size,
      crop: run.dataset.crop,
      stretch: run.dataset.fitsStretch,
      batchSize,
      concurrency,
    });
  } else {
    let seen = 0;
    chunks = datasetChunks(input.dataset, input.split, {
      batchSize,
      keep: (id) => inShard(id, shard) && seen++ >= skip,
    });
  }

  let predicted = point?.rows ?? 0;
  const warnings: PredictError[] = [];
  let failed = earlierErrors.length;
  let sessionDone = 0;
  const report = () =>
    o.onProgress?.({
      done: skip + refused.length + sessionDone,
      total,
      failed,
      imagesPerSecond: sessionDone / Math.max(1e-9, (performance.now() - started) / 1000),
    });
  {
    using rows = await Deno.open(partial, { append: true });
    using errs = await Deno.open(errPartial, { append: true });
    report();
    for await (const chunk of chunks) {
      // Failures first: a kill between the two writes then only loses rows to redo.
      if (chunk.errors.length) {
        await writeAll(errs, chunk.errors.map((e) => errorLine(e) + "\n").join(""));
        failed += chunk.errors.length;
        sessionDone += chunk.errors.length;
      }
      for (const w of chunk.warnings) {
        warnings.push(w);
        log(`warning: ${w.file}: ${w.reason}`);
      }
      if (chunk.batch) {
        const outputs = await predictBatch(run.model, chunk.batch, {
          tta: o.tta,
          flipPairs: run.dataset.flipPairs,
        });
        const lines = formatter.lines(chunk.batch.ids, outputs);
        await writeAll(rows, lines.map((l) => l + "\n").join(""));
        predicted += chunk.batch.n;
        sessionDone += chunk.batch.n;
      }
      report();
    }
    await rows.sync();
  }

  // The errors file, sorted by id; none (and no stale one) when every image was read.
  const errorLines: string[] = [];
  let head = true;
  for await (const line of readLines(errPartial)) {
    if (!head && line !== "") errorLines.push(line);
    head = false;
  }
  errorLines.sort((a, b) => compareIds(lineId(a), lineId(b)));
  if (errorLines.length > 0) {
    await writeFileAtomic(
      errorsFile,
      [csvLine(ERRORS_HEADER), ...errorLines].map((l) => l + "\n").join(""),
    );
  } else {
    await Deno.remove(errorsFile).catch(() => {});
  }
  await Deno.rename(partial, o.out);
  await Deno.remove(errPartial).catch(() => {});
  await Deno.remove(stateFile).catch(() => {});
  return {
    out: o.out,
    errorsFile: errorLines.length > 0 ? errorsFile : null,
    predicted,
    failed: errorLines.length,
    resumedRows: point?.rows ?? 0,
    warnings,
    seconds: (performance.now() - started) / 1000,
  };
}

function errorLine(e: PredictError): string {
  return csvLine([e.id, e.file, e.reason]);
}
