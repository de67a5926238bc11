/**
 * Training checkpoints: every variable of the model (weights and batch-norm
 * statistics), the optimizer's state, and where the run stands (epoch, step,
 * best score, early-stopping count). The data order and every random draw
 * are functions of (seed, epoch, position), so this is all a resumed run
 * needs to replay exactly what an uninterrupted one would have done.
 *
 * Binary files get a new random name each time and `state.json` is renamed
 * into place last: a run killed at any moment (or stopped by a full disk)
 * leaves the previous complete checkpoint readable. `state.json` records the
 * SHA-256 of both binary files and is sealed with its own
 * (lib/io/verify.ts); {@linkcode loadCheckpoint} checks all three, so a
 * damaged checkpoint is refused, naming the file, not resumed from.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { removeUnreferenced, writeFileAtomic, writeUniquelyNamed } from "../io/atomic.ts";
import { readSealedJson, sealJson, sha256Hex, verifyBytes } from "../io/verify.ts";
import { CHECKPOINT_STATE } from "../run/layout.ts";
import { tensorStorage } from "./tensor_storage.ts";

/** Where a run stands; stored as `state.json`. */
export interface RunState {
  /** Epoch in progress (0-based). */
  epoch: number;
  /** Batches of `epoch` already done: a resumed run starts at this batch. */
  batchInEpoch: number;
  /** Optimizer updates applied so far. */
  step: number;
  /** Best validation score so far (higher is better) and its epoch; -Infinity before any. */
  bestScore: number;
  /** Epoch of `bestScore`; -1 before any. */
  bestEpoch: number;
  /** Epochs since the best one, for early stopping. */
  sinceBest: number;
  /** Running sums of the epoch in progress, so its train metrics survive a resume. */
  epochLossSum: number;
  /** Training images of the epoch in progress classified right. */
  epochCorrect: number;
  /** Training images of the epoch in progress seen so far. */
  epochSeen: number;
  /** Seconds of training done before this checkpoint, over all sessions. */
  elapsedSeconds: number;
}

/** A checkpoint as read back. */
export interface Checkpoint {
  state: RunState;
  variables: Float32Array[];
  optimizer: Float32Array[];
  optimizerStep: number;
}

/** A binary file of the checkpoint as `state.json` names it. */
interface BinaryRef {
  file: string;
  sizes: number[];
  /** SHA-256 of the file, hex (absent in checkpoints written before digests). */
  sha256?: string;
}

interface StateFile extends RunState {
  format: 1;
  variables: BinaryRef;
  optimizer: BinaryRef & { step: number };
  writtenAt: string;
}

/**
 * The values of `arrays` (or tensors: read in place where the backend keeps
 * them in this process, lib/train/tensor_storage.ts) copied end to end.
 */
function pack(
  arrays: readonly (Float32Array | tf.Tensor)[],
  buffers?: SnapshotBuffers,
): Uint8Array {
  const storage = tensorStorage();
  const total = arrays.reduce((n, a) => n + (a instanceof tf.Tensor ? a.size : a.length), 0);
  const bytes = buffers?.take(total * 4) ?? new Uint8Array(total * 4);
  const out = new Float32Array(bytes.buffer, bytes.byteOffset, total);
  let off = 0;
  for (const a of arrays) {
    const values = a instanceof tf.Tensor ? (storage?.view(a) ?? a.dataSync() as Float32Array) : a;
    out.set(values, off);
    off += values.length;
  }
  return bytes;
}

/**
 * Buffers of written snapshots, reused by the next ones: a ResNet-34
 * checkpoint is 256 MB, and left to the garbage collector, which frees
 * such buffers late, every epoch's grew the process by about that much.
 */
export class SnapshotBuffers {
  #free: Uint8Array[] = [];

  /** A buffer of `bytes` bytes (contents undefined): a free one of that size, or a new one. */
  take(bytes: number): Uint8Array {
    const i = this.#free.findIndex((b) => b.byteLength === bytes);
    return i < 0 ? new Uint8Array(bytes) : this.#free.splice(i, 1)[0];
  }

  /** Returns the buffers of a snapshot whose write is done (at most 4 are kept). */
  release(snapshot: CheckpointSnapshot): void {
    for (const b of [snapshot.variables, snapshot.optimizer]) {
      if (this.#free.length < 4) this.#free.push(b);
    }
  }
}

function unpack(bytes: Uint8Array, sizes: readonly number[], path: string): Float32Array[] {
  const total = sizes.reduce((n, s) => n + s, 0);
  if (bytes.byteLength !== total * 4) {
    throw new Error(`${path}: ${bytes.byteLength} bytes, state.json expects ${total * 4}`);
  }
  const all = new Float32Array(bytes.slice().buffer);
  const out: Float32Array[] = [];
  let off = 0;
  for (const s of sizes) {
    out.push(all.subarray(off, off + s));
    off += s;
  }
  return out;
}

/** A checkpoint's contents copied out of the live tensors, so training can go on while it is written. */
export interface CheckpointSnapshot {
  state: RunState;
  /** Every variable's float32 values, concatenated. */
  variables: Uint8Array;
  variableSizes: number[];
  /** The optimizer's state arrays, concatenated. */
  optimizer: Uint8Array;
  optimizerSizes: number[];
  optimizerStep: number;
}

/**
 * Copies what a checkpoint holds, now (synchronously: no update can slip
 * in), once: the optimizer's state may be given as its tensors
 * (the optimizer's `stateTensors()`) rather than as copies. With
 * `buffers`, into buffers of earlier snapshots already written.
 */
export function snapshotCheckpoint(
  state: RunState,
  variables: readonly tf.Variable[],
  optimizer: { state: readonly (Float32Array | tf.Tensor)[]; step: number },
  buffers?: SnapshotBuffers,
): CheckpointSnapshot {
  return {
    state: { ...state },
    variables: pack(variables, buffers),
    variableSizes: variables.map((v) => v.size),
    optimizer: pack(optimizer.state, buffers),
    optimizerSizes: optimizer.state.map((a) => a instanceof tf.Tensor ? a.size : a.length),
    optimizerStep: optimizer.step,
  };
}

/** Writes a snapshot into `dir` atomically (see the module doc). */
export async function writeCheckpoint(dir: string, snapshot: CheckpointSnapshot): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const varFile = await writeUniquelyNamed(dir, "variables", snapshot.variables);
  const optFile = await writeUniquelyNamed(dir, "optimizer", snapshot.optimizer);
  const file: StateFile = {
    format: 1,
    ...snapshot.state,
    variables: {
      file: varFile,
      sizes: snapshot.variableSizes,
      sha256: await sha256Hex(snapshot.variables),
    },
    optimizer: {
      file: optFile,
      sizes: snapshot.optimizerSizes,
      step: snapshot.optimizerStep,
      sha256: await sha256Hex(snapshot.optimizer),
    },
    writtenAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(dir, CHECKPOINT_STATE), sealJson({ ...file }));
  await removeUnreferenced(dir, ["variables", "optimizer"], [varFile, optFile]);
}

/**
 * Reads the checkpoint in `dir`, or `null` when there is none, checking
 * every file against its recorded SHA-256 unless `verify` is false.
 * `verified` is false for a checkpoint written before digests were recorded.
 *
 * @throws {DigestMismatchError} when a file differs from its record.
 */
export async function loadCheckpoint(
  dir: string,
  verify = true,
): Promise<(Checkpoint & { verified: boolean }) | null> {
  const statePath = join(dir, CHECKPOINT_STATE);
  try {
    await Deno.stat(statePath);
  } catch {
    return null;
  }
  const { value: file, sealed } = await readSealedJson<StateFile>(statePath, verify);
  if (file.format !== 1) throw new Error(`${statePath}: unknown checkpoint format ${file.format}`);
  const read = async (ref: BinaryRef) => {
    const path = join(dir, ref.file);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new Error(`checkpoint file ${path} cannot be read: ${(e as Error).message}`);
    }
    if (verify && ref.sha256 !== undefined) verifyBytes(path, bytes, ref.sha256);
    return unpack(bytes, ref.sizes, path);
  };
  const variables = await read(file.variables);
  const optimizer = await read(file.optimizer);
  const { format: _f, variables: _v, optimizer: _o, writtenAt: _w, ...state } = file;
  // JSON has no -Infinity: it was written as null before any epoch had a score.
  if (state.bestScore === null) state.bestScore = -Infinity;
  const verified = verify && sealed && file.variables.sha256 !== undefined &&
    file.optimizer.sha256 !== undefined;
  return { state, variables, optimizer, optimizerStep: file.optimizer.step, verified };
}

/** Assigns saved values to variables, checking that the shapes agree. */
export function restoreVariables(vars: readonly tf.Variable[], values: readonly Float32Array[]) {
  if (vars.length !== values.length) {
    throw new Error(
      `checkpoint has ${values.length} variables, the model ${vars.length}: a different model?`,
    );
  }
  vars.forEach((v, i) => {
    if (values[i].length !== v.size) {
      throw new Error(
        `checkpoint variable ${i} has ${values[i].length} values, ${v.name} needs ${v.size}`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(values[i], v.shape, "float32")));
  });
}
