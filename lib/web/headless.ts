/**
 * Headless Chromium for the page tests and the in-browser bench, driven
 * over the DevTools protocol by puppeteer-core (which never downloads a
 * browser): the system's Chromium (`$CHROMIUM`, else `chromium`,
 * `chromium-browser` or `google-chrome` on the PATH) with a fresh profile
 * that is removed on close, and no background network traffic.
 *
 * @module
 */
import puppeteer, { type Browser } from "puppeteer-core";
import { join } from "node:path";

/** The flags Chromium runs with: headless, no sandbox (root in CI), no background traffic. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** The Chromium executable to use, or null with the reason none was found. */
export function findChromium(): { path: string } | { path: null; reason: string } {
  const fromEnv = Deno.env.get("CHROMIUM");
  const names = fromEnv ? [fromEnv] : ["chromium", "chromium-browser", "google-chrome"];
  const dirs = fromEnv?.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":");
  for (const name of names) {
    for (const dir of dirs) {
      const path = dir ? join(dir, name) : name;
      try {
        if (Deno.statSync(path).isFile) return { path };
      } catch { /* not here */ }
    }
  }
  return {
    path: null,
    reason: fromEnv
      ? `$CHROMIUM=${fromEnv} does not exist`
      : "no chromium, chromium-browser or google-chrome on the PATH (Debian: apt-get install chromium)",
  };
}

/** A running headless browser; `close` ends it and removes its profile. */
export interface HeadlessBrowser {
  /** The puppeteer handle on the browser. */
  browser: Browser;
  /** Ends the browser (SIGKILL if it has not closed within 10 s) and removes its profile. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium; throws after `timeoutMs` (default 60 s) if it
 * does not come up. `protocolTimeoutMs` (default 60 s) bounds each call
 * into the page, which waits while the page's main thread is busy (a long
 * model call on a software WebGL renderer).
 */
export async function launchChromium(
  executablePath: string,
  o: { timeoutMs?: number; protocolTimeoutMs?: number } = {},
): Promise<HeadlessBrowser> {
  const profile = await Deno.makeTempDir({ prefix: "galaxy-chromium-" });
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath,
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`],
      pipe: true,
      timeout: o.timeoutMs ?? 60_000,
      protocolTimeout: o.protocolTimeoutMs ?? 60_000,
    });
  } catch (e) {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    browser,
    close: async () => {
      const proc = browser.process();
      // close() waits for the browser; a hung one is killed after 10 s.
      const timer = setTimeout(() => proc?.kill("SIGKILL"), 10_000);
      try {
        await browser.close();
      } catch {
        proc?.kill("SIGKILL");
      } finally {
        clearTimeout(timer);
        await Deno.remove(profile, { recursive: true }).catch(() => {});
      }
    },
  };
}
