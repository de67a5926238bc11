/**
 * Benchmark workload: the classify page of `deno task serve` in headless
 * Chromium, timed from handing it `--in`'s images to the last result on
 * screen (decode, crop and resize, TF.js inference on the backend the
 * browser offers, one image per model call as the page does, drawing).
 * Two images are classified first and not timed (kernel compilation).
 *
 * `--backend webgl|wasm` makes the page use that TF.js backend (default:
 * its own choice, WebGL where the browser has it).
 *
 * Nothing waits without a deadline: each stage (starting Chromium, the
 * page getting ready, each batch of images) has one sized to its work
 * (lib/bench/browser_fixtures.ts BROWSER_STAGE_SECONDS), and a stage that
 * outlasts it fails naming the stage, what the page shows, whether its main
 * thread still answers, and its last console errors and failed requests.
 *
 * Reports `{images_per_sec, images, seconds, backend}`.
 *
 * Usage: deno run ... bench/workloads/browser_infer.ts --run RUN_DIR --in IMAGE_DIR
 *   [--backend webgl|wasm]
 *
 * @module
 */
import { join } from "node:path";
import type { ElementHandle, Page } from "puppeteer-core";
import { setupBackend } from "../../lib/backend.ts";
import { BROWSER_STAGE_SECONDS as STAGE } from "../../lib/bench/browser_fixtures.ts";
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { isImageFile } from "../../lib/data/image.ts";
import { openRun } from "../../lib/run/open.ts";
import { startServer } from "../../lib/serve/server.ts";
import { findChromium, launchChromium } from "../../lib/web/headless.ts";

const a = workloadFlags({
  run: { type: "string" },
  in: { type: "string" },
  backend: { type: "string" },
});
if (!a.run || !a.in) throw new Error("--run and --in are required");
const chromium = findChromium();
if (chromium.path === null) throw new Error(chromium.reason);
const files = [...Deno.readDirSync(a.in)].filter((e) => isImageFile(e.name)).map((e) =>
  join(a.in!, e.name)
).sort();
if (files.length < 3) throw new Error(`${a.in} needs at least 3 images`);

/** What the page said lately: console errors, page errors, failed requests (the last 8). */
const events: string[] = [];
const note = (line: string) => {
  events.push(line.slice(0, 200));
  if (events.length > 8) events.shift();
};

/** What the page shows and whether it answers, within 5 s (a blocked main thread does not). */
async function diagnose(page: Page | null): Promise<string> {
  if (!page) return "no page yet";
  const probe = page.$eval("#status", (e) => e.textContent ?? "").then(
    (status) => `the page shows '${status}'`,
    (e) => `the page cannot be read (${(e as Error).message.split("\n")[0]})`,
  );
  const blocked = new Promise<string>((r) =>
    setTimeout(() => r("the page's main thread does not answer within 5 s (blocked)"), 5000)
  );
  const state = await Promise.race([probe, blocked]);
  return `${state}; last page events: ${events.length ? events.join(" | ") : "none"}`;
}

/** Runs `work`, failing after `seconds` with the stage's name and the page's state. */
async function stage<T>(
  name: string,
  seconds: number,
  page: Page | null,
  work: () => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      reject(
        new Error(`${name}: no answer within ${seconds} s; ${await diagnose(page)}`),
      );
    }, seconds * 1000);
  });
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

await setupBackend({ requested: "wasm" });
const run = await openRun(a.run);
const server = await startServer({ run, port: 0 });
// Puppeteer's own limits sit above the stages', so a stage's deadline (with its diagnosis) comes first.
const browser = await stage(
  "starting Chromium",
  STAGE.launch,
  null,
  () =>
    launchChromium(chromium.path!, {
      timeoutMs: (STAGE.launch + 30) * 1000,
      protocolTimeoutMs: (STAGE.ready + files.length * STAGE.perImage + 60) * 1000,
    }),
);
try {
  const page = await browser.browser.newPage();
  page.setDefaultTimeout((STAGE.ready + files.length * STAGE.perImage + 60) * 1000);
  page.on("console", (m) => m.type() === "error" && note(`console: ${m.text()}`));
  page.on("pageerror", (e) => note(`page error: ${e}`));
  page.on("requestfailed", (r) => note(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => r.status() >= 400 && note(`HTTP ${r.status()}: ${r.url()}`));
  const backend = await stage("loading the page and the model", STAGE.ready, page, async () => {
    await page.goto(`${server.url}/${a.backend ? `?backend=${a.backend}` : ""}`);
    await page.waitForSelector("body[data-ready='1'], #status.error");
    const failed = await page.$eval("#status.error", (e) => e.textContent).catch(() => null);
    if (failed) throw new Error(`the page could not start: ${failed}`);
    return await page.$eval("#backend", (e) => (e as HTMLElement).dataset.backend ?? "?");
  });
  const input = (await page.$("input#files")) as ElementHandle<HTMLInputElement>;
  const classify = (what: string, paths: string[], expectDone: number) =>
    stage(what, STAGE.batch + paths.length * STAGE.perImage, page, async () => {
      await input.uploadFile(...paths);
      await page.waitForFunction(
        (n: number) =>
          document.querySelectorAll(".result[data-state='done']").length >= n ||
          document.querySelector(".result[data-state='error']") !== null,
        {},
        expectDone,
      );
      const error = await page.$eval("body", (b) => b.querySelector(".result .error")?.textContent);
      if (error) throw new Error(error);
    });
  await classify(`classifying 2 warm-up images on ${backend}`, files.slice(0, 2), 2);
  const t0 = performance.now();
  await classify(`classifying ${files.length} images on ${backend}`, files, 2 + files.length);
  const seconds = (performance.now() - t0) / 1000;
  console.error(`browser_infer: ${files.length} images on ${backend} in ${seconds.toFixed(2)} s`);
  printResult({ images_per_sec: files.length / seconds, images: files.length, seconds, backend });
} finally {
  await browser.close();
  await server.close();
  run.model.dispose();
}
