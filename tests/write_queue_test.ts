import assert from "node:assert/strict";
import { WriteQueue } from "../lib/io/write_queue.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

Deno.test("write queue: writes run in the background, one at a time, in order", async () => {
  const q = new WriteQueue();
  const log: string[] = [];
  let running = 0;
  for (const name of ["a", "b", "c"]) {
    q.add(name, async () => {
      running++;
      assert.equal(running, 1, "never two writes at once");
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running--;
    });
  }
  assert.deepEqual(log, [], "add returns before the write runs");
  await q.flush();
  assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
});

Deno.test("write queue: a failed write is thrown by flush and add, naming it, and later writes are skipped", async () => {
  const q = new WriteQueue();
  const done: string[] = [];
  q.add("the checkpoint in runs/x", () => Promise.reject(new Error("disk full")));
  q.add("the model in runs/x/model", () => Promise.resolve(void done.push("model")));
  await assert.rejects(q.flush(), /cannot write the checkpoint in runs\/x: disk full/);
  assert.deepEqual(done, [], "nothing newer lands after an older write failed");
  assert.throws(() => q.add("more", () => Promise.resolve()), /disk full/);
  await q.settle(); // never throws
});

Deno.test("write queue: busy while writes are pending; letProgress lets them finish between computations", async () => {
  const q = new WriteQueue();
  assert.equal(q.busy, false);
  await q.letProgress(); // nothing pending: returns at once
  let done = false;
  // A write whose next part needs the event loop to turn (as file operations do).
  q.add("a file", async () => {
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    done = true;
  });
  assert.equal(q.busy, true);
  // A computation that never awaits anything asynchronous, but lets the queue progress after each part.
  for (let step = 0; step < 20 && !done; step++) await q.letProgress();
  assert.ok(done, "the write finished while the computation went on");
  await q.flush();
  assert.equal(q.busy, false);
});
