/**
 * Merging the files of a sharded `predict` (`--shard i/n` on n machines)
 * into the file one unsharded run would have written: rows merged in id
 * order (each shard file is sorted by id), one header, and their errors
 * files merged beside the output. Streams, so memory stays flat.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { commitTemp, tempFileFor, writeFileAtomic } from "../io/atomic.ts";
import { lineId } from "./format.ts";
import { compareIds } from "./inputs.ts";
import { readLines } from "./lines.ts";
import { errorsPathFor } from "./predict.ts";

/** What {@linkcode mergePredictions} wrote. */
export interface MergeSummary {
  files: string[];
  rows: number;
  /** Images listed in the merged errors file (0: none written). */
  failed: number;
  errorsFile: string | null;
}

/**
 * Expands `*` and `?` in the file-name part of each pattern (sorted),
 * leaving out errors files and `exclude`; a pattern without wildcards is
 * taken as it is.
 */
export async function expandPatterns(patterns: readonly string[], exclude = ""): Promise<string[]> {
  const out: string[] = [];
  for (const p of patterns) {
    const name = basename(p);
    if (!/[*?]/.test(name)) {
      out.push(p);
      continue;
    }
    const dir = dirname(p);
    const re = new RegExp(
      "^" + name.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
        "$",
    );
    const found: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !re.test(e.name) || /\.errors\.csv$|\.partial(\.json)?$/.test(e.name)) {
        continue;
      }
      const path = join(dir, e.name);
      if (path !== join(exclude)) found.push(path);
    }
    if (found.length === 0) throw new Error(`--merge ${p} matches no file`);
    out.push(...found.sort());
  }
  return [...new Set(out)];
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** Merges sorted prediction files (each with the same header) into `out`. */
export async function mergePredictions(
  files: readonly string[],
  out: string,
): Promise<MergeSummary> {
  if (files.length === 0) throw new Error("nothing to merge");
  const readers = files.map((f) => readLines(f)[Symbol.asyncIterator]());
  let header: string | null = null;
  for (let k = 0; k < files.length; k++) {
    const first = await readers[k].next();
    if (first.done) throw new Error(`${files[k]} is empty (not even a header)`);
    if (header === null) header = first.value;
    else if (first.value !== header) {
      throw new Error(
        `${files[k]} has another header than ${files[0]} (different model or --format?), ` +
          "or no header (--no-header files cannot be merged; concatenate them instead)",
      );
    }
  }
  // Head line of every file; null once a file is used up.
  const heads: ({ id: string; line: string } | null)[] = [];
  const advance = async (k: number) => {
    for (;;) {
      const r = await readers[k].next();
      if (r.done) return null;
      if (r.value !== "") return { id: lineId(r.value), line: r.value };
    }
  };
  for (let k = 0; k < files.length; k++) heads[k] = await advance(k);
  const tmp = tempFileFor(out);
  let rows = 0;
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    const enc = new TextEncoder();
    let pending = header + "\n";
    let last: string | null = null;
    for (;;) {
      let best = -1;
      for (let k = 0; k < heads.length; k++) {
        const h = heads[k];
        if (h && (best < 0 || compareIds(h.id, heads[best]!.id) < 0)) best = k;
      }
      if (best < 0) break;
      const h = heads[best]!;
      if (last !== null && compareIds(h.id, last) <= 0) {
        throw new Error(
          compareIds(h.id, last) === 0
            ? `id ${h.id} is in more than one file (overlapping shards?)`
            : `${files[best]} is not sorted by id at ${h.id}: merge only files written by predict`,
        );
      }
      last = h.id;
      pending += h.line + "\n";
      rows++;
      if (pending.length > 1 << 16) {
        await writeAll(file, enc.encode(pending));
        pending = "";
      }
      heads[best] = await advance(best);
    }
    await writeAll(file, enc.encode(pending));
    await file.sync();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await commitTemp(tmp, out);

  let errHeader: string | null = null;
  const errLines: string[] = [];
  for (const f of files) {
    const path = errorsPathFor(f);
    if (!await Deno.stat(path).then(() => true, () => false)) continue;
    let head = true;
    for await (const line of readLines(path)) {
      if (head) errHeader ??= line;
      else if (line !== "") errLines.push(line);
      head = false;
    }
  }
  const errorsFile = errorsPathFor(out);
  if (errLines.length > 0) {
    errLines.sort((a, b) => compareIds(lineId(a), lineId(b)));
    await writeFileAtomic(errorsFile, [errHeader!, ...errLines].map((l) => l + "\n").join(""));
  } else {
    await Deno.remove(errorsFile).catch(() => {});
  }
  return {
    files: [...files],
    rows,
    failed: errLines.length,
    errorsFile: errLines.length ? errorsFile : null,
  };
}
