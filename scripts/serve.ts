/**
 * `deno task serve --model RUN [--port 8080] [--host 127.0.0.1]
 * [--predictions CSV --images DIR]`: a local web app around a run; see
 * lib/serve/server.ts.
 *
 * Exit status: 0 stopped by Ctrl-C; 1 failure; 2 usage error.
 *
 * @module
 */
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { required, runMain, UsageError } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { SERVE_TASK } from "../lib/tasks/serve.ts";
import { configureSharp } from "../lib/data/image.ts";
import { openModelFlag } from "../lib/serve/model_flag.ts";
import { startServer } from "../lib/serve/server.ts";
import { assertSiteBuilt } from "../lib/web/site.ts";

const USAGE = usage(SERVE_TASK);

async function main(): Promise<number> {
  const f = parseTask(SERVE_TASK, Deno.args);
  const modelFlag = required("model", f.model, USAGE);
  if (f.images && !f.predictions) throw new UsageError("--images goes with --predictions");
  await assertSiteBuilt();
  console.log(describeBackend(await setupBackend({ requested: f.backend })));
  configureSharp();
  const run = await openModelFlag(modelFlag, { verify: !f["no-verify"] });
  const d = run.dataset;
  console.log(
    `model: ${modelFlag} (scheme ${d.scheme}, ${d.classes.length} outputs, ${d.size} px, crop ${d.crop})`,
  );
  const server = await startServer({
    run,
    port: f.port,
    host: f.host,
    predictions: f.predictions,
    images: f.images,
    limits: { maxBytes: Math.round(f["max-mb"] * 1024 * 1024), maxConcurrent: f.concurrency },
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
