/**
 * `deno task export-web --model RUN --out SITE`: the classify page of a run
 * as a static folder (HTML, JS, the model, TF.js' WebAssembly files) that
 * any static web server can serve; nothing in it needs the toolkit or Deno
 * at view time. See lib/web/site.ts.
 *
 * Exit status: 0 done; 1 failure; 2 usage error.
 *
 * @module
 */
import { formatBytes, required, runMain } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { EXPORT_WEB_TASK } from "../lib/tasks/serve.ts";
import { openModelFlag } from "../lib/serve/model_flag.ts";
import { exportSite } from "../lib/web/site.ts";

const USAGE = usage(EXPORT_WEB_TASK);

async function main(): Promise<number> {
  const f = parseTask(EXPORT_WEB_TASK, Deno.args);
  const run = await openModelFlag(required("model", f.model, USAGE), {
    verify: !f["no-verify"],
  });
  const out = required("out", f.out, USAGE);
  try {
    const s = await exportSite(run, out);
    console.log(`wrote ${s.files.length} files (${formatBytes(s.bytes)}) to ${out}`);
    console.log(`view it with any static web server, e.g.: python3 -m http.server -d ${out}`);
  } finally {
    run.model.dispose();
  }
  return 0;
}

await runMain(main);
