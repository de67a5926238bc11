/**
 * Saving and loading models in the TensorFlow.js Layers format (a
 * `model.json` plus binary weight files), which `tf.loadLayersModel` reads
 * and the TensorFlow.js converter turns into a Keras model.
 *
 * TF.js' own `file://` handler lives in tfjs-node, which is not always
 * installed, so this module writes the same files with Deno's file API.
 * The weight file is named by its content hash and `model.json` is renamed
 * into place last, so a folder killed mid-save still holds a whole model.
 *
 * `model.json` records the SHA-256 of every weight file
 * ({@linkcode WEIGHTS_DIGESTS_KEY}) and is sealed with its own
 * (lib/io/verify.ts); loading checks both, so a model damaged at the same
 * size (zero-filled, bit-flipped, another model's weights) is refused with a
 * {@linkcode DigestMismatchError} rather than predicting garbage.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { removeUnreferenced, writeFileAtomic } from "./atomic.ts";
import { readSealedJson, sealJson, sha256Hex, verifyBytes } from "./verify.ts";
// Registers the toolkit's custom layers, so every model it saves can be loaded.
import "../model/standardize.ts";
import "../model/votes_head.ts";
import "../model/tree_projection.ts";
import "../model/seeded_dropout.ts";

function joinBuffers(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const b of parts) {
    out.set(new Uint8Array(b), off);
    off += b.byteLength;
  }
  return out;
}

/** The key of `model.json` that maps each weight file to its SHA-256 (hex). */
export const WEIGHTS_DIGESTS_KEY = "weightsSha256";

/** Writes model artifacts (topology, weights, optional extra JSON) into `dir`, sealed. */
export async function saveArtifacts(
  dir: string,
  artifacts: tf.io.ModelArtifacts,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const weights = joinBuffers(artifacts.weightData);
  const digest = await sha256Hex(weights);
  // Named by content: a new save never overwrites the file the current model.json names.
  const weightFile = `weights-${digest.slice(0, 16)}.bin`;
  await writeFileAtomic(join(dir, weightFile), weights);
  const modelJson = {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    weightsManifest: [{ paths: [weightFile], weights: artifacts.weightSpecs ?? [] }],
    ...extra,
    [WEIGHTS_DIGESTS_KEY]: { [weightFile]: digest },
  };
  await writeFileAtomic(join(dir, MODEL_JSON), sealJson(modelJson));
  await removeUnreferenced(dir, ["weights"], [weightFile]);
}

/**
 * The model's topology and a copy of its weights, as {@linkcode saveArtifacts}
 * writes them: the model may change as soon as this resolves.
 */
export async function captureModel(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      captured = artifacts;
      return Promise.resolve({ modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) });
    }),
    { includeOptimizer: false },
  );
  return captured!;
}

/** Saves a Layers model into `dir` as model.json + one weight file. */
export async function saveModel(
  model: tf.LayersModel,
  dir: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await saveArtifacts(dir, await captureModel(model), extra);
}

/** The name of a TF.js Layers model's index file. */
export const MODEL_JSON = "model.json";

/** How to load a model folder. */
export interface LoadOptions {
  /**
   * Check `model.json`'s seal and every weight file's SHA-256 (default
   * true). Folders written before digests were recorded load either way;
   * {@linkcode ModelFolder.verified} says which.
   */
  verify?: boolean;
}

/** A model folder as read: its artifacts and what was verified. */
export interface ModelFolder {
  artifacts: tf.io.ModelArtifacts;
  /** Whether model.json and every weight file matched their recorded SHA-256. */
  verified: boolean;
  /** SHA-256 of `model.json` (which records its weights' digests): identifies the model. */
  modelDigest: string;
  /** The weight files, relative to the folder, in load order. */
  weightFiles: string[];
  /** model.json's keys other than the TF.js ones (e.g. `galaxy`). */
  json: Record<string, unknown>;
}

/**
 * Reads a model folder written by {@linkcode saveModel} (or the TF.js
 * converter), checking each file against its recorded SHA-256.
 *
 * @throws {DigestMismatchError} when a file differs from its record.
 */
export async function readModelFolder(dir: string, o: LoadOptions = {}): Promise<ModelFolder> {
  const verify = o.verify ?? true;
  const path = join(dir, MODEL_JSON);
  const { value: json, sealed, text } = await readSealedJson<
    tf.io.ModelJSON & Record<string, unknown>
  >(
    path,
    verify,
  );
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(
      `${path} is not a TensorFlow.js Layers model (no modelTopology/weightsManifest)`,
    );
  }
  const digests = (json[WEIGHTS_DIGESTS_KEY] ?? {}) as Record<string, string>;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  const weightFiles: string[] = [];
  let everyFileRecorded = sealed;
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(join(dir, p));
      } catch (e) {
        throw new Error(`model weights ${join(dir, p)} cannot be read: ${(e as Error).message}`);
      }
      if (typeof digests[p] !== "string") everyFileRecorded = false;
      else if (verify) verifyBytes(join(dir, p), bytes, digests[p]);
      parts.push(bytes);
      weightFiles.push(p);
    }
  }
  const weights = joinBuffers(parts.map((p) => p.slice().buffer));
  // Quantised weights have other sizes; full-precision ones must fill the files exactly.
  if (specs.every((s) => !s.quantization && (s.dtype === "float32" || s.dtype === "int32"))) {
    const expected = specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
    if (weights.byteLength !== expected) {
      throw new Error(
        `${dir}: weight files hold ${weights.byteLength} bytes, model.json expects ${expected}`,
      );
    }
  }
  const {
    modelTopology: _t,
    trainingConfig: _c,
    weightsManifest: _m,
    format: _f,
    generatedBy: _g,
    convertedBy: _b,
    ...rest
  } = json;
  return {
    artifacts: {
      modelTopology: json.modelTopology,
      trainingConfig: json.trainingConfig,
      weightSpecs: specs,
      weightData: weights.buffer as ArrayBuffer,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy ?? undefined,
    },
    verified: verify && everyFileRecorded,
    modelDigest: await sha256Hex(text),
    weightFiles,
    json: rest,
  };
}

/** Reads the artifacts of a model folder; see {@linkcode readModelFolder}. */
export async function loadArtifacts(
  dir: string,
  o: LoadOptions = {},
): Promise<tf.io.ModelArtifacts> {
  return (await readModelFolder(dir, o)).artifacts;
}

/** Loads a model folder written by {@linkcode saveModel} (or the TF.js converter), verified. */
export async function loadModel(dir: string, o: LoadOptions = {}): Promise<tf.LayersModel> {
  const artifacts = await loadArtifacts(dir, o);
  return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
