/**
 * Run folders for the predict and evaluate tests: toy models (a few
 * weights, milliseconds to run) saved into fake run folders with the
 * config.json a trained run has, and one tiny real ResNet-34 run trained
 * once per test process on the tiny dataset.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { RUN_CONFIG_FORMAT, type RunConfig } from "../lib/run/config.ts";
import { saveRunFolder } from "../lib/run/model.ts";
import { Standardize } from "../lib/model/standardize.ts";
import { GalaxyZooVotes } from "../lib/model/votes_head.ts";
import { train, TRAIN_DEFAULTS } from "../lib/train/trainer.ts";
import { VOTE_COLUMNS } from "../lib/data/schema.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { encodeImage } from "./fixtures_images.ts";
import { tempDir } from "./temp.ts";
import type { FitsStretch } from "../lib/data/stretch.ts";

/** What a toy run predicts. */
export interface ToyRunOptions {
  classes?: string[];
  kind?: "classes" | "votes";
  scheme?: string;
  size?: number;
  crop?: number;
  flipPairs?: [number, number][];
  seed?: number;
  /** The FITS stretch config.json records (absent: none recorded, as in older runs). */
  fitsStretch?: FitsStretch;
}

/**
 * A rotation- and mirror-invariant toy classifier: standardise, global
 * average pooling, dense (+ softmax, or the votes head): its output depends
 * only on the mean colour of the image.
 */
export function toyModel(size: number, outputs: number, votes: boolean, seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 3] });
  let x = new Standardize({ mean: [60, 60, 60], std: [40, 40, 40] }).apply(
    input,
  ) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({
    units: outputs,
    activation: votes ? "linear" : "softmax",
    kernelInitializer: tf.initializers.randomNormal({ stddev: 2, seed }),
    biasInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: seed + 1 }),
  }).apply(x) as tf.SymbolicTensor;
  if (votes) x = new GalaxyZooVotes().apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

/** Writes a fake run folder (config.json + model/, sealed) around a toy model; returns its path. */
export async function toyRun(o: ToyRunOptions = {}): Promise<string> {
  const kind = o.kind ?? "classes";
  const classes = o.classes ??
    (kind === "votes" ? [...VOTE_COLUMNS] : ["round", "in_between", "cigar", "edge_on", "spiral"]);
  const size = o.size ?? 16;
  const dir = await tempDir("galaxy-toyrun-");
  const model = toyModel(size, classes.length, kind === "votes", o.seed ?? 1);
  const config: RunConfig = {
    format: RUN_CONFIG_FORMAT,
    dataset: {
      scheme: o.scheme ?? (kind === "votes" ? "votes" : "gz5"),
      kind,
      classes,
      flipPairs: o.flipPairs ?? [],
      size,
      crop: o.crop ?? 0.5,
      fitsStretch: o.fitsStretch,
    },
    model: {
      inputSize: size,
      outputs: classes.length,
      head: kind === "votes" ? "tree" : "softmax",
    },
  };
  await saveRunFolder(dir, config, model);
  model.dispose();
  return dir;
}

/**
 * A folder of `count` images of assorted sizes and encodings (JPEG, PNG,
 * greyscale, PNG with alpha) named `img-000.jpg` ...; returns its path.
 */
export async function imageFolder(count: number, seed = 0): Promise<string> {
  const dir = await tempDir("galaxy-images-");
  const kinds = ["rgb", "png", "grey", "png-alpha"] as const;
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length];
    const w = 40 + ((i * 7) % 30), h = 40 + ((i * 13) % 30);
    const ext = kind.startsWith("png") ? "png" : "jpg";
    const name = `img-${String(i).padStart(3, "0")}.${ext}`;
    await Deno.writeFile(join(dir, name), await encodeImage(w, h, seed * 1000 + i, kind));
  }
  return dir;
}

let cachedRun: Promise<string> | null = null;

/**
 * One tiny real run: ResNet-34 trained 1 epoch (batch 8) on the tiny gz5
 * dataset at 32 px, made once per test process; returns the run folder.
 */
export function tinyRun(): Promise<string> {
  cachedRun ??= (async () => {
    const out = await tempDir("galaxy-tinyrun-");
    await train({
      ...TRAIN_DEFAULTS,
      data: await tinyDataset(),
      out,
      epochs: 1,
      batch: 8,
      warmupEpochs: 0.5,
      patience: 0,
      checkpointSeconds: 0,
    });
    return out;
  })();
  return cachedRun;
}
