/**
 * What an exported model says about itself: the metadata both formats
 * carry (ONNX `metadata_props`, the safetensors `__metadata__`), so a
 * Python caller can preprocess images as the toolkit does and read the
 * outputs without the run folder.
 *
 * @module
 */
import { QUESTIONS, questionSlice, voteIndex } from "../data/schema.ts";
import type { Run } from "../run/open.ts";
import { TOOLKIT_VERSION } from "../version.ts";
import type { ResNetLayout } from "./torchvision.ts";

/**
 * The preprocessing a caller must do before the exported model, in words;
 * `crop` and `size` are the run's.
 */
export function preprocessingText(crop: number, size: number): string {
  return `take the centred square of ${crop} x the image's shorter side, resize it to ` +
    `${size} x ${size} px (Lanczos-3), RGB channel order, values 0-255 (not scaled)`;
}

/**
 * The metadata of an export of `run`: string keys and string values (JSON
 * for lists). `layout` adds the ResNet-34's stem, head, standardisation and
 * batch-norm epsilon where the model is one.
 *
 * Keys: `classes` (JSON list, output order), `kind` (`classes` | `votes`),
 * `scheme`, `crop` (fraction of the shorter side), `size` (pixels),
 * `channel_order` (`RGB`), `value_range` (`0-255`), `preprocessing`
 * (the sentence of {@linkcode preprocessingText}), `source_model_sha256`,
 * `galaxy_version`; for votes runs `vote_tree` ({@linkcode voteTree}); with
 * a layout also `head`, `stem`, `mean` and `std` (JSON, per channel, 0-255
 * units), `bn_epsilon`, `filters` (JSON), `strided_conv_padding`
 * (`torchvision`: 1 on every side; `tf_same`: TF's `same`, runs made before
 * issue 23) and `tree_projection` (`true` where a sigmoid head's outputs are
 * projected onto the decision tree, else `false`).
 */
export function exportMetadata(run: Run, layout: ResNetLayout | null): Record<string, string> {
  const d = run.dataset;
  const meta: Record<string, string> = {
    classes: JSON.stringify(d.classes),
    kind: d.kind,
    scheme: d.scheme,
    crop: String(d.crop),
    size: String(d.size),
    channel_order: "RGB",
    value_range: "0-255",
    preprocessing: preprocessingText(d.crop, d.size),
    source_model_sha256: run.modelDigest,
    galaxy_version: TOOLKIT_VERSION,
  };
  if (d.kind === "votes") meta.vote_tree = JSON.stringify(voteTree());
  if (layout) {
    Object.assign(meta, {
      head: layout.head,
      stem: layout.stem,
      mean: JSON.stringify(layout.mean),
      std: JSON.stringify(layout.std),
      bn_epsilon: String(layout.epsilon),
      filters: JSON.stringify(layout.filters),
      strided_conv_padding: layout.stridedConvPadding,
      tree_projection: String(layout.treeProjection),
    });
  }
  return meta;
}

/**
 * The Galaxy Zoo decision tree as the tree head applies it: per question, in
 * column order, its answers' [start, end) columns and the columns of the
 * answers that lead to it (lib/data/schema.ts).
 */
export function voteTree(): { question: number; columns: [number, number]; parents: number[] }[] {
  return QUESTIONS.map((q) => ({
    question: q.id,
    columns: questionSlice(q),
    parents: q.parents.map(voteIndex),
  }));
}
