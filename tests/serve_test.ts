import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { setupBackend } from "../lib/backend.ts";
import { NUM_VOTES } from "../lib/data/schema.ts";
import { csvLine, parseCsvRows } from "../lib/io/csv.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { predict } from "../lib/predict/predict.ts";
import { openRun, type Run } from "../lib/run/open.ts";
import { RunDirError } from "../lib/run/run_dir.ts";
import { openModelFlag } from "../lib/serve/model_flag.ts";
import { imageType } from "../lib/serve/predict_api.ts";
import { PredictionTable } from "../lib/serve/predictions_table.ts";
import { type GalaxyServer, startServer } from "../lib/serve/server.ts";
import { exportSite } from "../lib/web/site.ts";
import { encodeImage, galaxyFits, withExifOrientation } from "./fixtures_images.ts";
import { gzipSync } from "node:zlib";
import { imageFolder, toyRun } from "./fixtures_run.ts";
import { buildWeb, realGalaxyJpegs } from "./fixtures_web.ts";
import { tempDir } from "./temp.ts";

await setupBackend({ requested: "wasm" });

/** Every request of these tests gives up after 60 s instead of hanging. */
async function post(
  url: string,
  body: Uint8Array | string | ReadableStream<Uint8Array> | null,
  query = "",
): Promise<Response> {
  return await fetch(`${url}/api/predict${query}`, {
    method: "POST",
    body: body as BodyInit | null,
    signal: AbortSignal.timeout(60_000),
  });
}

async function get(url: string): Promise<Response> {
  return await fetch(url, { signal: AbortSignal.timeout(60_000) });
}

/** id -> the p_ values of a predictions CSV. */
async function csvValues(path: string): Promise<Map<string, number[]>> {
  const rows = parseCsvRows(await Deno.readTextFile(path));
  return new Map(rows.slice(1).map((r) => [r.fields[0], r.fields.slice(3).map(Number)]));
}

async function withServer(
  run: Run,
  o: Partial<Parameters<typeof startServer>[0]>,
  body: (s: GalaxyServer) => Promise<void>,
): Promise<void> {
  await buildWeb();
  const server = await startServer({ run, port: 0, ...o });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/**
 * A folder of generated images, EXIF-rotated JPEGs, FITS files (a cube,
 * gzipped) plus (where present) three real Kaggle JPEGs; returns its path.
 */
async function mixedImages(): Promise<{ dir: string; real: number }> {
  const dir = await imageFolder(4, 3);
  const jpeg = await encodeImage(48, 40, 9);
  for (const k of [3, 6, 8]) {
    await Deno.writeFile(join(dir, `exif-${k}.jpg`), withExifOrientation(jpeg, k));
  }
  await Deno.writeFile(join(dir, "band.fits"), galaxyFits(30, { bitpix: -32 }));
  await Deno.writeFile(join(dir, "cube.fits.gz"), gzipSync(galaxyFits(30, { planes: 3 })));
  const real = realGalaxyJpegs(3);
  if (Array.isArray(real)) {
    for (const p of real) await Deno.copyFile(p, join(dir, p.split("/").pop()!));
    return { dir, real: real.length };
  }
  console.log(`real images skipped: ${real.skip}`);
  return { dir, real: 0 };
}

for (const kind of ["classes", "votes"] as const) {
  Deno.test(`POST /api/predict returns deno task predict's numbers (${kind}, with and without TTA)`, async () => {
    const run = await openRun(await toyRun({ kind, size: 24, crop: 0.5 }));
    const { dir } = await mixedImages();
    const input = await resolveInput(dir);
    if (input.kind !== "images") throw new Error("expected an image folder");
    const out = await tempDir("galaxy-serve-");
    const expected = new Map<boolean, Map<string, number[]>>();
    for (const tta of [false, true]) {
      const csv = join(out, `p-${tta}.csv`);
      await predict({ run, input, inPath: dir, out: csv, tta });
      expected.set(tta, await csvValues(csv));
    }
    await withServer(run, {}, async (s) => {
      assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/); // binds to this machine only by default
      for (const item of input.items) {
        for (const tta of [false, true]) {
          const res = await post(s.url, await Deno.readFile(item.path), tta ? "?tta=1" : "");
          const a = await res.json();
          assert.deepEqual(res.status, 200, JSON.stringify(a));
          assert.deepEqual(a.values.length, kind === "votes" ? NUM_VOTES : 5);
          assert.deepEqual(a.tta, tta);
          const want = expected.get(tta)!.get(item.id)!;
          a.values.forEach((v: number, k: number) =>
            assert(Math.abs(v - want[k]) <= 6e-7, `${item.id} ${a.names[k]}: ${v} vs ${want[k]}`)
          );
        }
      }
    });
    run.model.dispose();
  });
}

Deno.test("bad bodies get a 4xx with a JSON reason, and the server keeps answering", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const good = await encodeImage(40, 40, 1);
  await withServer(run, { limits: { maxBytes: 64 * 1024 } }, async (s) => {
    const truncated = good.slice(0, 120); // a JPEG header and then nothing
    const oversize = new Uint8Array(100 * 1024);
    oversize.set([0xff, 0xd8, 0xff]);
    const cases: [string, Uint8Array | string | null, number, RegExp][] = [
      ["empty", null, 400, /empty body/],
      ["empty bytes", new Uint8Array(0), 400, /empty body/],
      ["text", "not an image at all", 415, /not an image of a format read \(\.jpg, .*\.fits/],
      [
        "gif",
        new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0]),
        415,
        /not an image/,
      ],
      ["truncated JPEG", truncated, 422, /cannot decode the image/],
      ["oversize", oversize, 413, /exceeds the limit of 65536 bytes/],
    ];
    for (const [what, body, status, reason] of cases) {
      const res = await post(s.url, body);
      assert.deepEqual(res.status, status, what);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      assert.match((await res.json()).error, reason, what);
      const ok = await post(s.url, good);
      assert.deepEqual(ok.status, 200, `after ${what}`);
      await ok.body?.cancel();
    }
    // A streamed body with no length announced is cut off at the limit too.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(oversize.subarray(i * 10240, (i + 1) * 10240));
        c.close();
      },
    });
    const streamed = await post(s.url, stream);
    assert.deepEqual(streamed.status, 413);
    await streamed.body?.cancel();
  });
  // A client that stalls mid-body gets a 408 at the deadline, and the server keeps answering.
  await withServer(run, { limits: { bodySeconds: 0.5 } }, async (s) => {
    let client!: ReadableStreamDefaultController<Uint8Array>;
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        client = c;
        c.enqueue(good.subarray(0, 100)); // then nothing more, never closed
      },
    });
    const res = await post(s.url, stalled);
    assert.deepEqual(res.status, 408);
    assert.match((await res.json()).error, /did not arrive within 0.5 s/);
    try {
      client.close();
    } catch {
      // the server cancelled the body already
    }
    assert.deepEqual((await post(s.url, good)).status, 200);
    const wrongMethod = await get(`${s.url}/api/predict`);
    assert.deepEqual(wrongMethod.status, 405);
    assert.match((await wrongMethod.json()).error, /use POST/);
    const missing = await get(`${s.url}/model/../config.json`);
    assert.deepEqual(missing.status, 404);
    await missing.body?.cancel();
    assert.deepEqual((await post(s.url, good)).status, 200);
  });
  run.model.dispose();
});

Deno.test("concurrent requests: all answered right, the excess beyond the queue refused with 503", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const images = await Promise.all([0, 1, 2, 3].map((i) => encodeImage(300, 300, 10 + i)));
  const single = new Map<number, number[]>();
  await withServer(run, { limits: { maxConcurrent: 2, maxQueued: 64 } }, async (s) => {
    for (let i = 0; i < images.length; i++) {
      single.set(i, (await (await post(s.url, images[i])).json()).values);
    }
    const answers = await Promise.all(
      Array.from({ length: 24 }, async (_, k) => {
        const res = await post(s.url, images[k % 4]);
        return { k, status: res.status, body: await res.json() };
      }),
    );
    for (const a of answers) {
      assert.deepEqual(a.status, 200);
      assert.deepEqual(a.body.values, single.get(a.k % 4));
    }
  });
  await withServer(run, { limits: { maxConcurrent: 1, maxQueued: 1 } }, async (s) => {
    const statuses = await Promise.all(
      Array.from({ length: 12 }, async (_, k) => {
        const res = await post(s.url, images[k % 4]);
        const body = await res.json();
        if (res.status === 503) {
          assert.deepEqual(res.headers.get("retry-after"), "1");
          assert.match(body.error, /too many images/);
        } else {
          assert.deepEqual(body.values, single.get(k % 4));
        }
        return res.status;
      }),
    );
    assert(statuses.every((x) => x === 200 || x === 503), statuses.join());
    assert(statuses.includes(200) && statuses.includes(503), statuses.join());
    // Once the burst is over every request is served again.
    for (let i = 0; i < 4; i++) assert.deepEqual((await post(s.url, images[i])).status, 200);
  });
  run.model.dispose();
});

Deno.test("imageType recognises the signatures of the formats read only", async () => {
  assert.deepEqual(imageType(await encodeImage(8, 8, 1))?.name, "JPEG");
  assert.deepEqual(imageType(await encodeImage(8, 8, 1, "png"))?.name, "PNG");
  assert.deepEqual(imageType(new TextEncoder().encode("<svg/>")), null);
  assert.deepEqual(imageType(new Uint8Array([0xff, 0xd8])), null);
});

/** A predictions CSV of `n` rows over 3 classes with known labels and probabilities. */
async function syntheticPredictions(n: number): Promise<{ path: string; rows: string[][] }> {
  const classes = ["round", "edge_on", "spiral"];
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    const k = (i * 7) % 3;
    const p = ((i * 37) % 1000) / 1000;
    const values = classes.map((_, j) => (j === k ? p : (1 - p) / 2).toFixed(6));
    rows.push([`g${String(i).padStart(5, "0")}`, classes[k], p.toFixed(6), ...values]);
  }
  rows[5][0] = 'odd, "quoted" id'; // a quoted field survives the byte-range reads
  const dir = await tempDir("galaxy-preds-");
  const path = join(dir, "predictions.csv");
  const header = ["id", "label", "probability", ...classes.map((c) => `p_${c}`)];
  await Deno.writeTextFile(path, [header, ...rows].map((r) => csvLine(r) + "\n").join(""));
  return { path, rows };
}

Deno.test("predictions table: filter, sort and page without re-reading the file, CSV download", async () => {
  const { path, rows } = await syntheticPredictions(5000);
  const t = await PredictionTable.open(path);
  assert.deepEqual(t.size, 5000);
  assert.deepEqual(t.classes, ["round", "edge_on", "spiral"]);
  const want = rows.filter((r) =>
    r[1] === "spiral" && Number(r[2]) >= 0.25 && Number(r[2]) <= 0.75
  );
  const filter = { label: "spiral", min: 0.25, max: 0.75, sort: "probability-desc" as const };
  const first = await t.query(filter, 0, 40);
  assert.deepEqual(first.total, want.length);
  const sorted = [...want].sort((a, b) => Number(b[2]) - Number(a[2]) || (a[0] < b[0] ? -1 : 1));
  assert.deepEqual(first.rows.map((r) => r.id), sorted.slice(0, 40).map((r) => r[0]));
  const later = await t.query(filter, 120, 40);
  assert.deepEqual(later.rows.map((r) => r.id), sorted.slice(120, 160).map((r) => r[0]));
  assert.deepEqual((await t.query({ sort: "id" }, 5, 1)).rows[0].id, 'odd, "quoted" id');
  assert.deepEqual((await t.query({ label: "no such class" }, 0, 10)).total, 0);
  const text = await new Response(t.csvStream(filter)).text();
  const lines = text.trimEnd().split("\n");
  assert.deepEqual(lines[0], "id,label,probability,p_round,p_edge_on,p_spiral");
  assert.deepEqual(lines.slice(1), sorted.map((r) => csvLine(r)));
});

Deno.test("predictions table: a file that is not deno task predict's names the file and line", async () => {
  const dir = await tempDir("galaxy-preds-");
  const bad = join(dir, "bad.csv");
  await Deno.writeTextFile(bad, "id,label,probability,p_a\nx,a,0.5,0.5\ny,a,oops,0.5\n");
  await assertRejectsMatch(() => PredictionTable.open(bad), /bad\.csv:3: probability 'oops'/);
  await Deno.writeTextFile(bad, "GalaxyID,Class1.1\n1,0.5\n");
  await assertRejectsMatch(() => PredictionTable.open(bad), /Kaggle submission/);
  await Deno.writeTextFile(bad, "id,label,probability,p_a\nx,a,0.5\n");
  await assertRejectsMatch(
    () => PredictionTable.open(bad),
    /bad\.csv:2: 3 fields, the header has 4/,
  );
});

async function assertRejectsMatch(f: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await f();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  throw new Error(`expected a rejection matching ${re}`);
}

Deno.test("predictions page API: pages, filters, thumbnails and the filtered CSV over HTTP", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const images = await imageFolder(6, 9);
  const input = await resolveInput(images);
  if (input.kind !== "images") throw new Error("expected an image folder");
  const out = join(await tempDir("galaxy-serve-"), "p.csv");
  await predict({ run, input, inPath: images, out });
  await withServer(run, { predictions: out, images }, async (s) => {
    const config = await (await get(`${s.url}/page-config.json`)).json();
    assert.deepEqual(config.predictions, true);
    const page = await (await get(`${s.url}/api/predictions?sort=probability-asc&limit=4`)).json();
    assert.deepEqual(page.total, 6);
    assert.deepEqual(page.rows.length, 4);
    assert(page.thumbnails);
    const probs = page.rows.map((r: { probability: number }) => r.probability);
    assert.deepEqual(probs, [...probs].sort((a, b) => a - b));
    const thumb = await get(`${s.url}/thumb/${page.rows[0].id}`);
    assert.deepEqual(thumb.status, 200);
    assert(imageType(new Uint8Array(await thumb.arrayBuffer())) !== null);
    const label = page.rows[0].label;
    const csv = await (await get(`${s.url}/api/predictions.csv?label=${label}`)).text();
    const lines = csv.trimEnd().split("\n");
    assert(
      lines.length >= 2 && lines.slice(1).every((l) => parseCsvRows(l)[0].fields[1] === label),
    );
    const bad = await get(`${s.url}/api/predictions?min=2`);
    assert.deepEqual(bad.status, 400);
    assert.match((await bad.json()).error, /min must be a number in \[0, 1\]/);
    const malformed = await get(`${s.url}/thumb/%E0%A4%A`);
    assert.deepEqual(malformed.status, 400);
    assert.match((await malformed.json()).error, /malformed percent-encoding in \/thumb\/%E0%A4%A/);
    for (
      const p of ["/", "/run.html", "/predictions.html", "/app/classify_page.js", "/app/style.css"]
    ) {
      const r = await get(`${s.url}${p}`);
      assert.deepEqual(r.status, 200, p);
      await r.body?.cancel();
    }
  });
  run.model.dispose();
});

Deno.test("run page API: curves, confusion matrix, per-class scores and wrong galaxies from the run folder", async () => {
  const dir = await toyRun({ size: 16 });
  const run = await openRun(dir);
  await withServer(run, {}, async (s) => {
    const bare = await (await get(`${s.url}/api/run`)).json();
    assert.deepEqual(bare.curvesSvg, null);
    assert(bare.notes.some((n: string) => /deno task evaluate/.test(n)));
  });
  const lines = [1, 2, 3].map((e) =>
    JSON.stringify({ epoch: e, train_loss: 1 / e, val_loss: 1.2 / e, val_accuracy: 0.3 * e })
  );
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
  const classes = ["round", "in_between", "cigar", "edge_on", "spiral"];
  const perClass = classes.map((name) => ({
    name,
    precision: 0.5,
    recall: 0.5,
    f1: 0.5,
    support: 2,
    predicted: 2,
  }));
  const classification = {
    n: 10,
    accuracy: 0.5,
    balancedAccuracy: 0.5,
    macroF1: 0.5,
    top2Accuracy: 0.8,
    ece: 0.1,
    logLoss: 1,
    confusion: classes.map((_, i) =>
      classes.map((_, j) => (i === j ? 1 : i === (j + 1) % 5 ? 1 : 0))
    ),
    perClass,
  };
  await Deno.mkdir(join(dir, "eval"));
  await Deno.writeTextFile(
    join(dir, "eval", "report.json"),
    JSON.stringify({
      createdAt: new Date().toISOString(),
      split: "test",
      n: 10,
      tta: false,
      kind: "classes",
      classes,
      classification,
      votes: null,
      mostConfidentlyWrong: [{
        id: "123",
        true: "spiral",
        predicted: "round",
        probability: 0.9,
        trueProbability: 0.05,
      }],
      pictures: { confusion: "confusion.png", curves: null, wrong: "wrong.png" },
    }),
  );
  await Deno.writeFile(join(dir, "eval", "wrong.png"), await encodeImage(8, 8, 1, "png"));
  await withServer(run, {}, async (s) => {
    const r = await (await get(`${s.url}/api/run`)).json();
    assert.match(r.curvesSvg, /^<svg/);
    assert.match(r.confusionSvg, /^<svg/);
    assert.deepEqual(r.metrics.perClass.length, 5);
    assert.deepEqual(r.wrong[0].id, "123");
    assert.deepEqual(r.wrongPicture, "eval/wrong.png");
    assert.match(r.scoresFrom, /evaluate \(eval\/\), test split, n = 10/);
    const png = await get(`${s.url}/run-file/wrong.png`);
    assert.deepEqual(png.headers.get("content-type"), "image/png");
    await png.body?.cancel();
  });
  run.model.dispose();
});

Deno.test("export-web writes a static site: the page, its code, the model and the TF.js wasm files", async () => {
  await buildWeb();
  const run = await openRun(await toyRun({ kind: "votes", size: 16 }));
  const out = await tempDir("galaxy-site-");
  const s = await exportSite(run, out);
  for (
    const f of [
      "index.html",
      "app/classify_page.js",
      "app/style.css",
      "model/model.json",
      "page-config.json",
    ]
  ) {
    assert(s.files.includes(f), f);
    assert((await Deno.stat(join(out, f))).size > 0, f);
  }
  const config = JSON.parse(await Deno.readTextFile(join(out, "page-config.json")));
  assert.deepEqual(config.server, false);
  assert.deepEqual(config.dataset.kind, "votes");
  assert.deepEqual(config.questions.length, 11);
  for (const w of config.modelFiles) assert((await Deno.stat(join(out, "model", w))).isFile);
  for (const w of config.wasmFiles) assert((await Deno.stat(join(out, "tfjs-wasm", w))).isFile);
  // The page asks only for files of the site, by relative paths.
  const html = await Deno.readTextFile(join(out, "index.html"));
  for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
    assert(!/^(https?:)?\/\//.test(m[1]), `index.html loads ${m[1]} from elsewhere`);
  }
  run.model.dispose();
});

Deno.test("serve's --model takes RUN, RUN/model, RUN/model/model.json and a file:// URL; else a usage error", async () => {
  const dir = await toyRun();
  const forms = [
    dir,
    join(dir, "model"),
    join(dir, "model", "model.json"),
    pathToFileURL(join(dir, "model", "model.json")).href,
  ];
  for (const form of forms) {
    const opened = await openModelFlag(form);
    assert.equal(resolve(opened.dir), resolve(dir), form);
    opened.model.dispose();
  }
  await assert.rejects(() => openModelFlag(join(dir, "config.json")), RunDirError);
  await assert.rejects(() => openModelFlag("https://example.org/model.json"), RunDirError);
});

Deno.test("multipart/form-data: the first file part is the image, as curl -F and HTML forms send it", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  const good = await encodeImage(40, 40, 1);
  const fits = galaxyFits(24, { planes: 3 });
  await withServer(run, { limits: { maxBytes: 64 * 1024 } }, async (s) => {
    const raw = await (await post(s.url, good)).json();
    const form = (parts: [string, string | Blob, string?][]) => {
      const f = new FormData();
      for (const [name, value, file] of parts) {
        if (typeof value === "string") f.append(name, value);
        else f.append(name, value, file);
      }
      return fetch(`${s.url}/api/predict`, {
        method: "POST",
        body: f,
        signal: AbortSignal.timeout(60_000),
      });
    };
    // A text field first, then two files: the first file is read.
    const res = await form([
      ["note", "hello"],
      ["file", new Blob([good.slice()]), "galaxy.jpg"],
      ["other", new Blob([new Uint8Array([1, 2, 3])]), "x.bin"],
    ]);
    const a = await res.json();
    assert.deepEqual(res.status, 200, JSON.stringify(a));
    assert.deepEqual(a.values, raw.values);
    // A FITS upload is stretched as the run says.
    const f = await form([["file", new Blob([fits.slice()]), "cutout.fits"]]);
    assert.deepEqual(f.status, 200);
    assert.deepEqual((await f.json()).values, (await (await post(s.url, fits)).json()).values);
    const none = await form([["note", "no file here"]]);
    assert.deepEqual(none.status, 400);
    assert.match((await none.json()).error, /has no file part: .*curl -F file=@galaxy\.jpg/);
    const big = await form([["file", new Blob([new Uint8Array(100 * 1024)]), "big.jpg"]]);
    assert.deepEqual(big.status, 413);
    await big.body?.cancel();
    // curl -F itself, where curl is installed.
    const curl = await new Deno.Command("curl", { args: ["--version"] }).output().catch(() => null);
    if (!curl?.success) {
      console.log("curl -F skipped: no curl on this machine");
      return;
    }
    const dir = await tempDir("galaxy-curl-");
    await Deno.writeFile(join(dir, "galaxy.jpg"), good);
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--max-time",
        "60",
        "-F",
        `file=@${join(dir, "galaxy.jpg")}`,
        `${s.url}/api/predict`,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)).values, raw.values);
  });
  run.model.dispose();
});

/** Reads what the server sends on `conn` until it closes; returns the text and the seconds it took. */
async function readUntilClosed(conn: Deno.Conn): Promise<{ text: string; seconds: number }> {
  const t0 = performance.now();
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const text = chunks.map((c) => new TextDecoder().decode(c)).join("");
  return { text, seconds: (performance.now() - t0) / 1000 };
}

Deno.test("a client whose request headers are not complete in time is answered 408 and closed", async () => {
  const run = await openRun(await toyRun({ size: 16 }));
  await withServer(run, { headerSeconds: 1 }, async (s) => {
    const port = Number(new URL(s.url).port);
    // One sending its headers a byte at a time, one sending nothing.
    const trickle = await Deno.connect({ hostname: "127.0.0.1", port });
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    let stop = false;
    const sending = (async () => {
      const head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(100);
      for (const c of head) {
        if (stop) break;
        await trickle.write(new TextEncoder().encode(c)).catch(() => (stop = true));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const [t, q] = await Promise.all([readUntilClosed(trickle), readUntilClosed(silent)]);
    stop = true;
    await sending;
    trickle.close();
    silent.close();
    for (const r of [t, q]) {
      assert.match(r.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(r.text, /request headers not complete within 1 s/);
      assert.ok(r.seconds >= 0.9 && r.seconds < 5, `closed after ${r.seconds} s`);
    }
    // Others are served meanwhile and after, on new connections each.
    const ok = await get(`${s.url}/page-config.json`);
    assert.deepEqual(ok.status, 200);
    assert.deepEqual(ok.headers.get("connection"), "close");
    await ok.body?.cancel();
  });
  run.model.dispose();
});

Deno.test("the header deadline is 10 s by default", async () => {
  const { HEADER_SECONDS, closingHead } = await import("../lib/serve/header_gate.ts");
  assert.equal(HEADER_SECONDS, 10);
  assert.equal(
    closingHead("GET / HTTP/1.1\r\nHost: a\r\nconnection: keep-alive"),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close",
  );
});
