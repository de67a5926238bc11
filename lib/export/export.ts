/**
 * `deno task export`: a finished run's model as one ONNX graph
 * (`--format onnx`) or as torchvision `resnet34` weights in a safetensors
 * file (`--format torch`), written atomically. See docs/export.md.
 *
 * @module
 */
import { UsageError } from "../cli.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { TOOLKIT_VERSION } from "../version.ts";
import { exportMetadata, preprocessingText } from "./metadata.ts";
import { modelToOnnx, ONNX_INPUT, ONNX_PROBS_OUTPUT, ONNX_VOTES_OUTPUT } from "./onnx.ts";
import { encodeSafetensors } from "./safetensors.ts";
import { openFinishedRun } from "./source.ts";
import { type ResNetLayout, resnetLayout, torchvisionStateDict } from "./torchvision.ts";

/** The formats `--format` takes. */
export const EXPORT_FORMATS = ["onnx", "torch"] as const;
/** One of {@linkcode EXPORT_FORMATS}. */
export type ExportFormat = typeof EXPORT_FORMATS[number];

/** Settings of {@linkcode exportModel}. */
export interface ExportOptions {
  /** The run, as `--model` names it (RUN, RUN/model, RUN/model/model.json or a file:// URL). */
  model: string;
  format: string;
  /** File to write. */
  out: string;
  /** Replace `out` if it exists (default: refuse). */
  overwrite?: boolean;
}

/** What {@linkcode exportModel} wrote. */
export interface ModelExportSummary {
  /** The run folder read. */
  runDir: string;
  format: ExportFormat;
  out: string;
  /** Size of the file written. */
  bytes: number;
  /** Stem, head and widths, where the model is the toolkit's ResNet-34. */
  layout: ResNetLayout | null;
  /** The metadata stored in the file. */
  metadata: Record<string, string>;
}

function checkFormat(format: string): ExportFormat {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`unknown --format '${format}': use ${EXPORT_FORMATS.join(" or ")}`);
  }
  return format as ExportFormat;
}

async function checkOut(out: string, overwrite: boolean): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(out);
  } catch {
    return;
  }
  if (info.isDirectory) throw new UsageError(`--out ${out} is a folder, not a file`);
  if (!overwrite) {
    throw new UsageError(`--out ${out} exists: pass --overwrite to replace it`);
  }
}

/**
 * Exports the run's model. The format and `out` are checked before the
 * model is read; the file is written atomically (a temporary file renamed
 * over `out`), so an existing file is replaced whole or not at all.
 */
export async function exportModel(o: ExportOptions): Promise<ModelExportSummary> {
  const format = checkFormat(o.format);
  await checkOut(o.out, o.overwrite ?? false);
  const run = await openFinishedRun(o.model);
  try {
    let layout: ResNetLayout | null = null;
    let bytes: Uint8Array;
    let metadata: Record<string, string>;
    if (format === "torch") {
      layout = resnetLayout(run.model);
      metadata = {
        ...exportMetadata(run, layout),
        output: layout.head === "softmax"
          ? "logits (apply softmax)"
          : layout.head === "sigmoid" && layout.treeProjection
          ? "logits (apply a sigmoid to each, then project_to_tree of galaxy_torch.py)"
          : layout.head === "sigmoid"
          ? "logits (apply a sigmoid to each)"
          : "logits (apply the tree vote head of galaxy_torch.py)",
        format: "pt",
      };
      bytes = encodeSafetensors(torchvisionStateDict(run.model), metadata);
    } else {
      try {
        layout = resnetLayout(run.model);
      } catch {
        // ONNX takes any model of the toolkit's layers, not only its ResNet-34.
      }
      const outputName = run.dataset.kind === "votes" ? ONNX_VOTES_OUTPUT : ONNX_PROBS_OUTPUT;
      metadata = {
        ...exportMetadata(run, layout),
        input: `${ONNX_INPUT}: float32 [batch, ${run.dataset.size}, ${run.dataset.size}, 3], ` +
          "NHWC, RGB, 0-255",
        layout: "NHWC",
        output: `${outputName}: float32 [batch, ${run.dataset.classes.length}], in the order of ` +
          "classes",
      };
      bytes = modelToOnnx(run.model, {
        outputName,
        metadata,
        producerVersion: TOOLKIT_VERSION,
        docString: `Galaxy classifier exported from ${run.dir} by deno task export. Input: ` +
          `${preprocessingText(run.dataset.crop, run.dataset.size)}.`,
      });
    }
    await writeFileAtomic(o.out, bytes);
    return { runDir: run.dir, format, out: o.out, bytes: bytes.length, layout, metadata };
  } finally {
    run.model.dispose();
  }
}
