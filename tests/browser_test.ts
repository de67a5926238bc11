/**
 * The pages in headless Chromium (skipped, saying why, where there is no
 * Chromium): the classify page classifies two real galaxy images in the
 * browser and shows the numbers `deno task predict` writes; the run and
 * predictions pages render. Screenshots go to `test-output/` and their
 * paths are printed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ElementHandle, Page } from "puppeteer-core";
import { setupBackend } from "../lib/backend.ts";
import { PROJECT_ROOT } from "../lib/bench/fixtures.ts";
import { parseCsvRows } from "../lib/io/csv.ts";
import { openRun } from "../lib/run/open.ts";
import { startServer } from "../lib/serve/server.ts";
import { exportSite } from "../lib/web/site.ts";
import { findChromium, launchChromium } from "../lib/web/headless.ts";
import { toyRun } from "./fixtures_run.ts";
import { buildWeb, realGalaxyJpegs, resnetRun } from "./fixtures_web.ts";
import { withExifOrientation } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";

const chromium = findChromium();
const images = realGalaxyJpegs(2);
const skip = chromium.path === null
  ? `no Chromium: ${chromium.reason}`
  : !Array.isArray(images)
  ? images.skip
  : null;
if (skip) console.log(`browser tests skipped: ${skip}`);

/** Where screenshots are kept after the test run. */
const OUTPUT = join(PROJECT_ROOT, "test-output");

/** Largest difference allowed between the page's numbers and predict's CSV (6 decimals). */
const TOLERANCE = 1e-4;

/** Runs `deno task predict` on `dir`; returns id -> the p_ values. */
async function predictCli(run: string, dir: string, tta: boolean): Promise<Map<string, number[]>> {
  const out = join(await tempDir("galaxy-browser-"), "p.csv");
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["task", "predict", "--model", run, "--in", dir, "--out", out, ...(tta ? ["--tta"] : [])],
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  });
  const r = await cmd.output();
  if (!r.success) {
    throw new Error(`deno task predict failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  const rows = parseCsvRows(await Deno.readTextFile(out));
  return new Map(rows.slice(1).map((row) => [row.fields[0], row.fields.slice(3).map(Number)]));
}

/** The numbers of every finished result card: file name -> values, as the page shows them. */
async function shownResults(page: Page, count: number, tta: boolean) {
  await page.waitForFunction(
    (n: number, t: string) =>
      document.querySelectorAll(`.result[data-state='done'][data-tta='${t}']`).length >= n ||
      document.querySelector(".result[data-state='error']") !== null,
    { timeout: 120_000 },
    count,
    tta ? "1" : "0",
  );
  return await page.$$eval(`.result[data-tta='${tta ? "1" : "0"}']`, (cards) =>
    cards.map((c) => {
      const card = c as HTMLElement;
      return {
        file: card.dataset.file!,
        state: card.dataset.state!,
        error: card.querySelector(".error")?.textContent ?? null,
        values: JSON.parse(card.dataset.values ?? "[]") as number[],
        bars: [...card.querySelectorAll(".bar")].map((b) => ({
          value: Number((b as HTMLElement).dataset.value),
          text: b.querySelector(".value")!.textContent!,
        })),
      };
    }));
}

async function classifyInBrowser(
  runDir: string,
  shots: string,
  o: {
    backend?: "webgl" | "wasm";
    check?: (page: Page) => Promise<void>;
    /** Serve the static site of export-web with a plain file server instead of deno task serve. */
    exported?: boolean;
    /** Also classify copies of the first image carrying EXIF orientations 2-8. */
    exif?: boolean;
  } = {},
): Promise<void> {
  await buildWeb();
  const dir = await tempDir("galaxy-browser-in-");
  const jpegs = (images as string[]).map((p) => join(dir, p.split("/").pop()!));
  for (const [k, p] of (images as string[]).entries()) await Deno.copyFile(p, jpegs[k]);
  if (o.exif) {
    const first = await Deno.readFile(jpegs[0]);
    for (let k = 2; k <= 8; k++) {
      const file = join(dir, `exif-${k}.jpg`);
      await Deno.writeFile(file, withExifOrientation(first, k));
      jpegs.push(file);
    }
  }
  const expected = {
    plain: await predictCli(runDir, dir, false),
    tta: await predictCli(runDir, dir, true),
  };
  if (o.exif) {
    // The model tells the orientations apart, so equal numbers below mean one rule.
    const original = expected.plain.get(jpegs[0].split("/").pop()!.replace(/\.jpg$/, ""))!;
    for (let k = 2; k <= 8; k++) {
      const rotated = expected.plain.get(`exif-${k}`)!;
      assert.ok(
        rotated.some((v, i) => Math.abs(v - original[i]) > 1e-3),
        `orientation ${k} gives the numbers of the upright image`,
      );
    }
  }
  const run = await openRun(runDir);
  let server: { url: string; close(): Promise<void> };
  if (o.exported) {
    const site = await tempDir("galaxy-browser-site-");
    await exportSite(run, site);
    server = staticServer(site);
  } else {
    server = await startServer({ run, port: 0 });
  }
  const browser = await launchChromium(chromium.path!);
  try {
    const page = await browser.browser.newPage();
    page.setDefaultTimeout(60_000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(`${server.url}/${o.backend ? `?backend=${o.backend}` : ""}`, {
      timeout: 60_000,
    });
    await page.waitForSelector("body[data-ready='1'], #status.error", { timeout: 120_000 });
    const status = await page.$eval("#status", (e) => e.textContent);
    assert.match(status ?? "", /^Ready/, `the page did not load the model: ${status}`);
    const backend = await page.$eval("#backend", (e) => (e as HTMLElement).dataset.backend);
    console.log(`  in-browser backend: ${backend}`);
    assert.ok(["webgl", "wasm", "cpu"].includes(backend ?? ""));
    if (o.backend) assert.equal(backend, o.backend);
    const input = (await page.$("input#files")) as ElementHandle<HTMLInputElement> | null;
    for (const tta of [false, true]) {
      if (tta) await page.click("#tta");
      await input!.uploadFile(...jpegs);
      const shown = await shownResults(page, jpegs.length, tta);
      assert.equal(shown.length, jpegs.length);
      for (const r of shown) {
        assert.equal(r.state, "done", `${r.file}: ${r.error}`);
        const id = r.file.replace(/\.[^.]+$/, "");
        const want = (tta ? expected.tta : expected.plain).get(id)!;
        assert.equal(r.values.length, want.length);
        const worst = Math.max(...r.values.map((v, k) => Math.abs(v - want[k])));
        console.log(
          `  ${r.file}${tta ? " (TTA)" : ""}: largest difference from predict ${
            worst.toExponential(2)
          }`,
        );
        assert.ok(worst <= TOLERANCE, `${r.file}: page ${r.values} vs predict ${want}`);
        // The text shown is the same number, in per cent to 0.01 %.
        for (const b of r.bars) assert.equal(b.text, `${(b.value * 100).toFixed(2)} %`);
      }
    }
    await o.check?.(page);
    assert.deepEqual(errors, []);
    await Deno.mkdir(OUTPUT, { recursive: true });
    const file = join(OUTPUT, shots);
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    console.log(`  screenshot: ${file}`);
  } finally {
    await browser.close();
    await server.close();
    run.model.dispose();
  }
}

/** A plain static file server of `root` (what an observatory's web server does). */
function staticServer(root: string): { url: string; close(): Promise<void> } {
  const types: Record<string, string> = {
    html: "text/html",
    js: "text/javascript",
    css: "text/css",
    json: "application/json",
    wasm: "application/wasm",
  };
  const ac = new AbortController();
  let port = 0;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => (port = a.port),
  }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("no", { status: 403 });
    const file = join(root, path.endsWith("/") ? `${path}index.html` : path);
    try {
      const body = await Deno.readFile(file);
      const ext = file.split(".").pop()!;
      return new Response(body, {
        headers: { "content-type": types[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test({
  name:
    "classify page: two real galaxies, and one in all 8 EXIF orientations, classified in the browser equal deno task predict (1e-4)",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await setupBackend({ requested: "wasm" });
    // 96 px from the centre 96 px of 424 px images: the crop is exact in the browser too.
    // With EXIF-rotated copies: the page applies the orientation as predict does.
    await classifyInBrowser(await resnetRun({ size: 96, crop: 96 / 424 }), "classify-classes.png", {
      exif: true,
    });
  },
});

Deno.test({
  name: "classify page: a votes model is shown as the Galaxy Zoo decision tree",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await setupBackend({ requested: "wasm" });
    const run = await toyRun({ kind: "votes", size: 64, crop: 64 / 424 });
    // On TF.js WebGL (the page's first choice where a GPU draws it).
    await classifyInBrowser(run, "classify-votes.png", {
      backend: "webgl",
      check: async (page) => {
        const card = ".result[data-tta='1']";
        const count = (sel: string) =>
          page.$eval(card, (c, s) => c.querySelectorAll(s).length, sel);
        assert.equal(await count("li.question"), 11);
        assert.equal(await count(".bar"), 37);
        // Q7 (roundness) sits under Q1's "smooth" answer.
        const nested = await page.$eval(
          `${card} .bar[title='Class1.1']`,
          (b) => b.parentElement!.querySelector("li.question .question-text b")?.textContent,
        );
        assert.equal(nested, "Q7");
      },
    });
  },
});

Deno.test({
  name: "export-web: the static site classifies in the browser from a plain file server",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await setupBackend({ requested: "wasm" });
    await classifyInBrowser(await resnetRun({ size: 48, crop: 48 / 424, seed: 3 }), "export.png", {
      exported: true,
      check: async (page) => {
        // No links to the server-only pages in a static site.
        assert.equal(await page.$eval("#nav-run", (a) => (a as HTMLElement).hidden), true);
      },
    });
  },
});
