/**
 * A deadline on request headers in front of `Deno.serve`, which has none
 * of its own to set: a client that sends its headers a byte at a time (or
 * nothing at all) would otherwise hold a connection for a minute or more.
 *
 * The gate listens on the public address, reads each connection's request
 * headers within `headerSeconds` (10), then passes the connection to the
 * real server on a private loopback port, the headers first, and copies
 * bytes both ways. A connection whose headers are not complete in time is
 * answered 408 and closed; headers larger than `maxHeaderBytes` get a 431.
 *
 * One request per connection: the gate marks each request `Connection:
 * close`, so the next request of a client comes on a new connection and
 * meets the deadline again (on a local server the cost of a new TCP
 * connection is negligible). A slow body is the API's concern (its
 * `bodySeconds`).
 *
 * @module
 */

/** Settings of {@linkcode startHeaderGate}. */
export interface HeaderGateOptions {
  /** Public address to listen on. */
  hostname: string;
  /** Public port (0: any free port). */
  port: number;
  /** Where the real server listens (loopback); may still be starting. */
  backend: Promise<{ hostname: string; port: number }>;
  /** Seconds a connection may take to send complete request headers (10). */
  headerSeconds?: number;
  /** Largest request head, bytes (64 KiB). */
  maxHeaderBytes?: number;
  /** Stops listening when aborted; open connections are closed. */
  signal?: AbortSignal;
}

/** Default of {@linkcode HeaderGateOptions.headerSeconds}. */
export const HEADER_SECONDS = 10;
/** Default of {@linkcode HeaderGateOptions.maxHeaderBytes}. */
export const MAX_HEADER_BYTES = 64 * 1024;

/** A running gate. */
export interface HeaderGate {
  /** The public address it listens on. */
  addr: Deno.NetAddr;
  /** Resolves when it has stopped listening and every connection is closed. */
  finished: Promise<void>;
}

const END_OF_HEAD = new Uint8Array([13, 10, 13, 10]);

/** Index of the blank line ending an HTTP head in `b`, or -1. */
function headEnd(b: Uint8Array, from: number): number {
  outer: for (let i = Math.max(0, from - 3); i + 4 <= b.length; i++) {
    for (let k = 0; k < 4; k++) if (b[i + k] !== END_OF_HEAD[k]) continue outer;
    return i;
  }
  return -1;
}

/** The head with any `Connection` header replaced by `Connection: close`. */
export function closingHead(head: string): string {
  const lines = head.split("\r\n").filter((l) => !/^connection\s*:/i.test(l));
  return [...lines, "Connection: close"].join("\r\n");
}

function answer(status: string, why: string): Uint8Array {
  const body = JSON.stringify({ error: why });
  return new TextEncoder().encode(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${
        new TextEncoder().encode(body).length
      }\r\nconnection: close\r\n\r\n${body}`,
  );
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** Reads one request head within the deadline; null when the connection ended or was refused. */
async function readHead(
  conn: Deno.Conn,
  seconds: number,
  max: number,
): Promise<{ head: string; rest: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  let timedOut = false;
  // The 408 being written when the deadline passes: awaited before the connection is closed.
  let answering: Promise<void> = Promise.resolve();
  const timer = setTimeout(() => {
    timedOut = true;
    // Answer and close: the pending read then ends.
    answering = conn.write(
      answer("408 Request Timeout", `request headers not complete within ${seconds} s`),
    ).then(() => {}, () => {}).finally(() => closeQuietly(conn));
  }, seconds * 1000);
  try {
    const chunk = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null || timedOut) return null;
      const from = buf.length;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      const end = headEnd(buf, from);
      if (end >= 0) {
        return {
          head: new TextDecoder("latin1").decode(buf.subarray(0, end)),
          rest: buf.subarray(end + 4),
        };
      }
      if (buf.length > max) {
        await conn.write(answer("431 Request Header Fields Too Large", `headers over ${max} bytes`))
          .catch(() => {});
        return null;
      }
    }
  } finally {
    clearTimeout(timer);
    await answering;
  }
}

/** Serves one client connection: its head within the deadline, then a copy to the backend. */
async function pass(conn: Deno.Conn, o: Required<Omit<HeaderGateOptions, "signal">>) {
  let backend: Deno.TcpConn | null = null;
  try {
    const got = await readHead(conn, o.headerSeconds, o.maxHeaderBytes);
    if (!got) return;
    const to = await o.backend;
    backend = await Deno.connect({ hostname: to.hostname, port: to.port });
    const head = new TextEncoder().encode(closingHead(got.head) + "\r\n\r\n");
    const first = new Uint8Array(head.length + got.rest.length);
    first.set(head);
    first.set(got.rest, head.length);
    const w = backend.writable.getWriter();
    await w.write(first);
    w.releaseLock();
    const up = conn.readable.pipeTo(backend.writable).catch(() => {});
    // The answer ends the exchange (Connection: close): then both sides are closed, which
    // also ends the copy of the request.
    await backend.readable.pipeTo(conn.writable, { preventClose: true }).catch(() => {});
    closeQuietly(conn);
    closeQuietly(backend);
    await up;
  } finally {
    closeQuietly(conn);
    if (backend) closeQuietly(backend);
  }
}

/** Starts the gate; see the module doc. */
export function startHeaderGate(o: HeaderGateOptions): HeaderGate {
  const settings = {
    hostname: o.hostname,
    port: o.port,
    backend: o.backend,
    headerSeconds: o.headerSeconds ?? HEADER_SECONDS,
    maxHeaderBytes: o.maxHeaderBytes ?? MAX_HEADER_BYTES,
  };
  const listener = Deno.listen({ hostname: o.hostname, port: o.port, transport: "tcp" });
  const open = new Set<Deno.Conn>();
  const passing = new Set<Promise<void>>();
  const stop = () => {
    closeQuietly(listener);
    for (const c of open) closeQuietly(c);
  };
  o.signal?.addEventListener("abort", stop, { once: true });
  const finished = (async () => {
    try {
      for await (const conn of listener) {
        open.add(conn);
        const p = pass(conn, settings).catch(() => {}).finally(() => {
          open.delete(conn);
          passing.delete(p);
        });
        passing.add(p);
      }
    } catch {
      // the listener was closed
    }
    await Promise.all([...passing]);
  })();
  return { addr: listener.addr as Deno.NetAddr, finished };
}
