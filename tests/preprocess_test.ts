import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { type Batch, openDataset } from "../lib/data/dataset.ts";
import { cropGeometry, ImageError, loadImage, sniffImageSize } from "../lib/data/image.ts";
import { getLabelScheme, GZ5_CLASSES } from "../lib/data/label_schemes.ts";
import { writeSyntheticKaggle } from "../lib/data/synthetic.ts";
import { type Manifest, readShardMeta, type Split, SPLITS } from "../lib/data/manifest.ts";
import { NUM_VOTES } from "../lib/data/schema.ts";
import { assignSplit, splitHash, splitSeedFlag, splitShortfalls } from "../lib/data/split.ts";
import { preprocess, type PreprocessReport, StrictError } from "../lib/preprocess.ts";
import { deadlineTest } from "./deadline.ts";
import { runTask, taskCommandLine } from "./task_cli.ts";
import {
  encodeImage,
  gzVotes,
  KAGGLE_HEADER_LINE,
  kaggleRow,
  makeKaggleFolder,
  makeLabelsCsvFolder,
  type VoteKind,
} from "./fixtures_images.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SHARED = join(ROOT, "..", "shared", "data");
const GZ1 = join(SHARED, "gz1-sample");
const SPIRAL = join(SHARED, "kaggle-spiral-sample");

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "galaxy-pre-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function allBatches(dir: string, split: Split): Promise<Batch[]> {
  const ds = await openDataset(dir);
  try {
    const out: Batch[] = [];
    for await (const b of ds.batches(split, { batchSize: 7 })) out.push(b);
    return out;
  } finally {
    ds.close();
  }
}

/** Checks every record of every split equals loadImage of its source file. */
async function assertPixelExact(
  out: string,
  source: string,
  fileOf: (id: string) => string,
  limit = Infinity,
): Promise<number> {
  const ds = await openDataset(out, { verify: true });
  const { size, crop, recordBytes } = {
    size: ds.manifest.image.height,
    crop: ds.manifest.image.crop,
    recordBytes: ds.manifest.image.recordBytes,
  };
  let checked = 0;
  try {
    for (const split of SPLITS) {
      for await (const b of ds.batches(split, { batchSize: 5 })) {
        for (let i = 0; i < b.n && checked < limit; i++, checked++) {
          const ref = await loadImage(join(source, fileOf(b.ids[i])), { size, crop });
          const got = b.pixels.subarray(i * recordBytes, (i + 1) * recordBytes);
          assert.deepEqual(got, ref.pixels, `pixels of ${b.ids[i]} (${split})`);
        }
      }
    }
  } finally {
    ds.close();
  }
  return checked;
}

async function readReport(out: string): Promise<PreprocessReport> {
  return JSON.parse(await Deno.readTextFile(join(out, "report.json")));
}

/** The script as `deno task preprocess` runs it (the task's own permissions), output dropped. */
function cliCommand(args: string[], signal?: AbortSignal): Deno.Command {
  const { permissions, script } = taskCommandLine("preprocess");
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, script, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
    signal,
  });
}

/** Runs `deno task preprocess` with `args`, failing after a deadline instead of hanging. */
function runCli(args: string[]): Promise<Deno.CommandOutput> {
  return runTask("preprocess", args, { seconds: 300 });
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

// ---------------------------------------------------------------- split

Deno.test("split: stable per id, seeded, proportions hold per class in expectation", () => {
  const o = { val: 0.1, test: 0.2, seed: 7 };
  const ids = Array.from({ length: 20000 }, (_, i) => `${587722000000 + i * 13}`);
  const splits = ids.map((id) => assignSplit(id, o));
  assert.deepEqual(ids.slice(0, 50).map((id) => assignSplit(id, o)), splits.slice(0, 50));
  const frac = (s: string, from = 0, step = 1) => {
    let n = 0, k = 0;
    for (let i = from; i < ids.length; i += step, k++) if (splits[i] === s) n++;
    return n / k;
  };
  // Binomial sd at n = 20000 is ~0.003; pseudo-classes (every 4th id) ~0.006.
  assert.ok(Math.abs(frac("test") - 0.2) < 0.015, `test ${frac("test")}`);
  assert.ok(Math.abs(frac("val") - 0.1) < 0.015, `val ${frac("val")}`);
  for (let c = 0; c < 4; c++) assert.ok(Math.abs(frac("test", c, 4) - 0.2) < 0.03);
  const other = ids.map((id) => assignSplit(id, { ...o, seed: 8 }));
  assert.ok(other.filter((s, i) => s !== splits[i]).length > 5000, "another seed reshuffles");
  const u = splitHash("123", 0);
  assert.ok(u >= 0 && u < 1);
  assert.equal(splitHash("123", 0), splitHash("123", "0"));
});

Deno.test("split: splitShortfalls names a class missing from a split it should reach", () => {
  const o = { val: 0.1, test: 0.1, seed: 0 };
  const s = splitShortfalls({ train: [80, 8], val: [10, 2], test: [10, 0] }, o);
  assert.deepEqual(s, [{ split: "test", classIndex: 1, expected: 1 }]);
  assert.deepEqual(splitShortfalls({ train: [5], val: [0], test: [0] }, o), []);
});

Deno.test("split: a --split-seed that reads as an integer is that number, else the text", () => {
  assert.equal(splitSeedFlag("42"), 42);
  assert.equal(splitSeedFlag("-7"), -7);
  assert.equal(splitSeedFlag("0042"), 42);
  assert.equal(splitSeedFlag("4.2"), "4.2");
  assert.equal(splitSeedFlag("survey-2026"), "survey-2026");
});

// ---------------------------------------------------------------- image

deadlineTest("image: centre crop geometry and closeness to extract-then-resize", 300, async () => {
  assert.deepEqual(cropGeometry(424, 424, { size: 64, crop: 0.5 }), {
    resizeWidth: 128,
    resizeHeight: 128,
    left: 32,
    top: 32,
  });
  const g = cropGeometry(600, 300, { size: 30, crop: 1 });
  assert.deepEqual(g, { resizeWidth: 60, resizeHeight: 30, left: 15, top: 0 });
  const bytes = await encodeImage(424, 424, 5);
  const mine = await loadImage(bytes, { size: 64, crop: 0.5 });
  assert.equal(mine.width, 424);
  const plain = await sharp(bytes).extract({ left: 106, top: 106, width: 212, height: 212 })
    .resize(64, 64).raw().toBuffer();
  let diff = 0;
  for (let i = 0; i < plain.length; i++) diff += Math.abs(plain[i] - mine.pixels[i]);
  const mean = diff / plain.length;
  assert.ok(mean < 1.5, `mean abs difference ${mean.toFixed(3)} from crop-then-resize`);
  // And it is a crop: the full frame resized differs by much more.
  const whole = await sharp(bytes).resize(64, 64).raw().toBuffer();
  let far = 0;
  for (let i = 0; i < whole.length; i++) far += Math.abs(whole[i] - mine.pixels[i]);
  assert.ok(far / whole.length > 4 * mean);
});

deadlineTest(
  "image: greyscale, CMYK, 16-bit and alpha inputs become RGB; bad ones name the file",
  300,
  async () => {
    const opts = { size: 12, crop: 0.5 };
    const grey = await encodeImage(48, 48, 1, "grey");
    assert.equal((await sharp(grey).metadata()).channels, 1, "fixture is really greyscale");
    const g = await loadImage(grey, opts);
    assert.equal(g.pixels.length, 12 * 12 * 3);
    for (let i = 0; i < g.pixels.length; i += 3) {
      assert.ok(g.pixels[i] === g.pixels[i + 1] && g.pixels[i] === g.pixels[i + 2]);
    }
    const cmyk = await encodeImage(48, 48, 1, "cmyk");
    assert.equal((await sharp(cmyk).metadata()).space, "cmyk");
    const rgb = await loadImage(await encodeImage(48, 48, 1, "png"), opts);
    const c = await loadImage(cmyk, opts);
    let d = 0;
    for (let i = 0; i < rgb.pixels.length; i++) d += Math.abs(rgb.pixels[i] - c.pixels[i]);
    assert.ok(d / rgb.pixels.length < 25, "CMYK decodes to about the same colours");
    const alpha = await loadImage(await encodeImage(48, 48, 1, "png-alpha"), opts);
    assert.equal(alpha.pixels.length, 12 * 12 * 3);
    // Alpha 0.75 over black: 3/4 of the opaque value.
    const k = 5 * 12 * 3 + 5 * 3;
    assert.ok(Math.abs(alpha.pixels[k] - 0.75 * rgb.pixels[k]) <= 2);
    const raw16 = await sharp(Buffer.alloc(48 * 48 * 3, 128), {
      raw: { width: 48, height: 48, channels: 3 },
    }).toColourspace("rgb16").png().toBuffer();
    const p16 = await loadImage(raw16, opts);
    assert.ok(p16.pixels.every((x) => Math.abs(x - 128) <= 1));

    const jpg = await encodeImage(48, 48, 2);
    await assert.rejects(
      loadImage(jpg.subarray(0, jpg.length >> 1), opts, "cut.jpg"),
      (e: unknown) => e instanceof ImageError && /^cut\.jpg: not a readable image/.test(e.message),
    );
    await assert.rejects(loadImage(new Uint8Array(0), opts, "zero.jpg"), /zero\.jpg: empty file/);
    await assert.rejects(
      loadImage(new TextEncoder().encode("not an image"), opts, "t.jpg"),
      /t\.jpg: not a readable image/,
    );
    await assert.rejects(
      loadImage("/nonexistent/x.jpg", opts),
      /\/nonexistent\/x.jpg: cannot read/,
    );
  },
);

deadlineTest("image: sniffImageSize reads JPEG and PNG headers like sharp", 300, async () => {
  for (const kind of ["rgb", "grey", "cmyk", "png", "png-alpha"] as const) {
    const b = await encodeImage(37, 21, 3, kind);
    assert.deepEqual(sniffImageSize(b), { width: 37, height: 21, orientation: 1 }, kind);
  }
  assert.equal(sniffImageSize(new TextEncoder().encode("GIF89a....")), null);
});

// ---------------------------------------------------------------- pipeline

deadlineTest(
  "preprocess: Kaggle layout with gz5 streams back pixel-exact with labels and fractions",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "kaggle");
      const items = await makeKaggleFolder(src, 36, 5);
      const out = join(tmp, "out");
      const shardMb = 0.01;
      const r = await preprocess({ inDir: src, outDir: out, size: 16, shardMb, concurrency: 3 });
      assert.ok(r.ok, r.summary);
      const m: Manifest = r.manifest;
      assert.equal(m.scheme.name, "gz5");
      assert.deepEqual(m.scheme.classNames, [...GZ5_CLASSES]);
      assert.equal(m.source.layout, "kaggle");
      assert.ok(m.hasVotes && m.hasLabels);
      const kept = items.filter((x) => x.kind !== "none");
      assert.equal(r.report.totals.leftOut, 6);
      assert.deepEqual(
        r.report.leftOut["gz5: matches no class"].ids.sort(),
        items.filter((x) => x.kind === "none").map((x) => String(x.id)).sort(),
      );
      assert.equal(m.counts.unlabeled.total, 5);
      assert.equal(m.counts.train.total + m.counts.val.total + m.counts.test.total, kept.length);
      assert.ok(m.shards.length > 4, "small --shard-mb gives several shards");
      for (const s of m.shards) assert.ok(s.bytes <= shardMb * 2 ** 20, `${s.file} ${s.bytes}`);

      const byId = new Map(items.map((x) => [String(x.id), x]));
      const seen = new Set<string>();
      let pixelsSum = [0, 0, 0], count = 0;
      for (const split of SPLITS) {
        const perClass = new Array(5).fill(0);
        for (const b of await allBatches(out, split)) {
          for (let i = 0; i < b.n; i++) {
            const id = b.ids[i];
            assert.ok(!seen.has(id), `${id} once`);
            seen.add(id);
            if (split === "unlabeled") {
              assert.ok(id.startsWith("9"));
              continue;
            }
            const it = byId.get(id)!;
            assert.equal(assignSplit(id, { val: 0.1, test: 0.1, seed: 0 }), split);
            assert.equal(b.labels![i], GZ5_CLASSES.indexOf(it.kind as typeof GZ5_CLASSES[number]));
            perClass[b.labels![i]]++;
            for (let k = 0; k < NUM_VOTES; k++) {
              assert.equal(
                b.votes![i * NUM_VOTES + k],
                Math.fround(Number(it.votes[k].toFixed(6))),
              );
            }
          }
          if (split === "unlabeled") assert.equal(b.labels, null);
          if (split === "train") {
            for (let p = 0; p < b.pixels.length; p += 3) {
              for (let c = 0; c < 3; c++) pixelsSum[c] += b.pixels[p + c];
              count++;
            }
          }
        }
        if (split !== "unlabeled") assert.deepEqual(m.counts[split].perClass, perClass);
      }
      assert.equal(seen.size, kept.length + 5);
      pixelsSum = pixelsSum.map((x) => x / count);
      m.stats!.mean.forEach((x, c) => assert.ok(Math.abs(x - pixelsSum[c]) < 1e-9));
      assert.ok(m.stats!.std.every((x) => x > 1));
      const checked = await assertPixelExact(
        out,
        src,
        (id) =>
          id.startsWith("9") ? `images_test_rev1/${id}.jpg` : `images_training_rev1/${id}.jpg`,
      );
      assert.equal(checked, kept.length + 5);
    });
  },
);

deadlineTest(
  "preprocess: decoder processes and in-process decoding write the same shards",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "kaggle");
      const items = await makeKaggleFolder(src, 30, 4, 60);
      const bad = join(src, "images_training_rev1", `${items[3].id}.jpg`);
      await Deno.writeFile(bad, (await Deno.readFile(bad)).subarray(0, 100));
      const run = (processes: number) =>
        preprocess({
          inDir: src,
          outDir: join(tmp, `p${processes}`),
          size: 12,
          shardMb: 0.012,
          processes,
        });
      const local = await run(0);
      const pooled = await run(2);
      assert.ok(local.manifest.shards.length > 4, "several shards, several batches");
      assert.equal(local.report.totals.skipped, 1);
      assert.deepEqual(pooled.manifest.shards, local.manifest.shards);
      assert.deepEqual(pooled.report.skipped, local.report.skipped);
      assert.deepEqual(pooled.manifest.stats, local.manifest.stats);

      // A decoder killed mid-run is replaced; its images are decoded again, none is lost.
      if (!HAS_PGREP) {
        console.log("pgrep (procps) is not installed: skipping the killed-decoder part");
        return;
      }
      let killed = 0;
      const survived = await preprocess({
        inDir: src,
        outDir: join(tmp, "killed"),
        size: 12,
        shardMb: 0.012,
        processes: 2,
        onProgress: (p) => {
          if (p.done === 3) killed = killDecoderChild();
        },
      });
      assert.ok(killed > 0, "a decoder process was found and killed");
      assert.deepEqual(survived.manifest.shards, local.manifest.shards);
      assert.deepEqual(survived.report.skipped, local.report.skipped);
    });
  },
);

/** Whether `pgrep` (procps) is installed. */
const HAS_PGREP = (() => {
  try {
    new Deno.Command("pgrep", { args: ["-V"] }).outputSync();
    return true;
  } catch {
    return false;
  }
})();

/** SIGKILLs one decoder process of this test process; returns its pid (0 if none). */
function killDecoderChild(): number {
  // (Deno reads /proc only with --allow-all: ask pgrep.)
  const out = new Deno.Command("pgrep", { args: ["-P", String(Deno.pid), "-f", "decode_worker"] })
    .outputSync();
  const pid = Number(new TextDecoder().decode(out.stdout).split("\n")[0]);
  if (!pid) return 0;
  Deno.kill(pid, "SIGKILL");
  return pid;
}

deadlineTest("preprocess: votes and q1 schemes on the same Kaggle folder", 300, async () => {
  await withTemp(async (tmp) => {
    const src = join(tmp, "kaggle");
    await makeKaggleFolder(src, 12, 0, 64);
    const v = await preprocess({
      inDir: src,
      outDir: join(tmp, "votes"),
      scheme: "votes",
      size: 8,
      unlabeled: false,
    });
    assert.equal(v.manifest.scheme.kind, "votes");
    assert.equal(v.manifest.hasLabels, false);
    assert.equal(v.report.totals.packed, 12);
    const b = (await allBatches(join(tmp, "votes"), "train"))[0];
    assert.equal(b.labels, null);
    assert.equal(b.votes!.length, b.n * NUM_VOTES);
    const q = await preprocess({ inDir: src, outDir: join(tmp, "q1"), scheme: "q1", size: 8 });
    assert.equal(q.report.totals.leftOut, 0);
    assert.deepEqual(q.manifest.scheme.classNames, [
      "smooth",
      "features_or_disk",
      "star_or_artifact",
    ]);
    // The 64x64 fixture images are all "unexpected" next to Kaggle's 424x424: warned, still packed.
    assert.equal(q.report.totals.packed, 12);
    assert.equal(
      q.report.warnings.filter((w) => /unexpected size 64x64/.test(w.reason)).length,
      12,
    );
    await assert.rejects(
      preprocess({ inDir: src, outDir: join(tmp, "csv"), scheme: "csv" }),
      /scheme 'csv' needs class labels/,
    );
  });
});

deadlineTest(
  "preprocess: generated Kaggle data (lib/data/synthetic.ts) in every vote scheme",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "syn");
      const syn = await writeSyntheticKaggle(src, { count: 40, testCount: 4, seed: 11 });
      const csv = (await Deno.readTextFile(join(src, "training_solutions_rev1.csv"))).trim()
        .split("\n").slice(1).map((l) => l.split(","));
      const votesOf = new Map(csv.map((c) => [c[0], c.slice(1).map(Number)]));
      const gz5 = getLabelScheme("gz5");
      const keep = [...votesOf].filter(([id, v]) => gz5.target({ id, votes: v }) !== null);
      assert.ok(keep.length > 0 && keep.length < votesOf.size, `${keep.length} of 40 in gz5`);
      const r = await preprocess({ inDir: src, outDir: join(tmp, "gz5"), size: 16 });
      assert.ok(r.ok, r.summary);
      assert.equal(r.report.skipped.length, 0, "generated fractions obey the tree");
      assert.equal(r.report.totals.leftOut, syn.trainCount - keep.length);
      assert.equal(r.manifest.counts.unlabeled.total, 4);
      const labelled = ["train", "val", "test"] as const;
      const ds = await openDataset(join(tmp, "gz5"));
      for (const split of labelled) {
        for await (const b of ds.batches(split, { batchSize: 16 })) {
          for (let i = 0; i < b.n; i++) {
            const v = votesOf.get(b.ids[i])!;
            assert.equal(b.labels![i], gz5.target({ id: b.ids[i], votes: v }));
            assert.deepEqual(
              [...b.votes!.subarray(i * NUM_VOTES, (i + 1) * NUM_VOTES)],
              v.map(Math.fround),
            );
          }
        }
      }
      ds.close();
      await assertPixelExact(
        join(tmp, "gz5"),
        src,
        (id) =>
          existsSync(join(src, "images_test_rev1", `${id}.jpg`))
            ? `images_test_rev1/${id}.jpg`
            : `images_training_rev1/${id}.jpg`,
      );
      const q1 = await preprocess({ inDir: src, outDir: join(tmp, "q1"), scheme: "q1", size: 8 });
      assert.equal(q1.report.totals.packed, syn.trainCount + 4);
    });
  },
);

/** A Kaggle folder with every kind of bad input, and which ids are which. */
async function makeBadKaggle(src: string): Promise<void> {
  const tr = join(src, "images_training_rev1");
  await Deno.mkdir(tr, { recursive: true });
  const rows: string[] = [KAGGLE_HEADER_LINE];
  const add = async (id: number, kind: VoteKind, image: Uint8Array | null, row?: string) => {
    if (image) await Deno.writeFile(join(tr, `${id}.jpg`), image);
    if (row !== "") rows.push(row ?? kaggleRow(id, gzVotes(kind)));
  };
  const good = await encodeImage(424, 424, 1);
  await add(1001, "round", good.subarray(0, good.length >> 1)); // truncated
  await add(1002, "round", new Uint8Array(0)); // zero bytes
  await add(1003, "round", new TextEncoder().encode("this is not a JPEG")); // not an image
  await add(1004, "spiral", await encodeImage(424, 424, 4, "grey")); // fine, greyscale
  await add(1005, "edge_on", await encodeImage(424, 424, 5, "cmyk")); // fine, CMYK
  await add(1006, "cigar", await encodeImage(300, 300, 6)); // warning: size
  await add(1007, "round", await encodeImage(424, 424, 7), ""); // image without row
  await add(1008, "round", null); // row without image
  await add(1009, "round", await encodeImage(424, 424, 9)); // duplicate rows
  rows.push(kaggleRow(1009, gzVotes("spiral")));
  const v = gzVotes("round");
  const cells = (id: number) => kaggleRow(id, v).split(",");
  const c1 = cells(1010);
  c1[10] = "";
  await add(1010, "round", await encodeImage(424, 424, 10), c1.join(","));
  const c2 = cells(1011);
  c2[3] = "abc";
  await add(1011, "round", await encodeImage(424, 424, 11), c2.join(","));
  const c3 = cells(1012);
  c3[5] = "NaN";
  await add(1012, "round", await encodeImage(424, 424, 12), c3.join(","));
  const c4 = cells(1013);
  c4[20] = "-0.1";
  await add(1013, "round", await encodeImage(424, 424, 13), c4.join(","));
  await add(1014, "round", await encodeImage(424, 424, 14), cells(1014).slice(0, -1).join(","));
  const broken = Float64Array.from(v);
  broken[0] = 0.95; // Q1 now sums to 1.15
  await add(1015, "round", await encodeImage(424, 424, 15), kaggleRow(1015, broken));
  const kinds: VoteKind[] = ["round", "in_between", "cigar", "edge_on", "spiral"];
  for (const [i, kind] of kinds.entries()) {
    await add(1016 + i, kind, await encodeImage(424, 424, 16 + i));
  }
  await Deno.writeTextFile(join(src, "training_solutions_rev1.csv"), rows.join("\n") + "\n");
}

deadlineTest("preprocess: every kind of bad input is reported, never fatal", 300, async () => {
  await withTemp(async (tmp) => {
    const src = join(tmp, "bad");
    await makeBadKaggle(src);
    const out = join(tmp, "out");
    const r = await preprocess({ inDir: src, outDir: out, size: 16 });
    const rep = await readReport(out);
    assert.deepEqual(rep, r.report);
    const reason = new Map(rep.skipped.map((p) => [p.id, p]));
    const expect: [string, RegExp, RegExp][] = [
      [
        "1001",
        /^images_training_rev1\/1001\.jpg$/,
        /not a readable image.*(premature end|corrupt or truncated)/i,
      ],
      ["1002", /1002\.jpg$/, /empty file \(0 bytes\)/],
      ["1003", /1003\.jpg$/, /not a readable image.*unsupported image format/],
      ["1007", /1007\.jpg$/, /image has no label row in training_solutions_rev1\.csv/],
      ["1008", /^training_solutions_rev1\.csv:8$/, /label row has no image/],
      ["1009", /^training_solutions_rev1\.csv:9$/, /duplicate id: 2 rows \(lines 9, 10\)/],
      ["1010", /^training_solutions_rev1\.csv:11$/, /missing value in column Class5\.1/],
      ["1011", /:12$/, /non-numeric value 'abc' in column Class1\.3/],
      ["1012", /:13$/, /NaN in column Class2\.2/],
      ["1013", /:14$/, /negative value -0\.1 in column Class8\.2/],
      ["1014", /:15$/, /wrong number of columns \(expected 38, got 37\)/],
      ["1015", /:16$/, /break the decision tree: Q1 answers sum to 1\.1500, expected 1\.0000/],
    ];
    for (const [id, file, why] of expect) {
      const p = reason.get(id);
      assert.ok(p, `${id} reported`);
      assert.match(p.file!, file, id);
      assert.match(p.reason, why, `${id}: ${p.reason}`);
    }
    assert.equal(rep.skipped.length, expect.length);
    assert.equal(rep.totals.items, 20);
    assert.equal(rep.totals.packed, 8);
    assert.deepEqual(rep.warnings.map((w) => w.id), ["1006"]);
    assert.match(rep.warnings[0].reason, /unexpected size 300x300 \(expected 424x424\)/);
    assert.equal(r.ok, false, "12 of 20 bad is over --max-bad");
    assert.match(r.summary, /12 bad \(60\.00%\), 1 warnings/);

    // Greyscale and CMYK were packed as RGB, exactly as loadImage gives them.
    const ds = await openDataset(out);
    const ids = SPLITS.flatMap((s) => [...ds.ids(s)]);
    ds.close();
    assert.deepEqual(ids.sort(), ["1004", "1005", "1006", "1016", "1017", "1018", "1019", "1020"]);
    await assertPixelExact(out, src, (id) => `images_training_rev1/${id}.jpg`);

    // Same input and options with a higher --max-bad: everything reused, now ok,
    // and manifest.json is byte-identical (a trainer resuming on it sees no change).
    const before = await Deno.readTextFile(join(out, "manifest.json"));
    const again = await preprocess({ inDir: src, outDir: out, size: 16, maxBad: 0.7 });
    assert.equal(again.ok, true);
    assert.equal(again.shardsBuilt, 0);
    assert.equal(await Deno.readTextFile(join(out, "manifest.json")), before);

    const strictOut = join(tmp, "strict");
    await assert.rejects(
      preprocess({ inDir: src, outDir: strictOut, size: 16, strict: true }),
      (e: unknown) => e instanceof StrictError && /--strict: 9 bad item\(s\)/.test(e.message),
    );
    assert.ok(!existsSync(join(strictOut, "manifest.json")));
    assert.equal((await readReport(strictOut)).skipped.length, 9);
  });
});

deadlineTest(
  "preprocess: --strict stops at an undecodable image after the label checks pass",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "src");
      await makeLabelsCsvFolder(src, { a: 3, b: 3 });
      await Deno.writeFile(join(src, "images", "g0003.jpg"), new Uint8Array(0));
      const out = join(tmp, "out");
      await assert.rejects(
        preprocess({ inDir: src, outDir: out, size: 8, strict: true }),
        /--strict: bad image images\/g0003\.jpg \(id g0003\): empty file/,
      );
      assert.ok(!existsSync(join(out, "manifest.json")));
      const lax = await preprocess({ inDir: src, outDir: out, size: 8, maxBad: 0.2 });
      assert.ok(lax.ok);
      assert.equal(lax.report.skipped[0].id, "g0003");
    });
  },
);

deadlineTest(
  "preprocess: class folders and labels.csv give the csv scheme with flip pairs",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "folders");
      const classes = { spiral_cw: 3, spiral_acw: 3, elliptical: 4 };
      let k = 0;
      for (const [name, n] of Object.entries(classes)) {
        await Deno.mkdir(join(src, name), { recursive: true });
        for (let i = 0; i < n; i++, k++) {
          const kind = k === 0 ? "png-alpha" : "rgb";
          await Deno.writeFile(
            join(src, name, `${5000 + k}.${kind === "rgb" ? "jpeg" : "png"}`),
            await encodeImage(50, 50, k, kind),
          );
        }
      }
      await Deno.writeTextFile(join(src, "elliptical", "notes.txt"), "ignored");
      // The same id in two classes: neither label is trusted.
      await Deno.writeFile(join(src, "spiral_cw", "5009.jpeg"), await encodeImage(50, 50, 1));
      const out = join(tmp, "out");
      const r = await preprocess({ inDir: src, outDir: out, size: 10, val: 0, test: 0 });
      assert.equal(r.manifest.source.layout, "class-folders");
      assert.deepEqual(r.manifest.scheme.classNames, ["elliptical", "spiral_acw", "spiral_cw"]);
      assert.deepEqual(r.manifest.scheme.flipPairs, [[1, 2]]);
      assert.deepEqual(r.manifest.counts.train.perClass, [3, 3, 3]);
      assert.equal(r.report.skipped[0].id, "5009");
      assert.match(r.report.skipped[0].reason, /duplicate id: 2 images/);
      assert.equal(r.report.ignoredFiles, 1);
      const b = (await allBatches(out, "train"))[0];
      const label = new Map(b.ids.map((id, i) => [id, b.labels![i]]));
      assert.equal(label.get("5000"), 2);
      assert.equal(label.get("5003"), 1);
      assert.equal(label.get("5006"), 0);

      const csv = join(tmp, "csv");
      const rows = await makeLabelsCsvFolder(csv, { merger: 2, edge_on: 3 });
      await Deno.writeTextFile(join(csv, "labels.csv"), "g9999,edge_on\ng0000,\n", {
        append: true,
      });
      const r2 = await preprocess({ inDir: csv, outDir: join(tmp, "out2"), size: 8 });
      assert.equal(r2.manifest.source.layout, "labels-csv");
      assert.deepEqual(r2.manifest.scheme.classNames, ["edge_on", "merger"]);
      assert.deepEqual(r2.manifest.scheme.flipPairs, []);
      const why = r2.report.skipped.map((p) => `${p.id} ${p.file}: ${p.reason}`).sort();
      assert.deepEqual(why, [
        "g0000 labels.csv:2: duplicate id: 2 rows (lines 2, 8)",
        "g9999 labels.csv:7: label row has no image (images/g9999 with one of .jpg, .jpeg, .png, " +
        ".webp, .tif, .tiff, .fits, .fit, .fts (FITS optionally .gz))",
      ]);
      await assertPixelExact(
        join(tmp, "out2"),
        csv,
        (id) => rows.find((x) => x.id === id)!.file,
      );
    });
  },
);

deadlineTest(
  "preprocess: more data keeps every id in its split; other options need --overwrite",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "src");
      await makeLabelsCsvFolder(src, { a: 20, b: 20 });
      const small = join(tmp, "small");
      const first = await preprocess({ inDir: src, outDir: small, size: 8, limit: 25 });
      const splitOf = async (dir: string) => {
        const ds = await openDataset(dir);
        const m = new Map(SPLITS.flatMap((s) => ds.ids(s).map((id) => [id, s] as const)));
        ds.close();
        return m;
      };
      const a = await splitOf(small);
      assert.equal(a.size, 25);
      await preprocess({ inDir: src, outDir: join(tmp, "all"), size: 8 });
      const b = await splitOf(join(tmp, "all"));
      assert.equal(b.size, 40);
      for (const [id, s] of a) assert.equal(b.get(id), s, id);

      await assert.rejects(
        preprocess({ inDir: src, outDir: small, size: 8 }),
        /holds a dataset built from other input or options/,
      );
      const replaced = await preprocess({ inDir: src, outDir: small, size: 8, overwrite: true });
      assert.equal(replaced.report.totals.packed, 40);
      assert.notEqual(replaced.manifest.fingerprint, first.manifest.fingerprint);
      const ds = await openDataset(small, { verify: true });
      ds.close();

      // An image replaced in place (same name, other pixels) is other input too:
      // its old record must not be reused.
      const file = join(src, "images", "g0000.jpg");
      await Deno.writeFile(file, await encodeImage(40, 40, 999));
      await assert.rejects(
        preprocess({ inDir: src, outDir: small, size: 8 }),
        /holds a dataset built from other input or options/,
      );
      await preprocess({ inDir: src, outDir: small, size: 8, overwrite: true });
      const fresh = (await loadImage(file, { size: 8, crop: 0.5 })).pixels;
      const stored = (await allBatches(small, b.get("g0000")!))
        .flatMap((bt) => bt.ids.map((id, i) => ({ id, bt, i })))
        .find((r) => r.id === "g0000")!;
      assert.deepEqual(stored.bt.pixels.subarray(stored.i * 192, (stored.i + 1) * 192), fresh);
    });
  },
);

deadlineTest(
  "preprocess: kill -9 mid-run, then a re-run resumes without redoing shards",
  300,
  async (signal) => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "src");
      await Deno.mkdir(join(src, "images"), { recursive: true });
      const variants = await Promise.all([0, 1, 2, 3].map((s) => encodeImage(424, 424, s)));
      const n = 300;
      const lines = ["id,label"];
      for (let i = 0; i < n; i++) {
        const id = `k${String(i).padStart(4, "0")}`;
        await Deno.writeFile(join(src, "images", `${id}.jpg`), variants[i % 4]);
        lines.push(`${id},${i % 3 === 0 ? "spiral" : "smooth"}`);
      }
      await Deno.writeTextFile(join(src, "labels.csv"), lines.join("\n") + "\n");
      const out = join(tmp, "out");
      const args = ["--in", src, "--out", out, "--size", "16", "--shard-mb", "0.02"];
      const child = cliCommand([...args, "--concurrency", "1"], signal).spawn();
      const first = join(out, "train-00000.bin");
      const t0 = Date.now();
      while (!existsSync(first) && Date.now() - t0 < 60_000) {
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      assert.ok(existsSync(first), "the first shard appeared");
      assert.ok(!existsSync(join(out, "manifest.json")), "killed before the end");

      // Every shard under its final name is complete; note when each was written.
      const done = [...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".bin"));
      const mtimes = new Map<string, number>();
      for (const e of done) {
        await readShardMeta(join(out, e.name));
        mtimes.set(e.name, Deno.statSync(join(out, e.name)).mtime!.getTime());
      }

      const resumed = await preprocess({ inDir: src, outDir: out, size: 16, shardMb: 0.02 });
      assert.ok(resumed.ok);
      assert.equal(resumed.shardsReused, done.length, "every finished shard reused");
      assert.equal(resumed.shardsBuilt, resumed.manifest.shards.length - done.length);
      for (const [name, t] of mtimes) {
        assert.equal(Deno.statSync(join(out, name)).mtime!.getTime(), t, `${name} not rewritten`);
      }
      assert.ok(
        ![...Deno.readDirSync(out)].some((e) => e.name.endsWith(".tmp")),
        "temp files gone",
      );
      assert.equal(resumed.report.totals.packed, n);

      // The resumed dataset equals an uninterrupted run, byte for byte.
      const ref = await preprocess({
        inDir: src,
        outDir: join(tmp, "ref"),
        size: 16,
        shardMb: 0.02,
        concurrency: 4,
      });
      assert.deepEqual(
        resumed.manifest.shards.map((s) => s.sha256),
        ref.manifest.shards.map((s) => s.sha256),
      );
      await assertPixelExact(out, src, (id) => `images/${id}.jpg`, 12);
    });
  },
);

deadlineTest(
  "preprocess CLI: exit status for bad share, usage errors and --verify",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const src = join(tmp, "src");
      await makeLabelsCsvFolder(src, { a: 4, b: 4 });
      await Deno.writeFile(join(src, "images", "g0001.jpeg"), new TextEncoder().encode("junk"));
      const out = join(tmp, "out");
      const bad = await runCli(["--in", src, "--out", out, "--size", "8"]);
      assert.equal(bad.code, 1, text(bad.stderr));
      assert.match(text(bad.stdout), /packed 7 images .*1 bad \(12\.50%\)/);
      assert.match(text(bad.stderr), /12\.50% of the items were bad, more than --max-bad 1\.00%/);
      const okRun = await runCli(["--in", src, "--out", out, "--size", "8", "--max-bad", "0.2"]);
      assert.equal(okRun.code, 0, text(okRun.stderr));
      const verify = await runCli(["--verify", "--out", out]);
      assert.equal(verify.code, 0);
      assert.match(text(verify.stdout), /all checksums match/);
      const shard = [...Deno.readDirSync(out)].find((e) => e.name.endsWith(".bin"))!.name;
      const bytes = await Deno.readFile(join(out, shard));
      bytes[3] ^= 0xff;
      await Deno.writeFile(join(out, shard), bytes);
      const broken = await runCli(["--verify", "--out", out]);
      assert.equal(broken.code, 1);
      assert.match(text(broken.stderr), new RegExp(`${shard} fails its checksum`));
      const usage = await runCli(["--out", out, "--bogus"]);
      assert.equal(usage.code, 2);
      assert.match(text(usage.stderr), /usage: deno task preprocess/);
    });
  },
);

// ---------------------------------------------------------------- real data

deadlineTest(
  "preprocess CLI on gz1-sample (40 images) streams back pixel-exact",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const out = join(tmp, "gz1");
      const r = await runCli(["--in", GZ1, "--out", out, "--limit", "40", "--shard-mb", "0.2"]);
      assert.equal(r.code, 0, text(r.stderr));
      assert.match(text(r.stdout), /packed 40 images/);
      const ds = await openDataset(out);
      assert.deepEqual(ds.manifest.scheme.classNames, [
        "edge_on",
        "elliptical",
        "merger",
        "spiral_acw",
        "spiral_cw",
        "unknown",
      ]);
      assert.deepEqual(ds.manifest.scheme.flipPairs, [[3, 4]]);
      assert.deepEqual(ds.manifest.source.expectedImageSize, [423, 423]);
      ds.close();
      const n = await assertPixelExact(out, GZ1, (id) => `images/${id}.jpeg`);
      assert.equal(n, 40);
    });
  },
  { ignore: !existsSync(join(GZ1, "labels.csv")) },
);

deadlineTest(
  "preprocess on kaggle-spiral-sample (30 images) streams back pixel-exact",
  300,
  async () => {
    await withTemp(async (tmp) => {
      const out = join(tmp, "spiral");
      const r = await preprocess({ inDir: SPIRAL, outDir: out, limit: 30 });
      assert.ok(r.ok);
      assert.deepEqual(r.manifest.scheme.classNames, ["non_spiral", "spiral"]);
      assert.equal(r.report.warnings.filter((w) => w.id).length, 0, "all 424x424");
      assert.equal(await assertPixelExact(out, SPIRAL, (id) => `images/${id}.jpg`), 30);
    });
  },
  { ignore: !existsSync(join(SPIRAL, "labels.csv")) },
);
