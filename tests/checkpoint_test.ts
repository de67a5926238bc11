import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { tempDir } from "./temp.ts";
import { CheckpointWriter, loadCheckpoint, type RunState } from "../lib/train/checkpoint.ts";

await tf.setBackend("cpu");

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

Deno.test("checkpoint writer: each checkpoint holds the values of when it was asked for", async () => {
  const dir = join(await tempDir("galaxy-ckpt-"), "checkpoint");
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  const written: number[] = [];
  const writer = new CheckpointWriter(dir, (step) => written.push(step));
  writer.save(STATE, [w], { state: [Float32Array.of(9)], step: 7 });
  // Training goes on while it is written: neither of these may reach that checkpoint.
  w.assign(tf.tensor1d([4, 5, 6]));
  STATE.step = 99;
  writer.save({ ...STATE, step: 8 }, [w], { state: [Float32Array.of(10)], step: 8 });
  await writer.flush();
  assert.deepEqual(written, [7, 8], "both written, in order, each reported once on disk");
  const cp = (await loadCheckpoint(dir))!;
  assert.equal(cp.state.step, 8);
  assert.deepEqual(Array.from(cp.variables[0]), [4, 5, 6]);
  assert.deepEqual(Array.from(cp.optimizer[0]), [10]);
  assert.equal(cp.optimizerStep, 8);
  // Only the latest checkpoint's files are left.
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.equal(files.length, 3, files.join(", "));
  w.dispose();
  STATE.step = 7;
});

Deno.test("checkpoint writer: a failed write is reported, naming the folder, and stops later writes", async () => {
  const parent = await tempDir("galaxy-ckpt-");
  const dir = join(parent, "checkpoint");
  await Deno.writeTextFile(dir, "a file where the checkpoint folder should be");
  const w = tf.variable(tf.tensor1d([1]));
  const written: number[] = [];
  const writer = new CheckpointWriter(dir, (step) => written.push(step));
  writer.save(STATE, [w], { state: [], step: 1 });
  await assert.rejects(writer.flush(), new RegExp(`cannot write the checkpoint in ${dir}`));
  assert.throws(() => writer.save(STATE, [w], { state: [], step: 2 }), /cannot write/);
  await writer.settle(); // never throws
  assert.deepEqual(written, []);
  assert.equal(await Deno.readTextFile(dir), "a file where the checkpoint folder should be");
  w.dispose();
});
