/**
 * Checking, before long work, that its output can be written: a job that
 * scores thousands of images must not find at the end that `--out` is on a
 * read-only disk. The check creates (and removes) a temporary file where the
 * output will go, so it sees what the write will see: permissions, a
 * read-only mount, a path through a file.
 *
 * @module
 */
import { dirname, join } from "node:path";

/**
 * Throws, naming `flag` and `path`, when nothing can be written at `path`:
 * into it when `kind` is `folder` (created if missing, as the writer
 * would), beside it when `file`.
 */
export async function assertWritable(
  path: string,
  kind: "file" | "folder",
  flag = "--out",
): Promise<void> {
  const dir = kind === "folder" ? path : dirname(path) || ".";
  const probe = join(dir, `.galaxy-write-check-${Deno.pid}.tmp`);
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
    await Deno.remove(probe);
  } catch (e) {
    await Deno.remove(probe).catch(() => {});
    throw new Error(
      `${flag} ${path}: cannot write ${kind === "folder" ? "into" : "beside"} it ` +
        `(${(e as Error).message}); nothing was done: choose a ${kind} you can write to`,
    );
  }
}
