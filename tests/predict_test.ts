import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { loadImage } from "../lib/data/image.ts";
import { predictBatch } from "../lib/inference.ts";
import { parseCsv } from "../lib/io/csv.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { mergePredictions } from "../lib/predict/merge.ts";
import { errorsPathFor, predict, type PredictOptions } from "../lib/predict/predict.ts";
import { openRun, type Run } from "../lib/run/open.ts";
import { parseShard, shardOf } from "../lib/predict/shard.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { imageFolder, toyModel, toyRun } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

async function runPredict(
  run: Run,
  inPath: string,
  extra: Partial<PredictOptions> = {},
): Promise<{ out: string; csv: string }> {
  const out = extra.out ?? join(await tempDir("galaxy-pred-"), "p.csv");
  const input = await resolveInput(inPath);
  try {
    await predict({ run, input, inPath, out, ...extra });
  } finally {
    if (input.kind === "dataset") input.dataset.close();
  }
  return { out, csv: await Deno.readTextFile(out) };
}

/** Noise images, image i (0-based) brighter than image i - 1, so a mean-colour model tells them apart. */
function randomPixels(n: number, side: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const per = side * side * 3;
  return Uint8Array.from({ length: n * per }, (_, k) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return Math.floor((s >>> 24) * (Math.floor(k / per) + 1) / n);
  });
}

Deno.test("TTA of a rotation- and mirror-invariant model equals its plain prediction", async () => {
  const model = toyModel(12, 4, false);
  const batch = { n: 3, ids: ["a", "b", "c"], pixels: randomPixels(3, 12, 5) };
  const plain = await predictBatch(model, batch);
  const tta = await predictBatch(model, batch, { tta: true });
  assert.equal(tta.length, plain.length);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(tta[i] - plain[i]) < 1e-5);
  // With a handed pair, mirrored views swap it back: the pair's two columns become their mean.
  const paired = await predictBatch(model, batch, { tta: true, flipPairs: [[0, 2]] });
  for (let r = 0; r < 3; r++) {
    const p = plain.subarray(r * 4, r * 4 + 4);
    const q = paired.subarray(r * 4, r * 4 + 4);
    const mean = (p[0] + p[2]) / 2;
    assert.ok(Math.abs(q[0] - mean) < 1e-5 && Math.abs(q[2] - mean) < 1e-5);
    assert.ok(Math.abs(q[1] - p[1]) < 1e-5 && Math.abs(q[3] - p[3]) < 1e-5);
  }
  // The toy model does tell images apart, so the checks above compare real numbers.
  assert.ok(Math.abs(plain[0] - plain[4]) > 1e-4);
  model.dispose();
});

Deno.test("a folder of images: one row per image in id order, the run's crop and resize, bad files listed", async () => {
  const runDir = await toyRun({ size: 16, crop: 0.6 });
  const run = await openRun(runDir);
  const dir = await imageFolder(9);
  await Deno.writeTextFile(join(dir, "corrupt.jpg"), "this is not a jpeg");
  await Deno.writeFile(join(dir, "empty.png"), new Uint8Array(0));
  const good = await Deno.readFile(join(dir, "img-000.jpg"));
  await Deno.writeFile(join(dir, "truncated.jpg"), good.subarray(0, Math.floor(good.length / 2)));
  await Deno.writeTextFile(join(dir, "notes.txt"), "not an image: refused naming its format");
  const { out, csv } = await runPredict(run, dir, { batchSize: 4, concurrency: 3 });
  const table = parseCsv(csv);
  assert.deepEqual(table.header, [
    "id",
    "label",
    "probability",
    ...run.dataset.classes.map((c) => `p_${c}`),
  ]);
  const ids = table.rows.map((r) => r.fields[0]);
  assert.deepEqual(ids, Array.from({ length: 9 }, (_, i) => `img-${String(i).padStart(3, "0")}`));
  // Each row is the model applied to loadImage at the run's size and crop.
  for (const row of table.rows) {
    const name = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith(row.fields[0] + "."))!;
    const img = await loadImage(join(dir, name.name), { size: 16, crop: 0.6 });
    const want = await predictBatch(run.model, { n: 1, ids: ["x"], pixels: img.pixels });
    const probs = row.fields.slice(3).map(Number);
    probs.forEach((p, k) => assert.ok(Math.abs(p - want[k]) <= 6e-7, `${row.fields[0]} p${k}`));
    const best = probs.indexOf(Math.max(...probs));
    assert.equal(row.fields[1], run.dataset.classes[best]);
    assert.equal(row.fields[2], row.fields[3 + best]);
  }
  const errors = parseCsv(await Deno.readTextFile(errorsPathFor(out)));
  assert.deepEqual(errors.header, ["id", "file", "reason"]);
  assert.deepEqual(errors.rows.map((r) => r.fields[0]), ["corrupt", "empty", "notes", "truncated"]);
  assert.match(errors.rows[1].fields[2], /empty file/);
  assert.match(
    errors.rows[2].fields[2],
    /^unsupported image format '\.txt': the formats read are /,
  );
  for (const r of errors.rows) {
    assert.equal(
      r.fields[1],
      join(dir, `${r.fields[0]}.${{ empty: "png", notes: "txt" }[r.fields[0]] ?? "jpg"}`),
    );
  }
  // Nothing temporary is left behind.
  assert.deepEqual(
    [...Deno.readDirSync(join(out, ".."))].map((e) => e.name).sort(),
    ["p.csv", "p.errors.csv"],
  );
  run.model.dispose();
});

Deno.test("shards split the ids by hash and merge into the unsharded output", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const dir = await imageFolder(14, 3);
  await Deno.writeTextFile(join(dir, "broken.png"), "nope");
  const whole = await runPredict(run, dir, { batchSize: 5 });
  const parts: string[] = [];
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const part = await runPredict(run, dir, { shard: parseShard(`${i}/3`), batchSize: 5 });
    parts.push(part.out);
    const ids = parseCsv(part.csv).rows.map((r) => r.fields[0]);
    for (const id of ids) assert.equal(shardOf(id, 3), i);
    seen.push(...ids);
  }
  assert.equal(seen.length, 14);
  // Concatenating the bodies (tail -n +2) and sorting gives the whole file's rows.
  const body = (text: string) => text.trim().split("\n").slice(1);
  const concatenated = (await Promise.all(parts.map((p) => Deno.readTextFile(p)))).flatMap(body);
  assert.deepEqual(concatenated.sort(), body(whole.csv).sort());
  // The merge restores the order, byte for byte, and the errors file.
  const merged = join(await tempDir("galaxy-pred-"), "all.csv");
  const m = await mergePredictions(parts, merged);
  assert.equal(m.rows, 14);
  assert.equal(await Deno.readTextFile(merged), whole.csv);
  assert.equal(
    await Deno.readTextFile(errorsPathFor(merged)),
    await Deno.readTextFile(errorsPathFor(whole.out)),
  );
  // Overlapping inputs are refused.
  await assert.rejects(() => mergePredictions([parts[0], parts[0]], merged), /more than one file/);
  assert.throws(() => parseShard("3/3"), /0-based/);
  assert.throws(() => parseShard("1-of-3"), /i\/n/);
  run.model.dispose();
});

Deno.test("an interrupted run resumes after its last complete row and ends with the same file", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const dir = await imageFolder(12, 5);
  await Deno.writeTextFile(join(dir, "img-004x.jpg"), "bad");
  const reference = await runPredict(run, dir, { batchSize: 3 });
  const out = join(await tempDir("galaxy-pred-"), "p.csv");
  let calls = 0;
  await assert.rejects(() =>
    runPredict(run, dir, {
      out,
      batchSize: 3,
      onProgress: () => {
        if (++calls === 3) throw new Error("killed");
      },
    }), /killed/);
  assert.ok(await Deno.stat(`${out}.partial`));
  // A kill mid-write leaves half a line.
  await Deno.writeTextFile(`${out}.partial`, "img-0", { append: true });
  const logs: string[] = [];
  const input = await resolveInput(dir);
  const s = await predict({ run, input, inPath: dir, out, batchSize: 3, log: (l) => logs.push(l) });
  // Two batches of 3 were written (img-000 to img-005), and img-004x failed among them.
  assert.equal(s.resumedRows, 6);
  assert.match(logs.join("\n"), /resuming after 7 of 13 images \(6 rows kept\)/);
  assert.equal(await Deno.readTextFile(out), reference.csv);
  assert.equal(
    await Deno.readTextFile(errorsPathFor(out)),
    await Deno.readTextFile(errorsPathFor(reference.out)),
  );
  run.model.dispose();
});

Deno.test("kaggle format: the exact submission header, for votes models only", async () => {
  const votesRun = await openRun(await toyRun({ kind: "votes", size: 16 }));
  const dir = await imageFolder(3);
  const { csv } = await runPredict(votesRun, dir, { format: "kaggle" });
  const counts = [3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6];
  const header = [
    "GalaxyID",
    ...counts.flatMap((k, q) => Array.from({ length: k }, (_, a) => `Class${q + 1}.${a + 1}`)),
  ];
  const lines = csv.trim().split("\n");
  assert.equal(lines[0], header.join(","));
  assert.equal(lines[0].split(",").length, 38);
  assert.match(lines[0], /^GalaxyID,Class1\.1,Class1\.2,Class1\.3,Class2\.1,.*,Class11\.6$/);
  const first = lines[1].split(",");
  assert.equal(first[0], "img-000");
  // The votes head makes Q1 sum to 1 and Q2 sum to Class1.2.
  const v = first.slice(1).map(Number);
  assert.ok(Math.abs(v[0] + v[1] + v[2] - 1) < 2e-6);
  assert.ok(Math.abs(v[3] + v[4] - v[1]) < 2e-6);
  // The default format of a votes model names the Q1 answer.
  const plain = parseCsv((await runPredict(votesRun, dir)).csv);
  assert.deepEqual(plain.header.slice(0, 4), ["id", "label", "probability", "p_Class1.1"]);
  assert.ok(["smooth", "features_or_disk", "star_or_artifact"].includes(plain.rows[0].fields[1]));
  const classRun = await openRun(await toyRun({ size: 16 }));
  await assert.rejects(
    () => runPredict(classRun, dir, { format: "kaggle" }),
    /needs a votes model/,
  );
  votesRun.model.dispose();
  classRun.model.dispose();
});

Deno.test("a dataset folder: its unlabeled split by default, in stored order; a size mismatch is refused", async () => {
  const data = await tinyDataset();
  const ds = await openDataset(data);
  const { width, crop } = ds.manifest.image;
  const ids = ds.ids("unlabeled");
  ds.close();
  assert.ok(ids.length > 0);
  const run = await openRun(await toyRun({ size: width, crop }));
  const { csv } = await runPredict(run, data);
  assert.deepEqual(parseCsv(csv).rows.map((r) => r.fields[0]), [...ids]);
  const small = await openRun(await toyRun({ size: width / 2, crop }));
  await assert.rejects(() => runPredict(small, data), /predict on the original images/);
  run.model.dispose();
  small.model.dispose();
});

Deno.test("one image file; the script exits 3 when an image is unreadable and 0 otherwise", async () => {
  const runDir = await toyRun({ size: 16 });
  const dir = await imageFolder(2);
  const run = await openRun(runDir);
  const one = parseCsv((await runPredict(run, join(dir, "img-001.png"))).csv);
  assert.deepEqual(one.rows.map((r) => r.fields[0]), ["img-001"]);
  run.model.dispose();
  const script = new URL("../scripts/predict.ts", import.meta.url).pathname;
  const call = async (input: string) => {
    const out = join(await tempDir("galaxy-pred-"), "p.csv");
    const r = await new Deno.Command(Deno.execPath(), {
      // A deadline: a hung CLI fails this test (killed, exit by SIGTERM) instead of the run.
      signal: AbortSignal.timeout(300_000),
      args: [
        "run",
        "-A",
        script,
        "--model",
        runDir,
        "--in",
        input,
        "--out",
        out,
        "--backend",
        tf.getBackend(),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: r.code, stdout: new TextDecoder().decode(r.stdout), out };
  };
  const ok = await call(dir);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /^backend: /);
  await Deno.writeTextFile(join(dir, "bad.jpg"), "bad");
  const some = await call(dir);
  assert.equal(some.code, 3);
  assert.equal(parseCsv(await Deno.readTextFile(some.out)).rows.length, 2);
});
