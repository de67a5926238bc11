import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { tempDir } from "./temp.ts";
import { setupBackend } from "../lib/backend.ts";
import {
  loadCheckpoint,
  type RunState,
  SnapshotBuffers,
  snapshotCheckpoint,
  writeCheckpoint,
} from "../lib/train/checkpoint.ts";

await setupBackend({ requested: "cpu" });

const STATE: RunState = {
  epoch: 1,
  batchInEpoch: 3,
  step: 7,
  bestScore: 0.5,
  bestEpoch: 1,
  sinceBest: 0,
  epochLossSum: 1.5,
  epochCorrect: 4,
  epochSeen: 9,
  elapsedSeconds: 12,
};

Deno.test("a checkpoint snapshot holds the values of when it was taken, not of when it is written", async () => {
  const dir = join(await tempDir("galaxy-ckpt-"), "checkpoint");
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  const state = { ...STATE };
  const optimizerState = [Float32Array.of(9)];
  const snapshot = snapshotCheckpoint(state, [w], { state: optimizerState, step: 7 });
  // Training goes on while it is written.
  w.assign(tf.tensor1d([4, 5, 6]));
  state.step = 99;
  optimizerState[0][0] = 10;
  await writeCheckpoint(dir, snapshot);
  const cp = (await loadCheckpoint(dir))!;
  assert.deepEqual(cp.state, STATE);
  assert.deepEqual(Array.from(cp.variables[0]), [1, 2, 3]);
  assert.deepEqual(Array.from(cp.optimizer[0]), [9]);
  assert.equal(cp.optimizerStep, 7);
  // The optimizer's slot tensors, read in place, give the same checkpoint as their copies.
  const slot = tf.variable(tf.tensor1d([7, 8]));
  const fromTensors = snapshotCheckpoint(state, [w], { state: [slot], step: 9 });
  const fromArrays = snapshotCheckpoint(state, [w], { state: [Float32Array.of(7, 8)], step: 9 });
  assert.deepEqual(fromTensors, fromArrays);
  slot.dispose();
  // A second checkpoint replaces the first one's files.
  await writeCheckpoint(dir, snapshotCheckpoint(state, [w], { state: optimizerState, step: 8 }));
  assert.deepEqual(Array.from((await loadCheckpoint(dir))!.variables[0]), [4, 5, 6]);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.equal(files.length, 3, files.join(", "));
  w.dispose();
});

Deno.test("snapshot buffers: a written snapshot's buffers are reused by the next snapshot", () => {
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  const buffers = new SnapshotBuffers();
  const first = snapshotCheckpoint(
    STATE,
    [w],
    { state: [Float32Array.of(9, 9)], step: 1 },
    buffers,
  );
  buffers.release(first);
  w.assign(tf.tensor1d([4, 5, 6]));
  const second = snapshotCheckpoint(
    STATE,
    [w],
    { state: [Float32Array.of(7, 7)], step: 2 },
    buffers,
  );
  assert.equal(second.variables.buffer, first.variables.buffer, "same memory");
  assert.equal(second.optimizer.buffer, first.optimizer.buffer);
  assert.deepEqual(Array.from(new Float32Array(second.variables.buffer)), [4, 5, 6]);
  // Not released yet: a third snapshot gets new memory.
  const third = snapshotCheckpoint(
    STATE,
    [w],
    { state: [Float32Array.of(7, 7)], step: 3 },
    buffers,
  );
  assert.notEqual(third.variables.buffer, second.variables.buffer);
  w.dispose();
});
