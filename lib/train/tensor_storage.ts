/**
 * Direct access to the float32 storage of tensors on the backends that
 * keep it in this process (wasm: the module's heap; cpu: JS typed arrays),
 * so an optimizer can update each variable in one pass instead of a dozen
 * kernels. Null on backends whose memory lives elsewhere (native
 * TensorFlow, GPUs).
 *
 * Rules the users of a storage follow:
 * - Views of the wasm heap are taken after the last allocation of the
 *   update, as growing the heap detaches earlier views.
 * - Only data no other tensor shares is written in place
 *   ({@linkcode TensorStorage.exclusive} copies shared data first: the
 *   wasm `Identity` kernel shares data between tensors).
 * - A variable's new value goes into fresh storage ({@linkcode
 *   TensorStorage.allocate}, {@linkcode TensorStorage.commit}): XNNPACK
 *   keeps packed copies of weights keyed by their data, which an in-place
 *   write would leave stale.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type OptimizerKernels, optimizerKernelsFor } from "../kernels/optimizer_simd.ts";

/** Fresh float32 storage not yet owned by a tensor. */
export interface Fresh {
  readonly info: tf.TensorInfo;
}

/** Float32 storage of the active backend's tensors. */
export interface TensorStorage {
  /** The values of `t`, shared with it (valid until the next allocation on wasm). */
  view(t: tf.TensorInfo | tf.Tensor): Float32Array;
  /** Makes `v`'s data its own (copying it when another tensor shares it); view it after. */
  exclusive(v: tf.Variable): void;
  /** New storage of `shape`, to be filled and then committed. */
  allocate(shape: number[]): Fresh;
  /** Makes `fresh` the value of `v` (the old value is released). */
  commit(v: tf.Variable, fresh: Fresh): void;
  /**
   * SIMD update kernels working on this storage's views (wasm, once
   * lib/kernels/optimizer_simd.ts is compiled), or null: update in JavaScript.
   */
  readonly kernels: OptimizerKernels | null;
}

interface RefCounted {
  refCount(dataId: object): number;
}

interface WasmBackend extends RefCounted {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** The Emscripten module; `asm.memory` is the heap's `WebAssembly.Memory`. */
  wasm: { asm?: { memory?: WebAssembly.Memory } };
}

interface CpuBackend extends RefCounted {
  data: { get(dataId: object): { values?: tf.backend_util.BackendValues } | undefined };
  write(values: Float32Array, shape: number[], dtype: tf.DataType): object;
}

function infoOf(t: tf.TensorInfo | tf.Tensor): tf.TensorInfo {
  return { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
}

function makeExclusive(backend: RefCounted, v: tf.Variable, storage: TensorStorage): void {
  if (backend.refCount(v.dataId) <= 1) return;
  const fresh = storage.allocate(v.shape);
  storage.view(fresh.info).set(storage.view(v));
  storage.commit(v, fresh);
}

function wasmStorage(backend: WasmBackend): TensorStorage {
  const memory = backend.wasm.asm?.memory;
  const storage: TensorStorage = {
    kernels: memory instanceof WebAssembly.Memory ? optimizerKernelsFor(memory) : null,
    view: (t) => backend.typedArrayFromHeap(infoOf(t)) as Float32Array,
    exclusive: (v) => makeExclusive(backend, v, storage),
    allocate: (shape) => ({ info: backend.makeOutput(shape, "float32") }),
    commit(v, fresh) {
      const t = tf.engine().makeTensorFromTensorInfo(fresh.info, backend as never);
      v.assign(t);
      t.dispose();
    },
  };
  return storage;
}

function cpuStorage(backend: CpuBackend): TensorStorage {
  const storage: TensorStorage = {
    kernels: null,
    view(t) {
      const values = backend.data.get(t.dataId)?.values;
      if (!(values instanceof Float32Array)) {
        throw new Error(`tensor storage: tensor ${t.shape} is not float32 data on the cpu backend`);
      }
      return values;
    },
    exclusive: (v) => makeExclusive(backend, v, storage),
    allocate(shape) {
      const values = new Float32Array(tf.util.sizeFromShape(shape));
      return { info: { dataId: backend.write(values, shape, "float32"), shape, dtype: "float32" } };
    },
    commit(v, fresh) {
      const t = tf.engine().makeTensorFromTensorInfo(fresh.info, backend as never);
      v.assign(t);
      t.dispose();
    },
  };
  return storage;
}

/** Storage access for the active backend, or null where its memory is not ours to touch. */
export function tensorStorage(): TensorStorage | null {
  const name = tf.getBackend();
  const backend = tf.backend() as unknown;
  if (name === "wasm") return wasmStorage(backend as WasmBackend);
  if (name === "cpu") return cpuStorage(backend as CpuBackend);
  return null;
}
