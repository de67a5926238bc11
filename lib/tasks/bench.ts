/**
 * The flags of `deno task bench`, declared once: scripts/bench.ts parses
 * them, `--help` and docs/cli.md show them.
 *
 * @module
 */
import { bool, text } from "../flags.ts";

/** `deno task bench`. */
export const BENCH_TASK = {
  task: "bench",
  synopsis: ["deno task bench [--quick] [--only ID[,ID...]] [--list] [--out FILE] [--verbose]"],
  flags: {
    quick: bool("a smaller version of every benchmark, one repetition (a few minutes)"),
    only: text(
      "IDS",
      "run only these benchmarks (comma-separated; see --list); their rows in the results file " +
        "are replaced, the others kept",
    ),
    list: bool("print the benchmark ids and what each measures"),
    out: text("FILE", "results file", { shown: "bench/results.json" }),
    verbose: bool("show the measured programs' stderr"),
  },
  epilogue: "Benchmarks run one command at a time; run on an otherwise idle machine.",
};
