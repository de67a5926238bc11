/**
 * A tiny preprocessed dataset for the training tests, built once per test
 * process through the real pipeline: generated Kaggle-layout galaxies, then
 * preprocess at 32 px.
 *
 * @module
 */
import { join } from "node:path";
import { writeSyntheticKaggle } from "../lib/data/synthetic.ts";
import { preprocess } from "../lib/preprocess.ts";
import { tempDir } from "./temp.ts";

let cached: Promise<string> | null = null;

/** Folder of a tiny gz5 dataset (about 60 train images at 32x32). */
export function tinyDataset(): Promise<string> {
  cached ??= (async () => {
    const root = await tempDir("galaxy-tiny-");
    await writeSyntheticKaggle(join(root, "raw"), { count: 120, testCount: 8, seed: 7 });
    const out = join(root, "dataset");
    await preprocess({ inDir: join(root, "raw"), outDir: out, size: 32, val: 0.15, test: 0.15 });
    return out;
  })();
  return cached;
}
