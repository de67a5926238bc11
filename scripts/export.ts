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
import { formatBytes, parseFlags, required, runMain } from "../lib/cli.ts";
import { EXPORT_FORMATS, exportModel } from "../lib/export/export.ts";

const USAGE = `usage: deno task export --model RUN --format ${
  EXPORT_FORMATS.join("|")
} --out FILE [--overwrite]

  --model RUN     a finished training run folder (config.json, model/, report.json); also
                  RUN/model, RUN/model/model.json or a file:// URL of one of these
  --format F      onnx: the whole model (standardisation, ResNet-34, head) as one ONNX graph
                  (opset 13), input float32 NHWC RGB 0-255 pixels, output what predict writes;
                  torch: torchvision resnet34 weights as safetensors (logits; see
                  python/galaxy_torch.py for the other stems and heads)
  --out FILE      file to write (atomically)
  --overwrite     replace FILE if it exists`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    model: { type: "string" },
    format: { type: "string" },
    out: { type: "string" },
    overwrite: { type: "boolean" },
  }, USAGE);
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
