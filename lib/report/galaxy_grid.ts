/**
 * A grid of galaxy thumbnails with captions (e.g. the most confidently
 * wrong test galaxies): sharp upscales each thumbnail, an SVG lays them out
 * with their labels, and resvg rasterises it with the bundled font.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import { escapeXml, REPORT_FONT, svgToPng } from "./render.ts";

/** One galaxy of the grid. */
export interface GridItem {
  id: string;
  /** `side * side * 3` bytes, RGB, row-major: the image as the model saw it. */
  pixels: Uint8Array;
  side: number;
  /** Caption lines under the thumbnail; the first is drawn bold. */
  lines: string[];
  /** Colour of each caption line (CSS colour), default dark grey. */
  colors?: string[];
}

/** Layout of {@linkcode galaxyGrid}. */
export interface GridOptions {
  title: string;
  subtitle?: string;
  columns?: number;
  /** Thumbnail side in pixels (default 128). */
  thumb?: number;
}

/** Width of a grid cell when thumbnails are smaller. */
export const GRID_CELL_WIDTH = 200;

/** Characters a caption line holds before it is cut with an ellipsis (12 px DejaVu Sans: about 6.8 px each). */
export function gridCaptionChars(thumb = 128): number {
  return Math.floor(Math.max(thumb, GRID_CELL_WIDTH) / 6.8);
}

/** `s` cut to `max` characters, the last one an ellipsis when cut. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * Upscales an RGB thumbnail to `thumb` px as PNG: nearest neighbour when
 * enlarging 2x or more (every model input pixel stays visible as a block),
 * Lanczos otherwise.
 */
export async function thumbnailPng(
  pixels: Uint8Array,
  side: number,
  thumb: number,
): Promise<Uint8Array> {
  const kernel = thumb >= 2 * side ? "nearest" : "lanczos3";
  const buf = await sharp(pixels, { raw: { width: side, height: side, channels: 3 } })
    .resize(thumb, thumb, { kernel })
    .png()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Renders the grid to PNG bytes; its size is fixed by the item count and the options. */
export async function galaxyGrid(items: readonly GridItem[], o: GridOptions): Promise<Uint8Array> {
  const thumb = o.thumb ?? 128;
  const columns = Math.max(1, Math.min(o.columns ?? 4, items.length || 1));
  const rows = Math.ceil(items.length / columns);
  const lineCount = Math.max(1, ...items.map((it) => it.lines.length));
  const pad = 12, lineHeight = 15;
  const cellW = Math.max(thumb, GRID_CELL_WIDTH);
  const cellH = thumb + 6 + lineCount * lineHeight;
  const top = o.subtitle ? 52 : 36;
  // Wide enough for the title and subtitle (bold 15 px and 11 px DejaVu Sans, estimated).
  const textWidth = Math.ceil(
    Math.max(o.title.length * 9.5, (o.subtitle?.length ?? 0) * 6.5) + 2 * pad,
  );
  const width = Math.max(pad + columns * (cellW + pad), textWidth);
  const height = top + rows * (cellH + pad) + pad;
  const maxChars = gridCaptionChars(thumb);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="${REPORT_FONT}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="24" font-size="15" font-weight="bold" fill="#111">${
      escapeXml(o.title)
    }</text>`,
  ];
  if (o.subtitle) {
    parts.push(
      `<text x="${pad}" y="42" font-size="11" fill="#555">${escapeXml(o.subtitle)}</text>`,
    );
  }
  for (let k = 0; k < items.length; k++) {
    const it = items[k];
    const x = pad + (k % columns) * (cellW + pad);
    const y = top + Math.floor(k / columns) * (cellH + pad);
    const png = await thumbnailPng(it.pixels, it.side, thumb);
    const href = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
    const ix = x + Math.floor((cellW - thumb) / 2);
    parts.push(
      `<image x="${ix}" y="${y}" width="${thumb}" height="${thumb}" xlink:href="${href}"/>`,
    );
    it.lines.forEach((line, i) => {
      const weight = i === 0 ? ` font-weight="bold"` : "";
      const fill = it.colors?.[i] ?? "#222";
      parts.push(
        `<text x="${x + cellW / 2}" y="${
          y + thumb + 4 + (i + 1) * lineHeight - 3
        }" font-size="12" text-anchor="middle" fill="${fill}"${weight}>${
          escapeXml(clip(line, maxChars))
        }</text>`,
      );
    });
  }
  parts.push("</svg>");
  return await svgToPng(parts.join("\n"));
}
