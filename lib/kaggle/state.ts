/**
 * The small state file (`DIR/.fetch-state.json`) that lets a re-run skip
 * what is already complete: the archives imported (size, SHA-256), what
 * each layout target held when it was completed, and downloads kept for a
 * later extraction. It is rewritten atomically after every step, so a run
 * killed at any point leaves a state that is true.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { measureTarget, type TargetName } from "./layout.ts";

/** Name of the state file inside the output folder. */
export const STATE_FILE = ".fetch-state.json";

/** A layout target as it was when completed. */
export interface TargetRecord {
  /** Files it held (images) or 1 (the CSV). */
  files: number;
  /** Size of the CSV in bytes. */
  bytes?: number;
  /** Archive it came from. */
  archive: string;
}

/** An archive whose wanted content was all extracted. */
export interface ArchiveRecord {
  size: number;
  sha256: string;
  /** Modification time when imported, to skip re-hashing an unchanged file. */
  mtimeMs?: number;
  targets: TargetName[];
  completedAt: string;
}

/** A finished, verified download not yet removed. */
export interface DownloadRecord {
  size: number;
  sha256: string;
  md5Verified: boolean;
}

/** Contents of the state file. */
export interface FetchState {
  version: 1;
  archives: Record<string, ArchiveRecord>;
  targets: Partial<Record<TargetName, TargetRecord>>;
  downloads: Record<string, DownloadRecord>;
}

/** A state with nothing done. */
export function emptyState(): FetchState {
  return { version: 1, archives: {}, targets: {}, downloads: {} };
}

/** Reads the state of `outDir`; a missing or unreadable file means nothing is done yet. */
export async function loadState(outDir: string): Promise<FetchState> {
  try {
    const s = JSON.parse(await Deno.readTextFile(join(outDir, STATE_FILE)));
    if (s?.version !== 1) return emptyState();
    return {
      version: 1,
      archives: s.archives ?? {},
      targets: s.targets ?? {},
      downloads: s.downloads ?? {},
    };
  } catch {
    return emptyState();
  }
}

/** Writes the state of `outDir` atomically. */
export function saveState(outDir: string, state: FetchState): Promise<void> {
  return writeJsonAtomic(join(outDir, STATE_FILE), state);
}

/**
 * True when the state records `target` as complete and the disk still
 * holds it: the CSV with the same size, or at least as many images.
 */
export async function targetComplete(
  outDir: string,
  state: FetchState,
  target: TargetName,
): Promise<boolean> {
  const rec = state.targets[target];
  if (!rec) return false;
  const now = await measureTarget(outDir, target);
  if (!now || now.files < rec.files) return false;
  return rec.bytes === undefined || now.bytes === rec.bytes;
}
