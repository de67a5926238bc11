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
 *   [--concurrency N] [--processes N] [--size 64] [--crop 0.5]
 *
 * @module
 */
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { numberFlag } from "../../lib/cli.ts";
import { preprocess } from "../../lib/preprocess.ts";

const a = workloadFlags({
  in: { type: "string" },
  scheme: { type: "string" },
  concurrency: { type: "string" },
  processes: { type: "string" },
  size: { type: "string" },
  crop: { type: "string" },
});
if (!a.in) throw new Error("--in is required");

const out = await Deno.makeTempDir({ prefix: "galaxy-bench-preprocess-" });
try {
  const t0 = performance.now();
  const r = await preprocess({
    inDir: a.in,
    outDir: out,
    scheme: a.scheme,
    size: numberFlag("size", a.size, 64),
    crop: numberFlag("crop", a.crop, 0.5),
    concurrency: numberFlag("concurrency", a.concurrency, undefined),
    processes: numberFlag("processes", a.processes, undefined),
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
