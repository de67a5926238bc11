/**
 * `deno task quality --scheme votes|gz5|gz1 --seeds 0,1,2,3,4`: the
 * toolkit's defaults against the PyTorch reference over several seeds,
 * tables into docs/quality.md; see lib/quality/run.ts.
 *
 * Exit status: 0 done; 1 failure; 2 usage error.
 *
 * @module
 */
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { parseFlags, runMain, UsageError } from "../lib/cli.ts";
import { QUALITY_SCHEMES, runQuality } from "../lib/quality/run.ts";

const USAGE = `usage: deno task quality --scheme NAME [flags]

  --scheme NAME      ${Object.keys(QUALITY_SCHEMES).join("|")}
  --seeds LIST       seeds, comma-separated (0,1,2,3,4); seed s also splits with --split-seed s
  --work DIR         datasets, runs, predictions and logs; a rerun reuses what is there
                     (/tmp/galaxy-quality)
  --doc FILE         markdown file whose section for the scheme is rewritten (docs/quality.md)
  --shared DIR       the shared real samples (../shared/data)
  --train-flags STR  extra 'deno task train' flags, space-separated (none: the defaults)
  --tta              score the toolkit with test-time augmentation (evaluate --tta)
  --python PATH      python with torch and torchvision (/usr/bin/python3)
  --step-seconds N   deadline of each step (3600)

exit status: 0 done; 1 failure; 2 usage error`;

async function main(): Promise<number> {
  const f = parseFlags(Deno.args, {
    scheme: { type: "string" },
    seeds: { type: "string" },
    work: { type: "string" },
    doc: { type: "string" },
    shared: { type: "string" },
    "train-flags": { type: "string" },
    tta: { type: "boolean" },
    python: { type: "string" },
    "step-seconds": { type: "string" },
  }, USAGE);
  const scheme = f.scheme ?? "";
  if (!(scheme in QUALITY_SCHEMES)) throw new UsageError(`--scheme is required\n\n${USAGE}`);
  const seeds = (f.seeds ?? "0,1,2,3,4").split(",").map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0) || new Set(seeds).size !== seeds.length) {
    throw new UsageError(`--seeds must be distinct non-negative integers, got '${f.seeds}'`);
  }
  const stepSeconds = Number(f["step-seconds"] ?? 3600);
  if (!(stepSeconds > 0)) throw new UsageError(`--step-seconds must be > 0`);
  // The scoring runs in this process (the training in child processes, each choosing its own).
  console.log(describeBackend(await setupBackend({})));
  const root = new URL("..", import.meta.url).pathname;
  const section = await runQuality({
    scheme,
    seeds,
    shared: f.shared ?? `${root}../shared/data`,
    work: f.work ?? "/tmp/galaxy-quality",
    doc: f.doc ?? `${root}docs/quality.md`,
    trainFlags: (f["train-flags"] ?? "").split(/\s+/).filter(Boolean),
    tta: f.tta ?? false,
    root,
    python: f.python ?? "/usr/bin/python3",
    stepSeconds,
    log: (line) => console.log(line),
  });
  console.log(section);
  return 0;
}

await runMain(main);
