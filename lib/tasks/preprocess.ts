/**
 * The flags of `deno task preprocess`, declared once: scripts/preprocess.ts
 * parses them, `--help` and docs/cli.md show them. Unset numbers are left
 * to lib/preprocess.ts, which checks them and owns their defaults.
 *
 * @module
 */
import { DEFAULT_FITS_STRETCH, parseFitsStretch } from "../data/stretch.ts";
import { SCHEME_NAMES } from "../data/label_schemes.ts";
import { splitSeedFlag } from "../data/split.ts";
import { bool, custom, int, num, text } from "../flags.ts";
import { PREPROCESS_DEFAULTS } from "../preprocess.ts";

const d = PREPROCESS_DEFAULTS;
const shown = (x: number | string) => ({ shown: String(x) });

/** `deno task preprocess`. */
export const PREPROCESS_TASK = {
  task: "preprocess",
  synopsis: [
    "deno task preprocess --in DIR --out DIR [options]",
    "deno task preprocess --verify --out DIR",
  ],
  flags: {
    in: text(
      "DIR",
      "Kaggle folder (training_solutions_rev1.csv + images_training_rev1/), labels.csv + " +
        "images/, or one sub-folder of images per class",
    ),
    out: text("DIR", "dataset folder to write (an unfinished run resumes)"),
    scheme: text("NAME", `label scheme: ${SCHEME_NAMES.join(", ")}`, {
      shown: "gz5 for Kaggle, csv otherwise",
    }),
    size: num("N", "output side in pixels", shown(d.size)),
    crop: num("F", "centre crop, a fraction of the shorter side", shown(d.crop)),
    "fits-stretch": custom(
      "Q,LOW,HIGH",
      "asinh stretch of FITS inputs (Lupton et al. 2004): softening Q, black and white " +
        "percentiles; see docs/inputs.md",
      (_flag, value) => parseFitsStretch(value),
      {
        shown: `${DEFAULT_FITS_STRETCH.q},${DEFAULT_FITS_STRETCH.low},${DEFAULT_FITS_STRETCH.high}`,
      },
    ),
    val: num("F", "validation fraction", shown(d.val)),
    test: num("F", "test fraction", shown(d.test)),
    "split-seed": custom(
      "S",
      "seed of the split, a hash of the id: a galaxy never changes split when data is added",
      (_flag, value) => splitSeedFlag(value),
      shown(d.splitSeed),
    ),
    "shard-mb": num("N", "largest shard file in MiB", shown(d.shardMb)),
    processes: int("N", "decoder processes; 0 decodes in this process", {
      shown: "one per core",
    }),
    concurrency: int("N", "images each decoder works on at once", {
      shown: "3; 6 in this process",
    }),
    strict: bool("any bad item is fatal"),
    "max-bad": num("F", "fail when more than this share of the items is bad", shown(d.maxBad)),
    unlabeled: bool("pack images_test_rev1 as split 'unlabeled' (default on when present)"),
    "no-unlabeled": bool("do not pack images_test_rev1"),
    limit: int("N", "only N ids (a fixed hash sample), for quick runs"),
    overwrite: bool("replace a dataset built from other input or options"),
    verify: bool("re-hash every shard of --out against its manifest"),
  },
};
