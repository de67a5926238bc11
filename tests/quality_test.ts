import assert from "node:assert/strict";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { NUM_VOTES } from "../lib/data/schema.ts";
import type { ScoredImages } from "../lib/evaluate/compare.ts";
import { writeSection } from "../lib/quality/run.ts";
import { concatScored, toolkitScored, torchScored } from "../lib/quality/scored.ts";
import { seedStats, summarize, summaryMarkdown, verdict } from "../lib/quality/summary.ts";
import { mulberry32 } from "../lib/random.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { toyRun } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

Deno.test("seedStats: mean, sample sd and the Student-t 95 % interval of the mean", () => {
  const s = seedStats([1, 2, 3, 4, 5]);
  assert.equal(s.mean, 3);
  assert.ok(Math.abs(s.sd - Math.sqrt(2.5)) < 1e-12);
  // t(0.975, 4) = 2.776
  assert.ok(Math.abs(s.hi - (3 + 2.776 * Math.sqrt(2.5) / Math.sqrt(5))) < 1e-9);
  assert.equal(seedStats([2]).hi, Infinity);
  assert.equal(verdict("rmse", seedStats([-0.01, -0.012, -0.011])), "toolkit better");
  assert.equal(verdict("accuracy", seedStats([-0.01, -0.012, -0.011])), "reference better");
  assert.equal(verdict("rmse", seedStats([-0.01, 0.012, -0.011])), "no clear difference");
});

function fake(n: number, noise: number, seed: number): ScoredImages {
  const t = mulberry32(100 + seed);
  const r = mulberry32(seed * 7 + Math.round(noise * 1000));
  const truth = Float32Array.from({ length: n * NUM_VOTES }, () => t());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    kind: "votes",
    classes: ["smooth", "features_or_disk", "star_or_artifact"],
    ids: Array.from({ length: n }, (_, i) => String(1000 + i)),
    predicted: labels.map((y) => r() < noise ? (y + 1) % 3 : y),
    labels,
    votes: { pred: truth.map((v) => v + (r() * 2 - 1) * noise), truth },
  };
}

Deno.test("summarize pairs each seed's images and pools (seed, image) pairs; the table says which is better", () => {
  const scores = [0, 1, 2].map((seed) => ({
    seed,
    toolkit: fake(120, 0.1, seed),
    reference: fake(120, 0.3, seed),
  }));
  const s = summarize(scores);
  assert.equal(s.pooled.n, 360); // the same ids in each seed are different (seed, image) pairs
  assert.equal(s.perSeed.length, 3);
  const d = s.overSeeds.rmse!.difference;
  assert.ok(d.hi < 0, JSON.stringify(d));
  const md = summaryMarkdown(s, { toolkit: "toolkit", reference: "torch" });
  assert.match(md, /\| toolkit \| \d\.\d{4} \| \d\.\d{4} \| \d\.\d{4} \| \d\.\d{4} ± \d\.\d{4} \|/);
  assert.match(md, /\*\*toolkit better\*\*/);
  assert.match(md, /Paired bootstrap over all 360 \(seed, image\) pairs/);
  assert.throws(() => concatScored([fake(3, 0.1, 0), fake(3, 0.1, 0)]), /scored twice/);
});

Deno.test("writeSection replaces its own block and leaves the rest of the file alone", async () => {
  const f = join(await tempDir("galaxy-quality-"), "q.md");
  await writeSection(f, "quality:votes", "first");
  await Deno.writeTextFile(f, "# Title\n\n" + await Deno.readTextFile(f) + "\nafter\n");
  await writeSection(f, "quality:gz5", "gz5 table");
  await writeSection(f, "quality:votes", "second");
  const text = await Deno.readTextFile(f);
  assert.match(
    text,
    /^# Title\n\n<!-- quality:votes -->\nsecond\n<!-- \/quality:votes -->\n\nafter/,
  );
  assert.ok(text.includes("<!-- quality:gz5 -->\ngz5 table\n<!-- /quality:gz5 -->"));
  assert.ok(!text.includes("first"));
});

Deno.test("the reference's predictions are scored on the same images and classes as the toolkit's", async () => {
  const data = await tinyDataset("votes");
  const ds = await openDataset(data);
  const img = ds.manifest.image;
  const splits: Record<string, { ids: string[]; outputs: number[][] }> = {};
  for (const split of ["val", "test"] as const) {
    splits[split] = { ids: [], outputs: [] };
    for await (const b of ds.batches(split, { batchSize: 8 })) {
      for (let k = 0; k < b.n; k++) {
        splits[split].ids.push(b.ids[k]);
        // A perfect predictor: the true fractions.
        splits[split].outputs.push(
          Array.from(b.votes!.subarray(k * NUM_VOTES, (k + 1) * NUM_VOTES)),
        );
      }
    }
  }
  ds.close();
  const dir = await tempDir("galaxy-quality-");
  const file = join(dir, "pred.json");
  await Deno.writeTextFile(file, JSON.stringify({ kind: "votes", classes: [], splits }));
  const torch = await torchScored(file, data);
  const run = await toyRun({ kind: "votes", size: img.width, crop: img.crop });
  const toolkit = await toolkitScored(run, data, join(dir, "eval"));
  assert.deepEqual(torch.ids, toolkit.ids);
  assert.deepEqual(torch.labels, toolkit.labels);
  assert.deepEqual(torch.votes!.truth, toolkit.votes!.truth);
  assert.deepEqual(torch.predicted, torch.labels);
  const s = summarize([{ seed: 0, toolkit, reference: torch }]);
  assert.equal(s.perSeed[0].metrics.rmse!.b, 0);
  assert.equal(s.perSeed[0].metrics.rmse!.verdict, "b better");

  // Predictions made on other images are refused, naming the file.
  splits.val.ids[0] = "not-an-id";
  await Deno.writeTextFile(file, JSON.stringify({ kind: "votes", classes: [], splits }));
  await assert.rejects(() => torchScored(file, data), /pred\.json: image 0 of 'val' is not-an-id/);
});
