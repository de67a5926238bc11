import assert from "node:assert/strict";
import { keepLastLines, textLines } from "../lib/io/lines.ts";

/** A stream that delivers `text` in pieces of `size` bytes. */
function pieces(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + size));
      at += size;
    },
  });
}

Deno.test("textLines: lines across any cut of the stream, \\n or \\r, the last one unterminated", async () => {
  const text = '{"id":1}\nnaïve ünïcode\rprogress 50%\r\n\nlast';
  for (const size of [1, 2, 5, 1000]) {
    const got: string[] = [];
    for await (const l of textLines(pieces(text, size))) got.push(l);
    assert.deepEqual(
      got,
      ['{"id":1}', "naïve ünïcode", "progress 50%", "", "", "last"],
      `pieces of ${size}`,
    );
  }
});

Deno.test("keepLastLines: the last non-blank lines, at most max", async () => {
  const tail = ["from before"];
  await keepLastLines(pieces("a\n\n  \nb\nc\nd", 3), tail, 3);
  assert.deepEqual(tail, ["b", "c", "d"]);
  const short: string[] = [];
  await keepLastLines(pieces("only\n", 4), short);
  assert.deepEqual(short, ["only"]);
});
