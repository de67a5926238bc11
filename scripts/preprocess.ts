/**
 * `deno task preprocess --in DIR --out DIR [options]`: builds a dataset
 * folder from galaxy images; see lib/preprocess.ts. `--verify --out DIR`
 * re-hashes an existing dataset instead.
 *
 * Exit status: 0 done; 1 failed, or more than `--max-bad` of the items were
 * bad (the dataset is still written), or `--strict` met a bad item;
 * 2 usage error.
 *
 * @module
 */
import { formatDuration, ProgressLine, required, runMain, UsageError } from "../lib/cli.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { PREPROCESS_TASK } from "../lib/tasks/preprocess.ts";
import { preprocess, type PreprocessResult, StrictError } from "../lib/preprocess.ts";

const USAGE = usage(PREPROCESS_TASK);

async function main(): Promise<number> {
  const a = parseTask(PREPROCESS_TASK, Deno.args);
  const out = required("out", a.out, USAGE);
  if (a.verify) {
    const ds = await openDataset(out);
    await ds.verify();
    ds.close();
    console.log(`verified ${ds.manifest.shards.length} shards of ${out}: all checksums match`);
    return 0;
  }
  const inDir = required("in", a.in, USAGE);
  if (a.unlabeled && a["no-unlabeled"]) {
    throw new UsageError(`--unlabeled and --no-unlabeled contradict\n\n${USAGE}`);
  }
  // Plain lines (logs, CI) at most once a second, as on a terminal before.
  const progress = new ProgressLine(1);
  let result: PreprocessResult;
  try {
    result = await preprocess({
      inDir,
      outDir: out,
      scheme: a.scheme,
      // Unset numbers are undefined: the library has their defaults and checks their ranges.
      size: a.size,
      crop: a.crop,
      fitsStretch: a["fits-stretch"],
      val: a.val,
      test: a.test,
      splitSeed: a["split-seed"],
      shardMb: a["shard-mb"],
      concurrency: a.concurrency,
      processes: a.processes,
      strict: a.strict,
      maxBad: a["max-bad"],
      unlabeled: a["no-unlabeled"] ? false : a.unlabeled || undefined,
      limit: a.limit,
      overwrite: a.overwrite,
      log: (line) => progress.log(line),
      onProgress: (p) =>
        progress.update(
          `${p.shard}  ${p.done}/${p.total} images  ${p.imagesPerSecond.toFixed(0)} images/s` +
            `  ETA ${formatDuration(p.etaSeconds)}`,
          p.done === p.total,
        ),
    });
  } catch (e) {
    // A --strict stop has already written report.json.
    if (e instanceof StrictError) {
      throw new Error(`${e.message}\n(bad items are listed in report.json)`, { cause: e });
    }
    throw e;
  } finally {
    progress.done();
  }
  console.log(result.summary);
  if (!result.ok) {
    console.error(
      `error: ${(100 * result.report.badFraction).toFixed(2)}% of the items were bad, ` +
        `more than --max-bad ${(100 * result.report.maxBad).toFixed(2)}% (see ${out}/report.json)`,
    );
    return 1;
  }
  return 0;
}

await runMain(main);
