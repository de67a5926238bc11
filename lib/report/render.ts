/**
 * Turning charts into pictures without a browser, a canvas or system
 * fonts: Vega-Lite specs compile to Vega, which renders headless to SVG;
 * resvg (WebAssembly) rasterises the SVG to PNG with the DejaVu Sans font
 * files of the `dejavu-fonts-ttf` npm package, so text renders the same on
 * any machine, fontconfig or not.
 *
 * @module
 */
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import { createRequire } from "node:module";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** The one font family of every picture (bundled, never looked up on the system). */
export const REPORT_FONT = "DejaVu Sans";

/** Vega-Lite config shared by the report's charts. */
export const CHART_CONFIG = {
  font: REPORT_FONT,
  background: "white",
  view: { stroke: "#ccc" },
  title: { fontSize: 14, anchor: "start", subtitleFontSize: 11, subtitleColor: "#555" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 11 },
} as const;

let fontsReady: Promise<Uint8Array[]> | null = null;

/** Loads the resvg WebAssembly module (once) and the bundled font files. */
function fonts(): Promise<Uint8Array[]> {
  fontsReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasm = await Deno.readFile(require.resolve("@resvg/resvg-wasm/index_bg.wasm"));
    await initWasm(wasm);
    const files = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];
    return await Promise.all(
      files.map((f) => Deno.readFile(require.resolve(`dejavu-fonts-ttf/ttf/${f}`))),
    );
  })();
  fontsReady.catch(() => (fontsReady = null));
  return fontsReady;
}

/** Rasterises an SVG document to PNG bytes, `scale` output pixels per SVG unit. */
export async function svgToPng(svg: string, o: { scale?: number } = {}): Promise<Uint8Array> {
  const fontBuffers = await fonts();
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: o.scale ?? 1 },
    font: {
      fontBuffers,
      loadSystemFonts: false,
      defaultFontFamily: REPORT_FONT,
      sansSerifFamily: REPORT_FONT,
    },
  });
  const image = resvg.render();
  try {
    return image.asPng();
  } finally {
    image.free();
    resvg.free();
  }
}

/** Renders a Vega-Lite spec to an SVG document (headless: no canvas, no network). */
export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
