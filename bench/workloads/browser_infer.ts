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
 * Reports `{images_per_sec, images, seconds, backend}`.
 *
 * Usage: deno run ... bench/workloads/browser_infer.ts --run RUN_DIR --in IMAGE_DIR
 *   [--backend webgl|wasm]
 *
 * @module
 */
import { join } from "node:path";
import type { ElementHandle } from "puppeteer-core";
import { setupBackend } from "../../lib/backend.ts";
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

await setupBackend({ requested: "wasm" });
const run = await openRun(a.run);
const server = await startServer({ run, port: 0 });
const browser = await launchChromium(chromium.path, { protocolTimeoutMs: 900_000 });
try {
  const page = await browser.browser.newPage();
  page.setDefaultTimeout(600_000);
  await page.goto(`${server.url}/${a.backend ? `?backend=${a.backend}` : ""}`);
  await page.waitForSelector("body[data-ready='1'], #status.error");
  const backend = await page.$eval("#backend", (e) => (e as HTMLElement).dataset.backend ?? "?");
  const input = (await page.$("input#files")) as ElementHandle<HTMLInputElement>;
  const classify = async (paths: string[], expectDone: number) => {
    await input.uploadFile(...paths);
    await page.waitForFunction(
      (n: number) =>
        document.querySelectorAll(".result[data-state='done']").length >= n ||
        document.querySelector(".result[data-state='error']") !== null,
      { timeout: 600_000 },
      expectDone,
    );
    const error = await page.$eval("body", (b) => b.querySelector(".result .error")?.textContent);
    if (error) throw new Error(error);
  };
  await classify(files.slice(0, 2), 2);
  const t0 = performance.now();
  await classify(files, 2 + files.length);
  const seconds = (performance.now() - t0) / 1000;
  console.error(`browser_infer: ${files.length} images on ${backend} in ${seconds.toFixed(2)} s`);
  printResult({ images_per_sec: files.length / seconds, images: files.length, seconds, backend });
} finally {
  await browser.close();
  await server.close();
  run.model.dispose();
}
