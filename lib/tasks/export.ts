/**
 * The flags of `deno task export`, declared once: scripts/export.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, choice, text } from "../flags.ts";
import { EXPORT_FORMATS } from "../export/export.ts";

/** `deno task export`. */
export const EXPORT_TASK = {
  task: "export",
  synopsis: [
    `deno task export --model RUN --format ${EXPORT_FORMATS.join("|")} --out FILE [--overwrite]`,
  ],
  flags: {
    model: text(
      "RUN",
      "a finished training run folder (config.json, model/, report.json); also RUN/model, " +
        "RUN/model/model.json or a file:// URL of one of these",
    ),
    format: choice(
      EXPORT_FORMATS,
      "onnx: the whole model (standardisation, ResNet-34, head) as one ONNX graph (opset 13), " +
        "input float32 NHWC RGB 0-255 pixels, output what predict writes; torch: torchvision " +
        "resnet34 weights as safetensors (logits; python/galaxy_torch.py builds the other stems " +
        "and heads)",
      { arg: "F" },
    ),
    out: text("FILE", "file to write (atomically)"),
    overwrite: bool("replace FILE if it exists"),
  },
  epilogue: "exit status: 0 written; 1 failure; 2 usage error (also: not a finished run, " +
    "an existing output without --overwrite)",
};
