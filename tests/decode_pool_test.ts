import assert from "node:assert/strict";
import { join } from "node:path";
import { DecodePool } from "../lib/data/decode_pool.ts";
import {
  type DecodeOutcome,
  type DecodeReply,
  encodeReady,
  encodeReply,
  ReplyReader,
} from "../lib/data/decode_protocol.ts";
import { encodeImage } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";

const OPTS = { size: 8, crop: 0.5 };

Deno.test("decode protocol: replies survive any cut of the byte stream", () => {
  const pixelBytes = 2 * 2 * 3;
  const px = (v: number) => new Uint8Array(pixelBytes).fill(v);
  const replies: DecodeReply[] = [
    {
      id: 7,
      outcomes: [
        { ok: true, width: 424, height: 424, pixels: px(1) },
        { ok: false, message: "empty file (0 bytes) — ünïcode" },
        { ok: true, width: 30, height: 20, pixels: px(250) },
      ],
    },
    { id: 8, outcomes: [] },
    { id: 9, outcomes: [{ ok: false, message: "not a readable image" }] },
  ];
  const frames = [encodeReady(), ...replies.map((r) => encodeReply(r, pixelBytes))];
  const stream = new Uint8Array(frames.reduce((a, f) => a + f.length, 0));
  frames.reduce((at, f) => (stream.set(f, at), at + f.length), 0);
  for (const cut of [1, 3, 16, 17, 40, stream.length]) {
    const reader = new ReplyReader(pixelBytes);
    const got = [];
    for (let at = 0; at < stream.length; at += cut) {
      got.push(...reader.push(stream.subarray(at, at + cut)));
    }
    assert.deepEqual(got, [{ ready: true }, ...replies], `pieces of ${cut} bytes`);
    assert.equal(reader.pending, 0);
  }
  assert.throws(
    () => encodeReply({ id: 1, outcomes: [{ ok: true, width: 1, height: 1, pixels: px(0) }] }, 5),
    /12 bytes, expected 5/,
  );
});

/** A folder of good and bad inputs; returns the items in a fixed order. */
async function mixedInputs() {
  const dir = await tempDir("galaxy-decode-");
  const files: [string, Uint8Array | string][] = [
    ["a.jpg", await encodeImage(40, 40, 1)],
    ["grey.jpg", await encodeImage(36, 36, 2, "grey")],
    ["cmyk.jpg", await encodeImage(40, 30, 3, "cmyk")],
    ["alpha.png", await encodeImage(24, 24, 4, "png-alpha")],
    ["empty.jpg", new Uint8Array(0)],
    ["text.jpg", "this is not an image\n"],
  ];
  for (const [name, data] of files) {
    if (typeof data === "string") await Deno.writeTextFile(join(dir, name), data);
    else await Deno.writeFile(join(dir, name), data);
  }
  const names = [...files.map(([n]) => n), "missing.jpg"];
  return { dir, items: names.map((name) => ({ path: join(dir, name), name })) };
}

Deno.test("decode pool: decoder processes give the in-process pixels and reasons, in order", async () => {
  const { items } = await mixedInputs();
  const local = DecodePool.start({ ...OPTS, processes: 0 });
  const expected = await local.decode(items);
  assert.deepEqual(expected.map((o) => o.ok), [true, true, true, true, false, false, false]);
  assert.match((expected[4] as { message: string }).message, /empty file/);
  assert.match((expected[6] as { message: string }).message, /cannot read/);

  const pool = DecodePool.start({ ...OPTS, processes: 2, lanes: 2 });
  try {
    assert.equal(pool.processes, 2);
    // Several batches at once, spread over both decoders, come back each in its own order.
    const parts = await Promise.all([
      pool.decode(items),
      pool.decode(items.slice(2)),
      pool.decode([]),
      pool.decode([items[0]]),
    ]);
    assert.deepEqual(parts[0], expected);
    assert.deepEqual(parts[1], expected.slice(2));
    assert.deepEqual(parts[2], []);
    assert.deepEqual(parts[3], expected.slice(0, 1));
    assert.equal(pool.held, 0);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.decode(items), /closed/);
});

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let k = 0; k < 600 && !ok(); k++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ok(), `timed out waiting until ${what}`);
}

Deno.test("decode pool: a dead decoder is replaced; its images are retried alone, and only the one that kills fails", async () => {
  const { dir, items } = await mixedInputs();
  // A FIFO with no writer blocks its reader forever: a batch holding it is in
  // flight until its decoder dies.
  const fifo = join(dir, "stuck.jpg");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(made.success, "mkfifo");
  const batch = [items[0], { path: fifo, name: "stuck.jpg" }, items[1], items[4]];
  const expected = await DecodePool.start({ ...OPTS, processes: 0 }).decode(items);

  const pool = DecodePool.start({ ...OPTS, processes: 1, lanes: 4 });
  try {
    await pool.ready;
    const result = pool.decode(batch);
    await until("the decoder holds the batch", () => pool.held === 4);
    const first = pool.pids[0];
    Deno.kill(first, "SIGKILL");
    // Replaced; the batch's images become suspects that a quarantine decoder
    // takes one at a time: the first comes back, the FIFO is then held alone.
    await until("a quarantine decoder holds the stuck image", () => pool.quarantinePid !== null);
    await pool.ready;
    assert.notEqual(pool.pids[0], first);
    await until("only the stuck image is held", () => pool.held === 1);
    // Meanwhile the replacement decoder serves new work.
    assert.deepEqual(await pool.decode(items.slice(0, 2)), expected.slice(0, 2));
    Deno.kill(pool.quarantinePid!, "SIGKILL");
    const got = await result;
    assert.deepEqual(got[0], expected[0]);
    assert.deepEqual(got[2], expected[1], "a good image after the bad one is not blamed");
    assert.deepEqual(got[3], expected[4]);
    assert.equal(got[1].ok, false);
    assert.match((got[1] as { message: string }).message, /killed by SIGKILL while decoding it/);
    assert.deepEqual(await pool.decode(items.slice(0, 2)), expected.slice(0, 2));
  } finally {
    await pool.kill();
  }
});

Deno.test("decode pool: after a fatal error every pending and later call rejects, none hangs", async () => {
  const { items } = await mixedInputs();
  const pool = DecodePool.start({ ...OPTS, processes: 2, lanes: 1 });
  const [a, b] = pool.pids;
  Deno.kill(b, "SIGKILL"); // long before it is ready: the pool cannot run
  const pending = [pool.decode(items), pool.decode(items), pool.decode(items.slice(0, 1))]
    .map((p) => assert.rejects(p, /decoder process was killed by SIGKILL/));
  Deno.kill(a, "SIGKILL");
  await Promise.all(pending);
  await assert.rejects(pool.decode(items), /before it was ready/);
  await pool.kill();
});

Deno.test("decode pool: a decoder that cannot start fails every call, saying so", async () => {
  const { items } = await mixedInputs();
  const pool = DecodePool.start({ ...OPTS, processes: 1 });
  Deno.kill(pool.pids[0], "SIGKILL"); // long before it has loaded sharp
  const outcome: Promise<DecodeOutcome[]> = pool.decode(items);
  await assert.rejects(outcome, /decoder process was killed by SIGKILL before it was ready/);
  await assert.rejects(pool.decode(items), /before it was ready/);
  await pool.close();
});

Deno.test("decode pool: option ranges are checked", () => {
  assert.throws(() => DecodePool.start({ ...OPTS, processes: -1 }), /processes/);
  assert.throws(() => DecodePool.start({ ...OPTS, processes: 0, lanes: 0 }), /in flight/);
});
