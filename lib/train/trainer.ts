/**
 * The training loop behind `deno task train`, read top to bottom: open the
 * dataset, build ResNet-34, then for each epoch stream shuffled batches,
 * augment, step, validate, checkpoint, and keep the best model; at the end,
 * evaluate the best model on the test split.
 *
 * A run folder holds `config.json`, `metrics.jsonl` (one line per epoch),
 * `checkpoint/` (the last state, for `--resume`), `model/` (the best model
 * by validation score, TF.js Layers format), `report.json` (the best model
 * on the test split) and `curves.png` (the training curves).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { openDataset, type Split } from "../data/dataset.ts";
import { NUM_VOTES } from "../data/schema.ts";
import {
  balancedAlpha,
  binaryFocalLoss,
  categoricalFocalLoss,
  type LossFn,
} from "../focal_loss.ts";
import { predictAll } from "../inference.ts";
import { readJson, writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { sha256File } from "../io/digest.ts";
import { TOOLKIT_VERSION } from "../version.ts";
import { captureModel, loadModel, saveArtifacts } from "../io/model_io.ts";
import { WriteQueue } from "../io/write_queue.ts";
import { type ClassificationMetrics, classificationMetrics, rmse } from "../metrics.ts";
import { ARCHITECTURE, type HeadKind, resnet34 } from "../model/resnet.ts";
import type { SchemeKind } from "../data/label_schemes.ts";
import { UsageError } from "../cli.ts";
import {
  type DatasetSettings,
  type LossName,
  type MonitorName,
  resolveDatasetSettings,
  type ResolvedDatasetSettings,
} from "./dataset_settings.ts";
import { writeTrainingCurves } from "../report/charts.ts";
import { augmentBatch, DEFAULT_AUGMENT } from "./augment.ts";
import {
  type Checkpoint,
  loadCheckpoint,
  restoreVariables,
  type RunState,
  SnapshotBuffers,
  snapshotCheckpoint,
  writeCheckpoint,
} from "./checkpoint.ts";
import { type Collective, singleProcess } from "./collective.ts";
import { adam, type Optimizer, sgdNesterov, warmupCosine } from "./optimizers.ts";
import { type MirroredContext, mirroredStep } from "./mirrored.ts";
import { allVariables, trainableVariables } from "./step.ts";

/** Every setting of a run; `config.json` stores them all. */
export interface TrainOptions {
  /** Preprocessed dataset folder. */
  data: string;
  /** Run folder. */
  out: string;
  /** Epochs to train in all (a resumed run counts the ones done). */
  epochs: number;
  /** Global batch size (split evenly across replicas). */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  /** Adam, or SGD with Nesterov momentum. */
  optimizer: "adam" | "sgd";
  /** Linear warm-up length in epochs (fractions allowed). */
  warmupEpochs: number;
  /**
   * `focal`: categorical focal for classes, binary focal on fractions for votes.
   * Unset: the dataset's default (lib/train/dataset_settings.ts).
   */
  loss?: LossName;
  /** Output layer; unset: the dataset's default (`softmax` for classes, `sigmoid` for votes). */
  head?: HeadKind;
  /** Focal-loss focusing parameter; 0 gives plain cross-entropy. */
  gamma: number;
  /** A number, or `balanced` (inverse train-split class frequency); unset: the dataset's default. */
  alpha?: number | "balanced";
  /** Label smoothing of the class targets (0: none). */
  labelSmoothing: number;
  /** Seed of initial weights, shuffling, augmentation and dropout. */
  seed: number;
  /** Epochs without improvement before stopping; 0 never stops early. */
  patience: number;
  /** Validation score that picks the best model; unset: the dataset's default. */
  monitor?: MonitorName;
  /** Dropout rate before the head. */
  dropout: number;
  /** L2 penalty on every kernel. */
  weightDecay: number;
  /** Network stem (see {@linkcode ResNetOptions.stem}). */
  stem: "imagenet" | "small";
  /** Filter multiplier of the network (1: ResNet-34 proper; less for quick experiments). */
  width: number;
  /** Augment training batches (dihedral, shifts, brightness/contrast; lib/train/augment.ts). */
  augment: boolean;
  /** Checkpoint every this many steps as well as after each epoch; 0: epochs only. */
  checkpointSteps: number;
  /** Checkpoint when this many seconds passed since the last one; 0: off. */
  checkpointSeconds: number;
  /** Batch size of validation and test passes. */
  evalBatch: number;
  /** Continue from the run folder's checkpoint. */
  resume: boolean;
  /** A loss to use instead of `loss` (library use: any `(yTrue, yPred) => tf.Scalar`). */
  customLoss?: LossFn;
  /** Stop (as if killed, without a final checkpoint) after this many steps of this session: for tests. */
  haltAfterSteps?: number;
  /**
   * A model folder (`RUN/model`) whose weights replace the fresh ones before
   * the first step (fine-tuning); ignored when resuming from a checkpoint.
   */
  initFrom?: string;
}

/** A run's options with the dataset-dependent ones resolved; what `config.json` records. */
export type ResolvedTrainOptions = TrainOptions & Omit<DatasetSettings, "flipPairs">;

/**
 * Defaults of `deno task train` that do not depend on the dataset; those that
 * do (head, loss, monitor, alpha, flip pairs) come from its scheme
 * ({@linkcode resolveDatasetSettings}).
 */
export const TRAIN_DEFAULTS: Omit<TrainOptions, "data" | "out"> = {
  epochs: 20,
  batch: 32,
  lr: 1e-3,
  optimizer: "adam",
  warmupEpochs: 1,
  gamma: 2,
  labelSmoothing: 0,
  seed: 0,
  patience: 5,
  dropout: 0.3,
  weightDecay: 0,
  stem: "imagenet",
  width: 1,
  augment: true,
  checkpointSteps: 0,
  checkpointSeconds: 300,
  evalBatch: 64,
  resume: false,
};

/** One line of `metrics.jsonl`. */
export interface EpochRow {
  /** Epoch number, 1-based. */
  epoch: number;
  /** Training steps done at the end of the epoch. */
  step: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Mean training loss per image over the epoch. */
  train_loss: number;
  /** Training accuracy (class schemes), else null. */
  train_accuracy: number | null;
  /** Validation loss. */
  val_loss: number;
  /** Validation accuracy (class schemes). */
  val_accuracy?: number;
  /** Validation balanced accuracy (class schemes). */
  val_balanced_accuracy?: number;
  /** Validation macro F1 (class schemes). */
  val_macro_f1?: number;
  /** Validation RMSE of the vote fractions (votes scheme). */
  val_rmse?: number;
  /** Training images per second over the epoch (this session's part of it). */
  images_per_sec: number;
  /** Seconds of training so far, over all sessions, rounded. */
  seconds: number;
}

/** What the loop reports as it goes; the script turns these into a progress bar. */
export type TrainEvent =
  | {
    type: "start";
    trainSize: number;
    valSize: number;
    stepsPerEpoch: number;
    params: number;
    resumedAt: RunState | null;
    /** Kind of the dataset's scheme. */
    kind: SchemeKind;
    /** The dataset-dependent settings and which came from the scheme. */
    settings: ResolvedDatasetSettings;
    /** Class names (the 37 answer columns for votes). */
    classes: string[];
  }
  | {
    type: "step";
    epoch: number;
    batch: number;
    batches: number;
    loss: number;
    imagesPerSec: number;
    etaSeconds: number;
  }
  | { type: "epoch"; row: EpochRow; best: boolean }
  | { type: "checkpoint"; step: number }
  | { type: "early_stop"; epoch: number; bestEpoch: number }
  | { type: "done"; report: TrainReport };

/** `report.json`: the best model on the test split. */
export interface TrainReport {
  /** Epoch whose model scored best on validation. */
  bestEpoch: number;
  /** Validation score that picked it ({@linkcode TrainOptions.monitor}). */
  monitor: string;
  /** Its value of that score. */
  bestScore: number;
  /** Split the best model is scored on: `test`, or `val` when test is empty. */
  split: Split;
  /** Class names in index order. */
  classes: string[];
  /** Classification metrics on that split (class schemes), else null. */
  metrics: ClassificationMetrics | null;
  /** RMSE of the vote fractions on that split (votes scheme), else null. */
  rmse: number | null;
}

/** Raised when the loss stops being a finite number. */
export class TrainingDivergedError extends Error {}

/** Raised by `haltAfterSteps`, standing in for a kill in tests. */
export class TrainingHalted extends Error {}

/** Loss function for the kind of dataset and the (resolved) options. */
export function lossFor(
  o: Pick<ResolvedTrainOptions, "loss" | "gamma" | "alpha" | "labelSmoothing">,
  kind: SchemeKind,
  trainCounts: number[],
): LossFn {
  const alpha = o.alpha === "balanced"
    ? (kind === "votes" ? 0.5 : balancedAlpha(trainCounts))
    : o.alpha;
  if (kind === "votes") {
    if (o.loss === "mse") return (y, p) => tf.losses.meanSquaredError(y, p) as tf.Scalar;
    if (o.loss === "ce") {
      throw new UsageError("--loss ce needs a class scheme; votes use mse, focal or bfocal");
    }
    return binaryFocalLoss({ alpha: alpha as number, gamma: o.gamma });
  }
  switch (o.loss) {
    case "focal":
      return categoricalFocalLoss({ alpha, gamma: o.gamma, labelSmoothing: o.labelSmoothing });
    case "ce":
      return categoricalFocalLoss({
        alpha: Array.isArray(alpha) ? alpha : 1,
        gamma: 0,
        labelSmoothing: o.labelSmoothing,
      });
    case "bfocal":
      return binaryFocalLoss({ alpha: alpha as number, gamma: o.gamma });
    case "mse":
      return (y, p) => tf.losses.meanSquaredError(y, p) as tf.Scalar;
  }
}

/** An epoch's validation score; higher is better for every monitor (loss and RMSE are negated). */
export function score(monitor: MonitorName, row: EpochRow): number {
  switch (monitor) {
    case "accuracy":
      return row.val_accuracy ?? -Infinity;
    case "balanced_accuracy":
      return row.val_balanced_accuracy ?? -Infinity;
    case "macro_f1":
      return row.val_macro_f1 ?? -Infinity;
    case "loss":
      return -row.val_loss;
    case "rmse":
      return -(row.val_rmse ?? Infinity);
  }
}

/** A hash of the trainable weights, to check that replicas agree bit for bit. */
export function weightsDigest(vars: readonly tf.Variable[]): string {
  const h = createHash("sha256");
  for (const v of vars) h.update(new Uint8Array((v.dataSync() as Float32Array).buffer));
  return h.digest("hex");
}

/**
 * Trains a model as `options` say, reporting progress through `onEvent`.
 * In a mirrored run every replica calls this with its own `collective`;
 * only rank 0 writes files and returns the report (the others return null).
 */
export async function train(
  options: TrainOptions,
  onEvent: (e: TrainEvent) => void = () => {},
  collective: Collective = singleProcess(),
): Promise<TrainReport | null> {
  const lead = collective.rank === 0;
  const o0 = options;
  if (o0.batch % collective.size !== 0) {
    throw new Error(`--batch ${o0.batch} does not split evenly over ${collective.size} replicas`);
  }
  const ds = await openDataset(o0.data);
  // Checkpoints and the best model are written in the background while training goes on.
  const writes = new WriteQueue();
  try {
    const m = ds.manifest;
    const kind = m.scheme.kind;
    const resolved = resolveDatasetSettings(m.scheme, o0);
    const { flipPairs, ...datasetSettings } = resolved.settings;
    const o: ResolvedTrainOptions = { ...o0, ...datasetSettings };
    const head = o.head;
    const classes = m.scheme.classNames;
    const trainSize = ds.size("train");
    const valSize = ds.size("val");
    if (trainSize < o.batch) {
      throw new Error(
        `${o.data}: the train split has ${trainSize} images, fewer than --batch ${o.batch}`,
      );
    }
    const stepsPerEpoch = Math.floor(trainSize / o.batch);
    const totalSteps = stepsPerEpoch * o.epochs;
    const warmupSteps = Math.round(o.warmupEpochs * stepsPerEpoch);
    const local = o.batch / collective.size;
    const side = m.image.height;
    if (m.image.width !== side) {
      throw new Error(`${o.data}: images are not square (${side}x${m.image.width})`);
    }

    // config.json: every flag, the dataset's identity, and what predict needs to preprocess.
    const manifestHash = await sha256File(join(o.data, "manifest.json"));
    const modelOptions = {
      inputSize: side,
      outputs: kind === "votes" ? NUM_VOTES : classes.length,
      head,
      stem: o.stem,
      width: o.width,
      dropout: o.dropout,
      weightDecay: o.weightDecay,
      mean: m.stats?.mean,
      std: m.stats?.std,
      seed: o.seed,
    } as const;
    // A vote head starts from the training split's mean fractions, not from saturated outputs.
    const initialVotes = kind === "votes" ? ds.meanVotes("train") ?? undefined : undefined;
    const config = {
      options: {
        ...o,
        haltAfterSteps: undefined,
        customLoss: o.customLoss ? (o.customLoss.name || "custom") : undefined,
      },
      // Which of options.head/loss/monitor/alpha (and the flip pairs) came from the scheme.
      fromScheme: resolved.fromScheme,
      dataset: {
        dir: o.data,
        manifestSha256: manifestHash,
        scheme: m.scheme.name,
        kind,
        classes,
        flipPairs,
        size: side,
        crop: m.image.crop,
      },
      model: modelOptions,
      // Issue 23: which network choices the run trained with.
      architecture: ARCHITECTURE,
      replicas: collective.size,
      versions: { deno: Deno.version.deno, tfjs: tf.version.tfjs, galaxy: TOOLKIT_VERSION },
      backend: tf.getBackend(),
    };
    const configPath = join(o.out, "config.json");
    const checkpointDir = join(o.out, "checkpoint");
    const metricsPath = join(o.out, "metrics.jsonl");
    let checkpoint: Checkpoint | null = null;
    if (o.resume) {
      checkpoint = await loadCheckpoint(checkpointDir);
      if (checkpoint) {
        const old = await readJson<typeof config>(configPath);
        checkResumable(old, config, o.out);
      }
    } else if (lead) {
      await assertFreshRunFolder(o.out);
    }
    if (lead) await writeJsonAtomic(configPath, config);

    const model = resnet34({ ...modelOptions, initialVotes });
    const vars = trainableVariables(model);
    const everything = allVariables(model);
    const optimizer: Optimizer = o.optimizer === "adam" ? adam(vars) : sgdNesterov(vars);
    const loss = o.customLoss ?? lossFor(o, kind, ds.classCounts("train"));
    const ctx: MirroredContext = { model, vars, optimizer, loss, collective };
    const state: RunState = checkpoint?.state ?? {
      epoch: 0,
      batchInEpoch: 0,
      step: 0,
      bestScore: -Infinity,
      bestEpoch: -1,
      sinceBest: 0,
      epochLossSum: 0,
      epochCorrect: 0,
      epochSeen: 0,
      elapsedSeconds: 0,
    };
    if (checkpoint) {
      restoreVariables(everything, checkpoint.variables);
      optimizer.setState(checkpoint.optimizer, checkpoint.optimizerStep);
      if (lead) await truncateMetrics(metricsPath, state.epoch);
    } else {
      // Every replica loads them: the broadcast below covers only the trainable ones.
      if (o.initFrom !== undefined) await loadInitialWeights(model, o.initFrom);
      // Every replica starts from rank 0's weights, not merely the same seed.
      await broadcastVariables(collective, vars);
    }
    onEvent({
      type: "start",
      trainSize,
      valSize,
      stepsPerEpoch,
      params: vars.reduce((n, v) => n + v.size, 0),
      resumedAt: checkpoint ? { ...state } : null,
      kind,
      settings: resolved,
      classes,
    });

    // The "checkpoint" event comes once the checkpoint is on disk.
    const snapshotBuffers = new SnapshotBuffers();
    const save = () => {
      if (!lead) return onEvent({ type: "checkpoint", step: state.step });
      const snapshot = snapshotCheckpoint(state, everything, {
        state: optimizer.stateTensors(),
        step: optimizer.step,
      }, snapshotBuffers);
      writes.add(`the checkpoint in ${checkpointDir}`, async () => {
        await writeCheckpoint(checkpointDir, snapshot);
        snapshotBuffers.release(snapshot);
        onEvent({ type: "checkpoint", step: snapshot.state.step });
      });
    };
    const sessionStart = performance.now();
    const elapsedBefore = state.elapsedSeconds;
    const elapsed = () => elapsedBefore + (performance.now() - sessionStart) / 1000;
    let lastSave = performance.now();
    let sessionSteps = 0;
    let sessionImages = 0;

    while (state.epoch < o.epochs) {
      const epochStart = performance.now();
      const batches = ds.batches("train", {
        batchSize: o.batch,
        shuffle: true,
        seed: o.seed,
        epoch: state.epoch,
        startBatch: state.batchInEpoch,
        dropRemainder: true,
      });
      for await (const batch of batches) {
        const from = collective.rank * local;
        const pixels = batch.pixels.subarray(
          from * side * side * 3,
          (from + local) * side * side * 3,
        );
        const labels = batch.labels?.subarray(from, from + local) ?? null;
        const aug = o.augment
          ? augmentBatch(pixels, local, side, labels, flipPairs, {
            seed: o.seed,
            epoch: state.epoch,
            offset: state.batchInEpoch * o.batch + from,
          }, DEFAULT_AUGMENT)
          : { pixels: Float32Array.from(pixels), labels };
        const x = tf.tensor4d(aug.pixels, [local, side, side, 3]);
        const y = kind === "votes"
          ? tf.tensor2d(batch.votes!.subarray(from * NUM_VOTES, (from + local) * NUM_VOTES), [
            local,
            NUM_VOTES,
          ])
          : tf.tidy(() => tf.oneHot(tf.tensor1d(aug.labels!, "int32"), classes.length));
        const lr = warmupCosine(state.step, totalSteps, o.lr, warmupSteps);
        let result;
        try {
          result = await mirroredStep(
            ctx,
            x,
            y,
            kind === "classes" ? aug.labels : null,
            lr,
            state.step,
          );
        } finally {
          tf.dispose([x, y]);
        }
        const lossValue = result.loss;
        const correct = result.correct;
        if (!result.applied) {
          throw new TrainingDivergedError(
            `loss is ${lossValue} at step ${state.step + 1} (epoch ${state.epoch + 1}, batch ${
              state.batchInEpoch + 1
            }): stopped without applying it. The last good checkpoint is kept in ${checkpointDir}` +
              ` (resume with --resume, perhaps with a lower --lr than ${o.lr}).`,
          );
        }
        state.step++;
        state.batchInEpoch++;
        state.epochLossSum += lossValue * o.batch;
        state.epochCorrect += correct;
        state.epochSeen += o.batch;
        sessionSteps++;
        sessionImages += o.batch;
        const secs = (performance.now() - sessionStart) / 1000;
        const ips = sessionImages / secs;
        onEvent({
          type: "step",
          epoch: state.epoch,
          batch: state.batchInEpoch,
          batches: stepsPerEpoch,
          loss: lossValue,
          imagesPerSec: ips,
          etaSeconds: (totalSteps - state.step) * o.batch / ips,
        });
        // Background writes progress only when the event loop turns; a step never lets it.
        await writes.letProgress();
        if (o.haltAfterSteps !== undefined && sessionSteps >= o.haltAfterSteps) {
          throw new TrainingHalted(`halted after ${sessionSteps} steps`);
        }
        const due = (o.checkpointSteps > 0 && state.step % o.checkpointSteps === 0) ||
          (o.checkpointSeconds > 0 && performance.now() - lastSave > o.checkpointSeconds * 1000);
        if (due && state.batchInEpoch < stepsPerEpoch) {
          state.elapsedSeconds = elapsed();
          save();
          lastSave = performance.now();
        }
      }

      // End of epoch: validate, record, keep the best, checkpoint.
      // Replica 0 validates; the others wait at the next collective and take its verdict.
      const val = lead
        ? await validate(model, ds, "val", o.evalBatch, loss, kind, classes.length)
        : { loss: NaN, metrics: null, rmse: null };
      const row: EpochRow = {
        epoch: state.epoch + 1,
        step: state.step,
        lr: warmupCosine(Math.max(0, state.step - 1), totalSteps, o.lr, warmupSteps),
        train_loss: state.epochLossSum / Math.max(1, state.epochSeen),
        train_accuracy: kind === "classes"
          ? state.epochCorrect / Math.max(1, state.epochSeen)
          : null,
        val_loss: val.loss,
        ...(val.metrics
          ? {
            val_accuracy: val.metrics.accuracy,
            val_balanced_accuracy: val.metrics.balancedAccuracy,
            val_macro_f1: val.metrics.macroF1,
          }
          : {}),
        ...(val.rmse !== null ? { val_rmse: val.rmse } : {}),
        images_per_sec: state.epochSeen / ((performance.now() - epochStart) / 1000),
        seconds: Math.round(elapsed()),
      };
      await checkReplicasAgree(collective, vars, state.epoch + 1);
      const s = (await collective.allGather(score(o.monitor, row)))[0];
      // The first epoch is always "best": a run always has a model, even one that scores 0.
      const best = state.bestEpoch < 0 || s > state.bestScore;
      if (lead) {
        await appendLine(metricsPath, JSON.stringify(row));
        if (best) {
          const artifacts = await captureModel(model);
          const dir = join(o.out, "model");
          writes.add(
            `the model in ${dir}`,
            () => saveArtifacts(dir, artifacts, { galaxy: config }),
          );
        }
      }
      if (best) {
        state.bestScore = s;
        state.bestEpoch = state.epoch + 1;
        state.sinceBest = 0;
      } else {
        state.sinceBest++;
      }
      onEvent({ type: "epoch", row, best });
      state.batchInEpoch = 0;
      state.epochLossSum = 0;
      state.epochCorrect = 0;
      state.epochSeen = 0;
      state.elapsedSeconds = elapsed();
      const stopEarly = o.patience > 0 && state.sinceBest >= o.patience;
      // The checkpoint of a finished epoch points at the start of the next one.
      state.epoch = stopEarly ? o.epochs : state.epoch + 1;
      save();
      lastSave = performance.now();
      if (stopEarly) {
        onEvent({ type: "early_stop", epoch: row.epoch, bestEpoch: state.bestEpoch });
      }
    }
    await writes.flush();
    optimizer.dispose();
    model.dispose();

    // The best model on the test split (the validation split where there is no test split).
    if (!lead) return null;
    const report = await finalReport(o, ds, state, kind, classes, loss);
    await writeJsonAtomic(join(o.out, "report.json"), report);
    try {
      await writeTrainingCurves(o.out);
    } catch (e) {
      // A picture is not worth failing a finished run over.
      console.error(`warning: could not draw the training curves: ${(e as Error).message}`);
    }
    onEvent({ type: "done", report });
    return report;
  } finally {
    // A run that stops on an error still leaves its last checkpoint whole on disk.
    await writes.settle();
    ds.close();
  }
}

/** Loss and metrics of `model` on a split. */
export async function validate(
  model: tf.LayersModel,
  ds: Awaited<ReturnType<typeof openDataset>>,
  split: Split,
  batchSize: number,
  loss: LossFn,
  kind: SchemeKind,
  numClasses: number,
): Promise<{ loss: number; metrics: ClassificationMetrics | null; rmse: number | null }> {
  const labels: number[] = [];
  const votes: number[] = [];
  async function* tap() {
    for await (const b of ds.batches(split, { batchSize })) {
      if (b.labels) labels.push(...b.labels);
      if (b.votes) { for (const v of b.votes) votes.push(v); }
      yield b;
    }
  }
  const { outputs } = await predictAll(model, tap());
  const n = outputs.length / (kind === "votes" ? NUM_VOTES : numClasses);
  if (n === 0) return { loss: NaN, metrics: null, rmse: null };
  const lossValue = tf.tidy(() => {
    const y = kind === "votes"
      ? tf.tensor2d(votes, [n, NUM_VOTES])
      : tf.oneHot(tf.tensor1d(labels, "int32"), numClasses);
    return loss(y, tf.tensor2d(outputs, [n, outputs.length / n])).dataSync()[0];
  });
  if (kind === "votes") return { loss: lossValue, metrics: null, rmse: rmse(outputs, votes) };
  return {
    loss: lossValue,
    metrics: classificationMetrics(outputs, labels, ds.manifest.scheme.classNames),
    rmse: null,
  };
}

async function finalReport(
  o: ResolvedTrainOptions,
  ds: Awaited<ReturnType<typeof openDataset>>,
  state: RunState,
  kind: SchemeKind,
  classes: string[],
  loss: LossFn,
): Promise<TrainReport> {
  const split: Split = ds.size("test") > 0 ? "test" : "val";
  const best = await loadModel(join(o.out, "model"));
  try {
    const r = await validate(best, ds, split, o.evalBatch, loss, kind, classes.length);
    return {
      bestEpoch: state.bestEpoch,
      monitor: o.monitor,
      bestScore: o.monitor === "loss" || o.monitor === "rmse" ? -state.bestScore : state.bestScore,
      split,
      classes,
      metrics: r.metrics,
      rmse: r.rmse,
    };
  } finally {
    best.dispose();
  }
}

/** Copies the weights of the model in `dir` into `model`, whose shapes must be the same. */
async function loadInitialWeights(model: tf.LayersModel, dir: string) {
  const source = await loadModel(dir);
  try {
    const from = source.weights;
    const to = model.weights;
    // Layers with weights, and the head: runs from before issue 23 lack weightless padding and
    // projection layers, and still load.
    const layers = (m: tf.LayersModel) =>
      m.layers.filter((l) => l.weights.length > 0).map((l) => l.getClassName()).join(",");
    const head = (m: tf.LayersModel) =>
      m.layers.some((l) => l.getClassName() === "GalaxyZooVotes")
        ? "tree"
        : m.layers.some((l) =>
            l.getClassName() === "Activation" &&
            (l.getConfig() as { activation?: string }).activation === "sigmoid"
          )
        ? "sigmoid"
        : "softmax";
    const mismatch = head(source) !== head(model)
      ? `its head differs (${head(source)} there, ${head(model)} here)`
      : layers(source) !== layers(model)
      ? "its layers differ"
      : from.length !== to.length
      ? `${from.length} weights there, ${to.length} here`
      : to.map((w, i) => [w, from[i]] as const)
        .filter(([w, f]) => JSON.stringify(w.shape) !== JSON.stringify(f.shape))
        .map(([w, f]) => `${w.name} is [${w.shape}] here, [${f.shape}] there`)[0];
    if (mismatch) {
      throw new Error(
        `cannot start from ${dir}: its network differs (${mismatch}); ` +
          "use the same --stem, --width, --head and classes, or train from scratch",
      );
    }
    // getWeights() hands out copies: tidy disposes them once assigned.
    tf.tidy(() => model.setWeights(source.getWeights()));
  } finally {
    source.dispose();
  }
}

async function broadcastVariables(collective: Collective, vars: readonly tf.Variable[]) {
  if (collective.size === 1) return;
  for (const v of vars) {
    const data = (v.dataSync() as Float32Array).slice();
    await collective.broadcast(data);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, "float32")));
  }
}

async function checkReplicasAgree(
  collective: Collective,
  vars: readonly tf.Variable[],
  epoch: number,
) {
  if (collective.size === 1) return;
  // The first 8 bytes of the digest as a number: equal digests give equal numbers.
  const digest = parseInt(weightsDigest(vars).slice(0, 12), 16);
  const all = await collective.allGather(digest);
  const differing = all.map((d, r) => [d, r]).filter(([d]) => d !== all[0]).map(([, r]) => r);
  if (differing.length > 0) {
    throw new Error(
      `after epoch ${epoch} the weights of replica(s) ${
        differing.join(", ")
      } differ from replica 0's: ` +
        "the mirrored update is no longer identical; stopping (the last checkpoint is intact)",
    );
  }
}

async function assertFreshRunFolder(dir: string) {
  try {
    const entries = [...Deno.readDirSync(dir)];
    if (entries.some((e) => ["config.json", "checkpoint", "metrics.jsonl"].includes(e.name))) {
      throw new Error(
        `${dir} already holds a run: use --resume to continue it, or choose another --out`,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dir, { recursive: true });
}

/** Keys whose change makes a checkpoint meaningless for the new settings. */
const FIXED_ON_RESUME = [
  "batch",
  "optimizer",
  "head",
  "loss",
  "gamma",
  "alpha",
  "seed",
  "stem",
  "width",
  "dropout",
  "weightDecay",
  "labelSmoothing",
] as const;

function checkResumable(
  old: { options: Record<string, unknown>; dataset: { manifestSha256: string }; replicas: number },
  now: { options: Record<string, unknown>; dataset: { manifestSha256: string }; replicas: number },
  dir: string,
) {
  if (old.dataset.manifestSha256 !== now.dataset.manifestSha256) {
    throw new Error(`${dir} was trained on another dataset (manifest.json differs): cannot resume`);
  }
  for (const k of FIXED_ON_RESUME) {
    if (JSON.stringify(old.options[k]) !== JSON.stringify(now.options[k])) {
      throw new Error(
        `${dir} was started with --${k} ${old.options[k]}, not ${
          now.options[k]
        }: resume with the same value`,
      );
    }
  }
}

async function appendLine(path: string, line: string) {
  await Deno.writeTextFile(path, line + "\n", { append: true });
}

/** Drops metrics lines of epochs the checkpoint does not include (written before a kill). */
async function truncateMetrics(path: string, epochsDone: number) {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return;
  }
  const keep = text.split("\n").filter((l) => l.trim() && JSON.parse(l).epoch <= epochsDone);
  await writeFileAtomic(path, keep.map((l) => l + "\n").join(""));
}
