/**
 * The flags of `deno task fetch`, declared once: scripts/fetch.ts parses
 * them, `--help` and docs/cli.md show them. Unset counts are left to
 * lib/kaggle/, which owns their defaults.
 *
 * @module
 */
import { bool, int, text } from "../flags.ts";
import { DEFAULT_SEED } from "../data/synthetic/prng.ts";
import { DEFAULT_API_BASE } from "../kaggle/client.ts";
import { DEFAULT_RETRIES } from "../kaggle/download.ts";
import { COMPETITION } from "../kaggle/layout.ts";

/** `deno task fetch`. */
export const FETCH_TASK = {
  task: "fetch",
  synopsis: ["deno task fetch [--out DIR] [options]"],
  about: `Gets the Kaggle "Galaxy Zoo - The Galaxy Challenge" data into
  DIR/training_solutions_rev1.csv, DIR/images_training_rev1/<id>.jpg, DIR/images_test_rev1/<id>.jpg`,
  flags: {
    out: text("DIR", "output folder", { default: "data/kaggle" }),
    from: text(
      "PATH",
      "import archives already downloaded: the all-files zip, the single zips " +
        "(images_training_rev1.zip, images_test_rev1.zip, training_solutions_rev1.zip), a bare " +
        "training_solutions_rev1.csv, or a folder holding them; no network, no credentials",
    ),
    synthetic: int("N", "write N generated training galaxies instead (with --seed, --test-count)", {
      min: 0,
    }),
    seed: int("S", "seed of the generated galaxies", { min: 0, shown: String(DEFAULT_SEED) }),
    "test-count": int("M", "generated test galaxies", {
      min: 0,
      shown: "a tenth of N, at least 1",
    }),
    "keep-archives": bool("keep downloaded zips in DIR/.downloads after extracting them"),
    "api-base": text("URL", "Kaggle API root", {
      shown: `$KAGGLE_API_BASE or ${DEFAULT_API_BASE}`,
    }),
    competition: text("SLUG", "competition to fetch", { default: COMPETITION }),
    retries: int("N", "network failures retried per file before giving up", {
      min: 0,
      shown: String(DEFAULT_RETRIES),
    }),
  },
  epilogue:
    `Credentials: KAGGLE_USERNAME and KAGGLE_KEY, else kaggle.json in $KAGGLE_CONFIG_DIR or ~/.kaggle
(create it at https://www.kaggle.com/settings > API > Create New Token; chmod 600 it).
Re-running skips what is complete; an interrupted download resumes.`,
};
