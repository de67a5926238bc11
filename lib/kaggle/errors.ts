/**
 * The errors a person running `deno task fetch` is expected to meet, each
 * with a message that says what to do. Scripts print these as one line,
 * without a stack trace; anything else is a bug and keeps its stack.
 *
 * @module
 */
import { ZipError } from "../io/zip.ts";

/** What went wrong, for callers and tests that branch on it. */
export type FetchErrorKind =
  | "credentials"
  | "auth"
  | "rules"
  | "not-found"
  | "http"
  | "network"
  | "disk-full"
  | "mismatch"
  | "corrupt"
  | "missing-data";

/** An expected failure of fetching or importing the data. */
export class FetchError extends Error {
  constructor(readonly kind: FetchErrorKind, message: string) {
    super(message);
    this.name = "FetchError";
  }
}

/** True for the errors a user can meet and fix (printed without stack trace). */
export function isExpectedError(e: unknown): e is FetchError | ZipError {
  return e instanceof FetchError || e instanceof ZipError;
}

/** True for a "no space left on device" error from the file system. */
export function isDiskFull(e: unknown): boolean {
  return e instanceof Error &&
    ((e as { code?: string }).code === "ENOSPC" || /No space left on device/i.test(e.message));
}
