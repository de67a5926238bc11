import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatBytes, formatDuration } from "../lib/cli.ts";
import {
  DEFAULT_ZIP_LIMITS,
  SafeZip,
  unsafeNameReason,
  ZipBudget,
  ZipError,
} from "../lib/io/zip.ts";
import { displayUrl, KaggleClient } from "../lib/kaggle/client.ts";
import { findCredentials, kaggleConfigDir } from "../lib/kaggle/credentials.ts";
import { downloadResumable, partPath } from "../lib/kaggle/download.ts";
import { FetchError } from "../lib/kaggle/errors.ts";
import { downloadsDir, fetchCompetition, type FetchEvent } from "../lib/kaggle/fetch.ts";
import { importFrom } from "../lib/kaggle/import.ts";
import { COMPETITION, routeEntry, targetOfName } from "../lib/kaggle/layout.ts";
import { describeProgress, ProgressMeter } from "../lib/kaggle/progress.ts";
import { loadState, STATE_FILE } from "../lib/kaggle/state.ts";
import {
  type CompetitionFixture,
  fakeJpeg,
  type FakeKaggleConfig,
  makeCompetition,
  makeZip,
  noiseBytes,
  startFakeKaggle,
  STORAGE_SIGNATURE,
} from "./fixtures_kaggle.ts";
import { tempDir } from "./temp.ts";

const USER = "astro-tester";
const KEY = "k3y-SECRET-0123456789abcdef";
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

function client(base: string, key = KEY): KaggleClient {
  return new KaggleClient({
    apiBase: base,
    credentials: { username: USER, key, source: "the test's credentials" },
  });
}

function serverConfig(fx: CompetitionFixture, extra: Partial<FakeKaggleConfig> = {}) {
  return {
    username: USER,
    key: KEY,
    competition: COMPETITION,
    files: fx.files,
    allFiles: fx.allFiles,
    ...extra,
  };
}

/** Asserts DIR holds exactly the fixture's layout, byte for byte. */
async function assertLayout(out: string, fx: CompetitionFixture): Promise<void> {
  assert.equal(await Deno.readTextFile(join(out, "training_solutions_rev1.csv")), fx.csv);
  for (
    const [dir, ids] of [["images_training_rev1", fx.trainIds], [
      "images_test_rev1",
      fx.testIds,
    ]] as const
  ) {
    const names = [...Deno.readDirSync(join(out, dir))].map((e) => e.name).sort();
    assert.deepEqual(names, ids.map((id) => `${id}.jpg`).sort());
    for (const id of ids) {
      assert.deepEqual(await Deno.readFile(join(out, dir, `${id}.jpg`)), fakeJpeg(id));
    }
  }
}

async function rejectsWith<T extends Error>(
  p: Promise<unknown>,
  cls: new (...a: never[]) => T,
): Promise<T> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e as T;
  }
  assert.fail(`expected ${cls.name}, nothing was thrown`);
}

// ---------------------------------------------------------------- credentials

Deno.test("credentials: env overrides kaggle.json key by key, like the official CLI", () => {
  const dir = Deno.makeTempDirSync({ prefix: "galaxy_creds_" });
  try {
    const file = join(dir, "kaggle.json");
    Deno.writeTextFileSync(file, JSON.stringify({ username: "fileuser", key: "filekey" }));
    Deno.chmodSync(file, 0o600);
    const env = (vars: Record<string, string>) => (n: string) => vars[n];

    const fromFile = findCredentials({ env: env({ KAGGLE_CONFIG_DIR: dir }) });
    assert.equal(fromFile.credentials.username, "fileuser");
    assert.equal(fromFile.credentials.key, "filekey");
    assert.equal(fromFile.credentials.source, file);
    assert.deepEqual(fromFile.warnings, []);

    const both = findCredentials({
      env: env({ KAGGLE_CONFIG_DIR: dir, KAGGLE_USERNAME: "envuser", KAGGLE_KEY: "envkey" }),
    });
    assert.equal(both.credentials.username, "envuser");
    assert.equal(both.credentials.key, "envkey");
    assert.match(both.credentials.source, /KAGGLE_USERNAME/);

    const mixed = findCredentials({ env: env({ KAGGLE_CONFIG_DIR: dir, KAGGLE_KEY: "envkey" }) });
    assert.equal(mixed.credentials.username, "fileuser");
    assert.equal(mixed.credentials.key, "envkey");
    assert.equal(mixed.credentials.source, `username from ${file}, key from KAGGLE_KEY`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("credentials: config folder is KAGGLE_CONFIG_DIR, else ~/.kaggle, else XDG on Linux", () => {
  const home = Deno.makeTempDirSync({ prefix: "galaxy_home_" });
  try {
    const env = (vars: Record<string, string>) => (n: string) => vars[n];
    assert.equal(
      kaggleConfigDir({ env: env({ HOME: home, KAGGLE_CONFIG_DIR: "/x/y" }), platform: "linux" }),
      "/x/y",
    );
    assert.equal(
      kaggleConfigDir({ env: env({ HOME: home }), platform: "linux" }),
      join(home, ".config", "kaggle"),
    );
    assert.equal(
      kaggleConfigDir({ env: env({ HOME: home, XDG_CONFIG_HOME: "/xdg" }), platform: "linux" }),
      "/xdg/kaggle",
    );
    assert.equal(
      kaggleConfigDir({ env: env({ HOME: home }), platform: "darwin" }),
      join(home, ".kaggle"),
    );
    Deno.mkdirSync(join(home, ".kaggle"));
    assert.equal(
      kaggleConfigDir({ env: env({ HOME: home }), platform: "linux" }),
      join(home, ".kaggle"),
    );
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("credentials: missing ones name the places looked and how to create them", () => {
  const home = Deno.makeTempDirSync({ prefix: "galaxy_home_" });
  try {
    Deno.mkdirSync(join(home, ".kaggle"));
    const e = (() => {
      try {
        findCredentials({ env: (n) => ({ HOME: home, KAGGLE_USERNAME: "only-user" })[n] });
      } catch (err) {
        return err;
      }
      assert.fail("no error");
    })();
    assert.ok(e instanceof FetchError);
    assert.equal(e.kind, "credentials");
    assert.match(e.message, /missing key/);
    assert.ok(e.message.includes(join(home, ".kaggle", "kaggle.json")));
    assert.match(e.message, /KAGGLE_USERNAME/);
    assert.match(e.message, /https:\/\/www\.kaggle\.com\/settings/);
    assert.match(e.message, /chmod 600/);
    assert.match(e.message, /--from PATH/);

    Deno.writeTextFileSync(join(home, ".kaggle", "kaggle.json"), "{username: nope");
    assert.throws(
      () => findCredentials({ env: (n) => ({ HOME: home })[n] }),
      /kaggle\.json is not valid JSON/,
    );
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("credentials: warn when kaggle.json is readable by others, not when 0600", () => {
  const dir = Deno.makeTempDirSync({ prefix: "galaxy_creds_" });
  try {
    const file = join(dir, "kaggle.json");
    Deno.writeTextFileSync(file, JSON.stringify({ username: "u", key: KEY }));
    const env = (n: string) => ({ KAGGLE_CONFIG_DIR: dir })[n];
    Deno.chmodSync(file, 0o644);
    const loose = findCredentials({ env });
    assert.equal(loose.warnings.length, 1);
    assert.match(loose.warnings[0], /readable by other users/);
    assert.ok(loose.warnings[0].includes(`chmod 600 ${file}`));
    assert.ok(!loose.warnings[0].includes(KEY));
    Deno.chmodSync(file, 0o640);
    assert.equal(findCredentials({ env }).warnings.length, 1);
    Deno.chmodSync(file, 0o600);
    assert.deepEqual(findCredentials({ env }).warnings, []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- zip safety

Deno.test("zip: unsafe entry names are recognised", () => {
  for (const bad of ["../evil", "a/../../b", "/etc/passwd", "\\share\\x", "C:/x", "a\\..\\b", ""]) {
    assert.notEqual(unsafeNameReason(bad), null, bad);
  }
  for (const ok of ["images_training_rev1/100008.jpg", "a..b/c", "training_solutions_rev1.csv"]) {
    assert.equal(unsafeNameReason(ok), null, ok);
  }
});

/** Writes `bytes` as DIR/NAME and imports it, returning the error. */
async function importBad(name: string, bytes: Uint8Array): Promise<{ e: ZipError; out: string }> {
  const dir = await tempDir("galaxy-fetch-");
  const src = join(dir, name);
  await Deno.writeFile(src, bytes);
  const out = join(dir, "out");
  const e = await rejectsWith(importFrom(src, { outDir: out }), ZipError);
  return { e, out };
}

Deno.test("zip: zip-slip entries are refused before anything is written", async () => {
  for (const evil of ["../evil.jpg", "images_training_rev1/../../evil.jpg", "/tmp/abs_evil.jpg"]) {
    const bytes = await makeZip([
      { name: "images_training_rev1/100008.jpg", data: fakeJpeg(1) },
      { name: evil, data: "pwned" },
    ]);
    const { e, out } = await importBad("images_training_rev1.zip", bytes);
    try {
      assert.equal(e.kind, "unsafe-entry");
      assert.equal(e.entry, evil);
      assert.ok(e.message.includes("images_training_rev1.zip"), e.message);
      assert.ok(e.message.includes(evil), e.message);
      assert.ok(!existsSync(join(out, "images_training_rev1", "100008.jpg")));
      assert.ok(!existsSync(join(dirname(out), "evil.jpg")));
    } finally {
      await Deno.remove(dirname(out), { recursive: true });
    }
  }
});

Deno.test("zip: symbolic link entries are refused", async () => {
  const bytes = await makeZip([
    { name: "images_test_rev1/100018.jpg", data: "/etc/passwd", unixMode: 0o120777 },
  ]);
  const { e, out } = await importBad("images_test_rev1.zip", bytes);
  try {
    assert.equal(e.kind, "unsafe-entry");
    assert.match(e.message, /symbolic link/);
    assert.ok(!existsSync(join(out, "images_test_rev1", "100018.jpg")));
  } finally {
    await Deno.remove(dirname(out), { recursive: true });
  }
});

Deno.test("zip: a zip bomb (high ratio) is refused with a clear error", async () => {
  const zeros = new Uint8Array(4 * 2 ** 20);
  const bytes = await makeZip([{ name: "training_solutions_rev1.csv", data: zeros, level: 9 }]);
  assert.ok(bytes.length < zeros.length / 200, "fixture is not a high-ratio entry");
  const { e, out } = await importBad("training_solutions_rev1.zip", bytes);
  try {
    assert.equal(e.kind, "too-large");
    assert.match(e.message, /expands \d+:1/);
    assert.match(e.message, /zip bomb/);
    assert.ok(!existsSync(join(out, "training_solutions_rev1.csv")));
  } finally {
    await Deno.remove(dirname(out), { recursive: true });
  }
});

Deno.test("zip: the total uncompressed cap and the declared size are enforced", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const data = noiseBytes(5000, 7);
    const src = join(dir, "a.zip");
    await Deno.writeFile(src, await makeZip([{ name: "x.bin", data }]));
    const small = { ...DEFAULT_ZIP_LIMITS, maxTotalBytes: 4000 };
    const e = await rejectsWith(SafeZip.open(src, new ZipBudget(small)), ZipError);
    assert.equal(e.kind, "too-large");
    assert.match(e.message, /cap of 4000/);

    // A budget shared with nested archives runs out while streaming.
    const budget = new ZipBudget({ ...DEFAULT_ZIP_LIMITS, maxTotalBytes: 8000 });
    const z1 = await SafeZip.open(src, budget);
    assert.equal(await z1.extract("x.bin", join(dir, "one.bin")), 5000);
    await z1.close();
    const z2 = await SafeZip.open(src, budget);
    const e2 = await rejectsWith(z2.extract("x.bin", join(dir, "two.bin")), ZipError);
    await z2.close();
    assert.equal(e2.kind, "too-large");
    assert.ok(!existsSync(join(dir, "two.bin")));
    assert.equal([...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".tmp")).length, 0);

    // A header that under-declares the size cannot smuggle more bytes out.
    const lying = await makeZip([{ name: "x.bin", data }]);
    patchDeclaredSize(lying, "x.bin", 1000);
    const liar = join(dir, "liar.zip");
    await Deno.writeFile(liar, lying);
    const z3 = await SafeZip.open(liar);
    const e3 = await rejectsWith(z3.extract("x.bin", join(dir, "liar.bin")), ZipError);
    await z3.close();
    assert.ok(e3.message.includes("x.bin"), e3.message);
    assert.ok(!existsSync(join(dir, "liar.bin")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Rewrites the uncompressed size of `name` in its local header and central record. */
function patchDeclaredSize(bytes: Uint8Array, name: string, size: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nameBytes = new TextEncoder().encode(name);
  const nameAt = (at: number) => nameBytes.every((b, i) => bytes[at + i] === b);
  let patched = 0;
  for (let i = 0; i + 46 < bytes.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50 && nameAt(i + 30)) {
      view.setUint32(i + 22, size, true);
      patched++;
    } else if (sig === 0x02014b50 && nameAt(i + 46)) {
      view.setUint32(i + 24, size, true);
      patched++;
    }
  }
  assert.equal(patched, 2, "fixture zip layout not as expected");
}

Deno.test("zip: corrupt or non-zip archives are named in the error", async () => {
  const fx = await makeCompetition(3, 2);
  const whole = fx.files["images_training_rev1.zip"];

  const truncated = await importBad("images_training_rev1.zip", whole.slice(0, whole.length - 60));
  assert.equal(truncated.e.kind, "corrupt");
  assert.match(truncated.e.message, /images_training_rev1\.zip is corrupt or not a zip archive/);
  await Deno.remove(dirname(truncated.out), { recursive: true });

  // Damage the compressed data of the first image (headers stay valid).
  const damaged = whole.slice();
  for (let i = 200; i < 260; i++) damaged[i] ^= 0x5a;
  const bad = await importBad("images_training_rev1.zip", damaged);
  assert.equal(bad.e.kind, "corrupt");
  assert.ok(bad.e.message.includes("images_training_rev1.zip"), bad.e.message);
  assert.match(bad.e.message, /entry 'images_training_rev1\/\d+\.jpg' is corrupt/);
  assert.equal(
    [...Deno.readDirSync(join(bad.out, "images_training_rev1"))].filter((f) =>
      f.name.endsWith(".tmp")
    ).length,
    0,
  );
  await Deno.remove(dirname(bad.out), { recursive: true });

  const text = await importBad("images_test_rev1.zip", new TextEncoder().encode("<html>oops"));
  assert.equal(text.e.kind, "corrupt");
  assert.match(text.e.message, /images_test_rev1\.zip is not a zip archive/);
  await Deno.remove(dirname(text.out), { recursive: true });
});

// ---------------------------------------------------------------- layout and --from

Deno.test("layout: entries and file names route to the right place", () => {
  assert.deepEqual(routeEntry("images_training_rev1/100008.jpg"), {
    kind: "file",
    target: "images_training_rev1",
    rel: "images_training_rev1/100008.jpg",
  });
  assert.deepEqual(routeEntry("100018.jpg", "images_test_rev1"), {
    kind: "file",
    target: "images_test_rev1",
    rel: "images_test_rev1/100018.jpg",
  });
  assert.deepEqual(routeEntry("images_test_rev1.zip"), {
    kind: "nested",
    target: "images_test_rev1",
  });
  assert.deepEqual(routeEntry("__MACOSX/images_test_rev1/._1.jpg"), { kind: "skip" });
  assert.deepEqual(routeEntry("all_ones_benchmark.zip"), { kind: "skip" });
  assert.equal(targetOfName("training_solutions_rev1.csv.zip"), "training_solutions_rev1");
  assert.equal(targetOfName("central_pixel_benchmark.zip"), undefined);
});

Deno.test("--from: the all-files zip with nested zips lands in the layout; re-run skips", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const fx = await makeCompetition();
    const src = join(dir, "galaxy-zoo-the-galaxy-challenge.zip");
    await Deno.writeFile(src, fx.allFiles);
    const out = join(dir, "data");
    const summary = await importFrom(src, { outDir: out });
    await assertLayout(out, fx);
    assert.equal(summary.trainingRows, fx.trainIds.length);
    assert.equal(summary.files.images_test_rev1, fx.testIds.length);
    assert.deepEqual(summary.imported, ["galaxy-zoo-the-galaxy-challenge.zip"]);
    assert.ok(!existsSync(join(out, ".fetch-tmp")), "nested zips left behind");
    const state = await loadState(out);
    const rec = state.archives["galaxy-zoo-the-galaxy-challenge.zip"];
    assert.equal(rec.size, fx.allFiles.length);
    assert.match(rec.sha256, /^[0-9a-f]{64}$/);

    const events: string[] = [];
    const again = await importFrom(src, {
      outDir: out,
      onEvent: (e) => events.push(e.type),
    });
    assert.deepEqual(again.imported, []);
    assert.deepEqual(again.skipped, ["galaxy-zoo-the-galaxy-challenge.zip"]);
    assert.deepEqual(events, ["archive-skip"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--from: a folder of single zips; a lost image re-imports only its archive", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const fx = await makeCompetition();
    const src = join(dir, "downloads");
    await Deno.mkdir(src);
    for (const [name, data] of Object.entries(fx.files)) {
      await Deno.writeFile(join(src, name), data);
    }
    const out = join(dir, "data");
    const first = await importFrom(src, { outDir: out });
    await assertLayout(out, fx);
    assert.deepEqual(first.imported.sort(), [
      "images_test_rev1.zip",
      "images_training_rev1.zip",
      "training_solutions_rev1.zip",
    ]);

    await Deno.remove(join(out, "images_test_rev1", `${fx.testIds[0]}.jpg`));
    const second = await importFrom(src, { outDir: out });
    assert.deepEqual(second.imported, ["images_test_rev1.zip"]);
    await assertLayout(out, fx);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--from: a bare CSV works, and a missing archive is named", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const fx = await makeCompetition();
    const src = join(dir, "in");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "training_solutions_rev1.csv"), fx.csv);
    await Deno.writeFile(
      join(src, "images_training_rev1.zip"),
      fx.files["images_training_rev1.zip"],
    );
    const out = join(dir, "data");
    const e = await rejectsWith(importFrom(src, { outDir: out }), FetchError);
    assert.equal(e.kind, "missing-data");
    assert.match(e.message, /did not provide images_test_rev1/);
    assert.equal(await Deno.readTextFile(join(out, "training_solutions_rev1.csv")), fx.csv);

    await Deno.writeFile(join(src, "images_test_rev1.zip"), fx.files["images_test_rev1.zip"]);
    await importFrom(src, { outDir: out });
    await assertLayout(out, fx);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--from: a CSV with the wrong header is named", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const src = join(dir, "training_solutions_rev1.zip");
    await Deno.writeFile(
      src,
      await makeZip([{ name: "training_solutions_rev1.csv", data: "id,label\n1,spiral\n" }]),
    );
    const e = await rejectsWith(importFrom(src, { outDir: join(dir, "out") }), FetchError);
    assert.equal(e.kind, "corrupt");
    assert.match(e.message, /training_solutions_rev1\.csv: line 1 is not the header/);
    assert.ok(!existsSync(join(dir, "out", "training_solutions_rev1.csv")), "bad CSV left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- download from a fake Kaggle

Deno.test("fetch: downloads through the API, auth only to the API, re-run makes no request", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition();
  const server = startFakeKaggle(serverConfig(fx));
  try {
    const out = join(dir, "data");
    const events: FetchEvent[] = [];
    const summary = await fetchCompetition({
      outDir: out,
      client: client(server.base),
      onEvent: (e) => events.push(e),
    });
    await assertLayout(out, fx);
    assert.equal(summary.imported.length, 3);
    const api = server.log.filter((r) => !r.storage);
    const storage = server.log.filter((r) => r.storage);
    assert.ok(api.length >= 5, "list pages and three downloads");
    assert.ok(api.every((r) => r.authorization?.startsWith("Basic ")));
    assert.equal(storage.length, 3);
    assert.ok(storage.every((r) => r.authorization === null), "auth header leaked to storage");
    assert.ok(!storage.some((r) => r.path.includes("benchmark")), "fetched an unneeded file");
    const done = events.filter((e) => e.type === "download-done");
    assert.equal(done.length, 3);
    assert.ok(done.every((e) => e.type === "download-done" && e.md5Verified));
    assert.ok(!existsSync(downloadsDir(out)), "downloads not cleaned up");
    assert.ok(existsSync(join(out, STATE_FILE)));

    await server.close();
    const again = await fetchCompetition({
      outDir: out,
      client: () => assert.fail("a complete folder needs no client"),
    });
    assert.deepEqual(again.imported, []);
    await assertLayout(out, fx);
  } finally {
    await server.close().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: falls back to the all-files archive when the files are not listed", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition();
  const server = startFakeKaggle(serverConfig(fx, { listed: ["all_ones_benchmark.zip"] }));
  try {
    const out = join(dir, "data");
    await fetchCompetition({ outDir: out, client: client(server.base), keepArchives: true });
    await assertLayout(out, fx);
    assert.ok(server.log.some((r) => r.path.endsWith(`/download-all/${COMPETITION}`)));
    assert.deepEqual(
      await Deno.readFile(join(downloadsDir(out), `${COMPETITION}.zip`)),
      fx.allFiles,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: 401 says the key is bad and never shows it", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(2, 2);
  const server = startFakeKaggle(serverConfig(fx));
  try {
    const wrong = "wrong-" + KEY;
    const e = await rejectsWith(
      fetchCompetition({ outDir: join(dir, "data"), client: client(server.base, wrong) }),
      FetchError,
    );
    assert.equal(e.kind, "auth");
    assert.match(e.message, /HTTP 401/);
    assert.match(e.message, /the test's credentials/);
    assert.match(e.message, /kaggle\.com\/settings/);
    assert.ok(!e.message.includes(wrong) && !e.message.includes(KEY));
    assert.ok(!e.message.includes(btoa(`${USER}:${wrong}`)));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: 403 sends the user to the competition rules page", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(2, 2);
  const server = startFakeKaggle(serverConfig(fx, { forbidden: true }));
  try {
    const e = await rejectsWith(
      fetchCompetition({ outDir: join(dir, "data"), client: client(server.base) }),
      FetchError,
    );
    assert.equal(e.kind, "rules");
    assert.ok(
      e.message.includes("https://www.kaggle.com/c/galaxy-zoo-the-galaxy-challenge/rules"),
      e.message,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: a connection cut mid-file keeps the part; the next run resumes it", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(6, 2);
  const file = "images_training_rev1.zip";
  const size = fx.files[file].length;
  const cutAt = Math.floor(size / 2);
  const server = startFakeKaggle(
    serverConfig(fx, { cut: { file, afterBytes: cutAt, times: 1 } }),
  );
  try {
    const out = join(dir, "data");
    const e = await rejectsWith(
      fetchCompetition({ outDir: out, client: client(server.base), retries: 0 }),
      FetchError,
    );
    assert.equal(e.kind, "network");
    assert.match(e.message, /run the same command again to resume/);
    const part = partPath(join(downloadsDir(out), file));
    assert.equal((await Deno.stat(part)).size, cutAt);

    const events: FetchEvent[] = [];
    await fetchCompetition({
      outDir: out,
      client: client(server.base),
      retries: 0,
      onEvent: (ev) => events.push(ev),
    });
    await assertLayout(out, fx);
    const resumed = server.log.filter((r) => r.storage && r.path.endsWith(file)).at(-1)!;
    assert.equal(resumed.range, `bytes=${cutAt}-`);
    assert.ok(resumed.ifRange, "If-Range validator not sent");
    assert.equal(resumed.status, 206);
    const start = events.find((ev) => ev.type === "download-start" && ev.file === file);
    assert.ok(start?.type === "download-start" && start.resumeFrom === cutAt);
    // The other files were not downloaded twice.
    assert.equal(server.log.filter((r) => r.storage && r.path.includes("test_rev1")).length, 1);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: a cut is retried within the run when retries allow", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(6, 2);
  const file = "images_training_rev1.zip";
  const cutAt = 1000;
  const server = startFakeKaggle(
    serverConfig(fx, { cut: { file, afterBytes: cutAt, times: 1 } }),
  );
  try {
    const out = join(dir, "data");
    await fetchCompetition({
      outDir: out,
      client: client(server.base),
      retries: 1,
      retryDelayMs: 0,
    });
    await assertLayout(out, fx);
    const ranges = server.log.filter((r) => r.storage && r.path.endsWith(file)).map((r) => r.range);
    assert.deepEqual(ranges, [null, `bytes=${cutAt}-`]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: checksum and size mismatches remove the bad copy", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(2, 2);
  const file = "images_test_rev1.zip";
  const server = startFakeKaggle(serverConfig(fx, { badMd5: file }));
  try {
    const out = join(dir, "data");
    const e = await rejectsWith(
      fetchCompetition({ outDir: out, client: client(server.base) }),
      FetchError,
    );
    assert.equal(e.kind, "mismatch");
    assert.match(e.message, /checksum mismatch for images_test_rev1\.zip/);
    assert.ok(!existsSync(partPath(join(downloadsDir(out), file))));
    assert.ok(!existsSync(join(downloadsDir(out), file)));

    server.config.badMd5 = undefined;
    server.config.listSizeDelta = { file, delta: 7 };
    const e2 = await rejectsWith(
      fetchCompetition({ outDir: out, client: client(server.base) }),
      FetchError,
    );
    assert.equal(e2.kind, "mismatch");
    assert.match(e2.message, /size mismatch for images_test_rev1\.zip/);
    assert.match(e2.message, new RegExp(`Kaggle lists ${fx.files[file].length + 7} bytes`));

    server.config.listSizeDelta = undefined;
    await fetchCompetition({ outDir: out, client: client(server.base) });
    await assertLayout(out, fx);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: storage errors name the URL without its signature", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(2, 2);
  const server = startFakeKaggle(serverConfig(fx, { storageStatus: 500 }));
  try {
    const e = await rejectsWith(
      fetchCompetition({ outDir: join(dir, "data"), client: client(server.base) }),
      FetchError,
    );
    assert.equal(e.kind, "http");
    assert.match(e.message, /HTTP 500/);
    assert.ok(e.message.includes("/storage/"), e.message);
    assert.ok(!e.message.includes(STORAGE_SIGNATURE));
    assert.equal(displayUrl("https://h/p?sig=1"), "https://h/p");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download: a full disk removes the partial file and says so", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(4, 2);
  const file = "images_training_rev1.zip";
  const server = startFakeKaggle(serverConfig(fx));
  try {
    const target = join(dir, file);
    const room = 1000;
    let partSeen = 0;
    // Writes land in the real file until `room` bytes, then fail as Deno does on ENOSPC.
    const openFile = async (path: string, o: Deno.OpenOptions) => {
      const f = await Deno.open(path, o);
      let written = 0;
      return {
        async write(p: Uint8Array) {
          if (written >= room) {
            partSeen = (await Deno.stat(path)).size;
            throw Object.assign(new Error("No space left on device (os error 28)"), {
              code: "ENOSPC",
            });
          }
          const n = await f.write(p.subarray(0, room - written));
          written += n;
          return n;
        },
        close: () => f.close(),
      };
    };
    const c = client(server.base);
    const e = await rejectsWith(
      downloadResumable({
        open: (range) => c.openDataFile(COMPETITION, file, range),
        target,
        label: file,
        expectedSize: fx.files[file].length,
        openFile,
      }),
      FetchError,
    );
    assert.equal(e.kind, "disk-full");
    assert.match(e.message, /partial file was removed; free space/);
    assert.equal(partSeen, room, "the fault did not hit mid-file");
    assert.ok(!existsSync(partPath(target)));
    assert.ok(!existsSync(`${target}.part.json`));
    assert.ok(!existsSync(target));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download: a partial copy of another version restarts instead of splicing", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(4, 2);
  const file = "images_training_rev1.zip";
  const server = startFakeKaggle(serverConfig(fx));
  try {
    const target = join(dir, file);
    const stale = noiseBytes(700, 99);
    await Deno.writeFile(partPath(target), stale);
    await Deno.writeTextFile(
      `${target}.part.json`,
      JSON.stringify({ label: file, expectedSize: fx.files[file].length, validator: '"old"' }),
    );
    const c = client(server.base);
    const result = await downloadResumable({
      open: (range) => c.openDataFile(COMPETITION, file, range),
      target,
      label: file,
      expectedSize: fx.files[file].length,
    });
    assert.deepEqual(await Deno.readFile(target), fx.files[file]);
    assert.equal(result.resumedFrom, 700);
    assert.ok(result.md5Verified);
    const req = server.log.find((r) => r.storage)!;
    assert.equal(req.range, "bytes=700-");
    assert.equal(req.ifRange, '"old"');
    assert.equal(req.status, 200, "server should send the whole new version");
    assert.ok(!existsSync(partPath(target)) && !existsSync(`${target}.part.json`));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: a corrupt archive from Kaggle is named and its copy removed", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(3, 2);
  const file = "images_test_rev1.zip";
  const good = fx.files[file];
  const server = startFakeKaggle(
    serverConfig(fx, { files: { ...fx.files, [file]: good.slice(0, good.length - 40) } }),
  );
  try {
    const out = join(dir, "data");
    const e = await rejectsWith(
      fetchCompetition({ outDir: out, client: client(server.base), keepArchives: true }),
      FetchError,
    );
    assert.equal(e.kind, "corrupt");
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, /downloaded copy was removed/);
    assert.ok(!existsSync(join(downloadsDir(out), file)));
    assert.equal((await loadState(out)).downloads[file], undefined);

    server.config.files = fx.files;
    await fetchCompetition({ outDir: out, client: client(server.base) });
    await assertLayout(out, fx);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--from and fetch refuse to mix real data into a synthetic folder", async () => {
  const dir = await tempDir("galaxy-fetch-");
  try {
    const fx = await makeCompetition(2, 2);
    const src = join(dir, "all.zip");
    await Deno.writeFile(src, fx.allFiles);
    const out = join(dir, "synthetic");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "synthetic_manifest.json"), "{}");
    const e = await rejectsWith(importFrom(src, { outDir: out }), FetchError);
    assert.match(e.message, /holds synthetic data/);
    assert.ok(!existsSync(join(out, "images_test_rev1")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- progress

Deno.test("progress: rate over a window, ETA, and formatting", () => {
  let t = 0;
  const meter = new ProgressMeter(10_000_000, () => t, 10_000);
  meter.update(2_000_000); // resumed bytes do not count as speed
  t = 1000;
  let p = meter.update(3_000_000);
  assert.equal(p.bytesPerSecond, 1_000_000);
  assert.equal(p.etaSeconds, 7);
  t = 20_000; // old samples fall out of the window
  meter.update(5_000_000);
  t = 22_000;
  p = meter.update(9_000_000);
  assert.equal(p.bytesPerSecond, 2_000_000);
  assert.equal(p.etaSeconds, 0.5);
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(65), "1m05s");
  assert.equal(
    describeProgress("x.zip", p),
    "x.zip  8.58 MiB / 9.54 MiB  90%  1.91 MiB/s  ETA 1s",
  );
});

// ---------------------------------------------------------------- the script

async function runScript(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    // A deadline: a hung CLI fails this test (killed, exit by SIGTERM) instead of the run.
    signal: AbortSignal.timeout(300_000),
    args: [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      "scripts/fetch.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("script: expected errors exit non-zero with one line, no stack, no key", async () => {
  const dir = await tempDir("galaxy-fetch-");
  const fx = await makeCompetition(2, 2);
  const server = startFakeKaggle(serverConfig(fx));
  try {
    const bad = await runScript(["--out", join(dir, "data"), "--api-base", server.base], {
      KAGGLE_USERNAME: USER,
      KAGGLE_KEY: "bad-" + KEY,
      KAGGLE_CONFIG_DIR: dir,
    });
    assert.equal(bad.code, 1);
    const errLines = bad.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errLines.length, 1, bad.stderr);
    assert.match(errLines[0], /HTTP 401/);
    assert.doesNotMatch(bad.stderr, /^\s+at /m);
    assert.ok(!(bad.stdout + bad.stderr).includes(KEY));

    const evil = join(dir, "images_training_rev1.zip");
    await Deno.writeFile(evil, await makeZip([{ name: "../escape.jpg", data: "x" }]));
    const slip = await runScript(["--out", join(dir, "data2"), "--from", evil], {});
    assert.equal(slip.code, 1);
    assert.match(
      slip.stderr,
      /^error: refusing .*images_training_rev1\.zip: entry '\.\.\/escape\.jpg'/m,
    );
    assert.doesNotMatch(slip.stderr, /^\s+at /m);

    const usage = await runScript(["--no-such-flag"], {});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--no-such-flag/);

    const ok = await runScript(["--out", join(dir, "data3"), "--api-base", server.base], {
      KAGGLE_USERNAME: USER,
      KAGGLE_KEY: KEY,
      KAGGLE_CONFIG_DIR: dir,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /done: .*\(2 rows\)/);
    assert.ok(!(ok.stdout + ok.stderr).includes(KEY));
    await assertLayout(join(dir, "data3"), fx);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
