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
import { runMain } from "../lib/cli.ts";
import { parseTask } from "../lib/flags.ts";
import { DOCTOR_TASK } from "../lib/tasks/doctor.ts";
import { examine, reasons, renderFindings, verdict } from "../lib/doctor/doctor.ts";
import { formatCheck, type SmokeCheck, smokeTest } from "../lib/doctor/smoke.ts";

async function main(): Promise<number> {
  const f = parseTask(DOCTOR_TASK, Deno.args);
  const report = await examine({ backend: f.backend, data: f.data });
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
