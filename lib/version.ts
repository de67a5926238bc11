/**
 * The toolkit's version, recorded in dataset manifests and run configs:
 * the one in deno.json, read as text (deno.json may hold comments, so no
 * JSON import).
 *
 * @module
 */

function projectVersion(): string {
  try {
    const text = Deno.readTextFileSync(new URL("../deno.json", import.meta.url));
    return /"version"\s*:\s*"([^"]+)"/.exec(text)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The version field of deno.json, or "unknown" where it cannot be read. */
export const TOOLKIT_VERSION: string = projectVersion();
