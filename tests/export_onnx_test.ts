/**
 * `deno task export --format onnx` run by ONNX Runtime (onnxruntime-node,
 * the CPU library it ships) against `predict` on the same images: real
 * JPEGs from ../shared/data where present, generated ones otherwise; every
 * head with both stems. Skipped, saying why, where onnxruntime-node does not
 * load.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { checkTree } from "../lib/data/schema.ts";
import { exportModel } from "../lib/export/export.ts";
import { ONNX_INPUT, ONNX_PROBS_OUTPUT, ONNX_VOTES_OUTPUT } from "../lib/export/onnx.ts";
import {
  exportImages,
  HEADS,
  maxAbsDiff,
  pixelsOf,
  predictFolder,
  STEMS,
  tinyResNetRun,
} from "./fixtures_export.ts";
import { toyRun } from "./fixtures_run.ts";

await setupBackend();

type Ort = typeof import("onnxruntime-node");
let ort: Ort | null = null;
let why = "";
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  why = `onnxruntime-node does not load here: ${(e as Error).message.split("\n")[0]}`;
  console.warn(`skipping the ONNX Runtime tests: ${why}`);
}

/** ONNX Runtime's outputs for NHWC pixels, with one thread (the machine is shared). */
async function runOnnx(
  file: string,
  pixels: Uint8Array,
  size: number,
): Promise<{ output: string; data: Float32Array }> {
  const session = await ort!.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  try {
    assert.deepEqual(session.inputNames, [ONNX_INPUT]);
    const n = pixels.length / (size * size * 3);
    const x = new ort!.Tensor("float32", Float32Array.from(pixels), [n, size, size, 3]);
    const r = await session.run({ [ONNX_INPUT]: x });
    const output = session.outputNames[0];
    return { output, data: r[output].data as Float32Array };
  } finally {
    await session.release();
  }
}

/** The tolerance of the issue: ONNX Runtime equals predict within 1e-4. */
const TOLERANCE = 1e-4;

const images = await exportImages(8);
console.log(`export tests: ${images.note}`);

for (const legacy of [false, true]) {
  for (const stem of STEMS) {
    for (const head of HEADS) {
      onnxEqualsPredict(stem, head, legacy);
    }
  }
}

/**
 * One network: a current one (torchvision padding; a sigmoid head projected
 * onto the tree) or, `legacy`, one saved before issue 23.
 */
function onnxEqualsPredict(
  stem: typeof STEMS[number],
  head: typeof HEADS[number],
  legacy: boolean,
) {
  Deno.test({
    name: `ONNX Runtime equals predict within ${TOLERANCE} (${stem} stem, ${head} head${
      legacy ? ", a run saved before issue 23" : ""
    })`,
    ignore: ort === null,
    async fn() {
      const run = await tinyResNetRun({ stem, head, legacy });
      const file = join(run, "model.onnx");
      const s = await exportModel({ model: run, format: "onnx", out: file });
      assert.equal(s.layout?.stem, stem);
      assert.equal(s.layout?.head, head);
      const want = await predictFolder(run, images.dir);
      assert.equal(want.ids.length, 8);
      const pixels = await pixelsOf(images.dir, want.ids, { size: 32, crop: 0.5 });
      const got = await runOnnx(file, pixels, 32);
      assert.equal(got.output, head === "softmax" ? ONNX_PROBS_OUTPUT : ONNX_VOTES_OUTPUT);
      const diff = maxAbsDiff(want.rows, got.data);
      console.log(`largest difference from predict: ${diff.toExponential(2)}`);
      assert.ok(diff <= TOLERANCE, `largest difference ${diff} (${images.note})`);
      // The outputs differ from image to image, so the comparison covers the whole network.
      assert.notDeepEqual(want.rows[0], want.rows[1]);
      // The tree head and the projected sigmoid head obey the decision tree.
      if (head === "tree" || (head === "sigmoid" && !legacy)) {
        for (let i = 0; i < want.ids.length; i++) {
          assert.deepEqual(checkTree(got.data.subarray(i * 37, (i + 1) * 37)), []);
        }
      }
      // A batch of one (the batch dimension is dynamic) gives the same first row.
      const one = await runOnnx(file, pixels.subarray(0, 32 * 32 * 3), 32);
      assert.ok(maxAbsDiff([want.rows[0]], one.data) <= TOLERANCE);
    },
  });
}

Deno.test({
  name: "ONNX export takes any model of the toolkit's layers (a toy GAP + dense model)",
  ignore: ort === null,
  async fn() {
    const run = await toyRun({ size: 16 });
    await Deno.writeTextFile(join(run, "report.json"), "{}");
    const file = join(run, "toy.onnx");
    const s = await exportModel({ model: run, format: "onnx", out: file });
    assert.equal(s.layout, null);
    const want = await predictFolder(run, images.dir);
    const pixels = await pixelsOf(images.dir, want.ids, { size: 16, crop: 0.5 });
    const got = await runOnnx(file, pixels, 16);
    assert.ok(maxAbsDiff(want.rows, got.data) <= TOLERANCE);
  },
});
