/**
 * Inputs astronomers bring (issue 24), each with the answer it must get:
 * FITS cutouts in predict and preprocess, one formats list for folder and
 * single-file runs, symlinked folders and files, Unicode and non-UTF-8
 * names, EXIF orientation, and far-from-square images.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import { loadImage, sniffImageSize } from "../lib/data/image.ts";
import { readSource } from "../lib/data/sources.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { DEFAULT_FITS_STRETCH } from "../lib/data/stretch.ts";
import { ASPECT_LIMIT, aspectRefusal, aspectWarning } from "../lib/data/aspect.ts";
import { escapeBytes, readEntries } from "../lib/io/dir_entries.ts";
import { parseCsvRows } from "../lib/io/csv.ts";
import { preprocess } from "../lib/preprocess.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { openRun } from "../lib/run/open.ts";
import { parseRunDataset } from "../lib/run/config.ts";
import { predict } from "../lib/predict/predict.ts";
import { predictBatch } from "../lib/inference.ts";
import {
  encodeImage,
  galaxyFits,
  orientPixels,
  patternPixels,
  withExifOrientation,
} from "./fixtures_images.ts";
import { toyRun } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";
import { deadlineTest } from "./deadline.ts";
import { runTask } from "./task_cli.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Rows of a CSV file as id -> fields. */
async function csvById(path: string): Promise<Map<string, string[]>> {
  const rows = parseCsvRows(await Deno.readTextFile(path)).slice(1);
  return new Map(rows.map((r) => [r.fields[0], r.fields]));
}

/** Makes a folder with raw-byte name `bytes` (printf escapes) inside `dir`, with `sh`. */
async function mkdirBytes(dir: string, printfName: string, file?: string): Promise<void> {
  const script = `cd "$1" && n="$(printf '${printfName}')" && mkdir "$n"` +
    (file ? ` && cp "$2" "$n/"` : "");
  const r = await new Deno.Command("sh", { args: ["-c", script, "sh", dir, file ?? ""] }).output();
  assert.equal(r.code, 0, text(r.stderr));
}

// ------------------------------------------------------------------ FITS

deadlineTest(
  "FITS: deno task predict on a folder of cutouts (every BITPIX, scaled, NaN, a cube, gzip) writes predictions",
  300,
  async () => {
    const run = await toyRun({ size: 16, crop: 0.8 });
    const dir = await tempDir("galaxy-fits-in-");
    const files: Record<string, Uint8Array> = {
      "b8.fits": galaxyFits(24, { bitpix: 8 }),
      "b16.fit": galaxyFits(24, { bitpix: 16 }),
      "b32.fts": galaxyFits(24, { bitpix: 32 }),
      "b64.fits": galaxyFits(24, { bitpix: 64 }),
      "f32.fits": galaxyFits(24, { bitpix: -32 }),
      "f64.fits": galaxyFits(24, { bitpix: -64 }),
      "scaled.fits": galaxyFits(24, { cards: { BSCALE: 0.01, BZERO: -5, BLANK: 100 } }),
      "cube.fits": galaxyFits(24, { bitpix: -32, planes: 3 }),
      "zipped.fits.gz": gzipSync(galaxyFits(24, { planes: 3 })),
    };
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(join(dir, name), bytes);
    }
    const out = join(await tempDir("galaxy-fits-out-"), "p.csv");
    const r = await runTask("predict", ["--model", run, "--in", dir, "--out", out]);
    assert.equal(r.code, 0, text(r.stderr));
    const rows = await csvById(out);
    assert.deepEqual(
      [...rows.keys()].sort(),
      ["b16", "b32", "b64", "b8", "cube", "f32", "f64", "scaled", "zipped"],
    );
    // Each row is the model on loadImage of the file with the run's (default) stretch.
    const opened = await openRun(run);
    try {
      for (const [name] of Object.entries(files)) {
        const id = name.replace(/\.f.*$/, "");
        const img = await loadImage(join(dir, name), { size: 16, crop: 0.8 });
        const want = await predictBatch(opened.model, { n: 1, ids: [id], pixels: img.pixels });
        const got = rows.get(id)!.slice(3).map(Number);
        got.forEach((p, k) => assert.ok(Math.abs(p - want[k]) <= 6e-7, `${id} p${k}`));
      }
    } finally {
      opened.model.dispose();
    }
  },
);

Deno.test("FITS: predict applies the stretch the run's config.json records", async () => {
  const stretch = { ...DEFAULT_FITS_STRETCH, q: 1, low: 5, high: 95 };
  const run = await toyRun({ size: 16, fitsStretch: stretch });
  const opened = await openRun(run);
  try {
    assert.deepEqual(opened.dataset.fitsStretch, stretch);
    const dir = await tempDir("galaxy-fits-stretch-");
    await Deno.writeFile(join(dir, "g.fits"), galaxyFits(24, { planes: 3 }));
    const out = join(dir, "p.csv");
    const input = await resolveInput(join(dir, "g.fits"));
    await predict({ run: opened, input, inPath: join(dir, "g.fits"), out });
    const got = (await csvById(out)).get("g")!.slice(3).map(Number);
    const at = (s: typeof stretch) =>
      loadImage(join(dir, "g.fits"), { size: 16, crop: 0.5, stretch: s }).then((img) =>
        predictBatch(opened.model, { n: 1, ids: ["g"], pixels: img.pixels })
      );
    const mine = await at(stretch);
    const other = await at(DEFAULT_FITS_STRETCH);
    got.forEach((p, k) => assert.ok(Math.abs(p - mine[k]) <= 6e-7, `p${k}`));
    assert.ok(got.some((p, k) => Math.abs(p - other[k]) > 1e-4), "the default stretch differs");
  } finally {
    opened.model.dispose();
  }
  // A run made before FITS was read gets the default; a broken record is an error naming it.
  const base = { kind: "classes", classes: ["a", "b"], size: 8, crop: 0.5 };
  assert.deepEqual(parseRunDataset({ dataset: base }, "c.json").fitsStretch, DEFAULT_FITS_STRETCH);
  assert.throws(
    () => parseRunDataset({ dataset: { ...base, fitsStretch: { kind: "linear" } } }, "c.json"),
    /c\.json: dataset\.fitsStretch: FITS stretch kind must be "asinh"/,
  );
});

deadlineTest(
  "FITS: preprocess packs a class-folder dataset and a labels.csv dataset, recording the stretch",
  300,
  async () => {
    const tmp = await tempDir("galaxy-fits-pre-");
    const src = join(tmp, "classes");
    for (const [cls, planes] of [["elliptical", 1], ["spiral", 3]] as const) {
      await Deno.mkdir(join(src, cls), { recursive: true });
      for (let k = 0; k < 3; k++) {
        const bytes = galaxyFits(20 + k, { planes, bitpix: k === 0 ? -32 : 16 });
        const name = `${cls}-${k}.${k === 2 ? "fits.gz" : "fits"}`;
        await Deno.writeFile(join(src, cls, name), k === 2 ? gzipSync(bytes) : bytes);
      }
    }
    // The CLI, so the decoder processes get the stretch too.
    const out = join(tmp, "out");
    const r = await runTask("preprocess", [
      "--in",
      src,
      "--out",
      out,
      "--size",
      "8",
      "--processes",
      "1",
      "--fits-stretch",
      "8,1,99",
    ]);
    assert.equal(r.code, 0, text(r.stderr));
    const ds = await openDataset(out);
    try {
      const stretch = { ...DEFAULT_FITS_STRETCH, q: 8, low: 1, high: 99 };
      assert.deepEqual(ds.manifest.image.fitsStretch, stretch);
      assert.deepEqual(ds.manifest.scheme.classNames, ["elliptical", "spiral"]);
      let n = 0;
      for (const split of ["train", "val", "test"] as const) {
        for await (const b of ds.batches(split, { batchSize: 8 })) {
          for (let i = 0; i < b.n; i++, n++) {
            const id = b.ids[i];
            const cls = id.split("-")[0];
            const name = `${id}.${id.endsWith("2") ? "fits.gz" : "fits"}`;
            const want = await loadImage(join(src, cls, name), { size: 8, crop: 0.5, stretch });
            assert.deepEqual(b.pixels.subarray(i * 192, (i + 1) * 192), want.pixels, id);
          }
        }
      }
      assert.equal(n, 6);
    } finally {
      ds.close();
    }
    // labels.csv + images/ of FITS files is a layout too.
    const csv = join(tmp, "csv");
    await Deno.mkdir(join(csv, "images"), { recursive: true });
    await Deno.writeFile(join(csv, "images", "a.fits"), galaxyFits(16));
    await Deno.writeFile(join(csv, "images", "b.fit.gz"), gzipSync(galaxyFits(16, { planes: 3 })));
    await Deno.writeTextFile(join(csv, "labels.csv"), "id,label\na,x\nb,y\n");
    const s = await readSource(csv);
    assert.equal(s.layout, "labels-csv");
    assert.deepEqual(s.labeled.map((x) => [x.id, x.file]), [["a", "images/a.fits"], [
      "b",
      "images/b.fit.gz",
    ]]);
    assert.deepEqual(s.problems, []);
  },
);

// --------------------------------------------------------------- formats

deadlineTest(
  "formats: a folder run and a single-file run read the same list and refuse the rest alike",
  300,
  async () => {
    const run = await toyRun({ size: 16 });
    const dir = await tempDir("galaxy-formats-");
    const raw = patternPixels(32, 32, 5);
    const img = () => sharp(raw, { raw: { width: 32, height: 32, channels: 3 } });
    await Deno.writeFile(join(dir, "a.webp"), await img().webp().toBuffer());
    await Deno.writeFile(join(dir, "b.tif"), await img().tiff().toBuffer());
    await Deno.writeFile(join(dir, "c.TIFF"), await img().tiff().toBuffer());
    await Deno.writeFile(join(dir, "d.jpg"), await img().jpeg().toBuffer());
    await Deno.writeFile(join(dir, "e.bmp"), await img().png().toBuffer()); // readable, but not listed
    const out = join(await tempDir("galaxy-formats-out-"), "p.csv");
    const folder = await runTask("predict", ["--model", run, "--in", dir, "--out", out]);
    assert.equal(folder.code, 3, text(folder.stderr)); // some images unreadable
    assert.deepEqual([...(await csvById(out)).keys()], ["a", "b", "c", "d"]);
    const folderReason = (await csvById(out.replace(".csv", ".errors.csv"))).get("e")![2];
    assert.match(folderReason, /^unsupported image format '\.bmp': the formats read are \.jpg, /);
    const one = join(await tempDir("galaxy-formats-one-"), "p.csv");
    const single = await runTask("predict", [
      "--model",
      run,
      "--in",
      join(dir, "e.bmp"),
      "--out",
      one,
    ]);
    assert.equal(single.code, 3);
    assert.equal((await csvById(one.replace(".csv", ".errors.csv"))).get("e")![2], folderReason);
    // And a single .webp is read as in the folder.
    const webp = join(await tempDir("galaxy-formats-webp-"), "p.csv");
    const w = await runTask("predict", [
      "--model",
      run,
      "--in",
      join(dir, "a.webp"),
      "--out",
      webp,
    ]);
    assert.equal(w.code, 0, text(w.stderr));
    assert.deepEqual((await csvById(webp)).get("a"), (await csvById(out)).get("a"));
  },
);

Deno.test("formats: preprocess names the formats of the files it leaves out", async () => {
  const src = await tempDir("galaxy-formats-pre-");
  await Deno.mkdir(join(src, "a"));
  await Deno.writeFile(join(src, "a", "g1.webp"), new Uint8Array([1]));
  await Deno.writeFile(join(src, "a", "g2.bmp"), new Uint8Array([1]));
  await Deno.writeFile(join(src, "a", "g3.BMP"), new Uint8Array([1]));
  await Deno.writeTextFile(join(src, "a", "notes.txt"), "x");
  await Deno.writeTextFile(join(src, "README"), "x");
  const s = await readSource(src);
  assert.deepEqual(s.labeled.map((x) => x.file), ["a/g1.webp"]);
  assert.equal(s.ignoredFiles, 4);
  const w = s.warnings.find((x) => /not in a format read/.test(x.reason));
  assert.ok(w, JSON.stringify(s.warnings));
  assert.match(
    w.reason,
    /^4 file\(s\) left out, not in a format read \(2 '\.bmp', 1 '\.txt', 1 without extension\)/,
  );
});

// -------------------------------------------------------------- symlinks

deadlineTest(
  "symlinks: a linked class folder is a class; linked files are images",
  120,
  async () => {
    const tmp = await tempDir("galaxy-links-");
    const store = join(tmp, "store");
    const src = join(tmp, "src");
    await Deno.mkdir(join(store, "spiral"), { recursive: true });
    await Deno.mkdir(join(store, "pool"), { recursive: true });
    await Deno.mkdir(src);
    for (let k = 0; k < 3; k++) {
      await Deno.writeFile(join(store, "spiral", `s${k}.jpg`), await encodeImage(16, 16, k));
      await Deno.writeFile(
        join(store, "pool", `e${k}.png`),
        await encodeImage(16, 16, 10 + k, "png"),
      );
    }
    // spiral/ is a link to a folder; elliptical/ a real folder whose files are all links.
    await Deno.symlink(join(store, "spiral"), join(src, "spiral"));
    await Deno.mkdir(join(src, "elliptical"));
    for (let k = 0; k < 3; k++) {
      await Deno.symlink(join(store, "pool", `e${k}.png`), join(src, "elliptical", `e${k}.png`));
    }
    await Deno.symlink(join(store, "missing.jpg"), join(src, "elliptical", "gone.jpg"));
    const logged: string[] = [];
    const r = await preprocess({
      inDir: src,
      outDir: join(tmp, "out"),
      size: 8,
      processes: 0,
      maxBad: 0.5,
      log: (l) => logged.push(l),
    });
    assert.deepEqual(r.manifest.scheme.classNames, ["elliptical", "spiral"]);
    assert.equal(r.report.totals.packed, 6);
    const gone = r.report.skipped.find((p) => p.id === "gone");
    assert.ok(gone, JSON.stringify(r.report.skipped));
    assert.equal(gone.file, "elliptical/gone.jpg");
    assert.match(gone.reason, /^broken symlink: .*gone\.jpg -> .*missing\.jpg/);
  },
);

Deno.test("symlinks: a link back to the dataset folder or to a folder already read is reported, not walked", async () => {
  const tmp = await tempDir("galaxy-loop-");
  const src = join(tmp, "src");
  for (const cls of ["a", "b"]) {
    await Deno.mkdir(join(src, cls), { recursive: true });
    await Deno.writeFile(join(src, cls, `${cls}0.jpg`), await encodeImage(16, 16, 1));
  }
  await Deno.symlink(src, join(src, "loop"));
  await Deno.symlink(join(src, "a"), join(src, "also-a"));
  await Deno.symlink(join(src, "self"), join(src, "self")); // a link to itself
  const s = await readSource(src);
  assert.deepEqual(s.labels, ["a", "b"]);
  const why = s.warnings.map((w) => w.reason).join("\n");
  assert.match(why, /class folder 'loop' is a symlink to the dataset folder itself \(a loop\)/);
  assert.match(why, /class folder 'also-a' is a symlink to 'a', already read/);
  assert.match(why, /symlink loop: .*self -> .*self; left out/);
});

deadlineTest(
  "symlinks: predict follows linked files and refuses a broken link by name",
  120,
  async () => {
    const run = await openRun(await toyRun({ size: 16 }));
    try {
      const tmp = await tempDir("galaxy-plinks-");
      const dir = join(tmp, "in");
      await Deno.mkdir(dir);
      await Deno.writeFile(join(tmp, "real.jpg"), await encodeImage(20, 20, 3));
      await Deno.symlink(join(tmp, "real.jpg"), join(dir, "linked.jpg"));
      await Deno.symlink(join(tmp, "nowhere.jpg"), join(dir, "broken.jpg"));
      const input = await resolveInput(dir);
      assert.ok(input.kind === "images");
      assert.deepEqual(input.items.map((i) => i.id), ["linked"]);
      assert.equal(input.refused.length, 1);
      assert.match(input.refused[0].reason, /^broken symlink: .*broken\.jpg -> .*nowhere\.jpg/);
      const out = join(tmp, "p.csv");
      await predict({ run, input, inPath: dir, out });
      assert.deepEqual([...(await csvById(out)).keys()], ["linked"]);
    } finally {
      run.model.dispose();
    }
  },
);

// ----------------------------------------------------------------- names

Deno.test("names: NFC and NFD spellings of a class folder are one class, with a warning", async () => {
  const tmp = await tempDir("galaxy-nfc-");
  const src = join(tmp, "src");
  const nfc = "\u00e9liptica", nfd = "e\u0301liptica";
  assert.notEqual(nfc, nfd);
  for (const [folder, seed] of [[nfc, 1], [nfd, 2], ["espiral", 3]] as const) {
    await Deno.mkdir(join(src, folder), { recursive: true });
    for (let k = 0; k < 2; k++) {
      await Deno.writeFile(
        join(src, folder, `${folder}-${seed}-${k}.jpg`),
        await encodeImage(16, 16, seed * 10 + k),
      );
    }
  }
  const logged: string[] = [];
  const r = await preprocess({
    inDir: src,
    outDir: join(tmp, "out"),
    size: 8,
    processes: 0,
    log: (l) => logged.push(l),
  });
  assert.deepEqual(r.manifest.scheme.classNames, [nfc, "espiral"].sort());
  assert.equal(r.report.totals.packed, 6);
  const merged =
    /class folders "e\u0301liptica" \(eU\+0301liptica\) and "\u00e9liptica" \(U\+00E9liptica\) are one name in different Unicode spellings/;
  assert.ok(logged.some((l) => merged.test(l)), logged.join("\n"));
  assert.ok(r.report.warnings.some((w) => merged.test(w.reason)));
});

Deno.test("names: labels.csv labels and ids match images across NFC and NFD, with warnings", async () => {
  const tmp = await tempDir("galaxy-nfc-csv-");
  await Deno.mkdir(join(tmp, "images"));
  // The image names are NFD (macOS), the CSV's ids NFC; one label is written both ways.
  await Deno.writeFile(join(tmp, "images", "ne\u0301bula-1.jpg"), await encodeImage(16, 16, 1));
  await Deno.writeFile(join(tmp, "images", "g2.jpg"), await encodeImage(16, 16, 2));
  await Deno.writeTextFile(
    join(tmp, "labels.csv"),
    "id,label\nn\u00e9bula-1,\u00e9liptica\ng2,e\u0301liptica\n",
  );
  const s = await readSource(tmp);
  assert.deepEqual(s.problems, []);
  assert.deepEqual(s.labels, ["\u00e9liptica"]);
  assert.deepEqual(s.labeled.map((x) => x.id), ["g2", "n\u00e9bula-1"]);
  const why = s.warnings.map((w) => w.reason).join("\n");
  assert.match(why, /labels .* are one name in different Unicode spellings/);
  assert.match(why, /1 image file name\(s\) are not in Unicode NFC .*normalised to NFC/);
});

deadlineTest(
  "names: a non-UTF-8 class folder or file is reported with its bytes escaped",
  120,
  async (signal) => {
    if (Deno.build.os !== "linux") return; // other systems' file names are always Unicode
    const tmp = await tempDir("galaxy-latin1-");
    const src = join(tmp, "src");
    await Deno.mkdir(join(src, "spiral"), { recursive: true });
    await Deno.writeFile(join(src, "spiral", "s0.jpg"), await encodeImage(16, 16, 1));
    await Deno.writeFile(join(src, "spiral", "s1.jpg"), await encodeImage(16, 16, 2));
    const jpg = join(tmp, "x.jpg");
    await Deno.writeFile(jpg, await encodeImage(16, 16, 3));
    await mkdirBytes(src, "caf\\351", jpg); // "café" in Latin-1
    const s = await readSource(src);
    assert.deepEqual(s.labels, ["spiral"]);
    const w = s.warnings.find((x) => /not valid UTF-8/.test(x.reason));
    assert.ok(w, JSON.stringify(s.warnings));
    assert.match(w.reason, /name is not valid UTF-8: 'caf\\xe9' in .*; left out/);
    assert.doesNotMatch(w.reason, /holds no images/);
    // In a predict folder: refused with the bytes, never "No such file".
    const dir = join(tmp, "pred");
    await Deno.mkdir(dir);
    const r = await new Deno.Command("sh", {
      args: ["-c", `cp "$1" "$2/$(printf 'g\\377.jpg')"`, "sh", jpg, dir],
      signal,
    }).output();
    assert.equal(r.code, 0);
    const input = await resolveInput(dir);
    assert.ok(input.kind === "images");
    assert.equal(input.refused.length, 1);
    assert.match(input.refused[0].reason, /name is not valid UTF-8: 'g\\xff\.jpg'/);
    assert.equal(escapeBytes(new Uint8Array([0x61, 0x5c, 0xe9])), "a\\x5c\\xe9");
    const entries = await readEntries(dir);
    assert.equal(entries[0].kind, "bad-name");
  },
);

// ------------------------------------------------------------------ EXIF

Deno.test("EXIF: all 8 orientations are applied as browsers and exif_transpose do", async () => {
  // A square stored image, so that the crop cuts nothing and the decode is the only step.
  const side = 32;
  const stored = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      // Red grows to the right, green downward, a blue spot near the top left: no symmetry.
      const spot = (x - 8) ** 2 + (y - 6) ** 2 < 20 ? 250 : 30;
      stored.set([x * 8, y * 8, spot], (y * side + x) * 3);
    }
  }
  const raw = { raw: { width: side, height: side, channels: 3 as const } };
  const jpeg = await sharp(stored, raw).jpeg({ quality: 100, chromaSubsampling: "4:4:4" })
    .toBuffer();
  const decoded = (await sharp(jpeg).raw().toBuffer()) as Uint8Array;
  const o = { size: side, crop: 1 };
  for (let k = 1; k <= 8; k++) {
    const file = withExifOrientation(jpeg, k);
    assert.deepEqual(sniffImageSize(file), { width: side, height: side, orientation: k });
    const got = await loadImage(file, o, `o${k}.jpg`);
    const want = orientPixels(decoded, side, side, k).pixels;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got.pixels[i] - want[i]));
    }
    assert.ok(worst <= 1, `orientation ${k}: largest difference ${worst}`);
    if (k > 1) {
      const same = decoded.every((v, i) => Math.abs(v - got.pixels[i]) <= 1);
      assert.ok(!same, `orientation ${k} changed nothing`);
    }
  }
  // A non-square image: width and height are those of the upright image.
  const wide = await sharp(patternPixels(48, 32, 1), {
    raw: { width: 48, height: 32, channels: 3 },
  })
    .jpeg().toBuffer();
  for (const k of [5, 6, 7, 8]) {
    assert.deepEqual(sniffImageSize(withExifOrientation(wide, k)), {
      width: 32,
      height: 48,
      orientation: k,
    });
    const img = await loadImage(withExifOrientation(wide, k), { size: 16, crop: 1 });
    assert.deepEqual([img.width, img.height], [32, 48]);
  }
});

/** Whether Debian's python3 with Pillow is here (for the cross-check against exif_transpose). */
const pillow = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import PIL.ImageOps"] })
  .output().then((r) => r.success, () => false);

deadlineTest(
  "EXIF: loadImage shows each orientation as Pillow's exif_transpose does",
  120,
  async (signal) => {
    if (!pillow) {
      console.log("skipped: no /usr/bin/python3 with Pillow (apt-get install python3-pil)");
      return;
    }
    const side = 24;
    const stored = patternPixels(side, side, 4);
    const jpeg = await sharp(stored, { raw: { width: side, height: side, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: "4:4:4" }).toBuffer();
    const dir = await tempDir("galaxy-exif-pil-");
    for (let k = 1; k <= 8; k++) {
      await Deno.writeFile(join(dir, `o${k}.jpg`), withExifOrientation(jpeg, k));
    }
    // Pillow's upright pixels of each file, raw RGB, one file each.
    const script = "import sys\nfrom PIL import Image, ImageOps\n" +
      "for k in range(1, 9):\n" +
      "    im = ImageOps.exif_transpose(Image.open(f'{sys.argv[1]}/o{k}.jpg')).convert('RGB')\n" +
      "    open(f'{sys.argv[1]}/o{k}.rgb', 'wb').write(im.tobytes())\n";
    const r = await new Deno.Command("/usr/bin/python3", { args: ["-c", script, dir], signal })
      .output();
    assert.equal(r.code, 0, text(r.stderr));
    for (let k = 1; k <= 8; k++) {
      const want = await Deno.readFile(join(dir, `o${k}.rgb`));
      const got = (await loadImage(join(dir, `o${k}.jpg`), { size: side, crop: 1 })).pixels;
      // Two libjpeg builds may round a few values differently; a wrong orientation differs by far more.
      const mean = got.reduce((a, v, i) => a + Math.abs(v - want[i]), 0) / got.length;
      assert.ok(mean < 1, `orientation ${k}: mean difference from Pillow ${mean.toFixed(2)}`);
    }
  },
);

// ---------------------------------------------------------------- aspect

Deno.test("aspect: the rule warns above 1.5:1 and refuses above the limit", () => {
  assert.equal(aspectWarning(424, 424), null);
  assert.equal(aspectWarning(150, 100), null);
  assert.match(aspectWarning(160, 100)!, /far from square: 160x100 is 1\.60:1/);
  assert.equal(aspectRefusal(400, 100), null);
  assert.match(aspectRefusal(424, 2)!, /refused: 424x2 is 212:1, above the limit 4:1/);
  assert.equal(aspectWarning(424, 2), null, "refused, not warned");
  assert.equal(ASPECT_LIMIT, 4);
});

deadlineTest(
  "aspect: predict warns about a 3:1 image and refuses a 424x2 strip; preprocess alike",
  300,
  async () => {
    const run = await toyRun({ size: 16 });
    const dir = await tempDir("galaxy-aspect-");
    await Deno.writeFile(join(dir, "square.jpg"), await encodeImage(40, 40, 1));
    await Deno.writeFile(join(dir, "wide.jpg"), await encodeImage(90, 30, 2));
    await Deno.writeFile(join(dir, "strip.png"), await encodeImage(424, 2, 3, "png"));
    const out = join(await tempDir("galaxy-aspect-out-"), "p.csv");
    const r = await runTask("predict", ["--model", run, "--in", dir, "--out", out]);
    assert.equal(r.code, 3, text(r.stderr)); // one image refused
    assert.deepEqual([...(await csvById(out)).keys()], ["square", "wide"]);
    assert.match(text(r.stderr), /warning: .*wide\.jpg: far from square: 90x30 is 3\.00:1/);
    const errors = await csvById(out.replace(".csv", ".errors.csv"));
    assert.match(errors.get("strip")![2], /refused: 424x2 is 212:1, above the limit 4:1/);
    // preprocess: the same rule.
    const src = join(await tempDir("galaxy-aspect-pre-"), "src");
    await Deno.mkdir(join(src, "a"), { recursive: true });
    for (const f of ["square.jpg", "wide.jpg", "strip.png"]) {
      await Deno.copyFile(join(dir, f), join(src, "a", f));
    }
    await Deno.mkdir(join(src, "b"));
    await Deno.copyFile(join(dir, "square.jpg"), join(src, "b", "other.jpg"));
    const p = await preprocess({
      inDir: src,
      outDir: join(src, "..", "out"),
      size: 8,
      processes: 0,
      maxBad: 0.5,
    });
    assert.match(p.report.skipped.find((x) => x.id === "strip")!.reason, /refused: 424x2 is 212:1/);
    assert.ok(
      p.report.warnings.some((x) => x.id === "wide" && /far from square: 90x30/.test(x.reason)),
      JSON.stringify(p.report.warnings),
    );
  },
);
