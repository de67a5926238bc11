/**
 * Benchmark workload: `predict` (lib/predict/predict.ts, what
 * `deno task predict` runs) over a folder of images, timed from the first
 * image to the CSV written (backend start and model load excluded, as the
 * page's are in browser_infer.ts).
 *
 * Reports `{images_per_sec, images, seconds, backend}`.
 *
 * Usage: deno run ... bench/workloads/predict_folder.ts --run RUN_DIR --in IMAGE_DIR
 *
 * @module
 */
import { join } from "node:path";
import { setupBackend } from "../../lib/backend.ts";
import { printResult, workloadFlags } from "../../lib/bench/workload.ts";
import { configureSharp } from "../../lib/data/image.ts";
import { resolveInput } from "../../lib/predict/inputs.ts";
import { predict } from "../../lib/predict/predict.ts";
import { openRun } from "../../lib/run/open.ts";

const a = workloadFlags({ run: { type: "string" }, in: { type: "string" } });
if (!a.run || !a.in) throw new Error("--run and --in are required");
const backend = await setupBackend({});
configureSharp();
const run = await openRun(a.run);
const input = await resolveInput(a.in);
const out = join(await Deno.makeTempDir({ prefix: "galaxy-bench-predict-" }), "p.csv");
try {
  const s = await predict({ run, input, inPath: a.in, out, resume: false });
  printResult({
    images_per_sec: s.predicted / s.seconds,
    images: s.predicted,
    seconds: s.seconds,
    backend: backend.name,
  });
} finally {
  await Deno.remove(out.replace(/\/p\.csv$/, ""), { recursive: true }).catch(() => {});
  run.model.dispose();
}
