/**
 * The PyTorch reference (`bench/torch_train_reference.py`): its defaults are
 * the toolkit's, and in its votes mode,
 * one epoch on the tiny votes dataset: skipped where Debian's python3-torch
 * is not installed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tinyDataset } from "./fixtures_dataset.ts";
import { tempDir } from "./temp.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PYTHON = "/usr/bin/python3";

function hasTorch(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = new Deno.Command(PYTHON, {
    args: ["-c", "import torch, torchvision"],
    stdout: "null",
    stderr: "null",
  }).outputSync();
  return r.success;
}

Deno.test({
  name:
    "torch reference, votes mode: sigmoid (or tree) + MSE, RMSE overall, per question, Q1 and baselines",
  ignore: !hasTorch(),
  async fn() {
    const data = await tinyDataset("votes");
    const out = join(await tempDir("galaxy-torch-ref-"), "result.json");
    for (const head of ["sigmoid", "tree"]) {
      const r = await new Deno.Command(PYTHON, {
        args: [
          join(ROOT, "bench", "torch_train_reference.py"),
          ...["--data", data, "--epochs", "1", "--batch", "16", "--threads", "1"],
          ...["--head", head, "--out", out],
        ],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(300_000),
      }).output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      const result = JSON.parse(await Deno.readTextFile(out));
      assert.equal(result.kind, "votes");
      assert.equal(result.objective, `${head} + mse`);
      assert.equal(result.best_epoch, 1);
      assert.ok(result.rmse > 0 && result.rmse < 1, `rmse ${result.rmse}`);
      assert.ok(result.val_rmse > 0 && result.val_rmse < 1);
      assert.deepEqual(Object.keys(result.rmse_per_question), [
        ...Array.from({ length: 11 }, (_, i) => `Q${i + 1}`),
      ]);
      for (const k of ["accuracy", "balanced_accuracy", "macro_f1"]) {
        assert.ok(result.q1[k] >= 0 && result.q1[k] <= 1, k);
      }
      // The baselines need no model: all zeros is worse than the train split's mean.
      assert.ok(result.baselines.zeros > result.baselines.train_mean);
    }
  },
});

Deno.test("the reference's defaults are the toolkit's: dropout, learning rate, warm-up, batch, gamma", async () => {
  // Read from the script's argparse lines, so this holds without torch installed.
  const source = await Deno.readTextFile(join(ROOT, "bench", "torch_train_reference.py"));
  const pythonDefault = (flag: string): number => {
    const m = source.match(
      new RegExp(`add_argument\\("--${flag}", type=\\w+, default=([0-9.e-]+)\\)`),
    );
    assert.ok(m, `bench/torch_train_reference.py has no numeric default for --${flag}`);
    return Number(m[1]);
  };
  const { TRAIN_DEFAULTS } = await import("../lib/train/trainer.ts");
  assert.equal(pythonDefault("dropout"), TRAIN_DEFAULTS.dropout);
  assert.equal(
    TRAIN_DEFAULTS.dropout,
    0,
    "torchvision's resnet34 has no dropout; 0.3 cost 0.0036 RMSE",
  );
  assert.equal(pythonDefault("lr"), TRAIN_DEFAULTS.lr);
  assert.equal(pythonDefault("warmup"), TRAIN_DEFAULTS.warmupEpochs);
  assert.equal(pythonDefault("batch"), TRAIN_DEFAULTS.batch);
  assert.equal(pythonDefault("gamma"), TRAIN_DEFAULTS.gamma);
});
