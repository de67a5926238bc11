/**
 * The classify page as files: where each lives in the checkout, the
 * `page-config.json` that tells the page about the run, and
 * {@linkcode exportSite}, which copies all of it (with the model) into a
 * folder any static web server can serve.
 *
 * Site layout (the same paths `deno task serve` answers):
 *
 *     index.html            the classify page (web/index.html)
 *     page-config.json      the run's classes, input size and crop ({@linkcode PageConfig})
 *     app/classify_page.js  the page's code with TF.js, bundled by `deno task build-web`
 *     app/style.css
 *     model/                model.json and its weight file
 *     tfjs-wasm/*.wasm      TF.js' WebAssembly backend
 *
 * @module
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Question, QUESTIONS } from "../data/schema.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Run, RunDataset } from "../run/open.ts";
import { MODEL_JSON } from "../run/layout.ts";
import { runModelFile } from "../run/model.ts";
import { TOOLKIT_VERSION } from "../version.ts";

/** What the classify page reads from `page-config.json`. */
export interface PageConfig {
  /** Run folder name. */
  name: string;
  /** The run's dataset block: classes, kind, input size, crop, flip pairs. */
  dataset: RunDataset;
  /** The Galaxy Zoo decision tree (shown for votes runs). */
  questions: readonly Question[];
  /** Weight files model.json names. */
  modelFiles: string[];
  /** TF.js WebAssembly binaries under `tfjs-wasm/`. */
  wasmFiles: string[];
  /** Served by `deno task serve` (links to the run and predictions pages), not a static export. */
  server: boolean;
  /** The server has a predictions page. */
  predictions: boolean;
  /** Toolkit version that wrote it. */
  version: string;
}

/** Bundled files under `app/`. */
export const SITE_ASSETS: readonly string[] = [
  "classify_page.js",
  "run_page.js",
  "predictions_page.js",
  "style.css",
];

/** The checkout's `web/` folder (HTML, CSS, and the bundles in `web/dist/`). */
export function webRoot(): string {
  return fileURLToPath(new URL("../../web/", import.meta.url));
}

function wasmDir(): string {
  const pkg = createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm/package.json");
  return join(dirname(pkg), "dist");
}

/** TF.js' WebAssembly binaries. */
export const WASM_FILES: readonly string[] = [
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
];

/** Where the file at site path `rel` comes from in the checkout. */
export function siteFile(rel: string): string {
  if (rel === "index.html") return join(webRoot(), "index.html");
  if (rel === "app/style.css") return join(webRoot(), "style.css");
  if (rel.startsWith("app/")) return join(webRoot(), "dist", rel.slice(4));
  if (rel.startsWith("tfjs-wasm/")) return join(wasmDir(), rel.slice(10));
  throw new Error(`no site file ${rel}`);
}

/** Throws, saying how to build it, when the bundled page code is missing. */
export async function assertSiteBuilt(): Promise<void> {
  for (const name of SITE_ASSETS) {
    const path = siteFile(`app/${name}`);
    if (!await Deno.stat(path).then(() => true, () => false)) {
      throw new Error(`${path} is missing: build the pages with 'deno task build-web'`);
    }
  }
}

/**
 * Builds the page bundles (`deno task build-web`, the bundler command of
 * deno.json) within `timeoutSeconds` (300); throws with the bundler's last
 * lines when it fails or outlasts the deadline.
 */
export async function buildSiteBundles(o: { timeoutSeconds?: number } = {}): Promise<void> {
  const seconds = o.timeoutSeconds ?? 300;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "build-web"],
    cwd: fileURLToPath(new URL("../../", import.meta.url)),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(seconds * 1000),
  }).output().catch((e) => {
    throw new Error(`deno task build-web did not finish within ${seconds} s: ${e.message}`);
  });
  if (!out.success) {
    const tail = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`deno task build-web failed (exit ${out.code}):\n${tail}`);
  }
}

/** The weight files a run's model names (as verified when the run was opened). */
export function modelWeightFiles(run: Run): string[] {
  return run.weightFiles;
}

/** The `page-config.json` of a run. */
export function pageConfig(
  run: Run,
  o: { server: boolean; predictions: boolean },
): PageConfig {
  return {
    name: run.dir.replace(/\/+$/, "").split("/").pop() ?? run.dir,
    dataset: run.dataset,
    questions: QUESTIONS,
    modelFiles: modelWeightFiles(run),
    wasmFiles: [...WASM_FILES],
    server: o.server,
    predictions: o.predictions,
    version: TOOLKIT_VERSION,
  };
}

/** What {@linkcode exportSite} wrote. */
export interface ExportSummary {
  /** Files written, site-relative. */
  files: string[];
  /** Their total size, bytes. */
  bytes: number;
}

/**
 * Writes the classify page of `run` as a static site into `out` (created if
 * needed; files of the same names are replaced, each atomically).
 */
export async function exportSite(run: Run, out: string): Promise<ExportSummary> {
  await assertSiteBuilt();
  const config = pageConfig(run, { server: false, predictions: false });
  const copies: [string, string][] = [
    ["index.html", siteFile("index.html")],
    ["app/classify_page.js", siteFile("app/classify_page.js")],
    ["app/style.css", siteFile("app/style.css")],
    [`model/${MODEL_JSON}`, runModelFile(run.dir, MODEL_JSON)],
    ...config.modelFiles.map((f): [string, string] => [`model/${f}`, runModelFile(run.dir, f)]),
    ...config.wasmFiles.map((
      f,
    ): [string, string] => [`tfjs-wasm/${f}`, siteFile(`tfjs-wasm/${f}`)]),
  ];
  const files: string[] = [];
  let bytes = 0;
  for (const dir of ["app", "model", "tfjs-wasm"]) {
    await Deno.mkdir(join(out, dir), { recursive: true });
  }
  for (const [rel, from] of copies) {
    const data = await Deno.readFile(from);
    await writeFileAtomic(join(out, rel), data);
    files.push(rel);
    bytes += data.length;
  }
  const text = JSON.stringify(config, null, 2) + "\n";
  await writeFileAtomic(join(out, "page-config.json"), text);
  files.push("page-config.json");
  bytes += text.length;
  return { files, bytes };
}
