/**
 * Fixtures of the web app tests: real Galaxy Zoo JPEGs from the shared
 * data folder (where present), the bundled page code, and a run whose
 * geometry the browser reproduces exactly.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { sharedDataDir } from "../lib/bench/fixtures.ts";
import { RUN_CONFIG_FORMAT } from "../lib/run/config.ts";
import { saveRunFolder } from "../lib/run/model.ts";
import { buildSiteBundles } from "../lib/web/site.ts";
import { resnet34 } from "../lib/model/resnet.ts";
import { tempDir } from "./temp.ts";

/** The first `n` real Kaggle JPEGs (424x424) by name, or null with why where the set is absent. */
export function realGalaxyJpegs(n: number): string[] | { skip: string } {
  const dir = join(sharedDataDir(), "kaggle-votes-sample", "images_training_rev1");
  try {
    const names = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".jpg"))
      .map((e) => e.name).sort().slice(0, n);
    if (names.length < n) return { skip: `${dir} holds fewer than ${n} JPEGs` };
    return names.map((name) => join(dir, name));
  } catch {
    return { skip: `${dir} is absent (no shared Galaxy Zoo data on this machine)` };
  }
}

let built: Promise<void> | null = null;

/** Runs `deno task build-web` once per test process (the page bundles the server serves). */
export function buildWeb(): Promise<void> {
  built ??= buildSiteBundles({ timeoutSeconds: 180 });
  return built;
}

/**
 * A run folder around an untrained, seeded, narrow ResNet-34 (a real
 * convolutional network, whose outputs depend on every pixel) with the
 * given geometry; returns its path. Its logits layer is scaled down (x0.05)
 * so that the class probabilities are spread (about 0.05 to 0.5) instead of
 * saturated at 0 and 1, where a difference could hide.
 */
export async function resnetRun(o: { size: number; crop: number; seed?: number }): Promise<string> {
  const dir = await tempDir("galaxy-webrun-");
  const classes = ["round", "in_between", "cigar", "edge_on", "spiral"];
  const model = resnet34({
    inputSize: o.size,
    outputs: classes.length,
    width: 0.125,
    stem: "small",
    dropout: 0,
    mean: [30, 28, 24],
    std: [35, 32, 30],
    seed: o.seed ?? 7,
  });
  const logits = model.layers.filter((l) => l.getClassName() === "Dense").pop()!;
  logits.setWeights(logits.getWeights().map((w) => tf.mul(w, 0.05)));
  await saveRunFolder(dir, {
    format: RUN_CONFIG_FORMAT,
    dataset: { scheme: "gz5", kind: "classes", classes, flipPairs: [], size: o.size, crop: o.crop },
    model: { inputSize: o.size, outputs: classes.length },
  }, model);
  model.dispose();
  return dir;
}
