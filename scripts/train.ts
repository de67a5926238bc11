/**
 * `deno task train --data DATASET --out RUN [flags]`: trains ResNet-34 on a
 * preprocessed dataset. See README.md for every flag.
 *
 * Exit status: 0 done; 1 failure; 2 usage error; 3 the run folder is in use
 * by another process (lib/run/lock.ts).
 *
 * @module
 */
import { BACKEND_NAMES, type BackendName, describeBackend, setupBackend } from "../lib/backend.ts";
import {
  defaultReplicas,
  joinReplicas,
  launchReplicas,
  REPLICA_PERMISSIONS,
  type ReplicaFlags,
} from "../lib/train/mirrored.ts";
import {
  bar,
  formatDuration,
  numberFlag,
  parseFlags,
  ProgressLine,
  required,
  runMain,
  UsageError,
} from "../lib/cli.ts";
import { train, TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from "../lib/train/trainer.ts";
import { readTrainFlags, TRAIN_FLAG_NAMES, trainFlagOptions } from "../lib/train/flags.ts";
import {
  describeDatasetSettings,
  resolveDatasetSettings,
  SCHEME_DEFAULTS,
} from "../lib/train/dataset_settings.ts";
import { readManifest } from "../lib/data/manifest.ts";
import { RunInUseError } from "../lib/run/lock.ts";

const d = TRAIN_DEFAULTS;
const { classes, votes } = SCHEME_DEFAULTS;
const USAGE = `usage: deno task train --data DATASET_DIR --out RUN_DIR [flags]

  --epochs N            epochs (${d.epochs})
  --batch N             global batch size (${d.batch})
  --lr X                peak learning rate (${d.lr}); linear warm-up, then cosine decay
  --warmup EPOCHS       warm-up length in epochs (${d.warmupEpochs})
  --optimizer adam|sgd  Adam, or SGD with Nesterov momentum 0.9 (${d.optimizer})
  --head softmax|sigmoid|tree  output layer; for votes, 37 sigmoids or the
                        tree-consistent head (${votes.head} for votes, ${classes.head} for classes)
  --loss focal|ce|bfocal|mse   (${classes.loss} for classes, ${votes.loss} for votes; focal on
                        fractions is binary focal)
  --gamma X             focal exponent (${d.gamma})
  --alpha X|balanced    focal weight, or inverse class frequency
                        (${classes.alpha} for classes, ${votes.alpha} for votes)
  --label-smoothing X   (${d.labelSmoothing})
  --seed N              same seed: same data order, augmentation and initial weights (${d.seed})
  --patience N          stop after N epochs without improvement; 0 never (${d.patience})
  --monitor M           the validation score that picks the best epoch: accuracy,
                        balanced_accuracy, macro_f1 or loss for classes (${classes.monitor});
                        rmse or loss for votes (${votes.monitor})
  --stem imagenet|small 7x7/2 conv + max-pool, or one 3x3/1 conv for small inputs (${d.stem})
  --width X             filter multiplier: 1 is ResNet-34 proper, less is narrower (${d.width})
  --dropout X           (${d.dropout})    --weight-decay X   L2 on kernels (${d.weightDecay})
  --no-augment          no rotations/flips/shifts/jitter
  --checkpoint-steps N  also checkpoint every N steps (${d.checkpointSteps}: epochs only)
  --checkpoint-seconds N  also checkpoint after N seconds (${d.checkpointSeconds})
  --eval-batch N        batch size of validation (${d.evalBatch})
  --resume              continue the run in --out from its last checkpoint
  --no-verify           resume from a checkpoint (or start from a model) that does not match
                        the SHA-256 recorded when it was written (see docs/run-folder.md)
  --backend NAME        ${BACKEND_NAMES.join("|")} (default: the fastest that loads)
  --no-native-kernels   wasm without the oneDNN kernels (also GALAXY_NATIVE_KERNELS=0)
  --replicas N          mirrored data-parallel replicas, one process per GPU
                        (default: the GPUs nvidia-smi lists, or 1)

exit status: 0 done; 1 failure; 2 usage error; 3 the run folder is in use by another process`;

interface ScriptOptions extends TrainOptions {
  backend?: string;
  nativeKernels?: boolean;
  replicas?: number;
  replica?: ReplicaFlags;
}

function options(args: string[]): ScriptOptions {
  const f = parseFlags(args, {
    data: { type: "string" },
    out: { type: "string" },
    ...trainFlagOptions(TRAIN_FLAG_NAMES),
    "no-augment": { type: "boolean" },
    resume: { type: "boolean" },
    "no-verify": { type: "boolean" },
    backend: { type: "string" },
    "no-native-kernels": { type: "boolean" },
    replicas: { type: "string" },
    // Set by the mirrored launcher for each replica process.
    "replica-rank": { type: "string" },
    "replica-count": { type: "string" },
    "replica-dir": { type: "string" },
  }, USAGE);
  return {
    ...d,
    ...readTrainFlags(f, TRAIN_FLAG_NAMES),
    data: required("data", f.data, USAGE),
    out: required("out", f.out, USAGE),
    augment: !f["no-augment"],
    resume: f.resume ?? false,
    verify: !f["no-verify"],
    backend: f.backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
    replicas: f.replicas === undefined
      ? undefined
      : numberFlag("replicas", f.replicas, 1, { min: 1, max: 64, integer: true }),
    replica: f["replica-dir"] === undefined ? undefined : {
      rank: numberFlag("replica-rank", f["replica-rank"], 0, { min: 0, integer: true }),
      count: numberFlag("replica-count", f["replica-count"], 1, { min: 1, integer: true }),
      dir: f["replica-dir"],
    },
  };
}

/** Prints the loop's events: a progress bar per epoch and a line per epoch. */
export function printer(): (e: TrainEvent) => void {
  const line = new ProgressLine();
  const pct = (x: number | undefined) => x === undefined ? "-" : `${(100 * x).toFixed(2)}%`;
  return (e) => {
    switch (e.type) {
      case "start":
        for (const note of e.notes) console.log(`run folder: ${note}`);
        console.log(describeDatasetSettings(e.kind, e.settings, e.classes));
        console.log(
          `train ${e.trainSize} images, val ${e.valSize}; ${e.stepsPerEpoch} steps/epoch; ` +
            `${e.params.toLocaleString("en")} trainable parameters` +
            (e.resumedAt
              ? `; resuming at epoch ${e.resumedAt.epoch + 1}, batch ${
                e.resumedAt.batchInEpoch + 1
              }`
              : ""),
        );
        break;
      case "step":
        line.update(
          `epoch ${e.epoch + 1} ${bar(e.batch / e.batches)} ${e.batch}/${e.batches} ` +
            `loss ${e.loss.toFixed(4)}  ${e.imagesPerSec.toFixed(1)} img/s  ETA ${
              formatDuration(e.etaSeconds)
            }`,
          e.batch === e.batches,
        );
        break;
      case "epoch": {
        line.done();
        const r = e.row;
        const val = r.val_rmse !== undefined
          ? `val rmse ${r.val_rmse.toFixed(4)}`
          : `val acc ${pct(r.val_accuracy)} bal ${pct(r.val_balanced_accuracy)} F1 ${
            pct(r.val_macro_f1)
          }`;
        console.log(
          `epoch ${r.epoch}: train loss ${r.train_loss.toFixed(4)}` +
            (r.train_accuracy !== null ? ` acc ${pct(r.train_accuracy)}` : "") +
            `, val loss ${r.val_loss.toFixed(4)}, ${val}, ${r.images_per_sec.toFixed(1)} img/s` +
            (e.best ? "  (best so far: saved)" : ""),
        );
        break;
      }
      case "early_stop":
        console.log(`early stop after epoch ${e.epoch}: no improvement since epoch ${e.bestEpoch}`);
        break;
      case "done": {
        const r = e.report;
        const m = r.metrics;
        console.log(
          `best epoch ${r.bestEpoch}; ${r.split} split: ` +
            (m
              ? `accuracy ${pct(m.accuracy)}, balanced ${pct(m.balancedAccuracy)}, macro-F1 ${
                pct(m.macroF1)
              }`
              : `rmse ${r.rmse?.toFixed(5)}`),
        );
        break;
      }
    }
  };
}

/** `args` without `flag` and its value (`--flag v` or `--flag=v`). */
function withoutFlag(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) i++;
    else if (!args[i].startsWith(`${flag}=`)) out.push(args[i]);
  }
  return out;
}

if (import.meta.main) {
  await runMain(async () => {
    const o = options(Deno.args);
    if (o.backend !== undefined && !BACKEND_NAMES.includes(o.backend as never)) {
      throw new UsageError(
        `--backend must be one of ${BACKEND_NAMES.join(", ")}, got '${o.backend}'`,
      );
    }
    if (!o.replica) {
      // Settings the dataset cannot honour are usage errors, found before any replica starts.
      const manifest = await readManifest(o.data);
      resolveDatasetSettings(manifest.scheme, o);
    }
    const replicas = o.replica ? o.replica.count : o.replicas ?? await defaultReplicas();
    if (replicas > 1 && !o.replica) {
      // The launcher: start one replica process per GPU (or per share of the CPU) and wait.
      console.log(`mirrored training: ${replicas} replicas (one process each)`);
      await launchReplicas({
        script: new URL(import.meta.url).pathname,
        args: withoutFlag(Deno.args, "--replicas"),
        replicas,
        permissions: REPLICA_PERMISSIONS,
      });
      console.log(`run folder: ${o.out} (model/, config.json, metrics.jsonl, report.json)`);
      return;
    }
    const backend = await setupBackend({
      requested: o.backend as BackendName | undefined,
      nativeKernels: o.nativeKernels,
    });
    const lead = !o.replica || o.replica.rank === 0;
    if (lead) console.log(describeBackend(backend));
    else console.error(`replica ${o.replica!.rank}: ${describeBackend(backend)}`);
    const collective = o.replica ? await joinReplicas(o.replica) : undefined;
    if (collective && lead) {
      console.log(
        `replica group of ${collective.size}: gradients all-reduced over ${collective.transport}`,
      );
    }
    try {
      await train(o, lead ? printer() : () => {}, collective);
    } catch (e) {
      if (!(e instanceof RunInUseError)) throw e;
      console.error(`error: ${e.message}`);
      return e.exitCode;
    } finally {
      await collective?.close();
    }
    if (!o.replica) {
      console.log(`run folder: ${o.out} (model/, config.json, metrics.jsonl, report.json)`);
    }
  });
}
