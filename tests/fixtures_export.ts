/**
 * Finished run folders around tiny untrained ResNet-34s (width 0.25, 32 px,
 * as the doctor's smoke check), one per stem and head, for the export
 * tests. Every batch norm gets random moving statistics, gamma and beta and
 * the standardisation a non-trivial mean and std, so a mistake in any of
 * them shows in the outputs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { VOTE_COLUMNS } from "../lib/data/schema.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { saveModel } from "../lib/io/model_io.ts";
import { type HeadKind, resnet34 } from "../lib/model/resnet.ts";
import { mulberry32 } from "../lib/random.ts";
import { loadImage } from "../lib/data/image.ts";
import { parseCsv } from "../lib/io/csv.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { predict } from "../lib/predict/predict.ts";
import { openRun } from "../lib/run/open.ts";
import { imageFolder } from "./fixtures_run.ts";
import { tempDir } from "./temp.ts";
import { sharedDataDir } from "../lib/bench/fixtures.ts";

/** The real Galaxy Zoo samples, where this machine has them (`$GALAXY_SHARED_DATA`, else ../shared/data). */
export const SHARED_DATA = sharedDataDir();

/** The stems and heads an export must cover. */
export const STEMS = ["imagenet", "small"] as const;
export const HEADS: readonly HeadKind[] = ["softmax", "sigmoid", "tree"];
/** The five classes of the softmax runs. */
export const GZ5 = ["round", "in_between", "cigar", "edge_on", "spiral"];

/** Settings of {@linkcode tinyResNetRun}. */
export interface TinyResNetRun {
  stem: "imagenet" | "small";
  head: HeadKind;
  /** Input side, pixels (default 32). */
  size?: number;
  /** Stage width multiplier (default 0.25). */
  width?: number;
  /** Centre crop, fraction of the shorter side (default 0.5). */
  crop?: number;
  seed?: number;
  /** Write report.json, as a finished run has (default true). */
  finished?: boolean;
  /**
   * The network of runs saved before issue 23 (see {@linkcode legacyNetwork}):
   * TF `same` padding on the strided 3x3 convs and no tree projection.
   */
  legacy?: boolean;
}

/** One layer of a Layers model's topology JSON (the parts rewritten here). */
interface TopologyLayer {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, Record<string, unknown>][][];
}

/**
 * `model` as the code before issue 23 built it, with the same weights:
 * every strided 3x3 conv pads with TF's `same` instead of a ZeroPadding2D
 * layer (padding 1) and a `valid` conv, and a sigmoid head ends in the
 * Activation layer `votes` instead of `votes_sigmoid` + the projection
 * `votes`. Old runs hold exactly these layers (names and classes).
 */
export async function legacyNetwork(model: tf.LayersModel): Promise<tf.LayersModel> {
  const topology = model.toJSON(null, false) as unknown as {
    config: { layers: TopologyLayer[] };
  };
  const layers = topology.config.layers;
  const replaced = new Map<string, string>();
  const kept: TopologyLayer[] = [];
  for (const l of layers) {
    if (/^conv\d_block\d+_1_pad$/.test(l.name)) {
      replaced.set(l.name, l.inbound_nodes[0][0][0]);
      continue;
    }
    if (l.class_name === "GalaxyTreeProjection") continue;
    if (l.name === "votes_sigmoid") l.name = l.config.name = "votes";
    kept.push(l);
  }
  for (const l of kept) {
    for (const node of l.inbound_nodes) {
      for (const edge of node) {
        const wasPad = replaced.get(edge[0]);
        if (wasPad) {
          edge[0] = wasPad;
          l.config.padding = "same";
        }
      }
    }
  }
  topology.config.layers = kept;
  const old = await tf.models.modelFromJSON(
    { modelTopology: topology } as unknown as tf.io.ModelJSON,
  );
  old.setWeights(model.getWeights());
  return old;
}

/** Random batch-norm statistics and affine weights; the rest of the model as initialised. */
function randomiseBatchNorm(model: tf.LayersModel, seed: number): void {
  const rand = mulberry32(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    const n = layer.weights[0].shape[0]!;
    const values = (lo: number, hi: number) =>
      tf.tensor1d(Float32Array.from({ length: n }, () => lo + (hi - lo) * rand()));
    // Order: gamma, beta, moving_mean, moving_variance.
    layer.setWeights([values(0.5, 1.5), values(-0.3, 0.3), values(-0.5, 0.5), values(0.5, 2)]);
  }
}

/** Writes a finished run folder (config.json, model/, report.json); returns its path. */
export async function tinyResNetRun(o: TinyResNetRun): Promise<string> {
  const size = o.size ?? 32;
  const seed = o.seed ?? 7;
  const votes = o.head !== "softmax";
  const classes = votes ? [...VOTE_COLUMNS] : GZ5;
  const modelOptions = {
    inputSize: size,
    outputs: classes.length,
    head: o.head,
    stem: o.stem,
    width: o.width ?? 0.25,
    dropout: 0.3,
    mean: [40, 35, 30],
    std: [50, 45, 40],
    seed,
  };
  const current = resnet34(modelOptions);
  const model = o.legacy ? await legacyNetwork(current) : current;
  if (o.legacy) current.dispose();
  randomiseBatchNorm(model, seed);
  // Logits of a few units, so softmax outputs are not all 0 or 1 and every class is compared.
  const dense = model.getLayer(votes ? "votes_logits" : "logits");
  const [kernel, bias] = dense.getWeights();
  dense.setWeights([tf.mul(kernel, 0.05), bias]);
  const dir = await tempDir(`galaxy-export-${o.stem}-${o.head}${o.legacy ? "-legacy" : ""}-`);
  const config = {
    dataset: {
      scheme: votes ? "votes" : "gz5",
      kind: votes ? "votes" : "classes",
      classes,
      flipPairs: [],
      size,
      crop: o.crop ?? 0.5,
    },
    model: modelOptions,
  };
  await writeJsonAtomic(join(dir, "config.json"), config);
  await saveModel(model, join(dir, "model"), { galaxy: config });
  model.dispose();
  if (o.finished ?? true) await writeJsonAtomic(join(dir, "report.json"), { bestEpoch: 1 });
  return dir;
}

/** Images for comparing an export with `predict`, and whether they are real. */
export interface ExportImages {
  /** A temporary folder of image files. */
  dir: string;
  /** Real SDSS JPEGs from ../shared/data, or generated images where it is absent. */
  real: boolean;
  /** Why the images are generated, when they are. */
  note: string;
}

/**
 * `count` real JPEGs copied to a temporary folder (half 424x424 Kaggle, half
 * 423x423 Galaxy Zoo 1 cutouts, the first by name), or, without
 * ../shared/data, `count` generated images of assorted sizes and encodings.
 */
export async function exportImages(count: number): Promise<ExportImages> {
  const sources = [
    join(SHARED_DATA, "kaggle-votes-sample", "images_training_rev1"),
    join(SHARED_DATA, "gz1-sample", "images"),
  ];
  const lists: string[][] = [];
  for (const src of sources) {
    try {
      const names = [];
      for await (const e of Deno.readDir(src)) if (e.isFile) names.push(e.name);
      lists.push(names.sort().slice(0, Math.ceil(count / 2)).map((n) => join(src, n)));
    } catch {
      return {
        dir: await imageFolder(count, 3),
        real: false,
        note: `${src} is absent: comparing on ${count} generated images instead`,
      };
    }
  }
  const dir = await tempDir("galaxy-export-images-");
  for (const file of lists.flat().slice(0, count)) {
    await Deno.copyFile(file, join(dir, file.split("/").pop()!));
  }
  return { dir, real: true, note: `${count} real JPEGs from ${SHARED_DATA}` };
}

/** Rows of `predict`'s CSV for a run over a folder: ids (sorted) and their outputs (p_ columns). */
export interface Predicted {
  ids: string[];
  /** One row of outputs per id, in the run's class order. */
  rows: number[][];
}

/** Runs the toolkit's `predict` (lib/predict/predict.ts, as the CLI does) and reads its CSV. */
export async function predictFolder(runDir: string, images: string): Promise<Predicted> {
  const run = await openRun(runDir);
  const out = join(await tempDir("galaxy-export-pred-"), "p.csv");
  try {
    await predict({ run, input: await resolveInput(images), inPath: images, out });
  } finally {
    run.model.dispose();
  }
  const csv = parseCsv(await Deno.readTextFile(out), out);
  const cols = csv.header.flatMap((h, i) => h.startsWith("p_") ? [i] : []);
  return {
    ids: csv.rows.map((r) => r.fields[0]),
    rows: csv.rows.map((r) => cols.map((i) => Number(r.fields[i]))),
  };
}

/**
 * The pixels `predict` feeds the model for `ids` (files of `images` named
 * id + extension), cropped and resized as the run says: uint8 NHWC.
 */
export async function pixelsOf(
  images: string,
  ids: readonly string[],
  o: { size: number; crop: number },
): Promise<Uint8Array> {
  const files = new Map<string, string>();
  for await (const e of Deno.readDir(images)) files.set(e.name.replace(/\.[^.]+$/, ""), e.name);
  const per = o.size * o.size * 3;
  const out = new Uint8Array(ids.length * per);
  for (const [i, id] of ids.entries()) {
    out.set((await loadImage(join(images, files.get(id)!), o)).pixels, i * per);
  }
  return out;
}

/** Largest absolute difference between `rows` and `flat` (row-major, same shape); throws on a size mismatch. */
export function maxAbsDiff(rows: readonly number[][], flat: ArrayLike<number>): number {
  const n = rows.reduce((a, r) => a + r.length, 0);
  if (n !== flat.length) throw new Error(`${n} expected values, ${flat.length} computed`);
  let max = 0, k = 0;
  for (const r of rows) for (const v of r) max = Math.max(max, Math.abs(v - flat[k++]));
  return max;
}
