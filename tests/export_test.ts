/**
 * `deno task export` without peers: TF's `same` padding, the kernel
 * layouts, the safetensors format, torchvision's names, and every bad
 * input (not a finished run, unknown format, existing output, a model that
 * is not the toolkit's ResNet-34), through the library and the CLI.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exportModel } from "../lib/export/export.ts";
import { hwioToOihw, transpose2d } from "../lib/export/layouts.ts";
import { onnxPads, samePadding } from "../lib/export/padding.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "../lib/export/safetensors.ts";
import { torchvisionName } from "../lib/export/torchvision.ts";
import { UsageError } from "../lib/cli.ts";
import { setupBackend } from "../lib/backend.ts";
import { tinyResNetRun } from "./fixtures_export.ts";
import { toyRun } from "./fixtures_run.ts";
import { runTask } from "./task_cli.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

Deno.test("samePadding: TF puts the odd pixel after; stride 1 and odd sides are symmetric", () => {
  assert.deepEqual(samePadding(16, 3, 2), [0, 1]);
  assert.deepEqual(samePadding(15, 3, 2), [1, 1]);
  assert.deepEqual(samePadding(16, 3, 1), [1, 1]);
  assert.deepEqual(samePadding(16, 1, 2), [0, 0]);
  assert.deepEqual(samePadding(32, 7, 2), [2, 3]);
  assert.deepEqual(samePadding(8, 3, 1, 2), [2, 2]);
  assert.deepEqual(onnxPads("same", [16, 15], [3, 3], [2, 2]), [0, 1, 1, 1]);
  assert.deepEqual(onnxPads("valid", [16, 16], [3, 3], [2, 2]), [0, 0, 0, 0]);
});

Deno.test("hwioToOihw and transpose2d move each value to its torch position", () => {
  const [h, w, i, o] = [2, 3, 4, 5];
  const hwio = Float32Array.from({ length: h * w * i * o }, (_, k) => k);
  const oihw = hwioToOihw(hwio, [h, w, i, o]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < i; c++) {
        for (let k = 0; k < o; k++) {
          assert.equal(oihw[((k * i + c) * h + y) * w + x], hwio[((y * w + x) * i + c) * o + k]);
        }
      }
    }
  }
  assert.deepEqual([...transpose2d(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3])], [
    1,
    4,
    2,
    5,
    3,
    6,
  ]);
});

Deno.test("safetensors: length-prefixed JSON header, 8-byte aligned, contiguous offsets, round trip", () => {
  const tensors = new Map<string, SafeTensor>([
    ["a.weight", { dtype: "F32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
    ["a.num_batches_tracked", { dtype: "I64", shape: [], data: BigInt64Array.from([7n]) }],
    ["b", { dtype: "F32", shape: [1], data: Float32Array.from([0.25]) }],
  ]);
  const bytes = encodeSafetensors(tensors, { classes: '["x","y"]' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(header["a.weight"], { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header["a.num_batches_tracked"].data_offsets, [24, 32]);
  assert.deepEqual(header["b"].data_offsets, [32, 36]);
  assert.equal(bytes.length, 8 + n + 36);
  assert.deepEqual(header.__metadata__, { classes: '["x","y"]' });
  // -6.5 as little-endian float32 at the end of the first tensor.
  assert.equal(new DataView(bytes.buffer).getFloat32(8 + n + 20, true), -6.5);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, { classes: '["x","y"]' });
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
  for (const [k, t] of tensors) assert.deepEqual(back.tensors.get(k), t);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 20), "f.safetensors"), /f\.safetensors/);
  assert.throws(
    () =>
      encodeSafetensors(
        new Map([["x", { dtype: "F32", shape: [3], data: new Float32Array(2) } as SafeTensor]]),
      ),
    /x has 2 values for shape \[3\]/,
  );
});

Deno.test("torchvisionName: Keras block names to torchvision resnet34 names", () => {
  assert.equal(torchvisionName("conv1_conv"), "conv1");
  assert.equal(torchvisionName("conv1_bn"), "bn1");
  assert.equal(torchvisionName("conv2_block3_2_bn"), "layer1.2.bn2");
  assert.equal(torchvisionName("conv3_block1_0_conv"), "layer2.0.downsample.0");
  assert.equal(torchvisionName("conv5_block1_0_bn"), "layer4.0.downsample.1");
  assert.equal(torchvisionName("votes_logits"), "fc");
  assert.equal(torchvisionName("avg_pool"), null);
});

Deno.test("torch export: torchvision resnet34's 218 state-dict entries, with metadata", async () => {
  const run = await tinyResNetRun({ stem: "small", head: "tree" });
  const out = join(run, "w.safetensors");
  const s = await exportModel({ model: run, format: "torch", out });
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(out), out);
  // conv1 + bn1 (5) + 16 blocks x (2 convs + 2 x 5 bn) + 3 shortcuts x (1 + 5) + fc (2).
  assert.equal(tensors.size, 218);
  assert.deepEqual(tensors.get("conv1.weight")!.shape, [16, 3, 3, 3]);
  assert.deepEqual(tensors.get("layer4.0.downsample.0.weight")!.shape, [128, 64, 1, 1]);
  assert.deepEqual(tensors.get("fc.weight")!.shape, [37, 128]);
  assert.ok(!tensors.has("layer1.0.downsample.0.weight"));
  assert.equal(tensors.get("bn1.num_batches_tracked")!.dtype, "I64");
  assert.equal(metadata.head, "tree");
  assert.equal(metadata.stem, "small");
  assert.deepEqual(JSON.parse(metadata.filters), [16, 16, 32, 64, 128]);
  assert.equal(JSON.parse(metadata.vote_tree).length, 11);
  assert.equal(metadata.crop, "0.5");
  assert.equal(metadata.size, "32");
  assert.deepEqual(s.metadata, metadata);
});

Deno.test("export tells a current network (torchvision padding, tree projection) from one saved before", async () => {
  for (const legacy of [false, true]) {
    for (const head of ["sigmoid", "softmax"] as const) {
      const run = await tinyResNetRun({ stem: "imagenet", head, legacy });
      const out = join(run, "w.safetensors");
      const s = await exportModel({ model: run, format: "torch", out });
      const what = `${legacy ? "legacy" : "current"} ${head}`;
      assert.equal(s.layout?.head, head, what);
      assert.equal(s.layout?.stridedConvPadding, legacy ? "tf_same" : "torchvision", what);
      assert.equal(s.layout?.treeProjection, head === "sigmoid" && !legacy, what);
      assert.equal(s.metadata.strided_conv_padding, legacy ? "tf_same" : "torchvision", what);
      assert.equal(s.metadata.tree_projection, String(head === "sigmoid" && !legacy), what);
      if (head === "sigmoid") {
        assert.match(s.metadata.output, legacy ? /sigmoid to each\)$/ : /project_to_tree/, what);
        assert.equal(JSON.parse(s.metadata.vote_tree).length, 11);
      }
      // Same weights either way: the padding and projection layers have none.
      assert.equal(decodeSafetensors(await Deno.readFile(out), out).tensors.size, 218);
    }
  }
});

Deno.test("export refuses a folder that is not a run, and a run that has not finished", async () => {
  const empty = await tempDir("galaxy-export-empty-");
  const out = join(empty, "m.onnx");
  await assert.rejects(
    exportModel({ model: empty, format: "onnx", out }),
    (e: Error) =>
      e instanceof UsageError && /without config\.json and model\/model\.json/.test(e.message),
  );
  const unfinished = await tinyResNetRun({ stem: "small", head: "softmax", finished: false });
  await assert.rejects(
    exportModel({ model: unfinished, format: "onnx", out }),
    (e: Error) =>
      e instanceof UsageError && e.message.includes("is not a finished run (no report.json"),
  );
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("export refuses an unknown format, and an existing output without --overwrite", async () => {
  const run = await tinyResNetRun({ stem: "small", head: "sigmoid" });
  const out = join(run, "m.onnx");
  await assert.rejects(
    exportModel({ model: run, format: "keras", out }),
    /unknown --format 'keras': use onnx or torch/,
  );
  await Deno.writeTextFile(out, "keep me");
  await assert.rejects(
    exportModel({ model: run, format: "onnx", out }),
    /m\.onnx exists: pass --overwrite to replace it/,
  );
  assert.equal(await Deno.readTextFile(out), "keep me");
  await exportModel({ model: run, format: "onnx", out, overwrite: true });
  assert.ok((await Deno.stat(out)).size > 10_000);
  // No temporary file is left beside it.
  const left = [];
  for await (const e of Deno.readDir(run)) if (e.name.endsWith(".tmp")) left.push(e.name);
  assert.deepEqual(left, []);
  await assert.rejects(
    exportModel({ model: run, format: "onnx", out: run }),
    /is a folder, not a file/,
  );
});

Deno.test("torch export refuses a model that is not the toolkit's ResNet-34, writing nothing", async () => {
  const run = await toyRun({ size: 16 });
  await Deno.writeTextFile(join(run, "report.json"), "{}");
  const out = join(run, "w.safetensors");
  await assert.rejects(
    exportModel({ model: run, format: "torch", out }),
    /not the toolkit's ResNet-34 \(no conv1_conv or standardize layer\); only ONNX/,
  );
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runTask("export", args, { seconds: 120 });
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
}

Deno.test("deno task export: writes the file (exit 0); bad input is a usage error (exit 2)", async () => {
  const run = await tinyResNetRun({ stem: "imagenet", head: "softmax" });
  const out = join(run, "m.safetensors");
  const ok = await cli("--model", join(run, "model"), "--format", "torch", "--out", out);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /ResNet-34, imagenet stem, softmax head, width 0\.25/);
  assert.match(ok.out, /wrote torch to .*m\.safetensors/);
  const again = await cli("--model", run, "--format", "torch", "--out", out);
  assert.equal(again.code, 2);
  assert.match(again.err, /exists: pass --overwrite/);
  const bad = await cli("--model", run, "--format", "tflite", "--out", out);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--format must be one of onnx, torch, got 'tflite'/);
});
