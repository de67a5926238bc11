import assert from "node:assert/strict";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { evaluate } from "../lib/evaluate.ts";
import type { ComparisonReport } from "../lib/evaluate/compare_runs.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { toyRun } from "./fixtures_run.ts";
import { runTask } from "./task_cli.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

async function image(data: string) {
  const ds = await openDataset(data);
  const img = ds.manifest.image;
  ds.close();
  return img;
}

Deno.test("evaluate reports a 95 % interval around each headline metric", async () => {
  const data = await tinyDataset("votes");
  const img = await image(data);
  const run = await toyRun({ kind: "votes", size: img.width, crop: img.crop });
  const out = await tempDir("galaxy-eval-ci-");
  const r = await evaluate({ run, data, out, split: "val", worst: 0 });
  assert.deepEqual(Object.keys(r.intervals).sort(), [
    "accuracy",
    "balancedAccuracy",
    "macroF1",
    "rmse",
  ]);
  const i = r.intervals;
  assert.ok(Math.abs(i.rmse!.estimate - r.votes!.rmse) < 1e-9);
  assert.ok(Math.abs(i.accuracy!.estimate - r.classification.accuracy) < 1e-12);
  assert.ok(Math.abs(i.balancedAccuracy!.estimate - r.classification.balancedAccuracy) < 1e-12);
  assert.ok(Math.abs(i.macroF1!.estimate - r.classification.macroF1) < 1e-12);
  for (const [k, v] of Object.entries(i)) {
    assert.ok(v.lo <= v.estimate && v.estimate <= v.hi, k);
    assert.equal(v.n, r.n);
  }
  const json = JSON.parse(await Deno.readTextFile(join(out, "report.json")));
  assert.equal(json.intervals.rmse.level, 0.95);
  assert.match(await Deno.readTextFile(join(out, "report.md")), /RMSE \| \d\.\d{4} \(95 % CI/);
});

Deno.test("evaluate --compare: same run gives 0 with a zero-width interval; another run is paired", async () => {
  const data = await tinyDataset("votes");
  const img = await image(data);
  const a = await toyRun({ kind: "votes", size: img.width, crop: img.crop, seed: 1 });
  const b = await toyRun({ kind: "votes", size: img.width, crop: img.crop, seed: 5 });
  const out = await tempDir("galaxy-eval-cmp-");

  const same = await runTask("evaluate", [
    ...["--model", a, "--data", data, "--out", join(out, "same"), "--compare", a],
  ]);
  const text = new TextDecoder().decode(same.stdout);
  assert.equal(same.code, 0, new TextDecoder().decode(same.stderr));
  assert.match(text, /95 % bootstrap intervals over the \d+ images/);
  assert.match(
    text,
    /RMSE: a \d\.\d{4}, b \d\.\d{4}, a - b \+0\.0000 \(95 % CI \+0\.0000 to \+0\.0000\)/,
  );
  const c0 = JSON.parse(
    await Deno.readTextFile(join(out, "same", "compare.json")),
  ) as ComparisonReport;
  for (const m of Object.values(c0.metrics)) {
    assert.deepEqual([m.difference.estimate, m.difference.lo, m.difference.hi], [0, 0, 0]);
  }

  const other = await runTask("evaluate", [
    ...["--model", a, "--data", data, "--out", join(out, "other"), "--compare", b],
  ]);
  assert.equal(other.code, 0, new TextDecoder().decode(other.stderr));
  const c = JSON.parse(
    await Deno.readTextFile(join(out, "other", "compare.json")),
  ) as ComparisonReport;
  const ra = JSON.parse(await Deno.readTextFile(join(out, "other", "report.json")));
  const rb = JSON.parse(await Deno.readTextFile(join(out, "other", "compare", "report.json")));
  assert.equal(c.n, ra.n);
  // The CLI scores with test-time augmentation unless --no-tta.
  assert.equal(ra.tta, true);
  assert.equal(rb.tta, true);
  assert.equal(c.b, b);
  assert.ok(Math.abs(c.metrics.rmse!.a - ra.votes.rmse) < 1e-9);
  assert.ok(Math.abs(c.metrics.rmse!.b - rb.votes.rmse) < 1e-9);
  const d = c.metrics.rmse!.difference;
  assert.ok(Math.abs(d.estimate - (ra.votes.rmse - rb.votes.rmse)) < 1e-9);
  assert.ok(d.lo <= d.estimate && d.estimate <= d.hi && d.hi > d.lo);

  // A class run cannot be compared with a votes run: exit 1 naming both kinds.
  const gz5 = await toyRun({ kind: "classes", size: img.width, crop: img.crop });
  const bad = await runTask("evaluate", [
    ...["--model", a, "--data", data, "--out", join(out, "bad"), "--compare", gz5],
  ]);
  assert.equal(bad.code, 1);
  assert.match(new TextDecoder().decode(bad.stderr), /cannot compare a votes run/);
});
