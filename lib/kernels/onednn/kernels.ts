/**
 * Registers oneDNN kernels on the TensorFlow.js wasm backend: each reads
 * its inputs from, and writes its outputs to, the wasm heap (no copies),
 * and hands any case it does not cover (other dtypes, dilations, layouts,
 * activations) to the kernel registered before it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OneDnn } from "./library.ts";
import { convGeometry, ConvPrimitives } from "./conv.ts";
import { poolGeometry, PoolPrimitives } from "./pool.ts";
import { BatchNormCache } from "./batch_norm.ts";
import { EltwisePrimitives } from "./eltwise.ts";

/**
 * Batch normalisation in training mode, one oneDNN call: inputs `x` (NHWC,
 * float32), `gamma`, `beta` (`[channels]`); attr `epsilon`; outputs
 * `[y, mean, variance]` (variance biased, as `tf.moments`). Registered on
 * wasm only while the oneDNN kernels are (lib/model/batch_norm.ts asks).
 */
export const BATCH_NORM_TRAINING = "GalaxyBatchNormTraining";
/**
 * Its gradient, one oneDNN call: inputs `dy`, `x`, `mean`, `variance`,
 * `gamma`, `beta`; attr `epsilon`; outputs `[dx, dgamma, dbeta]`.
 */
export const BATCH_NORM_TRAINING_GRAD = "GalaxyBatchNormTrainingGrad";
/**
 * The ReLU gradient, one oneDNN pass: inputs `dy`, `x` (float32, same
 * shape); output `dx = x > 0 ? dy : 0`. While the oneDNN kernels are
 * registered, TF.js' `Relu` gradient uses it on wasm.
 */
export const RELU_GRAD = "GalaxyReluGrad";

type Info = tf.TensorInfo;
type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): Float32Array | Int32Array | Uint8Array;
}

function heap(backend: WasmBackend, info: Info): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

const allF32 = (...infos: (Info | null | undefined)[]) =>
  infos.every((i) => i == null || i.dtype === "float32");

/** The registered state: the library, its primitives and the kernels replaced. */
interface Registration {
  dnnl: OneDnn;
  conv: ConvPrimitives;
  pool: PoolPrimitives;
  batchNorm: BatchNormCache;
  eltwise: EltwisePrimitives;
  previous: Map<string, tf.KernelConfig | undefined>;
  /** TF.js' own `Relu` gradient, put back on unregistering. */
  reluGradient: tf.GradConfig | undefined;
  /** Puts the wasm backend's own `disposeData` back. */
  restoreDispose: () => void;
}

/** The part of the wasm backend that frees tensor data. */
interface Disposer {
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * Has the wasm backend drop the blocked copy of a filter when it frees the
 * filter's data, so that a copy lives exactly as long as its filter
 * (inference keeps every layer's copy; training's old weights take theirs
 * with them). Returns the undo.
 */
function dropCopiesOnDispose(conv: ConvPrimitives): () => void {
  const backend = tf.findBackend("wasm") as unknown as Disposer | null;
  if (backend === null) return () => {};
  const own = backend.disposeData;
  backend.disposeData = function (dataId: object, force?: boolean): boolean {
    const freed = own.call(this, dataId, force);
    if (freed) conv.copies.drop(dataId);
    return freed;
  };
  return () => {
    backend.disposeData = own;
  };
}

let active: Registration | null = null;

function previous(name: string): tf.KernelFunc {
  const k = active?.previous.get(name);
  if (!k) throw new Error(`no wasm kernel '${name}' to fall back to`);
  return k.kernelFunc;
}

function conv2D(args: KernelArgs, name: "Conv2D" | "FusedConv2D"): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info>;
  const a = args.attrs as unknown as tf.FusedConv2DAttrs;
  const activation = a.activation ?? "linear";
  const g = convGeometry(
    x.shape,
    filter.shape,
    a.strides,
    a.pad,
    a.dataFormat,
    a.dilations,
    a.dimRoundingMode,
  );
  const hasBias = bias != null;
  if (
    g === null || preluActivationWeights != null || !allF32(x, filter, bias) ||
    (activation !== "linear" && activation !== "relu") ||
    (hasBias && tf.util.sizeFromShape(bias.shape) !== g.outChannels)
  ) return previous(name)(args) as Info;
  const crop = r.conv.cropFor(g);
  const prim = r.conv.forwardFor(crop?.geometry ?? g, hasBias, activation === "relu");
  const y = backend.makeOutput([g.batch, g.outHeight, g.outWidth, g.outChannels], "float32");
  const w = heap(backend, filter);
  prim.run(
    heap(backend, x),
    crop?.filter(w) ?? w,
    hasBias ? heap(backend, bias) : null,
    heap(backend, y),
    crop?.idOf(filter.dataId) ?? filter.dataId,
  );
  return y;
}

function conv2DBackpropInput(args: KernelArgs): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const g = convGeometry(
    a.inputShape,
    filter.shape,
    a.strides,
    a.pad,
    a.dataFormat,
    1,
    a.dimRoundingMode,
  );
  if (g === null || !allF32(dy, filter)) return previous("Conv2DBackpropInput")(args) as Info;
  const crop = r.conv.cropFor(g);
  const prim = r.conv.backwardDataFor(crop?.geometry ?? g);
  const dx = backend.makeOutput([...a.inputShape], "float32");
  const w = heap(backend, filter);
  const id = crop?.idOf(filter.dataId) ?? filter.dataId;
  prim.run(heap(backend, dy), crop?.filter(w) ?? w, heap(backend, dx), id);
  return dx;
}

function conv2DBackpropFilter(args: KernelArgs): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const g = convGeometry(
    x.shape,
    a.filterShape,
    a.strides,
    a.pad,
    a.dataFormat,
    1,
    a.dimRoundingMode,
  );
  if (g === null || !allF32(x, dy)) return previous("Conv2DBackpropFilter")(args) as Info;
  const crop = r.conv.cropFor(g);
  const prim = r.conv.backwardWeightsFor(crop?.geometry ?? g);
  const dw = backend.makeOutput([...a.filterShape], "float32");
  const [xs, dys, dws] = [heap(backend, x), heap(backend, dy), heap(backend, dw)];
  if (crop === null) prim.run(xs, dys, dws);
  else crop.gradient(dws, (cropped) => prim.run(xs, dys, cropped));
  return dw;
}

function pool(args: KernelArgs, name: "MaxPool" | "AvgPool"): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { x } = args.inputs as { x: Info };
  const a = args.attrs as unknown as tf.MaxPoolAttrs;
  const g = poolGeometry(x.shape, a.filterSize, a.strides, a.pad, a.dimRoundingMode);
  if (g === null || !allF32(x)) return previous(name)(args) as Info;
  const prim = r.pool.forwardFor(g, name === "MaxPool" ? "max" : "avg");
  const y = backend.makeOutput([g.batch, g.outHeight, g.outWidth, g.channels], "float32");
  prim.run(heap(backend, x), heap(backend, y));
  return y;
}

function maxPoolGrad(args: KernelArgs): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const a = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const g = poolGeometry(input.shape, a.filterSize, a.strides, a.pad, a.dimRoundingMode);
  if (g === null || !allF32(dy, input)) return previous("MaxPoolGrad")(args) as Info;
  const prim = r.pool.backwardFor(g, "max");
  const dx = backend.makeOutput([...input.shape], "float32");
  prim.run(heap(backend, input), heap(backend, dy), heap(backend, dx));
  return dx;
}

function avgPoolGrad(args: KernelArgs): Info {
  const r = active!;
  const backend = args.backend as unknown as WasmBackend;
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const a = args.attrs as unknown as tf.AvgPoolGradAttrs;
  const g = poolGeometry(input.shape, a.filterSize, a.strides, a.pad, undefined);
  if (g === null || !allF32(dy, input)) return previous("AvgPoolGrad")(args) as Info;
  const prim = r.pool.backwardFor(g, "avg");
  const dx = backend.makeOutput([...input.shape], "float32");
  prim.run(null, heap(backend, dy), heap(backend, dx));
  return dx;
}

function batchNormShape(x: Info): [number, number, number, number] {
  if (x.shape.length !== 4 || x.dtype !== "float32" || tf.util.sizeFromShape(x.shape) === 0) {
    throw new Error(`${BATCH_NORM_TRAINING} takes a non-empty float32 NHWC tensor, got ${x.shape}`);
  }
  return x.shape as [number, number, number, number];
}

function batchNormTraining(args: KernelArgs): Info[] {
  const backend = args.backend as unknown as WasmBackend;
  const { x, gamma, beta } = args.inputs as { x: Info; gamma: Info; beta: Info };
  const { epsilon } = args.attrs as unknown as { epsilon: number };
  const shape = batchNormShape(x);
  const prim = active!.batchNorm.for({ shape, epsilon });
  const c = shape[3];
  const y = backend.makeOutput([...shape], "float32");
  const mean = backend.makeOutput([c], "float32");
  const variance = backend.makeOutput([c], "float32");
  const h = (i: Info) => heap(backend, i);
  prim.runForward(h(x), h(gamma), h(beta), h(y), h(mean), h(variance));
  return [y, mean, variance];
}

function batchNormTrainingGrad(args: KernelArgs): Info[] {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, x, mean, variance, gamma, beta } = args.inputs as Record<string, Info>;
  const { epsilon } = args.attrs as unknown as { epsilon: number };
  const shape = batchNormShape(x);
  const prim = active!.batchNorm.for({ shape, epsilon });
  const c = shape[3];
  const dx = backend.makeOutput([...shape], "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  const h = (i: Info) => heap(backend, i);
  prim.runBackward(
    h(x),
    h(mean),
    h(variance),
    h(dy),
    h(gamma),
    h(beta),
    h(dx),
    h(dgamma),
    h(dbeta),
  );
  return [dx, dgamma, dbeta];
}

/** TF.js' `FusedBatchNorm` (inference-mode batch norm, `tf.batchNorm`) on NHWC with per-channel statistics. */
function fusedBatchNorm(args: KernelArgs): Info {
  const backend = args.backend as unknown as WasmBackend;
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined>;
  const { varianceEpsilon } = args.attrs as unknown as tf.FusedBatchNormAttrs;
  const c = x!.shape[3];
  const perChannel = (i: Info | undefined) =>
    i != null && i.dtype === "float32" && i.shape.length === 1 && i.shape[0] === c;
  if (
    x!.shape.length !== 4 || x!.dtype !== "float32" || tf.util.sizeFromShape(x!.shape) === 0 ||
    ![mean, variance, offset, scale].every(perChannel)
  ) return previous("FusedBatchNorm")(args) as Info;
  const shape = x!.shape as [number, number, number, number];
  const prim = active!.batchNorm.inferenceFor({ shape, epsilon: varianceEpsilon });
  const y = backend.makeOutput([...shape], "float32");
  const h = (i: Info) => heap(backend, i);
  prim.run(h(x!), h(mean!), h(variance!), h(scale!), h(offset!), h(y));
  return y;
}

function reluGrad(args: KernelArgs): Info {
  const backend = args.backend as unknown as WasmBackend;
  const { dy, x } = args.inputs as { dy: Info; x: Info };
  const size = tf.util.sizeFromShape(x.shape);
  if (!allF32(dy, x) || !tf.util.arraysEqual(dy.shape, x.shape) || size === 0) {
    throw new Error(`${RELU_GRAD} takes float32 dy and x of one non-empty shape`);
  }
  const dx = backend.makeOutput([...x.shape], "float32");
  active!.eltwise.reluBackwardFor(size).run(heap(backend, x), heap(backend, dy), heap(backend, dx));
  return dx;
}

/** `Relu`'s gradient: one oneDNN pass where it applies, else TF.js' own formula. */
const RELU_GRADIENT: tf.GradConfig = {
  kernelName: "Relu",
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    const oneDnn = active !== null && tf.getBackend() === "wasm" && x.size > 0 &&
      x.dtype === "float32" && (dy as tf.Tensor).dtype === "float32";
    return {
      x: () =>
        oneDnn
          ? tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor
          : tf.mul(dy as tf.Tensor, tf.cast(tf.step(x), "float32")),
    };
  },
};

const KERNELS: Record<string, tf.KernelFunc> = {
  [BATCH_NORM_TRAINING]: batchNormTraining,
  [BATCH_NORM_TRAINING_GRAD]: batchNormTrainingGrad,
  [RELU_GRAD]: reluGrad,
  Conv2D: (args) => conv2D(args, "Conv2D"),
  FusedConv2D: (args) => conv2D(args, "FusedConv2D"),
  Conv2DBackpropInput: conv2DBackpropInput,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  MaxPool: (args) => pool(args, "MaxPool"),
  AvgPool: (args) => pool(args, "AvgPool"),
  MaxPoolGrad: maxPoolGrad,
  AvgPoolGrad: avgPoolGrad,
  FusedBatchNorm: fusedBatchNorm,
};

/** The kernel names {@linkcode registerOneDnnKernels} replaces on the wasm backend. */
export const ONEDNN_KERNEL_NAMES: readonly string[] = Object.keys(KERNELS);

function swap(name: string, config: tf.KernelConfig | undefined): void {
  if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  if (config) tf.registerKernel(config);
}

/**
 * Registers the oneDNN kernels on the wasm backend over the ones there
 * (which stay as fallbacks for what oneDNN does not cover). Register the
 * wasm training kernels first. Calling again is a no-op.
 */
export function registerOneDnnKernels(dnnl: OneDnn): void {
  if (active) return;
  const prev = new Map<string, tf.KernelConfig | undefined>();
  for (const name of ONEDNN_KERNEL_NAMES) prev.set(name, tf.getKernel(name, "wasm"));
  const conv = new ConvPrimitives(dnnl);
  active = {
    dnnl,
    conv,
    pool: new PoolPrimitives(dnnl),
    batchNorm: new BatchNormCache(dnnl),
    eltwise: new EltwisePrimitives(dnnl),
    previous: prev,
    reluGradient: tf.getGradient("Relu"),
    restoreDispose: dropCopiesOnDispose(conv),
  };
  tf.registerGradient(RELU_GRADIENT);
  for (const [name, kernelFunc] of Object.entries(KERNELS)) {
    const before = prev.get(name);
    swap(name, {
      kernelName: name,
      backendName: "wasm",
      kernelFunc,
      setupFunc: before?.setupFunc,
      disposeFunc: before?.disposeFunc,
    });
  }
}

/**
 * Puts back the kernels {@linkcode registerOneDnnKernels} replaced and
 * frees every cached primitive (tests compare both kernel sets in one process).
 */
export function unregisterOneDnnKernels(): void {
  if (!active) return;
  for (const name of ONEDNN_KERNEL_NAMES) swap(name, active.previous.get(name));
  active.restoreDispose();
  active.conv.clear();
  active.pool.clear();
  active.batchNorm.clear();
  active.eltwise.clear();
  if (active.reluGradient) tf.registerGradient(active.reluGradient);
  active = null;
}

/**
 * Whether the oneDNN kernels are registered, how many primitives they
 * cache, the bytes of blocked filter copies they hold, and how many of the
 * convolution geometries seen run cropped to their live taps
 * (lib/kernels/onednn/cropped_filter.ts).
 */
export function oneDnnKernelState(): {
  registered: boolean;
  primitives: number;
  filterCopyBytes: number;
  croppedGeometries: number;
} {
  return {
    registered: active !== null,
    primitives: active
      ? active.conv.size + active.pool.size + active.batchNorm.size + active.eltwise.size
      : 0,
    filterCopyBytes: active?.conv.copies.bytes.held ?? 0,
    croppedGeometries: active?.conv.croppedGeometries ?? 0,
  };
}
