/**
 * ResNet-34 (He et al. 2016, v1) as a TensorFlow.js Layers model, written
 * as a few block functions in the manner of Keras' `applications/resnet.py`.
 *
 * Matches torchvision's `resnet34` layer for layer (bias-free convolutions,
 * batch norm after each, 1x1 projection shortcuts where the shape changes),
 * with a configurable head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { NUM_VOTES, QUESTIONS, questionSlice } from "../data/schema.ts";
import { Standardize } from "./standardize.ts";
import { batchNormalization } from "./batch_norm.ts";
import { conv2d } from "./conv2d.ts";
import { GalaxyZooVotes } from "./votes_head.ts";
import { TreeProjection } from "./tree_projection.ts";
import { SeededDropout } from "./seeded_dropout.ts";
import { mixSeed } from "../random.ts";

/**
 * What the model predicts: `softmax` class probabilities; for the 37 vote
 * fractions, `sigmoid` (one independent sigmoid per answer, trained as such,
 * projected onto the decision tree at prediction time by
 * {@linkcode TreeProjection}) or `tree` (the tree-consistent head of
 * {@linkcode GalaxyZooVotes}).
 */
export type HeadKind = "softmax" | "sigmoid" | "tree";

/** Heads that predict the 37 vote fractions. */
export const VOTE_HEADS: readonly HeadKind[] = ["sigmoid", "tree"];

/** Options of {@linkcode resnet34}. */
export interface ResNetOptions {
  /** Input side in pixels, or [height, width]. Default 64. */
  inputSize?: number | [number, number];
  /** Input channels. Default 3. */
  channels?: number;
  /** Number of outputs: classes for `softmax`; must be 37 for a vote head. Default 5. */
  outputs?: number;
  /** Default `softmax`. */
  head?: HeadKind;
  /**
   * Dropout rate before the head. Default 0, as torchvision's `resnet34`:
   * 0.3 cost 0.004 RMSE on the Kaggle votes over 5 seeds (docs/quality.md).
   */
  dropout?: number;
  /**
   * `imagenet`: 7x7 stride-2 conv and 3x3 stride-2 max-pool (torchvision);
   * `small`: one 3x3 stride-1 conv and no pool, for inputs of 64 px and less.
   */
  stem?: "imagenet" | "small";
  /** L2 penalty on every kernel. Default 0. */
  weightDecay?: number;
  /**
   * Multiplier of every stage's filters (64/128/256/512 at 1). Below 1 it is
   * a narrow ResNet-34 for quick experiments and tests. Default 1.
   */
  width?: number;
  /** Per-channel pixel mean (0-255 units) the model standardises with. */
  mean?: number[];
  /** Per-channel pixel standard deviation (0-255 units), paired with `mean`. */
  std?: number[];
  /** Seed of every initializer: the same seed gives the same initial weights. */
  seed?: number;
  /**
   * Vote heads: the 37 fractions the untrained model starts from, e.g. the
   * training split's mean (see {@linkcode initialVoteBias}). Default: none
   * (zero bias: 0.5 from every sigmoid, uniform answers from the tree).
   */
  initialVotes?: ArrayLike<number>;
  /** Name of the model. */
  name?: string;
}

/**
 * The choices inside the network that follow torchvision rather than TF.js
 * defaults (docs/quality.md), recorded in a run's config.json so a run
 * says which network it trained.
 */
export const ARCHITECTURE = {
  stridedConvPadding: "1 on every side (torchvision), not TF 'same'",
  convInit: "N(0, 2 / fan_out), untruncated (torchvision kaiming_normal_)",
  headInit: "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torchvision nn.Linear)",
  batchNormMovingVariance: "unbiased batch variance (torch)",
  sigmoidVotesOutput: "projected onto the decision tree outside training",
} as const;

/** Stages of ResNet-34: [filters, blocks]. */
const STAGES: readonly [number, number][] = [[64, 3], [128, 4], [256, 6], [512, 3]];

/** Shared layer settings: seeded He init (fan-out, as torchvision) and optional L2. */
class Init {
  #seed: number;
  #count = 0;
  constructor(seed: number, readonly weightDecay: number) {
    this.#seed = seed;
  }
  /** A distinct nonzero seed per initializer: TF.js treats seed 0 as "unseeded". */
  #next(): number {
    return mixSeed(this.#seed, this.#count++) || 1;
  }
  /**
   * N(0, 2 / fan_out) with fan_out = kernel^2 filters: torchvision's
   * kaiming_normal_(mode="fan_out"). Not TF.js' varianceScaling "normal",
   * which draws from a normal truncated at 2 sd and so starts every kernel
   * 12 % smaller than intended.
   */
  kernel(kernel: number, filters: number): ReturnType<typeof tf.initializers.glorotUniform> {
    return tf.initializers.randomNormal({
      mean: 0,
      stddev: Math.sqrt(2 / (kernel * kernel * filters)),
      seed: this.#next(),
    });
  }
  /**
   * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torchvision's nn.Linear kernel, for
   * every head: logits start about 2.4 times smaller than under Glorot, so
   * a vote head's sigmoids do not start saturated at 0 or 1 and a class
   * head's softmax starts as flat as torchvision's.
   */
  smallDense(): ReturnType<typeof tf.initializers.glorotUniform> {
    return tf.initializers.varianceScaling({
      scale: 1 / 3,
      mode: "fanIn",
      distribution: "uniform",
      seed: this.#next(),
    });
  }
  regularizer(): ReturnType<typeof tf.regularizers.l2> | undefined {
    return this.weightDecay > 0 ? tf.regularizers.l2({ l2: this.weightDecay }) : undefined;
  }
}

function conv(
  x: tf.SymbolicTensor,
  filters: number,
  kernel: number,
  stride: number,
  padding: "same" | "valid",
  name: string,
  init: Init,
): tf.SymbolicTensor {
  // Only the gradients a step needs (lib/model/conv2d.ts); saved as a plain Conv2D.
  return conv2d({
    filters,
    kernelSize: kernel,
    strides: stride,
    padding,
    useBias: false,
    kernelInitializer: init.kernel(kernel, filters),
    kernelRegularizer: init.regularizer(),
    name,
  }).apply(x) as tf.SymbolicTensor;
}

function batchNorm(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  // PyTorch's defaults (momentum 0.1 there is 0.9 here), so the peer comparison is like for like.
  // One-call forward and backward passes (lib/model/batch_norm.ts); saved as a plain BatchNormalization.
  return batchNormalization({ axis: 3, momentum: 0.9, epsilon: 1e-5, name })
    .apply(x) as tf.SymbolicTensor;
}

function relu(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return tf.layers.reLU({ name }).apply(x) as tf.SymbolicTensor;
}

/** A basic residual block: two 3x3 convs, with a 1x1 projection shortcut when the shape changes. */
function basicBlock(
  x: tf.SymbolicTensor,
  filters: number,
  stride: number,
  name: string,
  init: Init,
): tf.SymbolicTensor {
  const inFilters = x.shape[3];
  let shortcut = x;
  if (stride !== 1 || inFilters !== filters) {
    shortcut = conv(x, filters, 1, stride, "valid", `${name}_0_conv`, init);
    shortcut = batchNorm(shortcut, `${name}_0_bn`);
  }
  // A strided 3x3 conv pads 1 on every side, as torchvision's does. TF's "same" would pad only
  // the bottom and right of an even-sized input, centring the branch one pixel off the 1x1
  // shortcut's samples (and off torchvision's grid); see docs/quality.md.
  let y = x;
  if (stride !== 1) {
    y = tf.layers.zeroPadding2d({ padding: 1, name: `${name}_1_pad` }).apply(
      y,
    ) as tf.SymbolicTensor;
  }
  y = conv(y, filters, 3, stride, stride !== 1 ? "valid" : "same", `${name}_1_conv`, init);
  y = relu(batchNorm(y, `${name}_1_bn`), `${name}_1_relu`);
  y = conv(y, filters, 3, 1, "same", `${name}_2_conv`, init);
  y = batchNorm(y, `${name}_2_bn`);
  const sum = tf.layers.add({ name: `${name}_add` }).apply([shortcut, y]) as tf.SymbolicTensor;
  return relu(sum, `${name}_out`);
}

/** A stage of `blocks` basic blocks; the first one may downsample. */
function stack(
  x: tf.SymbolicTensor,
  filters: number,
  blocks: number,
  stride: number,
  name: string,
  init: Init,
): tf.SymbolicTensor {
  x = basicBlock(x, filters, stride, `${name}_block1`, init);
  for (let i = 2; i <= blocks; i++) x = basicBlock(x, filters, 1, `${name}_block${i}`, init);
  return x;
}

/** Builds ResNet-34 taking raw 0-255 pixels of shape [H, W, C]. */
export function resnet34(options: ResNetOptions = {}): tf.LayersModel {
  const size = options.inputSize ?? 64;
  const [h, w] = typeof size === "number" ? [size, size] : size;
  const channels = options.channels ?? 3;
  const head = options.head ?? "softmax";
  if (!["softmax", ...VOTE_HEADS].includes(head)) {
    throw new Error(`unknown head '${head}': use softmax, sigmoid or tree`);
  }
  const votes = VOTE_HEADS.includes(head);
  const outputs = options.outputs ?? (votes ? NUM_VOTES : 5);
  const stem = options.stem ?? "imagenet";
  const dropout = options.dropout ?? 0;
  if (votes && outputs !== NUM_VOTES) {
    throw new Error(`the ${head} vote head has ${NUM_VOTES} outputs, not ${outputs}`);
  }
  if (!(outputs >= 1)) throw new Error(`outputs must be >= 1, got ${outputs}`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`dropout must be in [0, 1), got ${dropout}`);
  const minSide = stem === "imagenet" ? 32 : 8;
  if (h < minSide || w < minSide) {
    throw new Error(`input ${h}x${w} is too small for the ${stem} stem (at least ${minSide} px)`);
  }
  const width = options.width ?? 1;
  if (!(width > 0 && width <= 4)) throw new Error(`width must be in (0, 4], got ${width}`);
  const filters = (f: number) => Math.max(1, Math.round(f * width));
  const init = new Init(options.seed ?? 0, options.weightDecay ?? 0);

  const input = tf.input({ shape: [h, w, channels], name: "pixels" });
  let x = new Standardize({
    mean: options.mean ?? new Array(channels).fill(127.5),
    std: options.std ?? new Array(channels).fill(127.5),
    name: "standardize",
  }).apply(input) as tf.SymbolicTensor;

  if (stem === "imagenet") {
    x = tf.layers.zeroPadding2d({ padding: 3, name: "conv1_pad" }).apply(x) as tf.SymbolicTensor;
    x = conv(x, filters(64), 7, 2, "valid", "conv1_conv", init);
    x = relu(batchNorm(x, "conv1_bn"), "conv1_relu");
    x = tf.layers.zeroPadding2d({ padding: 1, name: "pool1_pad" }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: "pool1_pool" })
      .apply(x) as tf.SymbolicTensor;
  } else {
    x = conv(x, filters(64), 3, 1, "same", "conv1_conv", init);
    x = relu(batchNorm(x, "conv1_bn"), "conv1_relu");
  }

  STAGES.forEach(([f, blocks], i) => {
    x = stack(x, filters(f), blocks, i === 0 ? 1 : 2, `conv${i + 2}`, init);
  });

  x = tf.layers.globalAveragePooling2d({ name: "avg_pool" }).apply(x) as tf.SymbolicTensor;
  if (dropout > 0) {
    x = new SeededDropout({ rate: dropout, seed: options.seed, name: "dropout" })
      .apply(x) as tf.SymbolicTensor;
  }
  const logits = tf.layers.dense({
    units: outputs,
    kernelInitializer: init.smallDense(),
    kernelRegularizer: init.regularizer(),
    name: votes ? "votes_logits" : "logits",
  }).apply(x) as tf.SymbolicTensor;
  const out = head === "tree"
    ? new GalaxyZooVotes({ name: "votes" }).apply(logits) as tf.SymbolicTensor
    : head === "sigmoid"
    // Outside training the 37 sigmoids are projected onto the decision tree (docs/quality.md).
    ? new TreeProjection({ name: "votes" }).apply(
      tf.layers.activation({ activation: "sigmoid", name: "votes_sigmoid" }).apply(logits),
    ) as tf.SymbolicTensor
    : tf.layers.softmax({ name: "probs" }).apply(logits) as tf.SymbolicTensor;

  const model = tf.model({ inputs: input, outputs: out, name: options.name ?? "resnet34" });
  if (votes && options.initialVotes !== undefined) {
    const layer = model.getLayer("votes_logits");
    tf.tidy(() =>
      layer.setWeights([
        layer.getWeights()[0],
        tf.tensor1d(initialVoteBias(head as "sigmoid" | "tree", options.initialVotes!)),
      ])
    );
  }
  return model;
}

/**
 * The logit bias that makes a vote head output `votes` (37 fractions) when
 * its kernel contributes nothing: for `sigmoid`, logit(v); for `tree`, the
 * log of each answer's share of its question (the head's softmax is blind to
 * a common shift). Fractions are clipped to [1e-3, 1 - 1e-3] first, so no
 * bias is infinite.
 */
export function initialVoteBias(head: "sigmoid" | "tree", votes: ArrayLike<number>): Float32Array {
  if (votes.length !== NUM_VOTES) {
    throw new Error(`initial votes need ${NUM_VOTES} fractions, got ${votes.length}`);
  }
  const clip = (v: number) => Math.min(1 - 1e-3, Math.max(1e-3, Number.isFinite(v) ? v : 0.5));
  const bias = new Float32Array(NUM_VOTES);
  if (head === "sigmoid") {
    for (let i = 0; i < NUM_VOTES; i++) bias[i] = Math.log(clip(votes[i]) / (1 - clip(votes[i])));
    return bias;
  }
  for (const q of QUESTIONS) {
    const [a, b] = questionSlice(q);
    let total = 0;
    for (let i = a; i < b; i++) total += clip(votes[i]);
    for (let i = a; i < b; i++) bias[i] = Math.log(clip(votes[i]) / total);
  }
  return bias;
}

/** Number of trainable scalars in a model (torchvision's `parameters()` count). */
export function countTrainableParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce(
    (n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1),
    0,
  );
}
