/**
 * `deno task doctor [--smoke] [--backend NAME] [--data DIR]`: will this
 * machine train, and on what? One screen of findings (lib/doctor/doctor.ts),
 * with `--smoke` one line per check that the backend computes what the
 * pure-JS reference computes (lib/doctor/smoke.ts), then the verdict.
 *
 * Exit status: 0 the machine can train (and every smoke check passed);
 * 1 it cannot, the last line says why; 2 usage error.
 *
 * @module
 */
import { BACKEND_NAMES } from "../lib/backend.ts";
import { choiceFlag, parseFlags, runMain } from "../lib/cli.ts";
import { examine, reasons, renderFindings, verdict } from "../lib/doctor/doctor.ts";
import { formatCheck, type SmokeCheck, smokeTest } from "../lib/doctor/smoke.ts";

const USAGE = `usage: deno task doctor [--smoke] [--backend NAME] [--data DIR]

  --smoke          also train a narrow ResNet-34 for one step and compare outputs, loss and
                   every gradient with the pure-JS cpu backend; save, reload and predict;
                   one mirrored step of 2 replicas where /dev/shm works
  --backend NAME   ${BACKEND_NAMES.join("|")} (default: the fastest that loads)
  --data DIR       the data folder whose free disk counts (default: the current folder)

exit status: 0 this machine can train; 1 it cannot (the last line says why); 2 usage error`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    smoke: { type: "boolean" },
    backend: { type: "string" },
    data: { type: "string" },
  }, USAGE);
  const backend = choiceFlag("backend", f.backend, BACKEND_NAMES, undefined);
  const report = await examine({ backend, data: f.data });
  console.log(renderFindings(report));
  const checks: SmokeCheck[] = [];
  if (f.smoke) {
    if (report.backend === null) {
      console.log("smoke: not run, no backend loaded");
    } else {
      console.log(`smoke on ${report.backend.name}:`);
      await smokeTest({
        onCheck: (c) => {
          checks.push(c);
          console.log(`  ${formatCheck(c)}`);
        },
      });
    }
  }
  console.log(verdict(report, checks));
  return reasons(report, checks).length > 0 ? 1 : 0;
}

await runMain(main);
