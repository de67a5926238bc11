import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { setupBackend } from "../lib/backend.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { NUM_VOTES } from "../lib/data/schema.ts";
import { evaluate, type EvaluationReport, q1FractionPairs, q1Groups } from "../lib/evaluate.ts";
import { predictBatch } from "../lib/inference.ts";
import { classificationMetrics, rmse } from "../lib/metrics.ts";
import { writeTrainingCurves } from "../lib/report/charts.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { tinyRun, toyRun } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

async function size(path: string): Promise<[number, number]> {
  const m = await sharp(await Deno.readFile(path)).metadata();
  assert.equal(m.format, "png", path);
  return [m.width!, m.height!];
}

async function svgSize(path: string): Promise<[number, number]> {
  const svg = await Deno.readTextFile(path);
  const m = /<svg[^>]*\swidth="(\d+(?:\.\d+)?)"[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg);
  assert.ok(m, `no size in ${path}`);
  return [Number(m[1]), Number(m[2])];
}

/** The toy run's outputs, labels and fractions on a split, computed here without evaluate. */
async function reference(runDir: string, data: string, split: "test" | "val") {
  const { openRun } = await import("../lib/run/open.ts");
  const run = await openRun(runDir);
  const ds = await openDataset(data);
  const outputs: number[] = [], labels: number[] = [], votes: number[] = [];
  for await (const b of ds.batches(split, { batchSize: 7 })) {
    outputs.push(...await predictBatch(run.model, b));
    labels.push(...b.labels!);
    votes.push(...b.votes!);
  }
  ds.close();
  run.model.dispose();
  return { outputs, labels, votes };
}

async function manifestImage(data: string) {
  const ds = await openDataset(data);
  const img = ds.manifest.image;
  ds.close();
  return img;
}

Deno.test("q1FractionPairs sums class probabilities per Q1 answer and renormalises the fractions", () => {
  const groups = q1Groups(["round", "in_between", "cigar", "edge_on", "spiral"])!;
  assert.deepEqual(groups, [0, 0, 0, 1, 1]);
  assert.equal(q1Groups(["round", "lens"]), null);
  const votes = new Float32Array(2 * NUM_VOTES);
  votes.set([0.3, 0.5, 0.2], 0); // Class1.1-1.3 of row 0
  votes.set([0, 0, 1], NUM_VOTES); // row 1: all star/artifact: skipped
  const probs = [0.1, 0.2, 0.3, 0.25, 0.15, 0.2, 0.2, 0.2, 0.2, 0.2];
  const p = q1FractionPairs(probs, votes, groups);
  assert.equal(p.n, 1);
  assert.deepEqual(p.covered, [0, 1]);
  assert.deepEqual([...p.pred].map((x) => +x.toFixed(6)), [0.6, 0.4]);
  assert.deepEqual([...p.truth].map((x) => +x.toFixed(6)), [0.375, 0.625]);
});

Deno.test("evaluate writes report.json, report.md and pictures with lib/metrics.ts numbers", async () => {
  const data = await tinyDataset();
  const img = await manifestImage(data);
  const runDir = await toyRun({ size: img.width, crop: img.crop, seed: 4 });
  const out = await tempDir("galaxy-eval-");
  const r = await evaluate({ run: runDir, data, out, batchSize: 5, worst: 6 });
  const saved: EvaluationReport = JSON.parse(await Deno.readTextFile(join(out, "report.json")));
  assert.deepEqual(saved, JSON.parse(JSON.stringify(r)));
  assert.equal(saved.split, "test");
  assert.equal(saved.labels.source, "dataset");

  const ref = await reference(runDir, data, "test");
  const classes = ["round", "in_between", "cigar", "edge_on", "spiral"];
  const want = classificationMetrics(ref.outputs, ref.labels, classes);
  assert.equal(saved.n, ref.labels.length);
  assert.deepEqual(saved.classification.confusion, want.confusion);
  for (const k of ["accuracy", "balancedAccuracy", "macroF1", "top2Accuracy", "ece"] as const) {
    assert.ok(Math.abs(saved.classification[k] - want[k]) < 1e-6, k);
  }
  // Class probabilities vs Q1 fractions, by the rule the module documents.
  let s = 0, cells = 0;
  for (let i = 0; i < ref.labels.length; i++) {
    const c11 = ref.votes[i * NUM_VOTES], c12 = ref.votes[i * NUM_VOTES + 1];
    if (c11 + c12 <= 0) continue;
    const o = ref.outputs.slice(i * 5, i * 5 + 5);
    s += (o[0] + o[1] + o[2] - c11 / (c11 + c12)) ** 2 + (o[3] + o[4] - c12 / (c11 + c12)) ** 2;
    cells += 2;
  }
  assert.ok(Math.abs(saved.q1FractionRmse!.rmse - Math.sqrt(s / cells)) < 1e-5);
  assert.deepEqual(saved.q1FractionRmse!.groups, {
    smooth: ["round", "in_between", "cigar"],
    features_or_disk: ["edge_on", "spiral"],
  });

  // The most confidently wrong: wrong, sorted by confidence, at most 6.
  const wrong = saved.mostConfidentlyWrong;
  const wrongCount = ref.labels.length - want.confusion.reduce((a, row, i) => a + row[i], 0);
  assert.equal(wrong.length, Math.min(6, wrongCount));
  assert.ok(wrong.length > 0, "the toy model should get some test galaxies wrong");
  for (const w of wrong) assert.notEqual(w.true, w.predicted);
  for (let i = 1; i < wrong.length; i++) {
    assert.ok(wrong[i - 1].probability >= wrong[i].probability);
  }

  // Pictures: the chart PNGs are the SVGs at 2x; the grid's size follows its layout.
  assert.deepEqual(saved.pictures, {
    confusion: "confusion.png",
    curves: null,
    wrong: "wrong.png",
  });
  const [sw, sh] = await svgSize(join(out, "confusion.svg"));
  assert.deepEqual(await size(join(out, "confusion.png")), [2 * sw, 2 * sh]);
  assert.ok(sw > 200 && sh > 200);
  const cols = Math.min(4, wrong.length), rows = Math.ceil(wrong.length / 4);
  const [gw, gh] = await size(join(out, "wrong.png"));
  assert.equal(gh, 52 + rows * (128 + 6 + 3 * 15 + 12) + 12);
  assert.ok(gw >= 12 + cols * (200 + 12));
  if (cols === 4) assert.equal(gw, 12 + 4 * (200 + 12));
  assert.match(saved.notes.join("\n"), /No training curves: .*metrics\.jsonl/);

  const md = await Deno.readTextFile(join(out, "report.md"));
  assert.match(md, new RegExp(`\\| accuracy \\| ${want.accuracy.toFixed(4)} \\|`));
  assert.match(md, /\| class \| precision \| recall \| F1 \| support \| predicted \|/);
  assert.match(md, /!\[confusion matrix\]\(confusion\.png\)/);
  assert.match(md, /!\[most confidently wrong galaxies\]\(wrong\.png\)/);
});

Deno.test("votes runs are scored by RMSE over the 37 fractions and by question 1", async () => {
  const data = await tinyDataset();
  const img = await manifestImage(data);
  const runDir = await toyRun({ kind: "votes", size: img.width, crop: img.crop });
  const out = await tempDir("galaxy-eval-");
  const r = await evaluate({ run: runDir, data, out, split: "val" });
  const ref = await reference(runDir, data, "val");
  assert.ok(r.votes);
  assert.ok(Math.abs(r.votes.rmse - rmse(ref.outputs, ref.votes)) < 1e-6);
  assert.equal(r.votes.perQuestion.length, 11);
  assert.equal(r.labels.source, "question 1 of the vote fractions");
  assert.deepEqual(r.classes, ["smooth", "features_or_disk", "star_or_artifact"]);
  assert.equal(r.classification.n, ref.labels.length);
  const md = await Deno.readTextFile(join(out, "report.md"));
  assert.match(md, /RMSE over the 37 vote fractions .*\*\*\d\.\d{4}\*\*/);
});

Deno.test("a q1 run on a gz5 dataset takes its labels from the fractions; unrelated classes are refused", async () => {
  const data = await tinyDataset();
  const img = await manifestImage(data);
  const q1 = await toyRun({
    scheme: "q1",
    classes: ["smooth", "features_or_disk", "star_or_artifact"],
    size: img.width,
    crop: img.crop,
  });
  const r = await evaluate({ run: q1, data, out: await tempDir("galaxy-eval-"), worst: 0 });
  assert.equal(r.labels.source, "vote fractions");
  assert.equal(r.labels.leftOut, 0);
  assert.equal(r.pictures.wrong, null);
  const ref = await reference(q1, data, "test");
  // q1's class is the argmax of Class1.1-1.3.
  const labels = ref.labels.map((_, i) => {
    const v = ref.votes.slice(i * NUM_VOTES, i * NUM_VOTES + 3);
    return v.indexOf(Math.max(...v));
  });
  assert.deepEqual(
    r.classification.confusion,
    classificationMetrics(ref.outputs, labels, r.classes).confusion,
  );
  const other = await toyRun({
    scheme: "csv",
    classes: ["lens", "ring"],
    size: img.width,
    crop: img.crop,
  });
  await assert.rejects(
    async () => evaluate({ run: other, data, out: await tempDir("galaxy-eval-") }),
    /labelled with scheme 'gz5'.*cannot score this run/,
  );
  const wrongSize = await toyRun({ size: img.width * 2, crop: img.crop });
  await assert.rejects(
    async () => evaluate({ run: wrongSize, data, out: await tempDir("galaxy-eval-") }),
    /the run was trained on/,
  );
});

Deno.test("a trained run: evaluate agrees with train's own report; curves from metrics.jsonl", async () => {
  const runDir = await tinyRun();
  const data = await tinyDataset();
  const out = await tempDir("galaxy-eval-");
  const r = await evaluate({ run: runDir, data, out });
  const trained = JSON.parse(await Deno.readTextFile(join(runDir, "report.json")));
  assert.equal(trained.split, r.split);
  assert.deepEqual(r.classification.confusion, trained.metrics.confusion);
  assert.ok(Math.abs(r.classification.macroF1 - trained.metrics.macroF1) < 1e-9);
  assert.equal(r.pictures.curves, "curves.png");
  const [w, h] = await size(join(out, "curves.png"));
  assert.deepEqual([w, h], (await svgSize(join(out, "curves.svg"))).map((x) => 2 * x));
  assert.ok(w > h && w > 600);
  const path = await writeTrainingCurves(runDir);
  assert.equal(path, join(runDir, "curves.png"));
  assert.deepEqual(await size(path), [w, h]);
  // With TTA the same images are scored; the numbers may move.
  const tta = await evaluate({ run: runDir, data, out: await tempDir("galaxy-eval-"), tta: true });
  assert.equal(tta.n, r.n);
  assert.equal(tta.tta, true);
});
