/**
 * Benchmark workload: `preprocess()` of lib/preprocess.ts (what
 * `deno task preprocess` runs) on an input folder, into a fresh temporary
 * dataset folder that is deleted afterwards.
 *
 * Reports `{images_per_sec, images, seconds}`: images decoded and written
 * per second of the whole call (listing, decoding, writing shards and
 * manifest), excluding process start-up and module loading.
 *
 * Usage: deno run ... bench/workloads/preprocess.ts --in DIR [--scheme csv|votes]
 *   [--concurrency N] [--size 64] [--crop 0.5]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { numberArg, printResult } from "../../lib/bench/workload.ts";
import { preprocess } from "../../lib/preprocess.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    in: { type: "string" },
    scheme: { type: "string" },
    concurrency: { type: "string" },
    size: { type: "string" },
    crop: { type: "string" },
  },
  strict: true,
});
if (!a.in) throw new Error("--in is required");

const out = await Deno.makeTempDir({ prefix: "galaxy-bench-preprocess-" });
try {
  const t0 = performance.now();
  const r = await preprocess({
    inDir: a.in,
    outDir: out,
    scheme: a.scheme,
    size: numberArg("size", a.size, 64),
    crop: numberArg("crop", a.crop, 0.5),
    concurrency: a.concurrency === undefined
      ? undefined
      : numberArg("concurrency", a.concurrency, 6),
    unlabeled: false,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (!r.ok) throw new Error(`preprocess reported failure: ${r.summary}`);
  console.error(r.summary);
  printResult({
    images_per_sec: r.decoded / seconds,
    images: r.decoded,
    packed: r.report.totals.packed,
    seconds,
  });
} finally {
  await Deno.remove(out, { recursive: true });
}
