/**
 * Text lines from a byte stream: a child process's stdin protocol, or the
 * tail of its stderr kept for an error message.
 *
 * @module
 */

/** The lines of `stream` (UTF-8), split at `\n` or `\r`, without the line ends. */
export async function* textLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let partial = "";
  // Typed as a transform of Uint8Array: the DOM lib (for the web pages) widens its input type.
  const decoder = new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>;
  for await (const text of stream.pipeThrough(decoder)) {
    const lines = (partial + text).split(/[\n\r]/);
    partial = lines.pop()!;
    yield* lines;
  }
  if (partial) yield partial;
}

/** Reads `stream` to its end, keeping its last `max` non-blank lines in `tail`. */
export async function keepLastLines(
  stream: ReadableStream<Uint8Array>,
  tail: string[],
  max = 20,
): Promise<void> {
  for await (const line of textLines(stream)) {
    if (!line.trim()) continue;
    tail.push(line);
    if (tail.length > max) tail.shift();
  }
}
