import assert from "node:assert/strict";
import { join } from "node:path";
import { type Batch, type Dataset, openDataset, permutation } from "../lib/data/dataset.ts";
import { loadImage } from "../lib/data/image.ts";
import { MANIFEST_FILE } from "../lib/data/manifest.ts";
import { preprocess } from "../lib/preprocess.ts";
import { makeLabelsCsvFolder } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";
import { deadlineTest } from "./deadline.ts";

/**
 * One dataset shared by the tests below: 3 classes, 37 images, several shards per split;
 * removed when the test process ends.
 */
let built: ReturnType<typeof build> | null = null;
const fixture = () => (built ??= build());
const build = async () => {
  const root = await tempDir("galaxy-ds-");
  const src = join(root, "src");
  const rows = await makeLabelsCsvFolder(src, { edge_on: 9, elliptical: 20, spiral: 8 });
  const out = join(root, "ds");
  const r = await preprocess({ inDir: src, outDir: out, size: 12, shardMb: 0.02, val: 0.2 });
  return { root, src, out, rows, manifest: r.manifest };
};

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

async function withDataset(
  fn: (ds: Dataset, f: Awaited<ReturnType<typeof build>>) => Promise<void>,
) {
  const f = await fixture();
  const ds = await openDataset(f.out);
  try {
    await fn(ds, f);
  } finally {
    ds.close();
  }
}

deadlineTest(
  "dataset: sizes, class counts and stored-order batches match the source",
  300,
  async () => {
    await withDataset(async (ds, f) => {
      assert.ok(ds.manifest.shards.filter((s) => s.split === "train").length >= 2);
      const total = ds.size("train") + ds.size("val") + ds.size("test");
      assert.equal(total, f.rows.length);
      assert.equal(ds.size("unlabeled"), 0);
      const label = new Map(f.rows.map((r) => [r.id, r.label]));
      const classes = ds.manifest.scheme.classNames;
      assert.deepEqual(classes, ["edge_on", "elliptical", "spiral"]);
      for (const split of ["train", "val", "test"] as const) {
        const batches = await collect(ds.batches(split, { batchSize: 4 }));
        assert.equal(batches.length, Math.ceil(ds.size(split) / 4));
        assert.equal(batches.length, ds.numBatches(split, { batchSize: 4 }));
        const counts = new Array(classes.length).fill(0);
        const ids = batches.flatMap((b) => b.ids);
        assert.deepEqual(ids, [...ds.ids(split)]);
        assert.deepEqual(ids, [...ids].sort(), "stored order is by id");
        for (const b of batches) {
          assert.equal(b.pixels.length, b.n * 12 * 12 * 3);
          assert.equal(b.votes, null);
          for (let i = 0; i < b.n; i++) {
            assert.equal(classes[b.labels![i]], label.get(b.ids[i]));
            counts[b.labels![i]]++;
            const file = f.rows.find((r) => r.id === b.ids[i])!.file;
            const ref = await loadImage(join(f.src, file), { size: 12, crop: 0.5 });
            assert.deepEqual(b.pixels.subarray(i * 432, (i + 1) * 432), ref.pixels, b.ids[i]);
          }
        }
        assert.deepEqual(ds.classCounts(split), counts);
      }
    });
  },
);

deadlineTest(
  "dataset: shuffle is a permutation fixed by (seed, epoch); startBatch resumes it",
  300,
  async () => {
    await withDataset(async (ds) => {
      const opts = { batchSize: 5, shuffle: true, seed: 3, epoch: 2 };
      const a = await collect(ds.batches("train", opts));
      const b = await collect(ds.batches("train", opts));
      assert.deepEqual(a.map((x) => x.ids), b.map((x) => x.ids));
      const ids = a.flatMap((x) => x.ids);
      assert.deepEqual([...ids].sort(), [...ds.ids("train")].sort(), "every record once");
      assert.notDeepEqual(ids, [...ds.ids("train")], "shuffled");
      const otherEpoch = (await collect(ds.batches("train", { ...opts, epoch: 3 }))).flatMap((x) =>
        x.ids
      );
      assert.notDeepEqual(otherEpoch, ids);
      const otherSeed = (await collect(ds.batches("train", { ...opts, seed: 4 }))).flatMap((x) =>
        x.ids
      );
      assert.notDeepEqual(otherSeed, ids);
      // Resuming at batch 2 gives exactly batches 2.. of the uninterrupted epoch.
      const resumed = await collect(ds.batches("train", { ...opts, startBatch: 2 }));
      assert.equal(resumed.length, a.length - 2);
      resumed.forEach((r, k) => {
        const full = a[k + 2];
        assert.equal(r.index, k + 2);
        assert.deepEqual(r.ids, full.ids);
        assert.deepEqual(r.pixels, full.pixels);
        assert.deepEqual(r.labels, full.labels);
      });
      // Pixels follow their ids through the shuffle.
      const plain = (await collect(ds.batches("train", { batchSize: 100 })))[0];
      const at = new Map(plain.ids.map((id, i) => [id, i]));
      for (const x of a) {
        for (let i = 0; i < x.n; i++) {
          const j = at.get(x.ids[i])!;
          assert.deepEqual(
            x.pixels.subarray(i * 432, (i + 1) * 432),
            plain.pixels.subarray(j * 432, (j + 1) * 432),
          );
          assert.equal(x.labels![i], plain.labels![j]);
        }
      }
    });
  },
);

deadlineTest("dataset: dropRemainder, startBatch past the end, bad options", 300, async () => {
  await withDataset(async (ds) => {
    const n = ds.size("train");
    const dropped = await collect(ds.batches("train", { batchSize: 4, dropRemainder: true }));
    assert.equal(dropped.length, Math.floor(n / 4));
    assert.ok(dropped.every((b) => b.n === 4));
    const kept = await collect(ds.batches("train", { batchSize: 4 }));
    assert.equal(kept.at(-1)!.n, n % 4 || 4);
    assert.deepEqual(await collect(ds.batches("train", { batchSize: 4, startBatch: 99 })), []);
    await assert.rejects(collect(ds.batches("train", { batchSize: 0 })), /batchSize must be/);
    await assert.rejects(
      collect(ds.batches("train", { batchSize: 2, startBatch: -1 })),
      /startBatch/,
    );
  });
});

Deno.test("permutation: a seeded Fisher-Yates shuffle", () => {
  const p = permutation(1000, 1, 0);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(p, permutation(1000, 1, 0));
  assert.notDeepEqual(p, permutation(1000, 1, 1));
  // Every position is about equally likely to hold a given element.
  const firsts = new Array(4).fill(0);
  for (let e = 0; e < 4000; e++) firsts[permutation(4, 9, e)[0]]++;
  assert.ok(firsts.every((c) => Math.abs(c - 1000) < 120), String(firsts));
});

deadlineTest("dataset: missing, resized and corrupted shards are named", 300, async () => {
  const f = await fixture();
  const copy = join(f.root, "copy");
  await Deno.mkdir(copy);
  for (const e of Deno.readDirSync(f.out)) {
    await Deno.copyFile(join(f.out, e.name), join(copy, e.name));
  }
  const shard = f.manifest.shards[1].file;
  const bytes = await Deno.readFile(join(copy, shard));

  bytes[10] ^= 1;
  await Deno.writeFile(join(copy, shard), bytes);
  const ds = await openDataset(copy);
  await assert.rejects(ds.verify(), new RegExp(`shard .*${shard} fails its checksum`));
  ds.close();
  await assert.rejects(
    openDataset(copy, { verify: true }),
    new RegExp(`${shard} fails its checksum`),
  );

  await Deno.writeFile(join(copy, shard), bytes.subarray(0, bytes.length - 1));
  await assert.rejects(
    openDataset(copy),
    new RegExp(`${shard} has ${bytes.length - 1} bytes; the manifest lists ${bytes.length}`),
  );
  await Deno.remove(join(copy, shard));
  await assert.rejects(
    openDataset(copy),
    new RegExp(`shard .*${shard} listed in .* does not exist`),
  );
  await Deno.remove(join(copy, MANIFEST_FILE));
  await assert.rejects(openDataset(copy), /cannot read .*manifest\.json/);

  const ok = await openDataset(f.out, { verify: true });
  ok.close();
});

deadlineTest("dataset: close releases the files; reading after close fails", 300, async () => {
  const f = await fixture();
  const ds = await openDataset(f.out);
  await collect(ds.batches("val", { batchSize: 2 }));
  ds.close();
  await assert.rejects(collect(ds.batches("val", { batchSize: 2 })), /is closed/);
});
