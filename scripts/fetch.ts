/**
 * `deno task fetch`: gets the "Galaxy Zoo - The Galaxy Challenge" data into
 * DIR/training_solutions_rev1.csv, DIR/images_training_rev1/ and
 * DIR/images_test_rev1/, from Kaggle (`--out DIR`), from archives already
 * on disk (`--from PATH`), or generated (`--synthetic N`).
 *
 * @module
 */
import { formatBytes, ProgressLine, UsageError } from "../lib/cli.ts";
import { parseTask } from "../lib/flags.ts";
import { FETCH_TASK } from "../lib/tasks/fetch.ts";
import { DEFAULT_API_BASE, KaggleClient } from "../lib/kaggle/client.ts";
import { findCredentials } from "../lib/kaggle/credentials.ts";
import { isDiskFull, isExpectedError } from "../lib/kaggle/errors.ts";
import { fetchCompetition, type FetchEvent } from "../lib/kaggle/fetch.ts";
import { type FetchSummary, importFrom } from "../lib/kaggle/import.ts";
import { describeProgress } from "../lib/kaggle/progress.ts";

function onEvent(p: ProgressLine): (e: FetchEvent) => void {
  return (e) => {
    switch (e.type) {
      case "plan": {
        const files = e.files.map((f) =>
          f.size === undefined ? f.name : `${f.name} (${formatBytes(f.size)})`
        );
        p.log(`to fetch: ${files.join(", ")}`);
        if (e.complete.length) p.log(`already complete: ${e.complete.join(", ")}`);
        break;
      }
      case "download-start":
        p.log(
          `downloading ${e.file}` +
            (e.resumeFrom > 0 ? `, resuming after ${formatBytes(e.resumeFrom)}` : ""),
        );
        break;
      case "download-progress":
        p.update(describeProgress(e.file, e.progress));
        break;
      case "download-done":
        p.log(
          `downloaded ${e.file}: ${formatBytes(e.size)}, size ` +
            (e.md5Verified ? "and MD5 verified" : "verified (no checksum offered)"),
        );
        break;
      case "download-skip":
        p.log(`${e.file}: ${e.reason}`);
        break;
      case "archive-start":
        p.log(`extracting ${e.archive} (${e.entries} files)`);
        break;
      case "extract-progress":
        p.update(`extracting ${e.archive}  ${e.entriesDone} / ${e.entries} files`);
        break;
      case "archive-done": {
        const parts = Object.entries(e.counts).map(([t, n]) => `${n} -> ${t}`);
        p.log(`extracted ${e.archive}: ${parts.join(", ") || "nothing the layout needs"}`);
        break;
      }
      case "archive-skip":
        p.log(`skipping ${e.archive}: ${e.reason}`);
        break;
      case "warning":
        p.log(`warning: ${e.message}`);
        break;
    }
  };
}

async function runSynthetic(
  outDir: string,
  count: number,
  testCount: number | undefined,
  seed: number | undefined,
  p: ProgressLine,
): Promise<void> {
  if (count < 1) throw new UsageError("--synthetic needs at least 1 galaxy");
  // Loaded only here: the generator brings in sharp (native code), which a download does not need.
  const { writeSyntheticKaggle } = await import("../lib/data/synthetic.ts");
  p.log(`writing ${count} synthetic training galaxies into ${outDir}`);
  const s = await writeSyntheticKaggle(outDir, {
    count,
    testCount,
    seed,
    onProgress: (done, total) => p.update(`synthetic: ${done} / ${total} images`),
  });
  p.log(
    `done: ${s.trainCount} training and ${s.testCount} test galaxies (seed ${s.seed}) in ` +
      `${s.outDir}: ${s.rendered} rendered, ${s.skipped} already there`,
  );
}

function describeSummary(s: FetchSummary): string {
  return `done: ${s.outDir}/training_solutions_rev1.csv (${s.trainingRows} rows), ` +
    `images_training_rev1/ (${s.files.images_training_rev1} images), ` +
    `images_test_rev1/ (${s.files.images_test_rev1} images)` +
    (s.skipped.length ? `; skipped as complete: ${s.skipped.join(", ")}` : "");
}

/** Progress rewritten in place on a terminal, a line every 5 s in logs. */
const printer = new ProgressLine(5);

async function main(args: string[]): Promise<void> {
  const values = parseTask(FETCH_TASK, args);
  const p = printer;
  const outDir = values.out;
  const synthetic = values.synthetic;
  if (values.from !== undefined && synthetic !== undefined) {
    throw new UsageError("--from and --synthetic cannot be used together");
  }
  if (synthetic !== undefined) {
    await runSynthetic(
      outDir,
      synthetic,
      values["test-count"],
      values.seed,
      p,
    );
    return;
  }
  if (values.from !== undefined) {
    p.log(`importing ${values.from} into ${outDir}`);
    p.log(describeSummary(await importFrom(values.from, { outDir, onEvent: onEvent(p) })));
    return;
  }
  const connect = () => {
    const { credentials, warnings } = findCredentials();
    for (const w of warnings) p.log(w);
    p.log(`Kaggle user '${credentials.username}' (${credentials.source}); output ${outDir}`);
    return new KaggleClient({
      credentials,
      apiBase: values["api-base"] ?? Deno.env.get("KAGGLE_API_BASE") ?? DEFAULT_API_BASE,
    });
  };
  const summary = await fetchCompetition({
    outDir,
    client: connect,
    competition: values.competition,
    keepArchives: values["keep-archives"],
    retries: values.retries,
    onEvent: onEvent(p),
  });
  p.log(describeSummary(summary));
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (
      e instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
    ) {
      printer.log(`error: ${(e as Error).message} (see 'deno task fetch --help')`);
      Deno.exit(2);
    }
    if (isExpectedError(e)) {
      printer.log(`error: ${e.message.replaceAll("\n", " ")}`);
      Deno.exit(1);
    }
    if (isDiskFull(e)) {
      printer.log(`error: disk full (${(e as Error).message}): free space and run again`);
      Deno.exit(1);
    }
    throw e;
  }
}
