/**
 * `deno task retrain --data INPUT --runs RUNS [flags]`: the scheduled
 * retraining job (cron or a systemd timer). Retrains when new images or
 * labels arrived, and promotes the new run to `RUNS/current` only if it
 * scores at least as well as the current model on the same test split.
 * The logic is in lib/retrain/; docs/retrain.md explains it all.
 *
 * Exit status: 0 promoted or nothing new, 1 failed (bad flags too),
 * 2 trained but not promoted, 3 another retrain is running.
 *
 * @module
 */
import { BACKEND_NAMES, type BackendName } from "../lib/backend.ts";
import {
  choiceFlag,
  formatDuration,
  numberFlag,
  parseFlags,
  ProgressLine,
  required,
  UsageError,
} from "../lib/cli.ts";
import { runReplica } from "../lib/retrain/candidate.ts";
import { EXIT_CODES } from "../lib/retrain/log.ts";
import { PROMOTION_METRICS } from "../lib/retrain/promote.ts";
import { DATA_DEFAULTS, retrain, type RetrainOptions } from "../lib/retrain/retrain.ts";
import { defaultReplicas } from "../lib/train/mirrored.ts";
import { TRAIN_DEFAULTS } from "../lib/train/trainer.ts";
import { readTrainFlags, type TrainFlag, trainFlagOptions } from "../lib/train/flags.ts";
import { splitSeedFlag } from "../lib/data/split.ts";
import { printer } from "../scripts/train.ts";

const t = TRAIN_DEFAULTS;
/** The training flags retrain takes (see RetrainTrainSettings). */
const RETRAIN_TRAIN_FLAGS = [
  "epochs",
  "batch",
  "lr",
  "warmup",
  "seed",
  "patience",
  "stem",
  "width",
  "eval-batch",
] as const satisfies readonly TrainFlag[];
const p = DATA_DEFAULTS;
const USAGE = `usage: deno task retrain --data INPUT_DIR --runs RUNS_DIR [flags]

Retrains when images or labels changed since the last successful run, and
promotes the new run to RUNS/current if it scores at least as well as the
current model on the test split of the new dataset.
Exit status: 0 promoted or nothing new, 1 failed, 2 not promoted, 3 already running.

  --metric M          accuracy|balanced_accuracy|macro_f1|rmse decides promotion
                      (accuracy; rmse, lower is better, for a votes scheme)
  --force             promote the new run whatever its score
  --always            train even if nothing changed
  --from-scratch      fresh weights instead of the current model's (fine-tuning)
  --keep N            the job's run folders to keep (5); never deletes current's target
 training (unset: the defaults of deno task train; stem and width of the current
 run when fine-tuning):
  --epochs N (${t.epochs})  --batch N (${t.batch})  --lr X (${t.lr})  --warmup EPOCHS (${t.warmupEpochs})
  --seed N (${t.seed})  --patience N (${t.patience})  --stem imagenet|small  --width X (${t.width})
  --eval-batch N (${t.evalBatch})
  --replicas N        one process per GPU (default: the GPUs nvidia-smi lists, or 1)
  --backend NAME      ${BACKEND_NAMES.join("|")} (default: the fastest that loads)
  --no-native-kernels plain WebAssembly on the CPU, without oneDNN (as GALAXY_NATIVE_KERNELS=0)
 preprocessing (unset: the current run's, else these defaults):
  --scheme NAME  --size PX (${p.size})  --crop F (${p.crop})  --val F (${p.val})  --test F (${p.test})
  --split-seed S (${p.splitSeed})  --max-bad F (0.01)`;

function options(args: string[]): RetrainOptions & { replica?: ReplicaArgs } {
  const f = parseFlags(args, {
    data: { type: "string" },
    runs: { type: "string" },
    metric: { type: "string" },
    force: { type: "boolean" },
    always: { type: "boolean" },
    "from-scratch": { type: "boolean" },
    keep: { type: "string" },
    ...trainFlagOptions(RETRAIN_TRAIN_FLAGS),
    replicas: { type: "string" },
    backend: { type: "string" },
    "no-native-kernels": { type: "boolean" },
    scheme: { type: "string" },
    size: { type: "string" },
    crop: { type: "string" },
    val: { type: "string" },
    test: { type: "string" },
    "split-seed": { type: "string" },
    "max-bad": { type: "string" },
    // Set for the replica processes of a mirrored candidate.
    "train-replica": { type: "string" },
    "replica-rank": { type: "string" },
    "replica-count": { type: "string" },
    "replica-dir": { type: "string" },
  }, USAGE);
  const backend = f.backend === undefined
    ? undefined
    : choiceFlag("backend", f.backend, BACKEND_NAMES, "cpu" as BackendName);
  const nativeKernels = f["no-native-kernels"] ? false : undefined;
  if (f["train-replica"] !== undefined) {
    return {
      data: "",
      runs: "",
      backend,
      nativeKernels,
      replica: {
        json: f["train-replica"],
        rank: numberFlag("replica-rank", f["replica-rank"], 0, { min: 0, integer: true }),
        count: numberFlag("replica-count", f["replica-count"], 1, { min: 1, integer: true }),
        dir: required("replica-dir", f["replica-dir"], USAGE),
      },
    };
  }
  const num = (name: string, v: string | undefined, r: Parameters<typeof numberFlag>[3]) =>
    v === undefined ? undefined : numberFlag(name, v, 0, r);
  const splitSeed = f["split-seed"];
  return {
    data: required("data", f.data, USAGE),
    runs: required("runs", f.runs, USAGE),
    metric: f.metric === undefined
      ? undefined
      : choiceFlag("metric", f.metric, PROMOTION_METRICS, "accuracy"),
    force: f.force ?? false,
    always: f.always ?? false,
    fromScratch: f["from-scratch"] ?? false,
    keep: numberFlag("keep", f.keep, 5, { min: 1, integer: true }),
    train: readTrainFlags(f, RETRAIN_TRAIN_FLAGS),
    replicas: num("replicas", f.replicas, { min: 1, max: 64, integer: true }),
    backend,
    nativeKernels,
    dataSettings: {
      scheme: f.scheme,
      size: num("size", f.size, { min: 8, max: 424, integer: true }),
      crop: num("crop", f.crop, { min: 0.01, max: 1 }),
      val: num("val", f.val, { min: 0, max: 1 }),
      test: num("test", f.test, { min: 0, max: 1 }),
      splitSeed: splitSeed === undefined ? undefined : splitSeedFlag(splitSeed),
    },
    maxBad: num("max-bad", f["max-bad"], { min: 0, max: 1 }),
  };
}

interface ReplicaArgs {
  json: string;
  rank: number;
  count: number;
  dir: string;
}

/** Drops the keys whose value is undefined, so they do not override defaults when spread. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function main(): Promise<number> {
  let o: ReturnType<typeof options>;
  try {
    o = options(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    // Not runMain's status 2: that means "not promoted" to the scheduler.
    console.error(`error: ${e.message}`);
    return EXIT_CODES.failed;
  }
  if (o.replica) {
    const { json, ...flags } = o.replica;
    await runReplica(json, flags, o.backend, printer(), o.nativeKernels);
    return 0;
  }
  const progress = new ProgressLine();
  const r = await retrain({
    ...o,
    train: defined(o.train ?? {}),
    dataSettings: defined(o.dataSettings ?? {}),
    replicas: o.replicas ?? await defaultReplicas(),
    script: new URL(import.meta.url).pathname,
    handleSignals: true,
    log: (line) => {
      progress.done();
      console.log(line);
    },
    onPreprocessProgress: (q) =>
      progress.update(
        `  decoding ${q.done}/${q.total} images, ${q.imagesPerSecond.toFixed(0)}/s, ` +
          `ETA ${formatDuration(q.etaSeconds)}`,
        q.done === q.total,
      ),
    onTrainEvent: printer(),
  });
  const line = `retrain: ${r.outcome} (exit ${r.exitCode}) after ${formatDuration(r.seconds)}`;
  if (r.outcome === "failed") console.error(`${line}: ${r.error}`);
  else if (r.outcome === "busy") console.error(`${line}: ${r.message}`);
  else console.log(line);
  return r.exitCode;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    if (Deno.env.get("GALAXY_DEBUG")) console.error(e);
    Deno.exit(EXIT_CODES.failed);
  }
}
