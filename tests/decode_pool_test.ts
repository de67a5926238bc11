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
import { encodeImage, xorshift32 } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";
import { deadlineTest } from "./deadline.ts";

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

deadlineTest(
  "decode pool: decoder processes give the in-process pixels and reasons, in order",
  120,
  async (signal) => {
    const { items } = await mixedInputs();
    const local = DecodePool.start({ ...OPTS, processes: 0 });
    const expected = await local.decode(items);
    assert.deepEqual(expected.map((o) => o.ok), [true, true, true, true, false, false, false]);
    assert.match((expected[4] as { message: string }).message, /empty file/);
    assert.match((expected[6] as { message: string }).message, /cannot read/);

    const pool = DecodePool.start({ ...OPTS, processes: 2, lanes: 2 });
    signal.addEventListener("abort", () => pool.kill());
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
  },
);

async function until(what: string, ok: () => boolean, seconds = 60): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.ok(ok(), `timed out waiting until ${what}`);
}

/** Makes a FIFO: reading it blocks until a writer comes, so a decoder holding it is stuck. */
async function fifo(dir: string, name: string): Promise<{ path: string; name: string }> {
  const path = join(dir, name);
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, "mkfifo");
  return { path, name };
}

/** The decode_worker processes this test process has started and that are still there. */
async function decoderChildren(): Promise<number[]> {
  // (Deno reads /proc only with --allow-all: ask pgrep.)
  const out = await new Deno.Command("pgrep", {
    args: ["-P", String(Deno.pid), "-f", "decode_worker"],
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** SIGKILLs `pid`; it may have exited already. */
function killQuietly(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* already gone */ }
}

deadlineTest(
  "decode pool: a dead decoder is replaced; its images are retried alone, and only the one that kills fails",
  240,
  async (signal) => {
    const { dir, items } = await mixedInputs();
    // A FIFO with no writer blocks its reader forever: a batch holding it is in
    // flight until its decoder dies.
    const stuck = await fifo(dir, "stuck.jpg");
    const batch = [items[0], stuck, items[1], items[4]];
    const expected = await DecodePool.start({ ...OPTS, processes: 0 }).decode(items);

    const pool = DecodePool.start({ ...OPTS, processes: 1, lanes: 4 });
    signal.addEventListener("abort", () => pool.kill());
    try {
      await pool.ready;
      const result = pool.decode(batch);
      await until("the decoder holds the batch", () => pool.held === 4);
      const first = pool.pids[0];
      Deno.kill(first, "SIGKILL");
      // Replaced; the batch's images become suspects that a quarantine decoder
      // takes one at a time: the first comes back, then the FIFO is held alone.
      // (Waiting for "one image held" is not enough: the quarantine decoder
      // always holds one, and killing it on items[0] left the FIFO to its
      // successor, which nothing ever killed: the hang of issue 14.)
      await until(
        "the quarantine decoder holds the stuck image",
        () => pool.quarantined === "stuck.jpg",
      );
      await pool.ready;
      assert.notEqual(pool.pids[0], first);
      assert.equal(pool.held, 1);
      // Meanwhile the replacement decoder serves new work.
      assert.deepEqual(await pool.decode(items.slice(0, 2)), expected.slice(0, 2));
      assert.equal(pool.quarantined, "stuck.jpg");
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
  },
);

deadlineTest(
  "decode pool: a decoder that answers nothing within the deadline is stopped; the image it hangs on fails, the rest decode",
  240,
  async (signal) => {
    const { dir, items } = await mixedInputs();
    const stuck = await fifo(dir, "stuck.jpg");
    const expected = await DecodePool.start({ ...OPTS, processes: 0 }).decode(items);
    // Starting keeps its own (default, generous) deadline, for a loaded machine.
    const pool = DecodePool.start({ ...OPTS, processes: 1, lanes: 2, deadlineSeconds: 3 });
    signal.addEventListener("abort", () => pool.kill());
    try {
      await pool.ready;
      const got = await pool.decode([items[0], stuck, items[1]]);
      assert.deepEqual(got[0], expected[0]);
      assert.deepEqual(got[2], expected[1]);
      assert.equal(got[1].ok, false);
      assert.match(
        (got[1] as { message: string }).message,
        /was stopped: it answered nothing for 3 s while decoding it/,
      );
      assert.deepEqual(await pool.decode(items.slice(0, 2)), expected.slice(0, 2));
      const late = pool.decode([stuck]);
      await until("a decoder holds the stuck image", () => pool.held === 1);
      // Closing waits for no hung decoder either: it is stopped, and what it held rejects.
      await pool.close();
      await assert.rejects(late, /answered nothing for 3 s/);
    } finally {
      await pool.kill();
    }
    assert.deepEqual(await decoderChildren(), [], "no decoder process is left");
  },
);

/** A seeded xorshift in [0, 1), so a failing round can be replayed. */
function rng(seed: number): () => number {
  return xorshift32(seed * 2654435761);
}

type Moment = "before ready" | "mid-batch" | "in quarantine" | "two at once";
const MOMENTS: Moment[] = ["before ready", "mid-batch", "in quarantine", "two at once"];

deadlineTest(
  "decode pool: killing decoders at random moments, every call settles and no process is left",
  600,
  async (signal) => {
    const { dir, items } = await mixedInputs();
    // A larger image takes long enough to decode that kills land mid-batch.
    await Deno.writeFile(join(dir, "big.jpg"), await encodeImage(1400, 1400, 9));
    const all = [...items, { path: join(dir, "big.jpg"), name: "big.jpg" }];
    const expected = await DecodePool.start({ ...OPTS, processes: 0 }).decode(all);
    const rounds = 24;
    const tally = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      const rand = rng(round + 1);
      const moment = MOMENTS[round % MOMENTS.length];
      const pool = DecodePool.start({ ...OPTS, processes: 2, lanes: 2, deadlineSeconds: 60 });
      const stop = () => pool.kill();
      signal.addEventListener("abort", stop);
      const context = `round ${round} (${moment})`;
      try {
        const batches = Array.from({ length: 6 }, (_, k) => {
          const from = Math.floor(rand() * all.length);
          return [...all.slice(from), ...all.slice(0, from)].slice(0, 2 + (k % 4));
        });
        const calls = batches.map((b) => pool.decode(b));
        const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
        if (moment === "before ready") {
          killQuietly(pool.pids[Math.floor(rand() * 2)]);
        } else {
          await pool.ready;
          await sleep(rand() * 40);
          const pids = pool.pids;
          if (moment === "two at once") {
            killQuietly(pids[0]);
            killQuietly(pids[1]);
          } else killQuietly(pids[Math.floor(rand() * 2)]);
          if (moment === "in quarantine" || moment === "two at once") {
            // A quarantine decoder comes when the dead one held images; kill it
            // at a random point of its life (starting, or holding a suspect).
            await until(
              `${context}: a quarantine decoder or all settled`,
              () => pool.quarantinePid !== null || pool.held === 0,
              120,
            );
            await sleep(rand() * 600);
            killQuietly(pool.quarantinePid);
          }
        }
        // The bound: generous for a loaded 2-core machine; a hang would be forever.
        const settled = await Promise.race([
          Promise.allSettled(calls),
          sleep(180_000).then(() => null),
        ]);
        assert.ok(settled, `${context}: a decode() call did not settle within 180 s`);
        for (const [k, s] of settled.entries()) {
          if (s.status === "rejected") {
            assert.match(String(s.reason), /decoder process|decode pool/, context);
            tally.set("rejected", (tally.get("rejected") ?? 0) + 1);
            continue;
          }
          assert.equal(s.value.length, batches[k].length, context);
          for (const [i, o] of s.value.entries()) {
            const want = expected[all.indexOf(batches[k][i])];
            if (o.ok || !want.ok && o.message === want.message) {
              assert.deepEqual(o, want, `${context}: ${batches[k][i].name}`);
              tally.set("right", (tally.get("right") ?? 0) + 1);
            } else {
              // Only an image whose decoder died while it held it alone may fail so.
              assert.match(o.message, /image decoder process .* while decoding it/, context);
              tally.set("blamed", (tally.get("blamed") ?? 0) + 1);
            }
          }
        }
      } finally {
        signal.removeEventListener("abort", stop);
        await pool.kill();
      }
      assert.deepEqual(await decoderChildren(), [], `${context}: no decoder process is left`);
    }
    console.log(`endings: ${JSON.stringify(Object.fromEntries(tally))}`);
    // Every kind of ending was met, or the rounds did not test what they claim.
    assert.ok((tally.get("right") ?? 0) > 0, JSON.stringify([...tally]));
    assert.ok((tally.get("rejected") ?? 0) > 0, JSON.stringify([...tally]));
  },
);

deadlineTest(
  "decode pool: after a fatal error every pending and later call rejects, none hangs",
  120,
  async (signal) => {
    const { items } = await mixedInputs();
    const pool = DecodePool.start({ ...OPTS, processes: 2, lanes: 1 });
    signal.addEventListener("abort", () => pool.kill());
    const [a, b] = pool.pids;
    Deno.kill(b, "SIGKILL"); // long before it is ready: the pool cannot run
    const pending = [pool.decode(items), pool.decode(items), pool.decode(items.slice(0, 1))]
      .map((p) => assert.rejects(p, /decoder process was killed by SIGKILL/));
    Deno.kill(a, "SIGKILL");
    await Promise.all(pending);
    await assert.rejects(pool.decode(items), /before it was ready/);
    await pool.kill();
  },
);

deadlineTest(
  "decode pool: a decoder that cannot start fails every call, saying so",
  120,
  async (signal) => {
    const { items } = await mixedInputs();
    const pool = DecodePool.start({ ...OPTS, processes: 1 });
    signal.addEventListener("abort", () => pool.kill());
    Deno.kill(pool.pids[0], "SIGKILL"); // long before it has loaded sharp
    const outcome: Promise<DecodeOutcome[]> = pool.decode(items);
    await assert.rejects(outcome, /decoder process was killed by SIGKILL before it was ready/);
    await assert.rejects(pool.decode(items), /before it was ready/);
    await pool.close();
  },
);

Deno.test("decode pool: option ranges are checked", () => {
  assert.throws(() => DecodePool.start({ ...OPTS, processes: -1 }), /processes/);
  assert.throws(() => DecodePool.start({ ...OPTS, processes: 0, lanes: 0 }), /in flight/);
  assert.throws(() => DecodePool.start({ ...OPTS, processes: 0, deadlineSeconds: 0 }), /deadline/);
  assert.throws(() => DecodePool.start({ ...OPTS, processes: 0, startSeconds: -1 }), /start/);
});
