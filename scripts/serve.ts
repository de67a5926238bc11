/**
 * `deno task serve --model RUN [--port 8080] [--host 127.0.0.1]
 * [--predictions CSV --images DIR]`: a local web app around a run; see
 * lib/serve/server.ts.
 *
 * Exit status: 0 stopped by Ctrl-C; 1 failure; 2 usage error.
 *
 * @module
 */
import { BACKEND_NAMES, describeBackend, setupBackend } from "../lib/backend.ts";
import { choiceFlag, numberFlag, parseFlags, required, runMain, UsageError } from "../lib/cli.ts";
import { configureSharp } from "../lib/data/image.ts";
import { openModelFlag } from "../lib/serve/model_flag.ts";
import { PREDICT_API_LIMITS } from "../lib/serve/predict_api.ts";
import { startServer } from "../lib/serve/server.ts";
import { assertSiteBuilt } from "../lib/web/site.ts";

const USAGE = `usage: deno task serve --model RUN_DIR [flags]

  --model RUN_DIR       training run folder (config.json + model/)
  --port N              port (8080; 0 picks a free one)
  --host ADDR           address to listen on (127.0.0.1: this machine only;
                        0.0.0.0 for every interface)
  --predictions CSV     a predictions file of deno task predict, for the predictions page
  --images DIR          the folder of its images, for thumbnails
  --max-mb N            largest image POST /api/predict accepts, MiB (${
  PREDICT_API_LIMITS.maxBytes / 1024 / 1024
})
  --concurrency N       images predicted at once by the API (${PREDICT_API_LIMITS.maxConcurrent})
  --backend NAME        ${BACKEND_NAMES.join("|")} for the API (default: the fastest that loads)
  --quiet               no line per request

pages: /  classify in the browser · /run.html  the run · /predictions.html  browse --predictions
API:   curl -F file=@galaxy.jpg http://127.0.0.1:8080/api/predict[?tta=1]
       (or the bytes as the body: curl --data-binary @galaxy.fits ...)`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    model: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    predictions: { type: "string" },
    images: { type: "string" },
    "max-mb": { type: "string" },
    concurrency: { type: "string" },
    backend: { type: "string" },
    quiet: { type: "boolean" },
  }, USAGE);
  const modelFlag = required("model", f.model, USAGE);
  const port = numberFlag("port", f.port, 8080, { min: 0, max: 65535, integer: true });
  const maxMb = numberFlag("max-mb", f["max-mb"], PREDICT_API_LIMITS.maxBytes / 1024 / 1024, {
    min: 0.001,
    max: 1024,
  });
  const concurrency = numberFlag("concurrency", f.concurrency, PREDICT_API_LIMITS.maxConcurrent, {
    min: 1,
    max: 64,
    integer: true,
  });
  if (f.images && !f.predictions) throw new UsageError("--images goes with --predictions");
  const backend = choiceFlag("backend", f.backend, BACKEND_NAMES, undefined);
  await assertSiteBuilt();
  console.log(describeBackend(await setupBackend({ requested: backend })));
  configureSharp();
  const run = await openModelFlag(modelFlag);
  const d = run.dataset;
  console.log(
    `model: ${modelFlag} (scheme ${d.scheme}, ${d.classes.length} outputs, ${d.size} px, crop ${d.crop})`,
  );
  const server = await startServer({
    run,
    port,
    host: f.host ?? "127.0.0.1",
    predictions: f.predictions,
    images: f.images,
    limits: { maxBytes: Math.round(maxMb * 1024 * 1024), maxConcurrent: concurrency },
    log: f.quiet ? undefined : (line) => console.log(line),
  });
  console.log(`serving on ${server.url}/  (Ctrl-C stops)`);
  const stop = () => server.close();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  run.model.dispose();
  return 0;
}

await runMain(main);
