/**
 * `deno task fetch`: downloads the competition's archives through the
 * Kaggle API (resumably), verifies them, and imports them into the layout.
 * Only the archives of missing targets are fetched: a re-run after success
 * makes no request at all, and one after a failure picks up where it
 * stopped.
 *
 * @module
 */
import { basename, join } from "node:path";
import type { KaggleClient } from "./client.ts";
import { ZipError } from "../io/zip.ts";
import { downloadResumable } from "./download.ts";
import { FetchError } from "./errors.ts";
import {
  assertNotSynthetic,
  type FetchSummary,
  finishLayout,
  type ImportEvent,
  type ImportOptions,
  importRecorded,
  missingTargets,
} from "./import.ts";
import { COMPETITION, type TargetName, targetOfName, TARGETS } from "./layout.ts";
import type { ProgressSnapshot } from "./progress.ts";
import { loadState, saveState } from "./state.ts";

/** What fetching reports while it works (import events included). */
export type FetchEvent =
  | ImportEvent
  | { type: "plan"; files: { name: string; size?: number }[]; complete: TargetName[] }
  | { type: "download-start"; file: string; size?: number; resumeFrom: number }
  | { type: "download-progress"; file: string; progress: ProgressSnapshot }
  | { type: "download-done"; file: string; size: number; md5Verified: boolean }
  | { type: "download-skip"; file: string; reason: string };

/** Options of {@linkcode fetchCompetition}. */
export interface FetchOptions extends Omit<ImportOptions, "onEvent"> {
  /**
   * The API client, or a function making it: called only when something is
   * missing, so a complete folder needs no credentials.
   */
  client: KaggleClient | (() => KaggleClient);
  /** Competition slug (default {@linkcode COMPETITION}). */
  competition?: string;
  /** Keep the downloaded archives in `DIR/.downloads` after extraction. */
  keepArchives?: boolean;
  /** Network failures retried per file within the run (default 3). */
  retries?: number;
  /** Base wait between retries in ms (default 2000). */
  retryDelayMs?: number;
  onEvent?: (e: FetchEvent) => void;
}

/** Folder of the downloads inside the output folder. */
export function downloadsDir(outDir: string): string {
  return join(outDir, ".downloads");
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return undefined;
  }
}

/**
 * Fetches whatever the layout in `options.outDir` still lacks: one file
 * per missing target when Kaggle lists them, else the all-files archive.
 */
export async function fetchCompetition(options: FetchOptions): Promise<FetchSummary> {
  const { outDir } = options;
  const competition = options.competition ?? COMPETITION;
  await assertNotSynthetic(outDir);
  await Deno.mkdir(outDir, { recursive: true });
  const state = await loadState(outDir);
  const imported: string[] = [];
  const skipped: string[] = [];
  const importOptions: ImportOptions = { ...options, onEvent: options.onEvent };

  const missing = await missingTargets(outDir, state);
  if (missing.length > 0) {
    const client = typeof options.client === "function" ? options.client() : options.client;
    const listing = await client.listDataFiles(competition);
    const byTarget = new Map<TargetName, { name: string; size?: number }>();
    for (const f of listing.files) {
      const t = targetOfName(f.name);
      // Prefer the zips: they are what the competition ships.
      if (t && (!byTarget.has(t) || /\.zip$/i.test(f.name))) {
        byTarget.set(t, { name: f.name, size: f.totalBytes });
      }
    }
    const perFile = missing.every((t) => byTarget.has(t));
    const plan: { name: string; remote: string | null; size?: number }[] = perFile
      ? missing.map((t) => ({ ...byTarget.get(t)!, remote: byTarget.get(t)!.name }))
      : [{ name: `${competition}.zip`, remote: null }];
    options.onEvent?.({
      type: "plan",
      files: plan.map(({ name, size }) => ({ name, size })),
      complete: TARGETS.filter((t) => !missing.includes(t)),
    });

    for (const item of plan) {
      const target = join(downloadsDir(outDir), basename(item.name));
      const kept = state.downloads[item.name];
      let sha256: string | undefined;
      if (kept && (await sizeOf(target)) === kept.size) {
        sha256 = kept.sha256;
        options.onEvent?.({
          type: "download-skip",
          file: item.name,
          reason: "downloaded and verified by an earlier run",
        });
      } else {
        options.onEvent?.({
          type: "download-start",
          file: item.name,
          size: item.size,
          resumeFrom: (await sizeOf(`${target}.part`)) ?? 0,
        });
        const result = await downloadResumable({
          open: (range) => client.openDataFile(competition, item.remote, range),
          target,
          label: item.name,
          expectedSize: item.size,
          retries: options.retries,
          retryDelayMs: options.retryDelayMs,
          onProgress: (progress) =>
            options.onEvent?.({ type: "download-progress", file: item.name, progress }),
        });
        sha256 = result.sha256;
        state.downloads[item.name] = {
          size: result.size,
          sha256: result.sha256,
          md5Verified: result.md5Verified,
        };
        await saveState(outDir, state);
        options.onEvent?.({
          type: "download-done",
          file: item.name,
          size: result.size,
          md5Verified: result.md5Verified,
        });
      }
      let counts;
      try {
        counts = await importRecorded(target, state, importOptions, sha256);
      } catch (e) {
        if (!(e instanceof ZipError && e.kind === "corrupt")) throw e;
        // Reusing this copy would fail the same way on every run.
        await Deno.remove(target).catch(() => {});
        delete state.downloads[item.name];
        await saveState(outDir, state);
        throw new FetchError(
          "corrupt",
          `${e.message}; the downloaded copy was removed: run again to download it afresh`,
        );
      }
      (counts && Object.keys(counts).length > 0 ? imported : skipped).push(item.name);
      if (!options.keepArchives) {
        await Deno.remove(target).catch(() => {});
        delete state.downloads[item.name];
        await saveState(outDir, state);
      }
    }
  }
  if (!options.keepArchives) await Deno.remove(downloadsDir(outDir)).catch(() => {});
  return finishLayout(
    outDir,
    state,
    `Kaggle competition '${competition}'`,
    imported,
    skipped,
    options.onEvent,
  );
}
