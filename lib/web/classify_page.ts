/**
 * The classify page (web/index.html), bundled for the browser by
 * `deno task build-web`: dropped or chosen JPEG/PNG files are decoded by
 * the browser (upright by their EXIF orientation, as predict reads them), cropped and resized as the run's config.json says
 * (lib/web/resample.ts) and classified by the run's model with TF.js
 * (WebGL, else WebAssembly, else plain JavaScript), through the toolkit's
 * own {@linkcode predictBatch}, test-time augmentation included. Nothing
 * is uploaded: the page only fetches its own files.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { predictBatch } from "../inference.ts";
import "../model/standardize.ts";
import "../model/votes_head.ts";
import "../model/tree_projection.ts";
import "../model/seeded_dropout.ts";
import type { Question } from "../data/schema.ts";
import { cropResize, isExactCrop, isJpegBytes } from "./resample.ts";
import type { PageConfig } from "./site.ts";
import { el, formatPercent, probabilityBar } from "./dom.ts";

/** The backends tried, in order, with what the page calls them. */
const BACKENDS: [string, string][] = [
  ["webgl", "WebGL (GPU)"],
  ["wasm", "WebAssembly (CPU)"],
  ["cpu", "plain JavaScript (CPU, slow)"],
];

/**
 * WebGL where the browser renders it on a GPU, else WebAssembly, else plain
 * JavaScript; `?backend=NAME` forces one. A software WebGL renderer
 * (SwiftShader, llvmpipe: a browser without a usable GPU) runs ResNet-34
 * about ten times slower than WebAssembly (deno task bench, row `browser`),
 * so WebAssembly goes first there.
 */
async function chooseBackend(): Promise<{ name: string; label: string; skipped: string[] }> {
  setWasmPaths(new URL("tfjs-wasm/", location.href).href);
  const skipped: string[] = [];
  const forced = new URLSearchParams(location.search).get("backend");
  let order = BACKENDS;
  if (!forced && softwareWebgl()) {
    order = [BACKENDS[1], BACKENDS[0], BACKENDS[2]];
    skipped.push("webgl: software renderer, slower than WebAssembly");
  }
  for (const [name, label] of order) {
    if (forced && forced !== name) continue;
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        // A backend can register and still fail at the first kernel: try one.
        tf.tidy(() => tf.add(tf.ones([2]), tf.ones([2])).dataSync());
        return { name, label: name === "webgl" ? webglLabel() : label, skipped };
      }
      skipped.push(`${name}: not available`);
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`no TF.js backend works in this browser (${skipped.join("; ")})`);
}

/** The WebGL renderer's name, or "" where WebGL or its name is unavailable. */
function webglRenderer(): string {
  const gl = document.createElement("canvas").getContext("webgl2") ??
    document.createElement("canvas").getContext("webgl");
  const info = gl?.getExtension("WEBGL_debug_renderer_info");
  return info ? String(gl!.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
}

/** Whether WebGL is drawn by the CPU (no GPU). */
function softwareWebgl(): boolean {
  return /swiftshader|llvmpipe|software/i.test(webglRenderer());
}

/** "WebGL (GPU name)", or "WebGL (software renderer, no GPU)". */
function webglLabel(): string {
  if (softwareWebgl()) return "WebGL (software renderer, no GPU)";
  const renderer = webglRenderer();
  return renderer
    ? `WebGL (${renderer.replace(/^ANGLE \((.*)\)$/, "$1").slice(0, 60)})`
    : "WebGL (GPU)";
}

/**
 * Decodes a file with the browser's own decoder, as RGBA without colour
 * management, upright by its EXIF orientation (as lib/data/image.ts does
 * for predict and the API).
 */
async function decode(file: Blob): Promise<ImageData> {
  const bitmap = await createImageBitmap(file, {
    imageOrientation: "from-image",
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** The network's input drawn on a canvas, so the user sees what the model sees. */
function inputPreview(pixels: Uint8Array, size: number): HTMLCanvasElement {
  const canvas = el("canvas", { class: "input-preview", title: "what the network sees" });
  canvas.width = size;
  canvas.height = size;
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let i = 0; i < size * size; i++) {
    rgba.set(pixels.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(new ImageData(rgba, size, size), 0, 0);
  return canvas;
}

/** Bars of the class probabilities, largest first marked. */
function classBars(names: string[], values: Float32Array): HTMLElement {
  let top = 0;
  values.forEach((v, i) => (top = v > values[top] ? i : top));
  return el(
    "div",
    { class: "bars" },
    ...names.map((name, i) => probabilityBar(name, values[i], i === top)),
  );
}

/** Questions reached by fewer volunteers than this are shown folded. */
const RARELY_REACHED = 0.1;

/**
 * The Galaxy Zoo decision tree with the predicted fraction of each answer;
 * each question sits under the answer that leads to it.
 */
function votesTree(questions: readonly Question[], names: string[], values: Float32Array) {
  const value = (col: string) => values[names.indexOf(col)];
  const children = new Map<string, Question[]>();
  const roots: Question[] = [];
  for (const q of questions) {
    if (q.parents.length === 0) roots.push(q);
    for (const p of q.parents) children.set(p, [...(children.get(p) ?? []), q]);
  }
  const question = (q: Question): HTMLElement => {
    const reach = q.parents.length ? q.parents.reduce((s, p) => s + value(p), 0) : 1;
    const cols = q.answers.map((_, i) => `Class${q.id}.${i + 1}`);
    let top = 0;
    cols.forEach((c, i) => (top = value(c) > value(cols[top]) ? i : top));
    const answers = q.answers.map((a, i) => {
      const below = children.get(cols[i]) ?? [];
      return el(
        "li",
        {},
        probabilityBar(a, value(cols[i]), reach >= RARELY_REACHED && i === top, cols[i]),
        ...(below.length ? [el("ul", { class: "tree" }, ...below.map((c) => question(c)))] : []),
      );
    });
    // Questions few volunteers would reach are folded, so the likely path stands out.
    const details = el(
      "details",
      { class: "question-text" },
      el(
        "summary",
        {},
        el("b", {}, `Q${q.id}`),
        ` ${q.text} `,
        el("span", { class: "reach" }, `(reached by ${formatPercent(reach, 1)} of volunteers)`),
      ),
      el("ul", { class: "answers" }, ...answers),
    );
    details.open = reach >= RARELY_REACHED;
    return el("li", { class: "question" }, details);
  };
  return el("ul", { class: "tree root" }, ...roots.map(question));
}

/** One line on the prediction: the top class, or for votes the top answer of question 1. */
function verdict(d: PageConfig["dataset"], values: Float32Array): string {
  const names = d.kind === "votes" ? ["smooth", "features or disk", "star or artifact"] : d.classes;
  const off = d.kind === "votes" ? d.classes.indexOf("Class1.1") : 0;
  let k = 0;
  for (let i = 1; i < names.length; i++) if (values[off + i] > values[off + k]) k = i;
  return `→ ${names[k]} (${formatPercent(values[off + k])})`;
}

async function main(): Promise<void> {
  const status = document.getElementById("status")!;
  const setStatus = (text: string, cls = "") => {
    status.textContent = text;
    status.className = cls;
  };
  let config: PageConfig;
  try {
    config = await (await fetch("page-config.json")).json();
  } catch (e) {
    setStatus(`cannot read page-config.json: ${(e as Error).message}`, "error");
    return;
  }
  const d = config.dataset;
  document.getElementById("model-name")!.textContent = config.name;
  document.getElementById("model-facts")!.textContent =
    `${
      d.kind === "votes" ? "37 Galaxy Zoo vote fractions" : `${d.classes.length} classes`
    } (scheme ${d.scheme}); input: centre ${formatPercent(d.crop, 0)} of the shorter side, ` +
    `resized to ${d.size}×${d.size} px`;
  if (config.server) {
    document.getElementById("nav-run")!.hidden = false;
    document.getElementById("nav-predictions")!.hidden = !config.predictions;
  }
  let backend;
  let model: tf.LayersModel;
  try {
    setStatus("Starting TF.js…");
    backend = await chooseBackend();
    setStatus(`Loading the model on ${backend.label}…`);
    model = await tf.loadLayersModel("model/model.json");
    // Compile the kernels once, so the first image's time is the network's.
    tf.tidy(() => model.predict(tf.zeros([1, d.size, d.size, 3], "int32")));
  } catch (e) {
    setStatus(`The model could not be loaded: ${(e as Error).message}`, "error");
    return;
  }
  const badge = document.getElementById("backend")!;
  badge.textContent = `TF.js backend: ${backend.label}`;
  badge.dataset.backend = backend.name;
  badge.title = backend.skipped.length ? `passed over: ${backend.skipped.join("; ")}` : "";
  setStatus("Ready: drop JPEG or PNG galaxy images here, or choose files.", "ready");
  document.body.dataset.ready = "1";

  const results = document.getElementById("results")!;
  const tta = document.getElementById("tta") as HTMLInputElement;

  const classify = async (file: File) => {
    const card = el("article", {
      class: "result",
      "data-file": file.name,
      "data-state": "working",
    });
    const head = el(
      "header",
      {},
      el("h3", {}, file.name),
      el("span", { class: "meta" }, "working…"),
    );
    card.append(head);
    results.prepend(card);
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const image = await decode(file);
      const pixels = cropResize(
        { data: image.data, width: image.width, height: image.height, channels: 4 },
        { size: d.size, crop: d.crop },
        isJpegBytes(bytes),
      );
      const useTta = tta.checked;
      const t0 = performance.now();
      const values = await predictBatch(model, { n: 1, ids: [file.name], pixels }, {
        tta: useTta,
        flipPairs: d.flipPairs,
      });
      const ms = performance.now() - t0;
      const original = el("img", { class: "original", alt: file.name });
      original.src = URL.createObjectURL(file);
      const pictures = el(
        "div",
        { class: "pictures" },
        el("figure", {}, original, el("figcaption", {}, `${image.width}×${image.height} original`)),
        el(
          "figure",
          {},
          inputPreview(pixels, d.size),
          el("figcaption", {}, `${d.size}×${d.size} network input`),
        ),
      );
      const chart = d.kind === "votes"
        ? votesTree(config.questions, d.classes, values)
        : classBars(d.classes, values);
      head.querySelector(".meta")!.textContent = `${useTta ? "8-view TTA, " : ""}${
        ms.toFixed(0)
      } ms on ${backend.name}`;
      head.querySelector("h3")!.append(" ", el("span", { class: "verdict" }, verdict(d, values)));
      if (!isExactCrop(image.width, image.height, d)) {
        // Said once above the results, marked on each card.
        head.querySelector(".meta")!.append(" · resized in the browser ≈");
        document.getElementById("resize-note")!.hidden = false;
      }
      card.append(el("div", { class: "result-body" }, pictures, chart));
      card.dataset.tta = useTta ? "1" : "0";
      card.dataset.values = JSON.stringify(Array.from(values));
      card.dataset.state = "done";
    } catch (e) {
      head.querySelector(".meta")!.textContent = "";
      card.append(
        el("p", { class: "error" }, `Cannot classify ${file.name}: ${(e as Error).message}`),
      );
      card.dataset.state = "error";
    }
  };
  let queue = Promise.resolve();
  const take = (files: Iterable<File>) => {
    for (const f of files) {
      if (!/^image\/(jpeg|png)$/.test(f.type) && !/\.(jpe?g|png)$/i.test(f.name)) {
        const card = el(
          "article",
          { class: "result", "data-file": f.name, "data-state": "error" },
          el("header", {}, el("h3", {}, f.name)),
          el("p", { class: "error" }, "Not a JPEG or PNG file: skipped."),
        );
        results.prepend(card);
        continue;
      }
      queue = queue.then(() => classify(f));
    }
  };
  const input = document.getElementById("files") as HTMLInputElement;
  input.addEventListener("change", () => {
    take(input.files ?? []);
    input.value = "";
  });
  const zone = document.getElementById("drop")!;
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take(e.dataTransfer?.files ?? []);
  });
}

main();
