import assert from "node:assert/strict";
import { readTrainFlags, TRAIN_FLAG_NAMES, trainFlags } from "../lib/train/flags.ts";
import { parseTask } from "../lib/flags.ts";
import { choiceFlag, formatBytes, formatDuration, numberFlag, UsageError } from "../lib/cli.ts";

Deno.test("numberFlag: the value, the fallback when absent, or an error naming the flag", () => {
  assert.equal(numberFlag("size", "48", 64), 48);
  assert.equal(numberFlag("size", undefined, 64), 64);
  assert.equal(numberFlag("crop", undefined, undefined), undefined);
  assert.equal(numberFlag("crop", "0.25", undefined), 0.25);
  assert.throws(() => numberFlag("size", "abc", undefined), UsageError);
  assert.throws(() => numberFlag("size", " ", 64), /--size must be a number, got ' '/);
  assert.throws(
    () => numberFlag("batch", "2.5", 8, { min: 1, integer: true }),
    /--batch must be an integer >= 1, got '2.5'/,
  );
  assert.throws(() => numberFlag("worst", "300", 16, { min: 0, max: 200 }), /<= 200/);
});

Deno.test("choiceFlag: one of the choices, the fallback when absent, or an error listing them", () => {
  const modes = ["model", "predict"] as const;
  assert.equal(choiceFlag("mode", "predict", modes, "model"), "predict");
  assert.equal(choiceFlag("mode", undefined, modes, "model"), "model");
  assert.equal(choiceFlag("mode", undefined, modes, undefined), undefined);
  assert.throws(
    () => choiceFlag("mode", "train", modes, undefined),
    /--mode must be one of model, predict, got 'train'/,
  );
});

Deno.test("formatBytes and formatDuration", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(50 * 1024 ** 2), "50.0 MiB");
  assert.equal(formatBytes(300 * 1024 ** 3), "300 GiB");
  assert.equal(formatDuration(7.4), "7s");
  assert.equal(formatDuration(65), "1m05s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(NaN), "?");
  assert.equal(formatDuration(Infinity), "?");
});

Deno.test("training flags: read and checked once for train and retrain; unset ones left out", () => {
  const all = { task: "t", synopsis: ["t"], flags: trainFlags(TRAIN_FLAG_NAMES) };
  const read = (args: string[]) => readTrainFlags(parseTask(all, args), TRAIN_FLAG_NAMES);
  assert.deepEqual(
    read([
      "--epochs",
      "3",
      "--alpha",
      "balanced",
      "--loss",
      "ce",
      "--warmup",
      "0.5",
      "--eval-batch=8",
    ]),
    { epochs: 3, alpha: "balanced", loss: "ce", warmupEpochs: 0.5, evalBatch: 8 },
  );
  assert.deepEqual(read(["--alpha", "0.5"]), { alpha: 0.5 });
  assert.deepEqual(read(["--alpha", "sqrt-balanced"]), { alpha: "sqrt-balanced" });
  // A subset (retrain's): its flags only; a flag outside it is a usage error.
  const some = { task: "t", synopsis: ["t"], flags: trainFlags(["epochs"]) };
  assert.throws(() => parseTask(some, ["--loss", "ce"]), UsageError);
  assert.deepEqual(read([]), {});
  for (
    const [flag, value, message] of [
      ["epochs", "0", /--epochs must be an integer >= 1, got '0'/],
      ["lr", "fast", /--lr must be a number >= 0/],
      ["stem", "huge", /--stem must be one of imagenet, small, got 'huge'/],
      ["alpha", "-1", /--alpha must be a number >= 0/],
      ["alpha", "sqrt", /--alpha must be a number >= 0/],
    ] as const
  ) {
    assert.throws(() => read([`--${flag}=${value}`]), message);
  }
});
