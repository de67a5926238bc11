/**
 * The run an export reads: the one place `deno task export` opens a run
 * folder, so it follows however the toolkit opens runs.
 *
 * @module
 */
import { join } from "node:path";
import { UsageError } from "../cli.ts";
import { resolveRunDir } from "../run/run_dir.ts";
import { openRun, type Run } from "../run/open.ts";

/**
 * Opens the finished training run that `value` (a `--model` value, in any
 * form {@linkcode resolveRunDir} takes) names. A run is finished once
 * training wrote `report.json`; before that `model/` holds only the best
 * epoch so far, and exporting it is refused with a {@linkcode UsageError}.
 */
export async function openFinishedRun(value: string, flag = "--model"): Promise<Run> {
  const dir = await resolveRunDir(value, flag);
  const report = join(dir, "report.json");
  try {
    await Deno.stat(report);
  } catch {
    throw new UsageError(
      `${flag} ${value}: ${dir} is not a finished run (no report.json: training has not ended; ` +
        `finish it with \`deno task train --resume\`, or export it once training is done)`,
    );
  }
  return await openRun(dir);
}
