import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../lib/cli.ts";
import {
  describeDatasetSettings,
  resolveDatasetSettings,
  SCHEME_DEFAULTS,
} from "../lib/train/dataset_settings.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { tempDir } from "./temp.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const votes = { name: "votes", kind: "votes" as const, flipPairs: [] as [number, number][] };
const gz1 = {
  name: "csv",
  kind: "classes" as const,
  flipPairs: [[3, 4]] as [number, number][],
};

Deno.test("dataset settings: unset ones come from the scheme's kind, and say so", () => {
  const v = resolveDatasetSettings(votes, {});
  assert.deepEqual(v.settings, { ...SCHEME_DEFAULTS.votes, flipPairs: [] });
  assert.equal(v.settings.monitor, "rmse");
  assert.equal(v.settings.loss, "mse");
  assert.equal(v.settings.head, "sigmoid");
  assert.deepEqual(v.fromScheme, ["head", "loss", "monitor", "alpha", "flipPairs"]);
  const c = resolveDatasetSettings(gz1, { loss: "ce", alpha: "balanced" });
  assert.deepEqual(c.settings, {
    head: "softmax",
    loss: "ce",
    monitor: "accuracy",
    alpha: "balanced",
    flipPairs: [[3, 4]],
  });
  assert.deepEqual(c.fromScheme, ["head", "monitor", "flipPairs"]);
  assert.equal(
    describeDatasetSettings("classes", c, ["a", "b", "c", "spiral_acw", "spiral_cw"]),
    "classes dataset: head softmax, loss ce, monitor accuracy, alpha balanced, " +
      "flip pairs spiral_acw<->spiral_cw (head, monitor from the scheme's defaults)",
  );
});

Deno.test("dataset settings: a monitor, loss or head the dataset cannot honour is a usage error", () => {
  assert.throws(
    () => resolveDatasetSettings(votes, { monitor: "accuracy" }),
    (e) =>
      e instanceof UsageError &&
      /--monitor accuracy does not fit the 'votes' dataset .*use one of rmse, loss/.test(e.message),
  );
  assert.throws(() => resolveDatasetSettings(votes, { monitor: "macro_f1" }), UsageError);
  assert.throws(() => resolveDatasetSettings(gz1, { monitor: "rmse" }), /one of accuracy/);
  assert.throws(() => resolveDatasetSettings(votes, { loss: "ce" }), /--loss ce/);
  assert.throws(() => resolveDatasetSettings(votes, { head: "softmax" }), /--head softmax/);
  assert.throws(() => resolveDatasetSettings(gz1, { head: "tree" }), /--head tree/);
  // What the dataset can do is accepted as given.
  assert.equal(resolveDatasetSettings(votes, { monitor: "loss" }).settings.monitor, "loss");
  assert.equal(resolveDatasetSettings(votes, { head: "tree" }).settings.head, "tree");
  assert.equal(resolveDatasetSettings(votes, { loss: "bfocal" }).settings.loss, "bfocal");
});

Deno.test("deno task train --monitor accuracy on a votes dataset exits 2 before training", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const permissions = (config.tasks.train as string).split(" ").filter((w) =>
    w.startsWith("--allow")
  );
  const out = await tempDir("galaxy-usage-");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...permissions,
      "scripts/train.ts",
      "--data",
      await tinyDataset("votes"),
      "--out",
      join(out, "run"),
      "--monitor",
      "accuracy",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 2, stderr);
  assert.match(stderr, /--monitor accuracy does not fit the 'votes' dataset/);
  // Nothing was started: no run folder.
  await assert.rejects(() => Deno.stat(join(out, "run")), Deno.errors.NotFound);
});
