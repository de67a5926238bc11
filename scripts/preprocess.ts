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
import {
  formatDuration,
  numberFlag,
  parseFlags,
  ProgressLine,
  required,
  runMain,
  UsageError,
} from "../lib/cli.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { SCHEME_NAMES } from "../lib/data/label_schemes.ts";
import { splitSeedFlag } from "../lib/data/split.ts";
import { parseFitsStretch } from "../lib/data/stretch.ts";
import { preprocess, type PreprocessResult, StrictError } from "../lib/preprocess.ts";

const USAGE = `usage: deno task preprocess --in DIR --out DIR [options]
       deno task preprocess --verify --out DIR

  --in DIR           Kaggle folder (training_solutions_rev1.csv + images_training_rev1/),
                     labels.csv + images/, or one sub-folder of images per class
  --out DIR          dataset folder to write (resumes an unfinished run)
  --scheme NAME      ${SCHEME_NAMES.join(" | ")} (default gz5 for Kaggle, csv otherwise)
  --size N           output side in pixels (64)
  --crop F           centre crop, fraction of the shorter side (0.5)
  --fits-stretch Q,LOW,HIGH
                     asinh stretch of FITS inputs: softening Q, black and white
                     percentiles (10,0.5,99.5); see docs/inputs.md
  --val F --test F   split fractions (0.1, 0.1)
  --split-seed S     seed of the split hash (0)
  --shard-mb N       largest shard file in MiB (256)
  --processes N      decoder processes (one per core; 0 decodes in this process)
  --concurrency N    images each decoder works on at once (3; 6 in this process)
  --strict           any bad item is fatal
  --max-bad F        fail when more than this share is bad (0.01)
  --unlabeled / --no-unlabeled
                     pack images_test_rev1 as split 'unlabeled' (default on when present)
  --limit N          only N ids (a fixed hash sample), for quick runs
  --overwrite        replace a dataset built from other input or options
  --verify           re-hash every shard of --out against its manifest`;

async function main(): Promise<number> {
  const a = parseFlags(Deno.args, {
    in: { type: "string" },
    out: { type: "string" },
    scheme: { type: "string" },
    size: { type: "string" },
    crop: { type: "string" },
    "fits-stretch": { type: "string" },
    val: { type: "string" },
    test: { type: "string" },
    "split-seed": { type: "string" },
    "shard-mb": { type: "string" },
    concurrency: { type: "string" },
    processes: { type: "string" },
    strict: { type: "boolean" },
    "max-bad": { type: "string" },
    unlabeled: { type: "boolean" },
    "no-unlabeled": { type: "boolean" },
    limit: { type: "string" },
    overwrite: { type: "boolean" },
    verify: { type: "boolean" },
  }, USAGE);
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
  // Library defaults apply to absent flags; the library checks the ranges.
  const num = (name: string, value: string | undefined) => numberFlag(name, value, undefined);
  const seed = a["split-seed"];
  // Plain lines (logs, CI) at most once a second, as on a terminal before.
  const progress = new ProgressLine(1);
  let result: PreprocessResult;
  try {
    result = await preprocess({
      inDir,
      outDir: out,
      scheme: a.scheme,
      size: num("size", a.size),
      crop: num("crop", a.crop),
      fitsStretch: a["fits-stretch"] === undefined
        ? undefined
        : parseFitsStretch(a["fits-stretch"]),
      val: num("val", a.val),
      test: num("test", a.test),
      splitSeed: seed === undefined ? undefined : splitSeedFlag(seed),
      shardMb: num("shard-mb", a["shard-mb"]),
      concurrency: num("concurrency", a.concurrency),
      processes: num("processes", a.processes),
      strict: a.strict,
      maxBad: num("max-bad", a["max-bad"]),
      unlabeled: a["no-unlabeled"] ? false : a.unlabeled ?? undefined,
      limit: num("limit", a.limit),
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
