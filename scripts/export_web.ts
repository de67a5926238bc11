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
import { formatBytes, parseFlags, required, runMain } from "../lib/cli.ts";
import { openModelFlag } from "../lib/serve/model_flag.ts";
import { exportSite } from "../lib/web/site.ts";

const USAGE = `usage: deno task export-web --model RUN_DIR --out SITE_DIR

  --model RUN_DIR   training run folder (config.json + model/)
  --out SITE_DIR    folder to write the site into (index.html, app/, model/, tfjs-wasm/)
  --no-verify       export a model whose files do not match the SHA-256 recorded when they
                    were written (see docs/run-folder.md); without it such a model is refused

Serve SITE_DIR with any static web server, e.g. python3 -m http.server -d SITE_DIR.
(Opening index.html from disk does not work: browsers do not let a page fetch
files next to it from file:// URLs.)`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    model: { type: "string" },
    out: { type: "string" },
    "no-verify": { type: "boolean" },
  }, USAGE);
  const run = await openModelFlag(required("model", f.model, USAGE), { verify: !f["no-verify"] });
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
