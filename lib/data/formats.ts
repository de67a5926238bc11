/**
 * The one list of image formats the toolkit reads, by file extension. A
 * folder run (predict, preprocess) and a single-file run (predict, the API)
 * go by this list alike: a file with another extension is reported with
 * {@linkcode unsupportedFormat}, naming its format, never skipped silently
 * nor handed to a decoder that happens to read it.
 *
 * @module
 */

/** A format and the extensions (lower case, without the dot) that name it. */
export interface ImageFormat {
  /** Display name. */
  name: string;
  /** Extensions, longest first where one ends another (`fits.gz` before `fits`). */
  extensions: readonly string[];
}

/** The formats read. JPEG, PNG, WebP and TIFF are decoded by sharp (libvips); FITS by lib/io/fits.ts. */
export const IMAGE_FORMATS: readonly ImageFormat[] = [
  { name: "JPEG", extensions: ["jpg", "jpeg"] },
  { name: "PNG", extensions: ["png"] },
  { name: "WebP", extensions: ["webp"] },
  { name: "TIFF", extensions: ["tif", "tiff"] },
  { name: "FITS", extensions: ["fits.gz", "fit.gz", "fts.gz", "fits", "fit", "fts"] },
];

/** Every extension of {@linkcode IMAGE_FORMATS}, longest first. */
export const IMAGE_EXTENSIONS: readonly string[] = IMAGE_FORMATS.flatMap((f) => f.extensions)
  .sort((a, b) => b.length - a.length);

/** The list as people read it: `.jpg, .jpeg, .png, ..., .fts (FITS optionally .gz)`. */
export const IMAGE_EXTENSIONS_TEXT: string = IMAGE_FORMATS.flatMap((f) => f.extensions)
  .filter((e) => !e.endsWith(".gz")).map((e) => `.${e}`).join(", ") + " (FITS optionally .gz)";

/** The image extension `name` ends with (lower case, e.g. `fits.gz`), or null. */
export function imageExtension(name: string): string | null {
  const lower = name.toLowerCase();
  for (const e of IMAGE_EXTENSIONS) {
    if (lower.endsWith(`.${e}`) && lower.length > e.length + 1) return e;
  }
  return null;
}

/** The format of a file by its name, or null when no format of the list has its extension. */
export function imageFormat(name: string): ImageFormat | null {
  const e = imageExtension(name);
  return e === null ? null : IMAGE_FORMATS.find((f) => f.extensions.includes(e))!;
}

/** Whether a file name has one of {@linkcode IMAGE_EXTENSIONS}. */
export function isImageFile(name: string): boolean {
  return imageExtension(name) !== null;
}

/** Whether a file name is a FITS file's (`.fits`, `.fit`, `.fts`, each optionally `.gz`). */
export function isFitsFile(name: string): boolean {
  return imageFormat(name)?.name === "FITS";
}

/** A file's id: its name without the image extension (`g1.fits.gz` -> `g1`), else without the last extension. */
export function imageStem(name: string): string {
  const e = imageExtension(name);
  if (e !== null) return name.slice(0, name.length - e.length - 1);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/** Why a file is not read: its extension (or none) and the supported list. */
export function unsupportedFormat(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  const what = dot > 0 ? `'.${base.slice(dot + 1).toLowerCase()}'` : "(no extension)";
  return `unsupported image format ${what}: the formats read are ${IMAGE_EXTENSIONS_TEXT}`;
}

/**
 * The format of a file's bytes by their signature (gzip counts as FITS,
 * the only gzipped format read), or null. For bodies without a file name,
 * such as the API's.
 */
export function formatOfBytes(b: Uint8Array): ImageFormat | null {
  const at = (i: number, text: string) =>
    b.length >= i + text.length && [...text].every((c, k) => b[i + k] === c.charCodeAt(0));
  const byName = (name: string) => IMAGE_FORMATS.find((f) => f.name === name)!;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return byName("JPEG");
  if (at(0, "\x89PNG\r\n\x1a\n")) return byName("PNG");
  if (at(0, "RIFF") && at(8, "WEBP")) return byName("WebP");
  if (at(0, "II*\0") || at(0, "MM\0*")) return byName("TIFF");
  if (at(0, "SIMPLE  =") || (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b)) {
    return byName("FITS");
  }
  return null;
}
