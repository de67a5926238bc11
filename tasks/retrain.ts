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
import { formatDuration, ProgressLine, required, UsageError } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { RETRAIN_TASK, RETRAIN_TRAIN_FLAGS } from "../lib/tasks/retrain.ts";
import { runReplica } from "../lib/retrain/candidate.ts";
import { EXIT_CODES } from "../lib/retrain/log.ts";
import { retrain, type RetrainOptions } from "../lib/retrain/retrain.ts";
import { defaultReplicas } from "../lib/train/mirrored.ts";
import { readTrainFlags } from "../lib/train/flags.ts";
import { printer } from "../scripts/train.ts";

const USAGE = usage(RETRAIN_TASK);

function options(args: string[]): RetrainOptions & { replica?: ReplicaArgs } {
  const f = parseTask(RETRAIN_TASK, args);
  const { backend } = f;
  const nativeKernels = f["no-native-kernels"] ? false : undefined;
  if (f["train-replica"] !== undefined) {
    return {
      data: "",
      runs: "",
      backend,
      nativeKernels,
      replica: {
        json: f["train-replica"],
        rank: f["replica-rank"] ?? 0,
        count: f["replica-count"] ?? 1,
        dir: required("replica-dir", f["replica-dir"], USAGE),
      },
    };
  }
  return {
    data: required("data", f.data, USAGE),
    runs: required("runs", f.runs, USAGE),
    metric: f.metric,
    force: f.force,
    always: f.always,
    fromScratch: f["from-scratch"],
    keep: f.keep,
    train: readTrainFlags(f, RETRAIN_TRAIN_FLAGS),
    replicas: f.replicas,
    backend,
    nativeKernels,
    dataSettings: {
      scheme: f.scheme,
      size: f.size,
      crop: f.crop,
      val: f.val,
      test: f.test,
      splitSeed: f["split-seed"],
    },
    maxBad: f["max-bad"],
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
