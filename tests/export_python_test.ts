/**
 * The exports read by Python: Debian's python3-onnx `onnx.checker` accepts
 * every ONNX file; PyTorch (`/usr/bin/python3`) loads every safetensors file
 * with python/galaxy_torch.py and equals `predict` within 1e-4 for every
 * head and stem, for current networks and for runs saved before issue 23;
 * torchvision's own `resnet34` loads a width-1 export with `strict=True`
 * and gives the toolkit's numbers as it is (old runs: after
 * `match_tf_padding`). Each test skips, saying why, where its peer is absent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { encodeNpy } from "../lib/bench/npy.ts";
import { checkTree } from "../lib/data/schema.ts";
import { exportModel } from "../lib/export/export.ts";
import { ONNX_BATCH, ONNX_INPUT } from "../lib/export/onnx.ts";
import { ONNX_IR_VERSION, ONNX_OPSET } from "../lib/export/onnx_graph.ts";
import {
  exportImages,
  GZ5,
  HEADS,
  maxAbsDiff,
  pixelsOf,
  predictFolder,
  STEMS,
  tinyResNetRun,
} from "./fixtures_export.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

const PYTHON = "/usr/bin/python3";
const PEER = new URL("./export_peer.py", import.meta.url).pathname;
const TOLERANCE = 1e-4;

/** Why `modules` cannot be imported by /usr/bin/python3, or "" when they can. */
function missing(modules: string): string {
  if (!existsSync(PYTHON)) return `${PYTHON} is absent`;
  const r = new Deno.Command(PYTHON, { args: ["-c", `import ${modules}`], stderr: "null" })
    .outputSync();
  return r.success ? "" : `${PYTHON} cannot import ${modules} (Debian: python3-onnx, ` +
    "python3-torch, python3-torchvision)";
}
const noOnnx = missing("onnx");
const noTorch = missing("torch, torchvision, numpy");
for (const why of new Set([noOnnx, noTorch])) if (why) console.warn(`skipping: ${why}`);

async function peer<T>(...args: string[]): Promise<T> {
  const r = await new Deno.Command(PYTHON, {
    args: [PEER, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `export_peer.py ${args[0]} failed:\n${err}`);
  const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}

const images = await exportImages(8);
console.log(`export tests: ${images.note}`);

/** predict's rows for a run, and the same pixels as a .npy file for the peer. */
async function expected(run: string, size = 32) {
  const want = await predictFolder(run, images.dir);
  const pixels = await pixelsOf(images.dir, want.ids, { size, crop: 0.5 });
  const npy = join(await tempDir("galaxy-export-npy-"), "pixels.npy");
  await Deno.writeFile(
    npy,
    encodeNpy({ dtype: "uint8", data: pixels, shape: [want.ids.length, size, size, 3] }),
  );
  return { want, npy };
}

Deno.test({
  name: "onnx.checker (python3-onnx) accepts every export; inputs, outputs and metadata_props",
  ignore: noOnnx !== "",
  async fn() {
    const files: string[] = [];
    for (const stem of STEMS) {
      for (const head of HEADS) {
        const run = await tinyResNetRun({ stem, head, crop: 0.6 });
        files.push(join(run, "model.onnx"));
        await exportModel({ model: run, format: "onnx", out: files[files.length - 1] });
      }
    }
    type Info = {
      ir_version: number;
      opset: number[];
      inputs: [string, (string | number)[]][];
      outputs: [string, (string | number)[]][];
      metadata: Record<string, string>;
    };
    const infos = await peer<Record<string, Info>>("onnx", ...files);
    for (const [i, file] of files.entries()) {
      const info = infos[file];
      const head = HEADS[i % HEADS.length];
      assert.equal(info.ir_version, ONNX_IR_VERSION);
      assert.deepEqual(info.opset, [ONNX_OPSET]);
      assert.deepEqual(info.inputs, [[ONNX_INPUT, [ONNX_BATCH, 32, 32, 3]]]);
      assert.deepEqual(info.outputs[0][1], [ONNX_BATCH, head === "softmax" ? 5 : 37]);
      const m = info.metadata;
      assert.equal(m.crop, "0.6");
      assert.equal(m.size, "32");
      assert.equal(m.channel_order, "RGB");
      assert.equal(m.value_range, "0-255");
      assert.equal(m.layout, "NHWC");
      assert.equal(m.head, head);
      assert.equal(m.stem, STEMS[Math.floor(i / HEADS.length)]);
      assert.equal(JSON.parse(m.classes).length, head === "softmax" ? 5 : 37);
      assert.match(m.preprocessing, /0\.6 x the image's shorter side.*32 x 32 px/);
    }
  },
});

Deno.test({
  name: `torch (galaxy_torch.py) equals predict within ${TOLERANCE} for every head and stem`,
  ignore: noTorch !== "",
  async fn(t) {
    const cases = [];
    // Current networks, and networks saved before issue 23 (TF padding, no projection).
    for (const legacy of [false, true]) {
      for (const stem of STEMS) {
        for (const head of HEADS) {
          const run = await tinyResNetRun({ stem, head, legacy });
          const file = join(run, "model.safetensors");
          await exportModel({ model: run, format: "torch", out: file });
          cases.push({ stem, head, legacy, file, ...await expected(run) });
        }
      }
    }
    // One Python process for all of them: importing torch takes seconds.
    const got = await peer<{ outputs: number[][]; metadata: Record<string, string> }[]>(
      "torch",
      ...cases.flatMap((c) => [c.file, c.npy]),
    );
    for (const [i, c] of cases.entries()) {
      await t.step(
        `${c.stem} stem, ${c.head} head${c.legacy ? ", saved before issue 23" : ""}`,
        () => {
          const diff = maxAbsDiff(c.want.rows, got[i].outputs.flat());
          console.log(`largest difference from predict: ${diff.toExponential(2)}`);
          assert.ok(diff <= TOLERANCE, `largest difference ${diff} (${images.note})`);
          assert.equal(got[i].metadata.head, c.head);
          assert.equal(got[i].metadata.stem, c.stem);
          assert.deepEqual(JSON.parse(got[i].metadata.mean), [40, 35, 30]);
          assert.deepEqual(JSON.parse(got[i].metadata.std), [50, 45, 40]);
          assert.equal(got[i].metadata.strided_conv_padding, c.legacy ? "tf_same" : "torchvision");
          if (c.head === "sigmoid" && !c.legacy) {
            // Projected: every image's fractions obey the tree (raw sigmoids here do not).
            for (const row of got[i].outputs) assert.deepEqual(checkTree(row), []);
          }
        },
      );
    }
  },
});

for (const legacy of [false, true]) {
  Deno.test({
    name: "torchvision resnet34(num_classes=5) loads a width-1 imagenet-stem export with " +
      (legacy
        ? "strict=True; a run saved before issue 23 equals predict within 1e-4 after " +
          "match_tf_padding"
        : "strict=True and equals predict within 1e-4 as it is (the same padding)"),
    ignore: noTorch !== "",
    async fn() {
      const run = await tinyResNetRun({ stem: "imagenet", head: "softmax", width: 1, legacy });
      const file = join(run, "model.safetensors");
      await exportModel({ model: run, format: "torch", out: file });
      const { want, npy } = await expected(run);
      const got = await peer<{ plain: number[][]; matched: number[][] }>("torchvision", file, npy);
      assert.equal(got.plain[0].length, GZ5.length);
      const plain = maxAbsDiff(want.rows, got.plain.flat());
      const matched = maxAbsDiff(want.rows, got.matched.flat());
      console.log(
        `torchvision resnet34 differs from predict by up to ${plain} as loaded, ` +
          `${matched} after match_tf_padding`,
      );
      // The padding that is not the run's is measurably different: the comparison can fail.
      const [right, wrong] = legacy ? [matched, plain] : [plain, matched];
      assert.ok(right <= TOLERANCE, `largest difference ${right}`);
      assert.ok(wrong > 10 * TOLERANCE, `the other padding differs by only ${wrong}`);
    },
  });
}
