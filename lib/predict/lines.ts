/**
 * Reading a text file line by line in constant memory, and cutting a file
 * back to its last complete line (what a run killed mid-write leaves).
 *
 * @module
 */

/** The lines of a UTF-8 file without their `\n` or `\r\n`, read 64 KiB at a time. */
export async function* readLines(path: string): AsyncGenerator<string> {
  using file = await Deno.open(path, { read: true });
  const decoder = new TextDecoder();
  const buf = new Uint8Array(1 << 16);
  let rest = "";
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    rest += decoder.decode(buf.subarray(0, n), { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
  }
  rest += decoder.decode();
  if (rest.length > 0) yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
}

/** Truncates `path` after its last `\n`, dropping a partly written last line; returns the new size. */
export async function truncateToLastLine(path: string): Promise<number> {
  using file = await Deno.open(path, { read: true, write: true });
  const size = (await file.stat()).size;
  const chunk = new Uint8Array(1 << 16);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    await file.seek(start, Deno.SeekMode.Start);
    const part = chunk.subarray(0, end - start);
    let got = 0;
    while (got < part.length) {
      const n = await file.read(part.subarray(got));
      if (n === null) break;
      got += n;
    }
    const nl = part.lastIndexOf(0x0a);
    if (nl >= 0) {
      const keep = start + nl + 1;
      if (keep !== size) await file.truncate(keep);
      return keep;
    }
    end = start;
  }
  if (size !== 0) await file.truncate(0);
  return 0;
}
