/**
 * A small CSV reader and writer (RFC 4180: comma-separated, fields optionally
 * double-quoted, `""` for a quote inside a quoted field, LF or CRLF line ends)
 * that keeps the line number of every row, so a bad row can be reported as
 * `file:line`.
 *
 * @module
 */

/** One data row and the 1-based line of the file it starts on. */
export interface CsvRow {
  line: number;
  fields: string[];
}

/** A parsed CSV file: its header fields and its data rows (blank lines dropped). */
export interface CsvTable {
  file: string;
  header: string[];
  rows: CsvRow[];
}

/** A CSV file that cannot be read as CSV at all (as opposed to one bad row). */
export class CsvError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "CsvError";
  }
}

/**
 * Splits CSV text into rows of fields. `file` only names the source in
 * errors. Throws {@linkcode CsvError} for an unterminated quoted field or a
 * stray character after a closing quote; rows with the wrong number of
 * fields are returned as they are, for the caller to report per line.
 */
export function parseCsvRows(text: string, file = "<csv>"): CsvRow[] {
  return [...csvRows(text, file)];
}

/**
 * {@linkcode parseCsvRows} one row at a time, so a caller that turns rows
 * into something smaller never holds every field of a large file at once
 * (the Kaggle solutions file has 2.3 million).
 */
export function* csvRows(text: string, file = "<csv>"): Generator<CsvRow> {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  let line = 1;
  const n = text.length;
  while (i < n) {
    const rowLine = line;
    const fields: string[] = [];
    let blank = true;
    // One row: fields until an unquoted line end or the end of the text.
    for (;;) {
      let field = "";
      if (text[i] === '"') {
        blank = false;
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new CsvError(file, quoteLine, "quoted field is never closed");
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === "\n") line++;
          field += c;
          i++;
        }
        if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
          throw new CsvError(file, line, `unexpected '${text[i]}' after a closing quote`);
        }
      } else {
        const start = i;
        while (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") i++;
        field = text.slice(start, i);
        if (field.length > 0) blank = false;
      }
      fields.push(field);
      if (i < n && text[i] === ",") {
        blank = false;
        i++;
        continue;
      }
      break;
    }
    if (text[i] === "\r") i++;
    if (text[i] === "\n") {
      i++;
      line++;
    }
    if (!blank) yield { line: rowLine, fields };
  }
}

/** Parses CSV text whose first non-blank row is a header. */
export function parseCsv(text: string, file = "<csv>"): CsvTable {
  const rows = parseCsvRows(text, file);
  if (rows.length === 0) throw new CsvError(file, 1, "file is empty (no header row)");
  const [head, ...rest] = rows;
  return { file, header: head.fields.map((h) => h.trim()), rows: rest };
}

/** A CSV file's header fields and a one-pass iterator over its data rows. */
export interface CsvStream {
  file: string;
  header: string[];
  rows: Iterable<CsvRow>;
}

/**
 * Reads a CSV file with a header row, naming the file in errors. The rows
 * are parsed as they are iterated (once), so a malformed row throws then.
 */
export async function readCsv(path: string): Promise<CsvStream> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  const rows = csvRows(text, path);
  const head = rows.next();
  if (head.done) throw new CsvError(path, 1, "file is empty (no header row)");
  return {
    file: path,
    header: head.value.fields.map((h) => h.trim()),
    rows: { [Symbol.iterator]: () => rows },
  };
}

/** Quotes a field when it holds a comma, quote or line break. */
export function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Formats one CSV line (without the line end). */
export function csvLine(fields: readonly (string | number)[]): string {
  return fields.map(csvField).join(",");
}
