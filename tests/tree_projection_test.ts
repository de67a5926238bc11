import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { affineProjection, projectToTree, treeViolation } from "../lib/model/tree_projection.ts";
import { votesFromLogits } from "../lib/model/votes_head.ts";
import { resnet34 } from "../lib/model/resnet.ts";
import { checkTree, NUM_VOTES } from "../lib/data/schema.ts";
import { loadModel, saveModel } from "../lib/io/model_io.ts";
import { mulberry32 } from "../lib/random.ts";

await tf.setBackend("cpu");

/** n rows of tree-consistent fractions (the tree head's outputs of random logits). */
function treeRows(n: number, seed: number): Float32Array {
  return tf.tidy(() => {
    const logits = tf.randomNormal([n, NUM_VOTES], 0, 2, "float32", seed) as tf.Tensor2D;
    return votesFromLogits(logits).dataSync() as Float32Array;
  });
}

Deno.test("projected fractions obey the tree within 1e-5 and are never negative", () => {
  const r = mulberry32(1);
  // Sigmoid-like outputs: every value in (0, 1), sums anywhere.
  const raw = Float32Array.from({ length: 200 * NUM_VOTES }, () => r());
  const p = projectToTree(raw);
  for (let i = 0; i < 200; i++) {
    const row = p.subarray(i * NUM_VOTES, (i + 1) * NUM_VOTES);
    assert.deepEqual(checkTree(row, 1e-5), [], `row ${i}`);
    for (const v of row) assert.ok(v >= 0 && v <= 1 + 1e-6, `row ${i}: ${v}`);
  }
  assert.ok(treeViolation(raw) > 0.1, "the raw rows did not obey the tree to begin with");
  // Non-finite values count as 0 rather than poisoning the row.
  const bad = new Float32Array(NUM_VOTES).fill(0.3);
  bad[4] = NaN;
  assert.deepEqual(checkTree(projectToTree(bad), 1e-5), []);
  assert.throws(() => projectToTree(new Float32Array(5)), /rows of 37/);
});

Deno.test("projection never moves a prediction further from tree-consistent truth", () => {
  const truth = treeRows(300, 7);
  const r = mulberry32(2);
  const pred = truth.map((t) => Math.min(1, Math.max(0, t + (r() * 2 - 1) * 0.3)));
  const p = projectToTree(pred);
  let before = 0, after = 0;
  for (let i = 0; i < 300; i++) {
    let a = 0, b = 0;
    for (let j = i * NUM_VOTES; j < (i + 1) * NUM_VOTES; j++) {
      a += (pred[j] - truth[j]) ** 2;
      b += (p[j] - truth[j]) ** 2;
    }
    assert.ok(b <= a + 1e-9, `image ${i}: ${b} > ${a}`);
    before += a;
    after += b;
  }
  assert.ok(after < 0.9 * before, `${after} vs ${before}`);
  // Tree-consistent fractions are already there: they stay put.
  const again = projectToTree(truth);
  truth.forEach((t, j) => assert.ok(Math.abs(again[j] - t) < 1e-6, `${j}: ${again[j]} vs ${t}`));
});

Deno.test("the default votes model predicts tree-consistent fractions; training sees the sigmoids", async () => {
  const model = resnet34({ inputSize: 32, head: "sigmoid", stem: "small", width: 0.125, seed: 3 });
  const x = tf.randomUniform([4, 32, 32, 3], 0, 255, "float32", 9);
  const rows = (model.predict(x) as tf.Tensor).arraySync() as number[][];
  for (const row of rows) assert.deepEqual(checkTree(row, 1e-5), []);
  // In training the projection is the identity: the loss fits the 37 sigmoids as they are.
  const trained = model.apply(x, { training: true }) as tf.Tensor;
  const sigmoid = tf.model({
    inputs: model.inputs,
    outputs: model.getLayer("votes_sigmoid").output,
  })
    .apply(x, { training: true }) as tf.Tensor;
  assert.deepEqual(trained.dataSync(), sigmoid.dataSync());
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(model, dir);
    const loaded = await loadModel(dir);
    assert.deepEqual(
      (loaded.predict(x) as tf.Tensor).dataSync(),
      (model.predict(x) as tf.Tensor).dataSync(),
    );
    loaded.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
    tf.dispose([x, trained, sigmoid]);
    model.dispose();
  }
});

Deno.test("a strided 3x3 convolution is centred where the 1x1 shortcut samples, as in torchvision", () => {
  const model = resnet34({ inputSize: 32, outputs: 2, stem: "imagenet", width: 0.125 });
  const pad = model.getLayer("conv3_block1_1_pad");
  const conv = model.getLayer("conv3_block1_1_conv");
  assert.equal((conv.getConfig() as { padding: string }).padding, "valid");
  // A kernel that copies each input channel from the window's centre tap.
  const [kh, kw, cin, cout] = conv.getWeights()[0].shape;
  const k = tf.buffer([kh, kw, cin, cout]);
  for (let c = 0; c < Math.min(cin, cout); c++) k.set(1, 1, 1, c, c);
  conv.setWeights([k.toTensor()]);
  const x = tf.randomUniform([1, 8, 8, cin], 0, 1, "float32", 4);
  const y = conv.apply(pad.apply(x)) as tf.Tensor;
  const xs = x.arraySync() as number[][][][];
  const ys = y.arraySync() as number[][][][];
  assert.deepEqual(y.shape, [1, 4, 4, cout]);
  // torch (padding 1 all round) centres output (i, j) on input (2i, 2j), where the 1x1
  // stride-2 shortcut samples; TF's "same" would centre it on (2i + 1, 2j + 1).
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      for (let c = 0; c < Math.min(cin, cout); c++) {
        assert.ok(Math.abs(ys[0][i][j][c] - xs[0][2 * i][2 * j][c]) < 1e-6, `${i},${j},${c}`);
      }
    }
  }
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("affineProjection (the exports' affine step): lands on the tree, fixes tree rows", () => {
  const { matrix, offset } = affineProjection();
  const apply = (v: ArrayLike<number>) =>
    Float64Array.from(
      { length: NUM_VOTES },
      (_, j) => offset[j] + Array.from(v).reduce((s, x, i) => s + x * matrix[i * NUM_VOTES + j], 0),
    );
  const r = mulberry32(5);
  for (let k = 0; k < 20; k++) {
    const raw = Float64Array.from({ length: NUM_VOTES }, () => 2 * r() - 0.5);
    assert.ok(treeViolation(raw) > 0.01);
    assert.ok(treeViolation(apply(raw)) < 1e-12, `row ${k}: ${treeViolation(apply(raw))}`);
  }
  // A point already on the tree stays put: an orthogonal projection.
  const rows = treeRows(5, 3);
  for (let i = 0; i < 5; i++) {
    const row = rows.subarray(i * NUM_VOTES, (i + 1) * NUM_VOTES);
    const moved = apply(row);
    for (let j = 0; j < NUM_VOTES; j++) assert.ok(Math.abs(moved[j] - row[j]) < 1e-6);
  }
  // M is symmetric (I - A^T (A A^T)^-1 A).
  for (let i = 0; i < NUM_VOTES; i++) {
    for (let j = 0; j < i; j++) {
      assert.ok(Math.abs(matrix[i * NUM_VOTES + j] - matrix[j * NUM_VOTES + i]) < 1e-12);
    }
  }
});
