import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  countTrainableParams,
  initialVoteBias,
  resnet34,
  VOTE_HEADS,
} from "../lib/model/resnet.ts";
import { votesFromLogits } from "../lib/model/votes_head.ts";
import { checkTree, NUM_VOTES, QUESTIONS, questionSlice } from "../lib/data/schema.ts";
import { loadModel, saveModel } from "../lib/io/model_io.ts";

await tf.setBackend("cpu");

Deno.test("resnet34 has torchvision's trainable parameter count plus a 5-way head", () => {
  const model = resnet34({ inputSize: 64, outputs: 5, stem: "imagenet" });
  assert.equal(countTrainableParams(model), 21_287_237);
  model.dispose();
});

Deno.test("resnet34 output shapes for two input sizes and both stems", () => {
  for (const stem of ["imagenet", "small"] as const) {
    for (const size of [32, 48]) {
      const model = resnet34({ inputSize: size, outputs: 4, stem, dropout: 0 });
      assert.deepEqual(model.inputs[0].shape, [null, size, size, 3]);
      assert.deepEqual(model.outputs[0].shape, [null, 4]);
      // The last feature map: /32 with the ImageNet stem, /8 with the small one.
      const features = model.getLayer("conv5_block3_out").outputShape as number[];
      const side = stem === "imagenet" ? Math.ceil(size / 32) : size / 8;
      assert.deepEqual(features, [null, side, side, 512], `${stem} ${size}`);
      model.dispose();
    }
  }
});

Deno.test("resnet34 takes raw pixels and returns class probabilities", () => {
  const model = resnet34({ inputSize: 32, outputs: 3, stem: "small", seed: 1 });
  const x = tf.randomUniform([2, 32, 32, 3], 0, 255, "float32", 7);
  const y = model.predict(x) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 3]);
  const sums = Array.from(y.sum(1).dataSync());
  for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-5);
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("resnet34 with the same seed starts from the same weights", () => {
  // Seed 0 too: TF.js initializers take 0 to mean "unseeded".
  const a = resnet34({ inputSize: 32, outputs: 2, seed: 0 });
  const b = resnet34({ inputSize: 32, outputs: 2, seed: 0 });
  const c = resnet34({ inputSize: 32, outputs: 2, seed: 4 });
  const wa = a.getLayer("conv3_block1_1_conv").getWeights()[0].dataSync();
  const wb = b.getLayer("conv3_block1_1_conv").getWeights()[0].dataSync();
  const wc = c.getLayer("conv3_block1_1_conv").getWeights()[0].dataSync();
  assert.deepEqual(wa, wb);
  assert.notDeepEqual(wa, wc);
  [a, b, c].forEach((m) => m.dispose());
});

Deno.test("resnet34 rejects inconsistent options with a clear message", () => {
  assert.throws(() => resnet34({ head: "tree", outputs: 5 }), /37 outputs/);
  assert.throws(() => resnet34({ inputSize: 16, stem: "imagenet" }), /too small/);
  assert.throws(() => resnet34({ dropout: 1 }), /dropout/);
});

Deno.test("the votes head yields tree-consistent fractions", () => {
  const logits = tf.randomNormal([5, NUM_VOTES], 0, 3, "float32", 11) as tf.Tensor2D;
  const votes = votesFromLogits(logits);
  const rows = votes.arraySync();
  for (const row of rows) {
    assert.deepEqual(checkTree(row, 1e-5), []);
    for (const v of row) assert.ok(v >= 0 && v <= 1);
  }
  tf.dispose([logits, votes]);
});

Deno.test("a votes model saves and loads with its custom layers, predicting the same", async () => {
  const model = resnet34({
    inputSize: 32,
    head: "tree",
    stem: "small",
    seed: 2,
    mean: [10, 20, 30],
    std: [5, 6, 7],
  });
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(model, dir);
    const loaded = await loadModel(dir);
    const x = tf.randomUniform([2, 32, 32, 3], 0, 255, "float32", 5);
    const a = (model.predict(x) as tf.Tensor).dataSync();
    const b = (loaded.predict(x) as tf.Tensor).dataSync();
    assert.deepEqual(b, a);
    assert.equal(loaded.getLayer("standardize").getConfig().mean?.toString(), "10,20,30");
    loaded.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("loadModel names the folder when weights are missing", async () => {
  const model = resnet34({ inputSize: 32, outputs: 2, stem: "small" });
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(model, dir);
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.endsWith(".bin")) Deno.removeSync(`${dir}/${e.name}`);
    }
    await assert.rejects(() => loadModel(dir), new RegExp(`${dir}.*cannot be read`));
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.dispose();
  }
});

Deno.test("a vote head starts from the given fractions: its bias alone reproduces them", () => {
  // A tree-consistent row of fractions (every question's answers sum to its parents' share).
  const votes = new Float32Array(NUM_VOTES);
  const set = (q: number, shares: number[], reach: number) => {
    const [a] = questionSlice(QUESTIONS[q - 1]);
    shares.forEach((s, k) => votes[a + k] = s * reach);
  };
  set(1, [0.4, 0.55, 0.05], 1);
  set(2, [0.3, 0.7], 0.55);
  for (const q of [3, 4]) set(q, [0.25, 0.75], 0.385);
  set(5, [0.1, 0.2, 0.3, 0.4], 0.385);
  set(6, [0.2, 0.8], 1);
  set(7, [0.5, 0.3, 0.2], 0.4);
  set(8, [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2], 0.2);
  set(9, [0.6, 0.3, 0.1], 0.165);
  set(10, [0.3, 0.3, 0.4], 0.09625);
  set(11, [0.1, 0.3, 0.2, 0.1, 0.1, 0.2], 0.09625);
  assert.deepEqual(checkTree(Array.from(votes), 1e-6), []);
  for (const head of VOTE_HEADS) {
    const model = resnet34({
      inputSize: 32,
      head,
      stem: "small",
      width: 0.125,
      initialVotes: votes,
    });
    const dense = model.getLayer("votes_logits");
    tf.tidy(() => dense.setWeights([tf.zerosLike(dense.getWeights()[0]), dense.getWeights()[1]]));
    const x = tf.randomUniform([2, 32, 32, 3], 0, 255, "float32", 3);
    const out = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    for (const row of out) {
      // Fractions below 1e-3 are clipped there, so they start at most 1e-3 off.
      row.forEach((p, i) => assert.ok(Math.abs(p - votes[i]) < 2e-3, `${head} ${i}: ${p}`));
    }
    tf.dispose(x);
    model.dispose();
  }
  assert.throws(() => initialVoteBias("sigmoid", [0.5]), /37 fractions/);
});
