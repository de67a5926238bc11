/**
 * A toolkit model (TF.js Layers) as one ONNX graph, layer by layer: the
 * graph takes what `predict` feeds the model (NHWC RGB pixels, 0-255, as
 * float32) and outputs what `predict` writes (class probabilities or the 37
 * vote fractions).
 *
 * The input is transposed to NCHW once, at the start, so every 4-D layer
 * maps onto the ONNX operator of the same meaning: Conv (kernel HWIO to
 * OIHW, TF's `same` padding as explicit, possibly asymmetric, pads; see
 * padding.ts), BatchNormalization, Relu, Pad, MaxPool, Add,
 * GlobalAveragePool. Dropout is the identity at inference and is left out.
 * The tree vote head (lib/model/votes_head.ts) becomes per-question
 * Slice/Softmax/Mul nodes. The projection of sigmoid vote fractions onto the
 * decision tree (lib/model/tree_projection.ts) becomes a Loop running the
 * same Dykstra iterations with the same per-image stopping rule, in float64
 * as there (see `treeProjection` below). A layer of any other kind is
 * refused by name.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { QUESTIONS, questionSlice, voteIndex } from "../data/schema.ts";
import { GraphBuilder, type ValueSpec } from "./onnx_graph.ts";
import { hwioToOihw } from "./layouts.ts";
import { onnxPads } from "./padding.ts";
import {
  affineProjection,
  MAX_PROJECTION_ITERATIONS,
  PROJECTION_TOLERANCE,
} from "../model/tree_projection.ts";
import { NUM_VOTES } from "../data/schema.ts";

/** Names of the exported graph's input and output tensors. */
export const ONNX_INPUT = "pixels";
/** Output of a softmax (class) model; {@linkcode ONNX_VOTES_OUTPUT} for the 37 vote fractions. */
export const ONNX_PROBS_OUTPUT = "probabilities";
/** Output of a vote model (sigmoid or tree head). */
export const ONNX_VOTES_OUTPUT = "vote_fractions";
/** Name of the symbolic batch dimension. */
export const ONNX_BATCH = "batch";

/** A tensor of the graph being built: its name and whether it is 4-D NCHW or 2-D [N, features]. */
interface Value {
  name: string;
  rank: 2 | 4;
}

/** The weights of a layer by their short name (`kernel`, `gamma`, `moving_mean` ...). */
function weightsOf(layer: tf.layers.Layer): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const w of layer.weights) {
    const short = (w.originalName ?? w.name).split("/").pop()!.replace(/_\d+$/, "");
    out.set(short, { data: w.read().dataSync() as Float32Array, shape: w.shape as number[] });
  }
  return out;
}

function need<T>(v: T | undefined, layer: tf.layers.Layer, what: string): T {
  if (v === undefined) throw new Error(`layer ${layer.name}: no ${what}`);
  return v;
}

/** Spatial [height, width] of a layer's 4-D NHWC input. */
function spatialIn(layer: tf.layers.Layer): [number, number] {
  const shapes = layer.inboundNodes[0].inputShapes;
  // One shape, or a list of one per input.
  const s = (Array.isArray(shapes[0]) ? shapes[0] : shapes) as (number | null)[];
  if (s.length !== 4 || s[1] === null || s[2] === null) {
    throw new Error(`layer ${layer.name}: needs a known 4-D input shape, got [${s}]`);
  }
  return [s[1], s[2]];
}

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [v[0], v[1]] : [v as number, v as number];

function activation(g: GraphBuilder, x: Value, kind: string, name: string): Value {
  switch (kind) {
    case "linear":
      return x;
    case "relu":
      return { name: g.node("Relu", [x.name], {}, name), rank: x.rank };
    case "sigmoid":
      return { name: g.node("Sigmoid", [x.name], {}, name), rank: x.rank };
    case "softmax":
      if (x.rank !== 2) throw new Error(`layer ${name}: softmax over a 4-D tensor`);
      return { name: g.node("Softmax", [x.name], { axis: { int: -1 } }, name), rank: 2 };
    default:
      throw new Error(`layer ${name}: activation '${kind}' is not exported`);
  }
}

/** The tree vote head: each question's softmax, scaled by the sum of its parent answers. */
function treeVotes(g: GraphBuilder, logits: Value, name: string): Value {
  const axis = g.int64s(`${name}/axis`, [1]);
  const slice = (x: string, start: number, end: number, label: string) => {
    const bounds = [
      g.int64s(`${name}/${label}_start`, [start]),
      g.int64s(`${name}/${label}_end`, [end]),
    ];
    return g.node("Slice", [x, ...bounds, axis], {}, `${name}/${label}`);
  };
  const blocks: string[] = [];
  // Each answer column as its own [N, 1] tensor, sliced only where a later question needs it.
  const block = new Map<number, { tensor: string; offset: number }>();
  const sliced = new Map<string, string>();
  const column = (c: string) => {
    if (!sliced.has(c)) {
      const { tensor, offset } = block.get(voteIndex(c))!;
      sliced.set(c, slice(tensor, offset, offset + 1, c));
    }
    return sliced.get(c)!;
  };
  let expected = 0;
  for (const q of QUESTIONS) {
    const [a, b] = questionSlice(q);
    if (a !== expected) throw new Error(`internal error: question ${q.id} starts at column ${a}`);
    expected = b;
    const label = `Q${q.id}`;
    let p = g.node(
      "Softmax",
      [slice(logits.name, a, b, label)],
      { axis: { int: -1 } },
      `${name}/${label}`,
    );
    if (q.parents.length > 0) {
      // Parents are earlier questions, so their columns are already final.
      const parents = q.parents.map(column);
      const reach = parents.length === 1
        ? parents[0]
        : g.node("Sum", parents, {}, `${name}/${label}_reach`);
      p = g.node("Mul", [p, reach], {}, `${name}/${label}`);
    }
    for (let i = a; i < b; i++) block.set(i, { tensor: p, offset: i - a });
    blocks.push(p);
  }
  return { name: g.node("Concat", blocks, { axis: { int: 1 } }, name), rank: 2 };
}

/**
 * lib/model/tree_projection.ts' `projectToTree` algorithm as an ONNX Loop, image by image as
 * there: in float64, x = the fractions (non-finite ones as 0), q = 0; each
 * iteration y = x M + c (the affine projection), z = y + q, x = max(z, 0),
 * q = z - x; an image stops at the first iteration whose y has no entry
 * below -tolerance, with output max(y, 0); one that never does by the
 * iteration cap outputs its last x. The Loop ends once every image of the
 * batch has stopped (an image that stopped keeps its output while the
 * others go on), or at the cap: the same iterations and stopping rule as
 * `predict`, not a fixed count.
 */
function treeProjection(g: GraphBuilder, x: Value, name: string): Value {
  if (x.rank !== 2) throw new Error(`layer ${name}: tree projection of a 4-D tensor`);
  const { matrix, offset } = affineProjection();
  const m = g.doubles(`${name}/affine_matrix`, matrix, [NUM_VOTES, NUM_VOTES]);
  const c = g.doubles(`${name}/affine_offset`, offset, [1, NUM_VOTES]);
  const tolerance = g.doubles(`${name}/tolerance`, [PROJECTION_TOLERANCE], []);
  const zero = g.doubles(`${name}/zero`, [0], []);
  // Non-finite fractions count as 0, as projectToTree reads them.
  const wide = g.node("Cast", [x.name], { to: { int: 11 } }, name);
  const bad = g.node("Or", [g.node("IsNaN", [wide], {}, name), g.node("IsInf", [wide], {}, name)]);
  const x0 = g.node("Where", [bad, zero, wide], {}, name);
  const q0 = g.node("Mul", [x0, zero], {}, name);
  const axis1 = g.int64s(`${name}/axis1`, [1]);
  const column = g.node(
    "Slice",
    [x0, g.int64s(`${name}/start`, [0]), g.int64s(`${name}/end`, [1]), axis1],
    {},
    name,
  );
  // [N, 1] false: no image has stopped yet.
  const done0 = g.node("Less", [column, column], {}, name);

  const b = g.subgraph();
  const iter = b.reserve(`${name}/body/iteration`);
  const condIn = b.reserve(`${name}/body/cond_in`);
  const [xi, qi, di, oi] = ["x", "q", "done", "out"].map((v) => b.reserve(`${name}/body/${v}_in`));
  const y = b.node("Add", [b.node("MatMul", [xi, m], {}, name), c], {}, name);
  const z = b.node("Add", [y, qi], {}, name);
  const xo = b.node("Relu", [z], {}, name);
  const qo = b.node("Sub", [z, xo], {}, name);
  const negative = b.node(
    "ReduceMax",
    [b.node("Neg", [y], {}, name)],
    { axes: { ints: [1] }, keepdims: { int: 1 } },
    name,
  );
  const converged = b.node("Not", [b.node("Less", [tolerance, negative], {}, name)], {}, name);
  const stopsNow = b.node("And", [converged, b.node("Not", [di], {}, name)], {}, name);
  const oo = b.node("Where", [stopsNow, b.node("Relu", [y], {}, name), oi], {}, name);
  const doneOut = b.node("Or", [di, converged], {}, name);
  const running = b.node(
    "ReduceSum",
    [b.node("Cast", [b.node("Not", [doneOut], {}, name)], { to: { int: 11 } }, name)],
    { keepdims: { int: 0 } },
    name,
  );
  const condOut = b.node("Less", [zero, running], {}, name);
  const body = b.graph(
    `${name}/dykstra`,
    [
      { name: iter, type: "int64", shape: [] },
      { name: condIn, type: "bool", shape: [] },
      { name: xi, type: "float64" },
      { name: qi, type: "float64" },
      { name: di, type: "bool" },
      { name: oi, type: "float64" },
    ],
    [
      { name: condOut, type: "bool", shape: [] },
      { name: xo, type: "float64" },
      { name: qo, type: "float64" },
      { name: doneOut, type: "bool" },
      { name: oo, type: "float64" },
    ],
  );
  const [xLast, , done, out] = g.nodeOutputs(
    "Loop",
    [
      g.int64s(`${name}/max_iterations`, [MAX_PROJECTION_ITERATIONS], []),
      g.bools(`${name}/run`, [true], []),
      x0,
      q0,
      done0,
      x0,
    ],
    4,
    { body: { graph: body } },
    name,
  );
  const result = g.node("Where", [done, out, xLast], {}, name);
  return { name: g.node("Cast", [result], { to: { int: 1 } }, name), rank: 2 };
}

type Converter = (g: GraphBuilder, layer: tf.layers.Layer, inputs: Value[]) => Value;

function single(layer: tf.layers.Layer, inputs: Value[]): Value {
  if (inputs.length !== 1) throw new Error(`layer ${layer.name}: expects one input`);
  return inputs[0];
}

/** One converter per TF.js layer class the toolkit's models use. */
const CONVERTERS: Record<string, Converter> = {
  GalaxyStandardize(g, layer, inputs) {
    const x = single(layer, inputs);
    const { mean, std } = layer as unknown as { mean: number[]; std: number[] };
    const shape = x.rank === 4 ? [1, mean.length, 1, 1] : [1, mean.length];
    const centred = g.node(
      "Sub",
      [x.name, g.floats(`${layer.name}/mean`, mean, shape)],
      {},
      layer.name,
    );
    const scaled = g.node(
      "Div",
      [centred, g.floats(`${layer.name}/std`, std, shape)],
      {},
      layer.name,
    );
    return { name: scaled, rank: x.rank };
  },
  Conv2D(g, layer, inputs) {
    const x = single(layer, inputs);
    const c = layer.getConfig();
    if (c.dataFormat !== "channelsLast") throw new Error(`layer ${layer.name}: not channels-last`);
    const w = weightsOf(layer);
    const kernel = need(w.get("kernel"), layer, "kernel");
    const [kh, kw] = kernel.shape;
    const strides = pair(c.strides), dilations = pair(c.dilationRate ?? 1);
    const pads = onnxPads(
      c.padding as "same" | "valid",
      spatialIn(layer),
      [kh, kw],
      strides,
      dilations,
    );
    const ins = [
      x.name,
      g.floats(`${layer.name}/kernel`, hwioToOihw(kernel.data, kernel.shape), [
        kernel.shape[3],
        kernel.shape[2],
        kh,
        kw,
      ]),
    ];
    const bias = w.get("bias");
    if (bias) ins.push(g.floats(`${layer.name}/bias`, bias.data, bias.shape));
    const y = g.node("Conv", ins, {
      kernel_shape: { ints: [kh, kw] },
      strides: { ints: strides },
      dilations: { ints: dilations },
      pads: { ints: pads },
    }, layer.name);
    return activation(g, { name: y, rank: 4 }, String(c.activation ?? "linear"), layer.name);
  },
  BatchNormalization(g, layer, inputs) {
    const x = single(layer, inputs);
    const c = layer.getConfig();
    const axis = c.axis as number;
    if (x.rank !== 4 || !(axis === -1 || axis === 3)) {
      throw new Error(`layer ${layer.name}: only channel batch norm of 4-D tensors is exported`);
    }
    const w = weightsOf(layer);
    const mean = need(w.get("moving_mean"), layer, "moving_mean");
    const n = mean.data.length;
    const gamma = w.get("gamma")?.data ?? new Float32Array(n).fill(1);
    const beta = w.get("beta")?.data ?? new Float32Array(n);
    const variance = need(w.get("moving_variance"), layer, "moving_variance").data;
    const y = g.node(
      "BatchNormalization",
      [
        x.name,
        g.floats(`${layer.name}/gamma`, gamma, [n]),
        g.floats(`${layer.name}/beta`, beta, [n]),
        g.floats(`${layer.name}/moving_mean`, mean.data, [n]),
        g.floats(`${layer.name}/moving_variance`, variance, [n]),
      ],
      { epsilon: { float: c.epsilon as number } },
      layer.name,
    );
    return { name: y, rank: 4 };
  },
  ReLU(g, layer, inputs) {
    const c = layer.getConfig();
    if (c.maxValue !== null && c.maxValue !== undefined) {
      throw new Error(`layer ${layer.name}: ReLU with maxValue is not exported`);
    }
    return activation(g, single(layer, inputs), "relu", layer.name);
  },
  Activation(g, layer, inputs) {
    return activation(g, single(layer, inputs), String(layer.getConfig().activation), layer.name);
  },
  Softmax(g, layer, inputs) {
    const x = single(layer, inputs);
    const axis = [layer.getConfig().axis].flat();
    if (axis.length !== 1 || !(axis[0] === -1 || axis[0] === x.rank - 1)) {
      throw new Error(`layer ${layer.name}: softmax over axis ${axis} is not exported`);
    }
    return activation(g, x, "softmax", layer.name);
  },
  ZeroPadding2D(g, layer, inputs) {
    const x = single(layer, inputs);
    const p = layer.getConfig().padding as [[number, number], [number, number]];
    const [[top, bottom], [left, right]] = p;
    const pads = g.int64s(`${layer.name}/pads`, [0, 0, top, left, 0, 0, bottom, right]);
    return {
      name: g.node("Pad", [x.name, pads], { mode: { string: "constant" } }, layer.name),
      rank: 4,
    };
  },
  MaxPooling2D(g, layer, inputs) {
    const x = single(layer, inputs);
    const c = layer.getConfig();
    const size = pair(c.poolSize), strides = pair(c.strides ?? c.poolSize);
    // ONNX pads a max-pool with -inf, TF's `same` ignores the padding: the same maximum.
    const pads = onnxPads(c.padding as "same" | "valid", spatialIn(layer), size, strides);
    const y = g.node("MaxPool", [x.name], {
      kernel_shape: { ints: size },
      strides: { ints: strides },
      pads: { ints: pads },
    }, layer.name);
    return { name: y, rank: 4 };
  },
  Add(g, layer, inputs) {
    const y = inputs.length === 2
      ? g.node("Add", inputs.map((v) => v.name), {}, layer.name)
      : g.node("Sum", inputs.map((v) => v.name), {}, layer.name);
    return { name: y, rank: inputs[0].rank };
  },
  GlobalAveragePooling2D(g, layer, inputs) {
    const x = single(layer, inputs);
    const pooled = g.node("GlobalAveragePool", [x.name], {}, layer.name);
    return { name: g.node("Flatten", [pooled], { axis: { int: 1 } }, layer.name), rank: 2 };
  },
  Dense(g, layer, inputs) {
    const x = single(layer, inputs);
    if (x.rank !== 2) throw new Error(`layer ${layer.name}: Dense over a 4-D tensor`);
    const w = weightsOf(layer);
    const kernel = need(w.get("kernel"), layer, "kernel");
    const [nIn, nOut] = kernel.shape;
    const bias = w.get("bias")?.data ?? new Float32Array(nOut);
    const y = g.node(
      "Gemm",
      [
        x.name,
        g.floats(`${layer.name}/kernel`, kernel.data, [nIn, nOut]),
        g.floats(`${layer.name}/bias`, bias, [nOut]),
      ],
      {},
      layer.name,
    );
    return activation(g, { name: y, rank: 2 }, String(layer.getConfig().activation), layer.name);
  },
  GalaxyZooVotes(g, layer, inputs) {
    return treeVotes(g, single(layer, inputs), layer.name);
  },
  GalaxyTreeProjection(g, layer, inputs) {
    return treeProjection(g, single(layer, inputs), layer.name);
  },
  // Identity at inference.
  Dropout: (_g, layer, inputs) => single(layer, inputs),
  GalaxySeededDropout: (_g, layer, inputs) => single(layer, inputs),
};

/** What {@linkcode modelToOnnx} needs besides the model. */
export interface OnnxExportOptions {
  /** Name of the output tensor ({@linkcode ONNX_PROBS_OUTPUT} or {@linkcode ONNX_VOTES_OUTPUT}). */
  outputName: string;
  /** Key/value pairs stored as the model's `metadata_props`. */
  metadata: Record<string, string>;
  /** The model's doc string. */
  docString: string;
  /** `producer_version`. */
  producerVersion: string;
}

/**
 * The ONNX model (serialised `ModelProto`) computing `model`'s inference
 * pass: input {@linkcode ONNX_INPUT}, float32 [batch, H, W, C] NHWC; output
 * float32 [batch, outputs]. Throws, naming the layer, for a layer or setting
 * it cannot express.
 */
export function modelToOnnx(model: tf.LayersModel, o: OnnxExportOptions): Uint8Array {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(
      `the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs, not 1 and 1`,
    );
  }
  const [, h, w, c] = model.inputs[0].shape;
  if (h === null || w === null || c === null || model.inputs[0].shape.length !== 4) {
    throw new Error(`the model's input is [${model.inputs[0].shape}], not a fixed [H, W, C] image`);
  }
  const outputs = model.outputs[0].shape[1] as number;
  const g = new GraphBuilder();
  g.unique(ONNX_INPUT);
  const values = new Map<string, Value>();
  for (const layer of model.layers) {
    const inbound = layer.inboundNodes;
    if (inbound.length !== 1) {
      throw new Error(
        `layer ${layer.name} is used ${inbound.length} times; only single use is exported`,
      );
    }
    if (layer.getClassName() === "InputLayer") {
      const nchw = g.node("Transpose", [ONNX_INPUT], { perm: { ints: [0, 3, 1, 2] } }, "to_nchw");
      values.set(layer.name, { name: nchw, rank: 4 });
      continue;
    }
    const convert = CONVERTERS[layer.getClassName()];
    if (!convert) {
      throw new Error(
        `layer ${layer.name} of class ${layer.getClassName()} cannot be exported to ONNX`,
      );
    }
    const inputs = inbound[0].inboundLayers.map((l) => values.get(l.name)!);
    values.set(layer.name, convert(g, layer, inputs));
  }
  const last = values.get(model.outputs[0].sourceLayer.name)!;
  g.node("Identity", [last.name], {}, "output", o.outputName);
  const spec = (name: string, shape: (number | string)[]): ValueSpec => ({
    name,
    type: "float32",
    shape,
  });
  return g.encode({
    graphName: model.name,
    inputs: [spec(ONNX_INPUT, [ONNX_BATCH, h, w, c])],
    outputs: [spec(o.outputName, [ONNX_BATCH, outputs])],
    producerVersion: o.producerVersion,
    docString: o.docString,
    metadata: o.metadata,
  });
}
