/**
 * `deno task train --data DATASET --out RUN [flags]`: trains ResNet-34 on a
 * preprocessed dataset. Its flags are declared in lib/tasks/train.ts (see
 * docs/cli.md).
 *
 * Exit status: 0 done; 1 failure; 2 usage error; 3 the run folder is in use
 * by another process (lib/run/lock.ts).
 *
 * @module
 */
import { type BackendName, describeBackend, setupBackend } from "../lib/backend.ts";
import { jitStartNote } from "../lib/cuda_jit.ts";
import { RunInUseError } from "../lib/run/lock.ts";
import {
  defaultReplicas,
  joinReplicas,
  launchReplicas,
  REPLICA_PERMISSIONS,
  type ReplicaFlags,
} from "../lib/train/mirrored.ts";
import { bar, formatDuration, ProgressLine, required, runMain } from "../lib/cli.ts";
import { parseTask, usage } from "../lib/flags.ts";
import { TRAIN_TASK } from "../lib/tasks/train.ts";
import { train, TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from "../lib/train/trainer.ts";
import { readTrainFlags, TRAIN_FLAG_NAMES } from "../lib/train/flags.ts";
import { describeDatasetSettings, resolveDatasetSettings } from "../lib/train/dataset_settings.ts";
import { readManifest } from "../lib/data/manifest.ts";

const USAGE = usage(TRAIN_TASK);

interface ScriptOptions extends TrainOptions {
  backend?: BackendName;
  nativeKernels?: boolean;
  replicas?: number;
  replica?: ReplicaFlags;
}

function options(args: string[]): ScriptOptions {
  const f = parseTask(TRAIN_TASK, args);
  return {
    ...TRAIN_DEFAULTS,
    ...readTrainFlags(f, TRAIN_FLAG_NAMES),
    data: required("data", f.data, USAGE),
    out: required("out", f.out, USAGE),
    augment: !f["no-augment"],
    resume: f.resume,
    verify: !f["no-verify"],
    backend: f.backend,
    nativeKernels: f["no-native-kernels"] ? false : undefined,
    replicas: f.replicas,
    replica: f["replica-dir"] === undefined ? undefined : {
      rank: f["replica-rank"] ?? 0,
      count: f["replica-count"] ?? 1,
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
      requested: o.backend,
      nativeKernels: o.nativeKernels,
    });
    const lead = !o.replica || o.replica.rank === 0;
    if (lead) console.log(describeBackend(backend));
    else console.error(`replica ${o.replica!.rank}: ${describeBackend(backend)}`);
    const jit = lead ? await jitStartNote(backend) : null;
    if (jit) console.log(jit);
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
