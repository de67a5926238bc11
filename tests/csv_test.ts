import assert from "node:assert/strict";
import { CsvError, csvLine, parseCsv, parseCsvRows, readCsv } from "../lib/io/csv.ts";
import { tempDir } from "./temp.ts";

Deno.test("parseCsv: header, rows and the line each row starts on", () => {
  const t = parseCsv("id,label\n1,spiral\n\n2,edge_on\n", "x.csv");
  assert.deepEqual(t.header, ["id", "label"]);
  assert.deepEqual(t.rows, [
    { line: 2, fields: ["1", "spiral"] },
    { line: 4, fields: ["2", "edge_on"] },
  ]);
});

Deno.test("parseCsv: CRLF, byte-order mark, quoted commas, quotes and line breaks", () => {
  const text = '\ufeffid,label\r\n"a,1","say ""hi"""\r\n"b\nc",x\r\nd,\r\n';
  const t = parseCsv(text);
  assert.deepEqual(t.header, ["id", "label"]);
  assert.deepEqual(t.rows[0], { line: 2, fields: ["a,1", 'say "hi"'] });
  assert.deepEqual(t.rows[1], { line: 3, fields: ["b\nc", "x"] });
  // The multi-line field moves the next row to line 5; an empty last field is kept.
  assert.deepEqual(t.rows[2], { line: 5, fields: ["d", ""] });
});

Deno.test("parseCsvRows: rows with the wrong number of fields are returned as they are", () => {
  const rows = parseCsvRows("a,b,c\n1,2\n1,2,3,4\n");
  assert.deepEqual(rows.map((r) => r.fields.length), [3, 2, 4]);
  assert.deepEqual(rows.map((r) => r.line), [1, 2, 3]);
});

Deno.test("parseCsvRows: unterminated quote and stray character name file and line", () => {
  assert.throws(
    () => parseCsvRows('id,label\n1,"open\n2,x\n', "bad.csv"),
    (e: unknown) =>
      e instanceof CsvError && e.message === "bad.csv:2: quoted field is never closed",
  );
  assert.throws(
    () => parseCsvRows('id,label\n1,"x"y\n', "bad.csv"),
    (e: unknown) => e instanceof CsvError && e.message.startsWith("bad.csv:2: unexpected 'y'"),
  );
  assert.throws(() => parseCsv("\n\n", "empty.csv"), /empty.csv:1: file is empty/);
});

Deno.test("csvLine quotes only what needs it and parses back", () => {
  const fields = ["plain", "with,comma", 'q"uote', "two\nlines", 3.5];
  const line = csvLine(fields);
  assert.equal(line, 'plain,"with,comma","q""uote","two\nlines",3.5');
  assert.deepEqual(parseCsvRows(line)[0].fields, fields.map(String));
});

Deno.test("readCsv: header at once, rows one at a time; a bad row throws when reached", async () => {
  const dir = await tempDir("galaxy-csv-");
  const path = `${dir}/t.csv`;
  await Deno.writeTextFile(path, '\n id , label \n1,spiral\n2,"edge\n3,x\n');
  const t = await readCsv(path);
  assert.deepEqual(t.header, ["id", "label"]);
  const seen: number[] = [];
  assert.throws(
    () => {
      for (const r of t.rows) seen.push(r.line);
    },
    (e: unknown) =>
      e instanceof CsvError && e.message === `${path}:4: quoted field is never closed`,
  );
  assert.deepEqual(seen, [3], "rows before the bad one were handed out first");
  await Deno.writeTextFile(path, "\n\n");
  await assert.rejects(readCsv(path), /t.csv:1: file is empty/);
  await assert.rejects(readCsv(`${dir}/absent.csv`), /cannot read .*absent.csv/);
});
