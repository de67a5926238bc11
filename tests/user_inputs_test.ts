/**
 * Inputs users send, each with the answer it must get (issue 14, part 4):
 * the forms of `--model`, Kaggle ids written as floats, `;`-separated label
 * files, labels differing only in case, Kaggle folders nested one level too
 * deep, and empty class folders.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { resolveRunDir, RunDirError } from "../lib/run/run_dir.ts";
import { caseTwins, kaggleId, readSource } from "../lib/data/sources.ts";
import { commonProblem, preprocess } from "../lib/preprocess.ts";
import {
  encodeImage,
  gzVotes,
  KAGGLE_HEADER_LINE,
  kaggleRow,
  makeKaggleFolder,
  makeLabelsCsvFolder,
} from "./fixtures_images.ts";
import { imageFolder, toyRun } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";
import { deadlineTest } from "./deadline.ts";
import { runTask } from "./task_cli.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

// ------------------------------------------------------------ --model forms

Deno.test("--model: RUN, RUN/model, RUN/model/model.json and file:// URLs all name the run folder", async () => {
  const run = await toyRun();
  const forms = [
    run,
    `${run}/`,
    join(run, "model"),
    join(run, "model", "model.json"),
    pathToFileURL(run).href,
    pathToFileURL(join(run, "model")).href,
    pathToFileURL(join(run, "model", "model.json")).href,
    `file:${join(run, "model", "model.json")}`, // file:/abs/path, as some write it
  ];
  for (const form of forms) assert.equal(await resolveRunDir(form), run, form);
  // A link to a run (RUNS/current) is kept as given.
  const link = join(await tempDir("galaxy-link-"), "current");
  await Deno.symlink(run, link);
  assert.equal(await resolveRunDir(join(link, "model")), link);
});

Deno.test("--model: anything else is a usage error saying what --model takes", async () => {
  const run = await toyRun();
  const empty = await tempDir("galaxy-empty-");
  await Deno.writeTextFile(join(empty, "notes.txt"), "x");
  const cases: [string, RegExp][] = [
    [join(empty, "missing"), /does not exist/],
    [empty, /a folder without config\.json and model\/model\.json/],
    [join(empty, "notes.txt"), /is a file, not a run's model\/model\.json/],
    [join(run, "config.json"), /is a file, not a run's model\/model\.json/],
    ["https://example.org/model.json", /https:\/\/ models are not read, only local files/],
    ["file://otherhost/run", /not a local file URL/],
  ];
  for (const [value, why] of cases) {
    await assert.rejects(resolveRunDir(value), (e: unknown) => {
      assert.ok(e instanceof RunDirError, value);
      assert.match(e.message, why, value);
      assert.match(e.message, /--model takes a training run folder RUN .*RUN\/model\/model\.json/);
      return true;
    });
  }
});

deadlineTest(
  "--model: predict and evaluate take RUN/model/model.json and a file:// URL; a wrong one exits 2",
  300,
  async () => {
    const run = await toyRun();
    const images = await imageFolder(3);
    const out = join(await tempDir("galaxy-pred-"), "p.csv");
    const byUrl = pathToFileURL(join(run, "model", "model.json")).href;
    const ok = await runTask("predict", ["--model", byUrl, "--in", images, "--out", out]);
    assert.equal(ok.code, 0, text(ok.stderr));
    assert.match(text(ok.stdout), new RegExp(`model: ${run} `));
    assert.equal((await Deno.readTextFile(out)).trim().split("\n").length, 4);
    const wrong: Record<string, string[]> = {
      predict: ["--model", images, "--in", images, "--out", out],
      evaluate: ["--model", images, "--data", images, "--out", join(out, "..", "report")],
    };
    for (const [task, args] of Object.entries(wrong)) {
      const bad = await runTask(task, args);
      assert.equal(bad.code, 2, `${task}: ${text(bad.stderr)}`);
      assert.match(
        text(bad.stderr),
        /--model .*: .* is a folder without config\.json and model\/model\.json; --model takes a training run folder RUN/,
        task,
      );
    }
  },
);

// ------------------------------------------------------- Kaggle ids as floats

/** A Kaggle folder whose CSV writes each GalaxyID through `writeId`. */
async function kaggleWithIds(dir: string, n: number, writeId: (id: number) => string) {
  const items = await makeKaggleFolder(dir, n, 0, 32);
  const lines = [KAGGLE_HEADER_LINE, ...items.map((x) => kaggleRow(writeId(x.id), x.votes))];
  await Deno.writeTextFile(join(dir, "training_solutions_rev1.csv"), lines.join("\n") + "\n");
  return items;
}

Deno.test("kaggle ids: integral floats (100008.0, as pandas writes them) are the integer ids", async () => {
  assert.equal(kaggleId("100008.0"), "100008");
  assert.equal(kaggleId(" 100008.000 "), "100008");
  assert.equal(kaggleId("100008"), "100008");
  assert.equal(kaggleId("100008.5"), "100008.5");
  const dir = join(await tempDir("galaxy-float-"), "kaggle");
  const items = await kaggleWithIds(dir, 6, (id) => `${id}.0`);
  const source = await readSource(dir, { unlabeled: false });
  assert.deepEqual(source.problems, []);
  assert.deepEqual(source.labeled.map((x) => x.id), items.map((x) => String(x.id)));
  const out = join(dir, "..", "out");
  const r = await preprocess({ inDir: dir, outDir: out, size: 8, processes: 0 });
  assert.ok(r.ok, r.summary);
  assert.equal(r.report.totals.packed + r.report.totals.leftOut, 6);
  assert.equal(r.report.totals.skipped, 0);
});

Deno.test("kaggle ids: a row and an image that are one galaxy written differently count once", async () => {
  const dir = join(await tempDir("galaxy-once-"), "kaggle");
  // Leading zeros: not the file names, but plainly the same galaxies.
  await kaggleWithIds(dir, 6, (id) => `0${id}`);
  const source = await readSource(dir, { unlabeled: false });
  assert.equal(source.itemCount, 6, "6 galaxies, not 12 bad items");
  assert.equal(source.problems.length, 6);
  assert.match(
    source.problems[0].reason,
    /label row id '0100000' matches no image, but images_training_rev1\/100000\.jpg looks like the same item/,
  );
  assert.equal(source.problems[0].file, "training_solutions_rev1.csv:2");

  // labels.csv ids written with the image's extension: the same.
  const csvDir = join(dir, "..", "labels");
  const rows = await makeLabelsCsvFolder(csvDir, { a: 3, b: 3 });
  await Deno.writeTextFile(
    join(csvDir, "labels.csv"),
    ["id,label", ...rows.map((r) => `${r.file.slice("images/".length)},${r.label}`)].join("\n"),
  );
  const s2 = await readSource(csvDir);
  assert.equal(s2.itemCount, 6);
  assert.equal(s2.problems.length, 6);
});

deadlineTest(
  "bad items: when most are bad the console names the most common reason with one example",
  300,
  async () => {
    const dir = join(await tempDir("galaxy-mostbad-"), "kaggle");
    await kaggleWithIds(dir, 6, (id) => `0${id}`);
    const r = await runTask("preprocess", [
      "--in",
      dir,
      "--out",
      join(dir, "..", "out"),
      "--size",
      "8",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      text(r.stderr),
      /most items are bad \(6 of 6\); the most common reason \(6\) is: label row id '0100000' matches no image.* e\.g\. training_solutions_rev1\.csv:2 \(id 0100000\)/,
    );
    assert.match(text(r.stderr), /100\.00% of the items were bad/);
  },
);

Deno.test("commonProblem groups reasons that differ only by ids, numbers and quoted names", () => {
  const common = commonProblem([
    { id: "1", file: "a.csv:2", reason: "label row has no image (images/1.jpg)" },
    { id: "2", file: "a.csv:3", reason: "missing value in column Class1.1" },
    { id: "3", file: "a.csv:4", reason: "label row has no image (images/3.jpg)" },
    { id: "4", file: "a.csv:5", reason: "label row has no image (images/4.jpg)" },
  ]);
  assert.equal(common?.count, 3);
  assert.equal(common?.example.id, "1");
  assert.equal(commonProblem([]), null);
});

// ------------------------------------------------------- ';'-separated files

Deno.test("label files saved ';'-separated get a message saying so, showing the header read", async () => {
  const dir = join(await tempDir("galaxy-semi-"), "kaggle");
  await makeKaggleFolder(dir, 2, 0, 32);
  const europe = (line: string) => line.replaceAll(",", ";").replace(/(\d)\.(\d)/g, "$1,$2");
  const votes = gzVotes("round");
  await Deno.writeTextFile(
    join(dir, "training_solutions_rev1.csv"),
    [KAGGLE_HEADER_LINE.replaceAll(",", ";"), europe(kaggleRow(100000, votes))].join("\n") + "\n",
  );
  await assert.rejects(
    readSource(dir),
    (e: Error) => {
      assert.match(e.message, /training_solutions_rev1\.csv:1: header lacks column\(s\) GalaxyID/);
      assert.match(e.message, /looks ';'-separated/);
      assert.match(e.message, /header read: 'GalaxyID;Class1\.1;Class1\.2;/);
      assert.ok(!e.message.includes("Class11.6"), "not all 38 columns listed");
      return true;
    },
  );
  const csvDir = join(dir, "..", "labels");
  await makeLabelsCsvFolder(csvDir, { a: 1 });
  await Deno.writeTextFile(join(csvDir, "labels.csv"), "id;label\ng0000;a\n");
  await assert.rejects(readSource(csvDir), /looks ';'-separated.*header read: 'id;label'/);
});

// -------------------------------------------- labels differing only in case

Deno.test("labels differing only in case or spacing are warned about, on the console and in report.json", async () => {
  assert.deepEqual(caseTwins(["a", "b"]), []);
  const tmp = await tempDir("galaxy-case-");
  const dir = join(tmp, "src");
  const rows = await makeLabelsCsvFolder(dir, { spiral: 2, Spiral: 2, elliptical: 2 }, 16);
  // A trailing space too, as a spreadsheet keeps it.
  const lines = rows.map((r, k) => `${r.id},${k === 0 ? "spiral " : r.label}`);
  await Deno.writeTextFile(join(dir, "labels.csv"), ["id,label", ...lines].join("\n") + "\n");
  const logged: string[] = [];
  const r = await preprocess({
    inDir: dir,
    outDir: join(tmp, "out"),
    size: 8,
    processes: 0,
    log: (l) => logged.push(l),
  });
  assert.deepEqual(r.manifest.scheme.classNames, ["Spiral", "elliptical", "spiral"]);
  const warning =
    /labels "Spiral", "spiral" differ only in case or spacing: they are 2 different classes/;
  assert.ok(logged.some((l) => warning.test(l)), logged.join("\n"));
  assert.ok(
    r.report.warnings.some((w) => warning.test(w.reason)),
    JSON.stringify(r.report.warnings),
  );

  // Class folders keep spaces in names: "spiral " and "spiral" are twins too.
  const folders = join(tmp, "folders");
  for (const name of ["spiral", "spiral ", "edge"]) {
    await Deno.mkdir(join(folders, name), { recursive: true });
    await Deno.writeFile(
      join(folders, name, `${name.trim()}${name.length}.jpg`),
      await encodeImage(16, 16, 1),
    );
  }
  const s = await readSource(folders);
  assert.equal(s.warnings.length, 1);
  assert.match(s.warnings[0].reason, /labels "spiral", "spiral " differ only in case or spacing/);
});

// ------------------------------------------------ nested Kaggle image folders

Deno.test("a Kaggle image folder nested one level deeper is named in the error", async () => {
  const dir = join(await tempDir("galaxy-nested-"), "kaggle");
  await makeKaggleFolder(dir, 3, 0, 32);
  const top = join(dir, "images_training_rev1");
  const nested = join(top, "images_training_rev1");
  await Deno.mkdir(nested);
  for await (const e of Deno.readDir(top)) {
    if (e.isFile) await Deno.rename(join(top, e.name), join(nested, e.name));
  }
  await assert.rejects(readSource(dir), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(`${top} holds no images, but ${nested} holds 3: .*nested one level too deep`),
    );
    assert.match(e.message, /mv /);
    return true;
  });
});

// ---------------------------------------------------------- empty class folders

Deno.test("an empty class folder is warned about, on the console and in report.json", async () => {
  const tmp = await tempDir("galaxy-emptyclass-");
  const dir = join(tmp, "src");
  for (const [name, n] of [["elliptical", 3], ["spiral", 3], ["irregular", 0]] as const) {
    await Deno.mkdir(join(dir, name), { recursive: true });
    for (let k = 0; k < n; k++) {
      await Deno.writeFile(join(dir, name, `${name}-${k}.jpg`), await encodeImage(16, 16, k));
    }
  }
  await Deno.writeTextFile(join(dir, "irregular", "README.txt"), "to do");
  const logged: string[] = [];
  const r = await preprocess({
    inDir: dir,
    outDir: join(tmp, "out"),
    size: 8,
    processes: 0,
    log: (l) => logged.push(l),
  });
  assert.deepEqual(r.manifest.scheme.classNames, ["elliptical", "spiral"]);
  const warning = /class folder 'irregular' holds no images, so it is not a class of this dataset/;
  assert.ok(logged.some((l) => warning.test(l)), logged.join("\n"));
  assert.ok(r.report.warnings.some((w) => warning.test(w.reason)));
});
