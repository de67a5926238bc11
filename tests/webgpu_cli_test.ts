/**
 * `--backend webgpu` as a user runs it: train, predict and evaluate on the
 * adapter this machine has (lavapipe here, a software renderer, so the
 * network is narrowed to keep the test short).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { requestAdapter } from "../lib/webgpu.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { runTask } from "./task_cli.ts";
import { tempDir } from "./temp.ts";

const adapter = await requestAdapter().catch(() => null);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const BACKEND_LINE = /^backend: webgpu via @tensorflow\/tfjs-backend-webgpu, adapter: .+$/m;

Deno.test({
  name: "train, predict and evaluate --backend webgpu: one epoch, then the run is used",
  ignore: adapter === null,
  async fn() {
    const data = await tinyDataset();
    const out = join(await tempDir("galaxy-webgpu-"), "run");
    const train = await runTask("train", [
      ...["--data", data, "--out", out, "--epochs", "1", "--batch", "8", "--width", "0.25"],
      ...["--backend", "webgpu"],
    ], { seconds: 600 });
    const trainOut = text(train.stdout) + text(train.stderr);
    assert.equal(train.code, 0, trainOut);
    assert.match(trainOut, BACKEND_LINE);
    assert.match(trainOut, /^epoch 1: train loss \d/m);
    const metrics = Deno.readTextFileSync(join(out, "metrics.jsonl")).trim().split("\n");
    assert.equal(metrics.length, 1);
    assert.ok(Number.isFinite(JSON.parse(metrics[0]).train_loss), metrics[0]);

    const csv = join(out, "..", "predictions.csv");
    const images = join(data, "..", "raw", "images_test_rev1");
    const predict = await runTask("predict", [
      ...["--model", out, "--in", images, "--out", csv, "--backend", "webgpu"],
    ], { seconds: 300 });
    assert.equal(predict.code, 0, text(predict.stdout) + text(predict.stderr));
    assert.match(text(predict.stdout), BACKEND_LINE);
    const rows = Deno.readTextFileSync(csv).trim().split("\n").slice(1);
    assert.equal(rows.length, [...Deno.readDirSync(images)].length);

    const report = join(out, "..", "report");
    const evaluate = await runTask("evaluate", [
      ...["--model", out, "--data", data, "--out", report, "--worst", "0", "--backend", "webgpu"],
    ], { seconds: 300 });
    assert.equal(evaluate.code, 0, text(evaluate.stdout) + text(evaluate.stderr));
    assert.match(text(evaluate.stdout), BACKEND_LINE);
    assert.ok(JSON.parse(Deno.readTextFileSync(join(report, "report.json"))));
  },
});
