/**
 * `deno task export --model RUN --format onnx|torch --out FILE [--overwrite]`:
 * a finished run's model as one ONNX graph, or as torchvision `resnet34`
 * weights (safetensors); see lib/export/export.ts and docs/export.md.
 *
 * Exit status: 0 written; 1 failure; 2 usage error (also: not a finished
 * run, unknown format, existing output without --overwrite).
 *
 * @module
 */
import { setupBackend } from "../lib/backend.ts";
import { formatBytes, required, runMain } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { exportModel } from "../lib/export/export.ts";
import { EXPORT_TASK } from "../lib/tasks/export.ts";

const USAGE = usage(EXPORT_TASK);

async function main(): Promise<number> {
  const f = parseTask(EXPORT_TASK, Deno.args);
  // Exporting reads weights and computes nothing: the plain JavaScript backend does.
  await setupBackend({ requested: "cpu" });
  const s = await exportModel({
    model: required("model", f.model, USAGE),
    format: required("format", f.format, USAGE),
    out: required("out", f.out, USAGE),
    overwrite: f.overwrite,
  });
  const what = s.layout
    ? `ResNet-34, ${s.layout.stem} stem, ${s.layout.head} head, width ${s.layout.filters[0] / 64}`
    : "model";
  console.log(`${what} from ${s.runDir}`);
  console.log(`wrote ${s.format} to ${s.out} (${formatBytes(s.bytes)})`);
  return 0;
}

await runMain(main);
