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

const cached = new Map<string, Promise<string>>();

/**
 * Folder of a tiny dataset at 32x32 from 120 generated galaxies: `gz5`
 * (the default: about 60 train images) or `votes` (about 85).
 */
export function tinyDataset(scheme: "gz5" | "votes" = "gz5"): Promise<string> {
  let dir = cached.get(scheme);
  if (!dir) {
    dir = (async () => {
      const root = await tempDir(`galaxy-tiny-${scheme}-`);
      await writeSyntheticKaggle(join(root, "raw"), { count: 120, testCount: 8, seed: 7 });
      const out = join(root, "dataset");
      await preprocess({
        inDir: join(root, "raw"),
        outDir: out,
        size: 32,
        val: 0.15,
        test: 0.15,
        scheme,
      });
      return out;
    })();
    cached.set(scheme, dir);
  }
  return dir;
}
