/**
 * The flags of `deno task quality`, declared once: scripts/quality.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { UsageError } from "../cli.ts";
import { bool, choice, custom, num, text } from "../flags.ts";
import { QUALITY_SCHEMES } from "../quality/run.ts";

/** `--seeds`: distinct non-negative integers, comma-separated. */
function readSeeds(name: string, value: string): number[] {
  const seeds = value.split(",").map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0) || new Set(seeds).size !== seeds.length) {
    throw new UsageError(`--${name} must be distinct non-negative integers, got '${value}'`);
  }
  return seeds;
}

/** `deno task quality`. */
export const QUALITY_TASK = {
  task: "quality",
  synopsis: ["deno task quality --scheme NAME [flags]"],
  about: "The toolkit's defaults against the PyTorch reference over several seeds; the tables " +
    "go into docs/quality.md (lib/quality/run.ts).",
  flags: {
    scheme: choice(Object.keys(QUALITY_SCHEMES), "the label scheme to measure (required)"),
    seeds: custom(
      "LIST",
      "seeds, comma-separated; seed s also splits with --split-seed s",
      readSeeds,
      {
        shown: "0,1,2,3,4",
      },
    ),
    work: text("DIR", "datasets, runs, predictions and logs; a rerun reuses what is there", {
      default: "/tmp/galaxy-quality",
    }),
    doc: text("FILE", "markdown file whose section for the scheme is rewritten", {
      shown: "docs/quality.md",
    }),
    shared: text("DIR", "the shared real samples", { shown: "../shared/data" }),
    "train-flags": text(
      "STR",
      "extra 'deno task train' flags, space-separated",
      { shown: "none: the defaults" },
    ),
    tta: bool("score the toolkit with test-time augmentation (evaluate's default)"),
    python: text("PATH", "python with torch and torchvision", { default: "/usr/bin/python3" }),
    "step-seconds": num("N", "deadline of each step, seconds", { min: 1, default: 3600 }),
  },
  epilogue: "exit status: 0 done; 1 failure; 2 usage error",
};
