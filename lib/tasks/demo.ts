/**
 * The flags of `deno task demo`, declared once: scripts/demo.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { int, text } from "../flags.ts";

/** `deno task demo`. */
export const DEMO_TASK = {
  task: "demo",
  synopsis: ["deno task demo [--out DIR] [--count N] [--size PX] [--epochs N] [--seed S]"],
  about: "Runs generate -> preprocess -> train -> predict -> evaluate on generated data.",
  flags: {
    out: text("DIR", "where everything goes", { default: "demo" }),
    count: int("N", "generated training galaxies", { min: 50, default: 600 }),
    size: int("PX", "image side after crop and resize (trains in minutes on a CPU)", {
      min: 32,
      max: 424,
      default: 32,
    }),
    epochs: int("N", "training epochs", { min: 1, default: 6 }),
    seed: int("S", "seed of the data, the split and the training", { min: 0, default: 1 }),
  },
  epilogue: "Re-running reuses the generated data and dataset and starts a fresh training run.",
};
