/**
 * Inputs of the in-browser inference benchmark: a run folder around a
 * full-width, seeded, untrained ResNet-34 at 64 px (the network users
 * train; untrained weights cost the same), and a folder of `count` real
 * Kaggle JPEGs (where `../shared/data` has them, else generated ones),
 * both in the benchmark cache, made once.
 *
 * @module
 */
import { join } from "node:path";
import { TRAINING_IMAGES_DIR } from "../data/synthetic.ts";
import { readRunConfig, RUN_CONFIG_FORMAT, type RunConfig } from "../run/config.ts";
import { hasRunModel, saveRunFolder } from "../run/model.ts";
import { resnet34 } from "../model/resnet.ts";
import { cacheDir, sharedDataDir, syntheticInput } from "./fixtures.ts";
import { buildSiteBundles } from "../web/site.ts";

/**
 * Deadlines of the stages of bench/workloads/browser_infer.ts, seconds:
 * starting Chromium, the page loading the model and compiling its kernels,
 * then per image classified (ResNet-34 at 64 px took about 1.3 s an image
 * on software WebGL on 2 cores: 15 times that), plus a settling allowance
 * per batch of images handed over.
 */
export const BROWSER_STAGE_SECONDS = { launch: 60, ready: 180, perImage: 20, batch: 30 };

/** The whole deadline of one browser_infer run over `count` images (+2 warm-up): its stages plus a margin. */
export function browserInferDeadline(count: number): number {
  const s = BROWSER_STAGE_SECONDS;
  return s.launch + s.ready + 2 * s.batch + (count + 2) * s.perImage + 60;
}

/** Builds the page bundles the workload's server serves (see lib/web/site.ts). */
export async function buildSite(log: (line: string) => void): Promise<void> {
  log("building the page bundles (deno task build-web)");
  await buildSiteBundles({ timeoutSeconds: 300 });
}

/** What {@linkcode browserBenchInputs} made. */
export interface BrowserBenchInputs {
  run: string;
  images: string;
  count: number;
  real: boolean;
}

/** The run and image folders of the benchmark (see the module doc). */
export async function browserBenchInputs(
  count: number,
  log: (line: string) => void = () => {},
): Promise<BrowserBenchInputs> {
  const run = join(cacheDir(), "browser-resnet34-64-seed0");
  // A folder cached before runs were sealed is written again.
  const sealed = await readRunConfig(run).then((c) => c.verified, () => false);
  if (!sealed || !await hasRunModel(run)) {
    log(`writing a ResNet-34 run folder to ${run}`);
    const classes = ["round", "in_between", "cigar", "edge_on", "spiral"];
    const config: RunConfig = {
      format: RUN_CONFIG_FORMAT,
      dataset: { scheme: "gz5", kind: "classes", classes, flipPairs: [], size: 64, crop: 0.5 },
      model: { inputSize: 64, outputs: classes.length, seed: 0 },
    };
    const model = resnet34({ inputSize: 64, outputs: classes.length, seed: 0 });
    await saveRunFolder(run, config, model);
    model.dispose();
  }
  const realDir = join(sharedDataDir(), "kaggle-votes-sample", "images_training_rev1");
  let source: string;
  let real = true;
  try {
    Deno.statSync(realDir);
    source = realDir;
  } catch {
    source = join((await syntheticInput(count, log)).dir, TRAINING_IMAGES_DIR);
    real = false;
  }
  const names = [...Deno.readDirSync(source)].map((e) => e.name).filter((n) => n.endsWith(".jpg"))
    .sort().slice(0, count);
  const images = join(cacheDir(), `browser-images-${real ? "real" : "generated"}-n${names.length}`);
  await Deno.mkdir(images, { recursive: true });
  for (const n of names) {
    const to = join(images, n);
    if (!await Deno.stat(to).then(() => true, () => false)) {
      await Deno.copyFile(join(source, n), to);
    }
  }
  return { run, images, count: names.length, real };
}
