/**
 * The README's "typical run on the real data" in miniature, on the real
 * Kaggle sample in `../shared/data/kaggle-votes-sample` (skipped where it is
 * absent): preprocess straight from the folder with the votes scheme, train
 * with the default settings, evaluate, and predict a Kaggle submission, each
 * through its `deno task` command line with the task's own permissions.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { sharedDataDir } from "../lib/bench/fixtures.ts";
import { checkTree, VOTE_COLUMNS } from "../lib/data/schema.ts";
import { SCHEME_DEFAULTS } from "../lib/train/dataset_settings.ts";
import { tempDir } from "./temp.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SAMPLE = join(sharedDataDir(), "kaggle-votes-sample");
const TASKS = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks;

/** Runs `deno task <task> ...args` as the task does (its script and permissions), within 5 minutes. */
async function task(name: string, args: string[]): Promise<{ code: number; out: string }> {
  const words = (TASKS[name] as string).split(" ");
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...words.filter((w) => w.startsWith("--allow")), words.at(-1)!, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  return { code: r.code, out: text };
}

Deno.test({
  name:
    "kaggle-votes-sample (80 images): preprocess, train with defaults, evaluate, predict --format kaggle",
  ignore: !existsSync(join(SAMPLE, "training_solutions_rev1.csv")),
  async fn() {
    const tmp = await tempDir("galaxy-votes-sample-");
    const data = join(tmp, "votes-32");
    const run = join(tmp, "run");
    const pre = await task("preprocess", [
      ...["--in", SAMPLE, "--out", data, "--scheme", "votes", "--size", "32", "--limit", "80"],
    ]);
    assert.equal(pre.code, 0, pre.out);
    assert.match(pre.out, /packed 80 images .* 0 bad/);

    const tr = await task("train", [
      ...["--data", data, "--out", run, "--epochs", "2", "--batch", "16", "--width", "0.125"],
    ]);
    assert.equal(tr.code, 0, tr.out);
    const d = SCHEME_DEFAULTS.votes;
    assert.match(
      tr.out,
      new RegExp(`votes dataset: head ${d.head}, loss ${d.loss}, monitor ${d.monitor}`),
    );
    const config = JSON.parse(await Deno.readTextFile(join(run, "config.json")));
    assert.equal(config.options.monitor, "rmse");
    const rows = (await Deno.readTextFile(join(run, "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    const report = JSON.parse(await Deno.readTextFile(join(run, "report.json")));
    const bestRmse = Math.min(...rows.map((r) => r.val_rmse));
    assert.equal(report.bestEpoch, rows.findIndex((r) => r.val_rmse === bestRmse) + 1);
    assert.ok(report.rmse > 0 && report.rmse < 0.5, `test rmse ${report.rmse}`);

    const ev = await task("evaluate", [
      ...["--model", run, "--data", data, "--out", join(tmp, "eval"), "--no-tta"],
    ]);
    assert.equal(ev.code, 0, ev.out);
    const evaluation = JSON.parse(await Deno.readTextFile(join(tmp, "eval", "report.json")));
    assert.ok(
      Math.abs(evaluation.votes.rmse - report.rmse) < 1e-6,
      JSON.stringify(evaluation.votes),
    );

    const csv = join(tmp, "submission.csv");
    const pr = await task("predict", [
      "--model",
      run,
      "--in",
      data,
      "--out",
      csv,
      "--format",
      "kaggle",
    ]);
    assert.equal(pr.code, 0, pr.out);
    const lines = (await Deno.readTextFile(csv)).trim().split("\n");
    assert.equal(lines[0], ["GalaxyID", ...VOTE_COLUMNS].join(","));
    assert.equal(lines.length - 1, evaluation.n, "one row per test image");
    for (const line of lines.slice(1)) {
      const [id, ...values] = line.split(",");
      assert.match(id, /^\d+$/);
      assert.equal(values.length, 37);
      for (const v of values.map(Number)) assert.ok(v >= 0 && v <= 1, line);
      // The default head's predictions obey the decision tree (lib/model/tree_projection.ts).
      assert.deepEqual(checkTree(values.map(Number), 1e-5), [], line);
    }
  },
});
