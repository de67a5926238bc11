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
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { readJson, removeUnreferenced, writeContentNamed, writeJsonAtomic } from "./atomic.ts";
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

/** Writes model artifacts (topology, weights, optional extra JSON) into `dir`. */
export async function saveArtifacts(
  dir: string,
  artifacts: tf.io.ModelArtifacts,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const weightFile = await writeContentNamed(dir, "weights", joinBuffers(artifacts.weightData));
  const modelJson = {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    weightsManifest: [{ paths: [weightFile], weights: artifacts.weightSpecs ?? [] }],
    ...extra,
  };
  await writeJsonAtomic(join(dir, "model.json"), modelJson);
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

/** Reads the artifacts of a model folder written by {@linkcode saveModel}. */
export async function loadArtifacts(dir: string): Promise<tf.io.ModelArtifacts> {
  const path = join(dir, "model.json");
  const json = await readJson<tf.io.ModelJSON>(path);
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(
      `${path} is not a TensorFlow.js Layers model (no modelTopology/weightsManifest)`,
    );
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      try {
        parts.push(await Deno.readFile(join(dir, p)));
      } catch (e) {
        throw new Error(`model weights ${join(dir, p)} cannot be read: ${(e as Error).message}`);
      }
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
  return {
    modelTopology: json.modelTopology,
    trainingConfig: json.trainingConfig,
    weightSpecs: specs,
    weightData: weights.buffer as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}

/** Loads a model folder written by {@linkcode saveModel} (or the TF.js converter). */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const artifacts = await loadArtifacts(dir);
  return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
