/**
 * The toolkit's ResNet-34 (lib/model/resnet.ts) read back from a loaded
 * model: which stem, head and widths it has, and its weights under
 * torchvision's `resnet34` state-dict names.
 *
 * Keras names to torchvision names:
 * - `conv1_conv`, `conv1_bn` -> `conv1`, `bn1`;
 * - `conv{s}_block{b}_{1,2}_{conv,bn}` -> `layer{s-1}.{b-1}.{conv,bn}{1,2}`;
 * - `conv{s}_block{b}_0_{conv,bn}` (projection shortcut) -> `layer{s-1}.{b-1}.downsample.{0,1}`;
 * - `logits` / `votes_logits` (Dense) -> `fc`.
 * Conv kernels go from HWIO to OIHW, the Dense kernel is transposed, and
 * batch norm's gamma/beta/moving_mean/moving_variance become
 * weight/bias/running_mean/running_var plus torch's `num_batches_tracked`.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { HeadKind } from "../model/resnet.ts";
import { hwioToOihw, transpose2d } from "./layouts.ts";
import type { SafeTensor } from "./safetensors.ts";

/** What a toolkit ResNet-34 is made of, read from its layers. */
export interface ResNetLayout {
  /** `imagenet` (7x7 stride-2 conv, max-pool) or `small` (3x3 stride-1 conv, no pool). */
  stem: "imagenet" | "small";
  head: HeadKind;
  /** Filters of the stem and of each stage (64/128/256/512 at width 1). */
  filters: number[];
  /** Batch-norm epsilon (the same in every layer). */
  epsilon: number;
  /** Per-channel mean and std (0-255 units) of the standardisation layer. */
  mean: number[];
  std: number[];
  /** Outputs of the final Dense layer. */
  outputs: number;
  /**
   * How the 3x3 stride-2 convolutions pad: `torchvision` (1 on every side,
   * an explicit ZeroPadding2D layer: models made since issue 23) or
   * `tf_same` (TF's `same`, 0 before and 1 after an even side: runs made
   * before, which still load and export).
   */
  stridedConvPadding: "torchvision" | "tf_same";
  /**
   * Sigmoid heads: whether the outputs are projected onto the decision tree
   * at inference (a `GalaxyTreeProjection` layer, lib/model/tree_projection.ts;
   * models made since issue 23). False for the other heads and older runs.
   */
  treeProjection: boolean;
}

const BLOCKS = [3, 4, 6, 3];

/** The torchvision name of a toolkit ResNet-34 conv/bn/dense layer, or null for other layers. */
export function torchvisionName(keras: string): string | null {
  if (keras === "conv1_conv") return "conv1";
  if (keras === "conv1_bn") return "bn1";
  if (keras === "logits" || keras === "votes_logits") return "fc";
  const m = /^conv(\d)_block(\d+)_([012])_(conv|bn)$/.exec(keras);
  if (!m) return null;
  const [, stage, block, part, kind] = m;
  const prefix = `layer${Number(stage) - 1}.${Number(block) - 1}`;
  if (part === "0") return `${prefix}.downsample.${kind === "conv" ? 0 : 1}`;
  return `${prefix}.${kind}${part}`;
}

function notResNet(why: string): never {
  throw new Error(`not the toolkit's ResNet-34 (${why}); only ONNX can export this model`);
}

/** The stem, head and widths of a toolkit ResNet-34; throws, saying why, for another model. */
export function resnetLayout(model: tf.LayersModel): ResNetLayout {
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const has = (n: string) => byName.has(n);
  if (!has("conv1_conv") || !has("standardize")) notResNet("no conv1_conv or standardize layer");
  for (let s = 0; s < 4; s++) {
    for (let b = 1; b <= BLOCKS[s]; b++) {
      if (!has(`conv${s + 2}_block${b}_2_conv`)) notResNet(`no conv${s + 2}_block${b}_2_conv`);
    }
    if (has(`conv${s + 2}_block${BLOCKS[s] + 1}_1_conv`)) {
      notResNet(`stage ${s + 2} has extra blocks`);
    }
  }
  const out = model.layers[model.layers.length - 1];
  const dense = byName.get("logits") ?? byName.get("votes_logits") ?? notResNet("no logits layer");
  const projected = out.getClassName() === "GalaxyTreeProjection";
  // The layer the projection reads: the sigmoid (named `votes_sigmoid` then).
  const beforeProjection = projected ? out.inboundNodes[0]?.inboundLayers[0] : undefined;
  const head: HeadKind = out.getClassName() === "GalaxyZooVotes"
    ? "tree"
    : projected && beforeProjection?.getClassName() === "Activation" &&
        beforeProjection.getConfig().activation === "sigmoid"
    ? "sigmoid"
    : byName.has("votes") && out.getClassName() === "Activation" &&
        out.getConfig().activation === "sigmoid"
    ? "sigmoid"
    : out.getClassName() === "Softmax"
    ? "softmax"
    : notResNet(`output layer ${out.name} is ${out.getClassName()}`);
  const filtersOf = (n: string) => (byName.get(n)!.weights[0].shape as number[])[3];
  const epsilons = new Set(
    model.layers.filter((l) => l.getClassName() === "BatchNormalization")
      .map((l) => l.getConfig().epsilon as number),
  );
  if (epsilons.size !== 1) notResNet(`batch norm epsilons ${[...epsilons]}`);
  const standardize = byName.get("standardize") as unknown as { mean: number[]; std: number[] };
  // Every strided 3x3 conv pads the same way: all explicitly (1 on every side) or none (TF same).
  const strided = [3, 4, 5].map((s) => byName.get(`conv${s}_block1_1_conv`)!);
  const padded = strided.map((conv) => {
    const before = conv.inboundNodes[0]?.inboundLayers[0];
    const c = conv.getConfig();
    if (before?.getClassName() === "ZeroPadding2D" && c.padding === "valid") {
      const p = JSON.stringify(before.getConfig().padding);
      if (p !== JSON.stringify([[1, 1], [1, 1]])) notResNet(`${before.name} pads ${p}`);
      return true;
    }
    if (c.padding !== "same") notResNet(`${conv.name} has padding ${c.padding} and no pad layer`);
    return false;
  });
  if (new Set(padded).size !== 1) notResNet("its strided convolutions pad in different ways");
  return {
    stem: has("pool1_pool") ? "imagenet" : "small",
    head,
    filters: [
      filtersOf("conv1_conv"),
      ...[2, 3, 4, 5].map((s) => filtersOf(`conv${s}_block1_1_conv`)),
    ],
    epsilon: [...epsilons][0],
    mean: [...standardize.mean],
    std: [...standardize.std],
    outputs: (dense.weights[0].shape as number[])[1],
    stridedConvPadding: padded[0] ? "torchvision" : "tf_same",
    treeProjection: projected,
  };
}

/**
 * The model's weights as torchvision `resnet34` names them, in the order of
 * its `state_dict()`. Throws for a model that is not a toolkit ResNet-34.
 */
export function torchvisionStateDict(model: tf.LayersModel): Map<string, SafeTensor> {
  resnetLayout(model);
  const out = new Map<string, SafeTensor>();
  const f32 = (data: Float32Array, shape: number[]): SafeTensor => ({ dtype: "F32", shape, data });
  const mapped = model.layers.filter((l) => l.weights.length > 0);
  for (const layer of mapped) {
    const name = torchvisionName(layer.name);
    if (name === null) notResNet(`layer ${layer.name} has weights but no torchvision name`);
    const w = new Map(
      layer.weights.map((v) => [
        (v.originalName ?? v.name).split("/").pop()!,
        { data: v.read().dataSync() as Float32Array, shape: v.shape as number[] },
      ]),
    );
    const cls = layer.getClassName();
    if (cls === "Conv2D") {
      const k = w.get("kernel")!;
      if (w.has("bias")) notResNet(`${layer.name} has a bias`);
      const [h, wd, i, o] = k.shape;
      out.set(`${name}.weight`, f32(hwioToOihw(k.data, k.shape), [o, i, h, wd]));
    } else if (cls === "BatchNormalization") {
      const mean = w.get("moving_mean")!;
      const n = mean.data.length;
      out.set(`${name}.weight`, f32(w.get("gamma")?.data ?? new Float32Array(n).fill(1), [n]));
      out.set(`${name}.bias`, f32(w.get("beta")?.data ?? new Float32Array(n), [n]));
      out.set(`${name}.running_mean`, f32(mean.data, [n]));
      out.set(`${name}.running_var`, f32(w.get("moving_variance")!.data, [n]));
      out.set(`${name}.num_batches_tracked`, {
        dtype: "I64",
        shape: [],
        data: new BigInt64Array(1),
      });
    } else if (cls === "Dense") {
      const k = w.get("kernel")!;
      const [nIn, nOut] = k.shape;
      out.set(`${name}.weight`, f32(transpose2d(k.data, k.shape), [nOut, nIn]));
      out.set(`${name}.bias`, f32(w.get("bias")?.data ?? new Float32Array(nOut), [nOut]));
    } else {
      notResNet(`layer ${layer.name} of class ${cls} has weights`);
    }
  }
  return out;
}
