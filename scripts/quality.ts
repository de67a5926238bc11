/**
 * `deno task quality --scheme votes|gz5|gz1 --seeds 0,1,2,3,4`: the
 * toolkit's defaults against the PyTorch reference over several seeds,
 * tables into docs/quality.md; see lib/quality/run.ts.
 *
 * Exit status: 0 done; 1 failure; 2 usage error.
 *
 * @module
 */
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { required, runMain } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { runQuality } from "../lib/quality/run.ts";
import { QUALITY_TASK } from "../lib/tasks/quality.ts";

async function main(): Promise<number> {
  const f = parseTask(QUALITY_TASK, Deno.args);
  const scheme = required("scheme", f.scheme, usage(QUALITY_TASK));
  // The scoring runs in this process (the training in child processes, each choosing its own).
  console.log(describeBackend(await setupBackend({})));
  const root = new URL("..", import.meta.url).pathname;
  const section = await runQuality({
    scheme,
    seeds: f.seeds ?? [0, 1, 2, 3, 4],
    shared: f.shared ?? `${root}../shared/data`,
    work: f.work,
    doc: f.doc ?? `${root}docs/quality.md`,
    trainFlags: (f["train-flags"] ?? "").split(/\s+/).filter(Boolean),
    tta: f.tta,
    root,
    python: f.python,
    stepSeconds: f["step-seconds"],
    log: (line) => console.log(line),
  });
  console.log(section);
  return 0;
}

await runMain(main);
