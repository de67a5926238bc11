import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { checkTree, describeViolations, KAGGLE_HEADER, voteIndex } from "../lib/data/schema.ts";
import {
  formatVote,
  IMAGE_SIZE,
  syntheticGalaxy,
  syntheticGalaxyIds,
  TEST_IMAGES_DIR,
  TRAINING_CSV,
  TRAINING_IMAGES_DIR,
  writeSyntheticKaggle,
} from "../lib/data/synthetic.ts";
import { sampleScene } from "../lib/data/synthetic/morphology.ts";
import { permuteIndex, Rng } from "../lib/data/synthetic/prng.ts";
import { renderScene } from "../lib/data/synthetic/render.ts";
import type { GalaxyKind } from "../lib/data/synthetic/scene.ts";
import { mixSeed } from "../lib/random.ts";

function parseCsv(text: string): { header: string[]; rows: { id: number; votes: number[] }[] } {
  const lines = text.trimEnd().split("\n");
  const header = lines[0].split(",");
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(",");
    return { id: Number(cells[0]), votes: cells.slice(1).map(Number) };
  });
  return { header, rows };
}

/** Byte equality without asking node:assert to diff large arrays (its message would be huge). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function listJpegs(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".jpg")) names.push(e.name);
  }
  return names.sort();
}

Deno.test("the generated data set has the Kaggle layout, header, IDs and image format", async () => {
  const dir = await Deno.makeTempDir({ prefix: "synthetic_layout_" });
  try {
    const progress: number[] = [];
    const summary = await writeSyntheticKaggle(dir, {
      count: 20,
      testCount: 4,
      seed: 7,
      onProgress: (done, total) => {
        assert.equal(total, 24);
        progress.push(done);
      },
    });
    assert.deepEqual(progress, Array.from({ length: 24 }, (_, i) => i + 1));
    assert.equal(summary.rendered, 24);
    assert.equal(summary.skipped, 0);
    assert.equal(Object.values(summary.kinds).reduce((a, b) => a + b, 0), 20);

    const { header, rows } = parseCsv(await Deno.readTextFile(join(dir, TRAINING_CSV)));
    assert.deepEqual(header, [...KAGGLE_HEADER]);
    assert.equal(rows.length, 20);
    const ids = rows.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "rows are sorted by GalaxyID");
    for (const r of rows) {
      assert.ok(Number.isInteger(r.id) && r.id >= 100000 && r.id <= 999999, `GalaxyID ${r.id}`);
      assert.equal(r.votes.length, 37);
      const v = checkTree(r.votes);
      assert.equal(v.length, 0, `row ${r.id}: ${describeViolations(v)}`);
    }
    // Six decimals at most, like the competition's file.
    const text = await Deno.readTextFile(join(dir, TRAINING_CSV));
    const body = text.slice(text.indexOf("\n") + 1);
    for (const cell of body.split(/[,\n]/).filter((c) => c.includes("."))) {
      assert.match(cell, /^[01]\.\d{1,6}$/);
    }

    const train = await listJpegs(join(dir, TRAINING_IMAGES_DIR));
    const test = await listJpegs(join(dir, TEST_IMAGES_DIR));
    assert.deepEqual(train, ids.map((id) => `${id}.jpg`).sort());
    assert.equal(test.length, 4);
    const testIds = test.map((n) => Number(n.slice(0, -4)));
    assert.ok(testIds.every((id) => id >= 100000 && id <= 999999 && !ids.includes(id)));

    for (const [sub, name] of [[TRAINING_IMAGES_DIR, train[0]], [TEST_IMAGES_DIR, test[0]]]) {
      const meta = await sharp(join(dir, sub, name)).metadata();
      assert.equal(meta.format, "jpeg");
      assert.equal(meta.width, IMAGE_SIZE);
      assert.equal(meta.height, IMAGE_SIZE);
      assert.equal(meta.channels, 3);
      assert.equal(meta.space, "srgb");
    }
    for (const name of train) {
      const meta = await sharp(join(dir, TRAINING_IMAGES_DIR, name)).metadata();
      assert.equal(
        `${meta.format} ${meta.width}x${meta.height}x${meta.channels}`,
        "jpeg 424x424x3",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the same seed gives byte-identical files; another seed does not", async () => {
  const dirs = await Promise.all(
    [1, 2, 3].map((k) => Deno.makeTempDir({ prefix: `synthetic_det${k}_` })),
  );
  try {
    await writeSyntheticKaggle(dirs[0], { count: 8, testCount: 2, seed: 11 });
    await writeSyntheticKaggle(dirs[1], { count: 8, testCount: 2, seed: 11, concurrency: 1 });
    await writeSyntheticKaggle(dirs[2], { count: 8, testCount: 2, seed: 12 });
    const csv = await Promise.all(dirs.map((d) => Deno.readTextFile(join(d, TRAINING_CSV))));
    assert.equal(csv[0], csv[1]);
    assert.notEqual(csv[0], csv[2]);
    for (const sub of [TRAINING_IMAGES_DIR, TEST_IMAGES_DIR]) {
      const names = await listJpegs(join(dirs[0], sub));
      assert.deepEqual(await listJpegs(join(dirs[1], sub)), names);
      for (const name of names) {
        assert.ok(
          sameBytes(
            await Deno.readFile(join(dirs[0], sub, name)),
            await Deno.readFile(join(dirs[1], sub, name)),
          ),
          `${sub}/${name} differs between two runs with the same seed`,
        );
      }
    }
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("a re-run skips complete files, redoes missing ones, and refuses another seed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "synthetic_resume_" });
  try {
    await writeSyntheticKaggle(dir, { count: 6, testCount: 2, seed: 5 });
    const csvPath = join(dir, TRAINING_CSV);
    const csv = await Deno.readTextFile(csvPath);
    const names = await listJpegs(join(dir, TRAINING_IMAGES_DIR));
    const keptPath = join(dir, TRAINING_IMAGES_DIR, names[1]);
    const kept = await Deno.stat(keptPath);

    const again = await writeSyntheticKaggle(dir, { count: 6, testCount: 2, seed: 5 });
    assert.equal(again.rendered, 0);
    assert.equal(again.skipped, 8);
    assert.equal(again.csvWritten, false);

    const removedPath = join(dir, TRAINING_IMAGES_DIR, names[0]);
    const removed = await Deno.readFile(removedPath);
    await Deno.remove(removedPath);
    await Deno.remove(csvPath);
    const resumed = await writeSyntheticKaggle(dir, { count: 6, testCount: 2, seed: 5 });
    assert.equal(resumed.rendered, 1);
    assert.equal(resumed.skipped, 7);
    assert.equal(resumed.csvWritten, true);
    assert.ok(sameBytes(await Deno.readFile(removedPath), removed), "re-rendered image differs");
    assert.equal(await Deno.readTextFile(csvPath), csv);
    assert.equal((await Deno.stat(keptPath)).mtime?.getTime(), kept.mtime?.getTime());
    // No temporary files are left behind.
    for await (const e of Deno.readDir(join(dir, TRAINING_IMAGES_DIR))) {
      assert.ok(e.name.endsWith(".jpg"), `unexpected file ${e.name}`);
    }

    await assert.rejects(
      writeSyntheticKaggle(dir, { count: 6, testCount: 2, seed: 6 }),
      /synthetic_manifest\.json.*seed 5/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad options are rejected with a clear error", async () => {
  await assert.rejects(writeSyntheticKaggle("/nonexistent", { count: 0 }), /count must be/);
  await assert.rejects(
    writeSyntheticKaggle("/nonexistent", { count: 2, seed: -1 }),
    /seed must be/,
  );
  await assert.rejects(
    writeSyntheticKaggle("/nonexistent", { count: 2, testCount: 1.5 }),
    /testCount must be/,
  );
});

Deno.test("GalaxyIDs are unique, disjoint between splits and stable as the count grows", () => {
  const train = syntheticGalaxyIds(3, "train", 2000);
  const test = syntheticGalaxyIds(3, "test", 500);
  assert.equal(new Set(train).size, 2000);
  assert.equal(new Set([...train, ...test]).size, 2500);
  assert.deepEqual(syntheticGalaxyIds(3, "train", 100), train.slice(0, 100));
  assert.notDeepEqual(syntheticGalaxyIds(4, "train", 100), train.slice(0, 100));
  // The underlying permutation is a bijection.
  const perm = Array.from({ length: 1000 }, (_, i) => permuteIndex(i, 1000, 99));
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
});

Deno.test("vote fractions are written with at most six decimals", () => {
  assert.equal(formatVote(0), "0.0");
  assert.equal(formatVote(1), "1.0");
  assert.equal(formatVote(0.5), "0.5");
  assert.equal(formatVote(20 / 47), "0.425532");
});

Deno.test("votes follow the true morphology and keep the gz5 classes populated", () => {
  const seed = 21;
  const ids = syntheticGalaxyIds(seed, "train", 600);
  const by = new Map<GalaxyKind, number[][]>();
  const gz5: Record<string, number> = { round: 0, between: 0, cigar: 0, edge: 0, spiral: 0 };
  let kept = 0;
  for (const id of ids) {
    const g = syntheticGalaxy(seed, id, true);
    const v = Array.from(g.votes!);
    assert.deepEqual(checkTree(v), []);
    const list = by.get(g.scene.morphology.kind) ?? [];
    list.push(v);
    by.set(g.scene.morphology.kind, list);
    const c = (name: string) => v[voteIndex(name)];
    const labels = [
      c("Class1.1") >= 0.469 && c("Class7.1") >= 0.5 ? "round" : "",
      c("Class1.1") >= 0.469 && c("Class7.2") >= 0.5 ? "between" : "",
      c("Class1.1") >= 0.469 && c("Class7.3") >= 0.5 ? "cigar" : "",
      c("Class1.2") >= 0.43 && c("Class2.1") >= 0.602 ? "edge" : "",
      c("Class1.2") >= 0.43 && c("Class2.2") >= 0.715 && c("Class4.1") >= 0.619 ? "spiral" : "",
    ].filter((x) => x);
    if (labels.length === 1) {
      kept++;
      gz5[labels[0]]++;
    }
  }
  const mean = (kind: GalaxyKind, column: string) => {
    const rows = by.get(kind) ?? [];
    assert.ok(rows.length > 0, `no ${kind} drawn`);
    return rows.reduce((s, r) => s + r[voteIndex(column)], 0) / rows.length;
  };
  assert.ok(mean("elliptical", "Class1.1") > 0.7);
  assert.ok(mean("spiral", "Class1.2") > 0.7);
  assert.ok(mean("spiral", "Class4.1") > 0.5);
  assert.ok(mean("spiral", "Class4.1") > 5 * mean("elliptical", "Class4.1"));
  assert.ok(mean("edge_on", "Class2.1") > 0.6);
  assert.ok(mean("star", "Class1.3") > 0.5);
  assert.ok(mean("merger", "Class8.6") > mean("elliptical", "Class8.6") * 3);
  assert.ok(kept / ids.length >= 0.6, `only ${kept} of ${ids.length} rows have one gz5 class`);
  for (const [name, n] of Object.entries(gz5)) assert.ok(n >= 20, `gz5 class ${name}: ${n} rows`);
});

/** Flux-weighted axis ratio of the central light, from second moments of the image. */
function measuredAxisRatio(rgb: Uint8Array): number {
  let sum = 0, sx = 0, sy = 0;
  const w: number[] = [];
  for (let y = 106; y < 318; y++) {
    for (let x = 106; x < 318; x++) {
      const p = (y * IMAGE_SIZE + x) * 3;
      const v = Math.max(0, rgb[p] + rgb[p + 1] + rgb[p + 2] - 60);
      w.push(v);
      sum += v;
      sx += v * x;
      sy += v * y;
    }
  }
  const cx = sx / sum, cy = sy / sum;
  let xx = 0, yy = 0, xy = 0, k = 0;
  for (let y = 106; y < 318; y++) {
    for (let x = 106; x < 318; x++, k++) {
      xx += w[k] * (x - cx) ** 2;
      yy += w[k] * (y - cy) ** 2;
      xy += w[k] * (x - cx) * (y - cy);
    }
  }
  const tr = (xx + yy) / sum, det = (xx * yy - xy * xy) / (sum * sum);
  const d = Math.sqrt(Math.max(0, tr * tr / 4 - det));
  return Math.sqrt((tr / 2 - d) / (tr / 2 + d));
}

Deno.test("rendered images show the morphology: shape, size and colour", () => {
  const scene = (kind: GalaxyKind, k: number) => {
    // Draw until the kind's scene has the wanted flattening (rendering is the expensive part).
    for (let s = 0;; s++) {
      const sc = sampleScene(new Rng(mixSeed(77, k, s)), kind);
      const q = sc.morphology.axisRatio;
      if ((kind === "elliptical" && q > 0.9) || kind !== "elliptical") return sc;
    }
  };
  const round = renderScene(scene("elliptical", 1));
  const edge = renderScene(scene("edge_on", 2));
  assert.equal(round.length, IMAGE_SIZE * IMAGE_SIZE * 3);
  assert.ok(
    measuredAxisRatio(round) > 0.75,
    `round elliptical measured ${measuredAxisRatio(round)}`,
  );
  assert.ok(measuredAxisRatio(edge) < 0.45, `edge-on disk measured ${measuredAxisRatio(edge)}`);
  // The galaxy is at the centre: the central pixel outshines the frame's median.
  const centre = (212 * IMAGE_SIZE + 212) * 3;
  const lum = (img: Uint8Array, p: number) => img[p] + img[p + 1] + img[p + 2];
  const all = Array.from({ length: IMAGE_SIZE * IMAGE_SIZE }, (_, i) => lum(round, i * 3)).sort(
    (a, b) => a - b,
  );
  assert.ok(lum(round, centre) > 4 * all[all.length >> 1] + 100);
  // Ellipticals are red-yellow: more red than blue in the core.
  assert.ok(round[centre] > round[centre + 2] + 30);
});
