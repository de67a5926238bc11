/**
 * The training loop behind `deno task train`, read top to bottom: open the
 * dataset, build ResNet-34, then for each epoch stream shuffled batches,
 * augment, step, validate, checkpoint, and keep the best model; at the end,
 * evaluate the best model on the test split.
 *
 * The run folder it writes (config, metrics, checkpoint, best model,
 * report, curves, lock) is lib/run's: see lib/run/layout.ts and
 * docs/run-folder.md.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readable } from "../backend.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type Batch, openDataset, type Split } from "../data/dataset.ts";
import { MANIFEST_FILE } from "../data/manifest.ts";
import { NUM_VOTES } from "../data/schema.ts";
import {
  BALANCED_ALPHA_POWERS,
  balancedAlpha,
  binaryFocalLoss,
  categoricalFocalLoss,
  type FocalAlpha,
  type LossFn,
} from "../focal_loss.ts";
import { predictAll } from "../inference.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { sha256File } from "../io/digest.ts";
import { TOOLKIT_VERSION } from "../version.ts";
import { captureModel, loadModel } from "../io/model_io.ts";
import { RUN_CONFIG_FORMAT, type RunConfig } from "../run/config.ts";
import { openTrainingFolder, type TrainingFolder } from "../run/folder.ts";
import { runPaths } from "../run/layout.ts";
import { appendMetricsRow } from "../run/metrics.ts";
import { loadRunModel, saveRunModel } from "../run/model.ts";
import { WriteQueue } from "../io/write_queue.ts";
import type { ClassificationMetrics } from "../metrics.ts";
import { scoreOutputs } from "../evaluate/score.ts";
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
  /**
   * A number, `balanced` (inverse train-split class frequency) or
   * `sqrt-balanced` (its square root); unset: the dataset's default.
   */
  alpha?: FocalAlpha;
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
  /**
   * Largest random shift of a training image, in pixels along each axis
   * (edges replicated); 0: none, the default, as Galaxy Zoo cutouts are
   * centred on their galaxy ({@linkcode DEFAULT_AUGMENT}).
   */
  shift: number;
  /** Checkpoint every this many steps as well as after each epoch; 0: epochs only. */
  checkpointSteps: number;
  /** Checkpoint when this many seconds passed since the last one; 0: off. */
  checkpointSeconds: number;
  /** Batch size of validation and test passes. */
  evalBatch: number;
  /** Continue from the run folder's checkpoint. */
  resume: boolean;
  /**
   * Check the checkpoint (on resume) and the model of `initFrom` against
   * their recorded SHA-256 (default true; `--no-verify` turns it off).
   */
  verify?: boolean;
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
  dropout: 0,
  weightDecay: 0,
  stem: "imagenet",
  width: 1,
  augment: true,
  shift: DEFAULT_AUGMENT.maxShift,
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
    /**
     * What opening the run folder found or changed (a stale lock taken over,
     * metrics lines dropped on resume, no checkpoint), one line each.
     */
    notes: string[];
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
  const alpha = typeof o.alpha === "number"
    ? o.alpha
    : kind === "votes"
    ? 0.5
    : balancedAlpha(trainCounts, BALANCED_ALPHA_POWERS[o.alpha]);
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
 *
 * Read as nanoGPT's loop: open the run ({@linkcode openSession}), then for
 * each epoch its batches ({@linkcode epochBatches}), a step on each
 * ({@linkcode trainStep}), the end of the epoch ({@linkcode endOfEpoch}),
 * and at last {@linkcode finish}.
 *
 * @throws {RunInUseError} when another process writes the run folder (exit 3).
 * @throws {DigestMismatchError} when resuming from a damaged checkpoint.
 */
export async function train(
  options: TrainOptions,
  onEvent: (e: TrainEvent) => void = () => {},
  collective: Collective = singleProcess(),
): Promise<TrainReport | null> {
  const s = await openSession(options, onEvent, collective);
  try {
    while (s.state.epoch < s.o.epochs) {
      const epochStart = performance.now();
      for await (const batch of epochBatches(s)) await trainStep(s, batch);
      await endOfEpoch(s, epochStart);
    }
    return await finish(s);
  } finally {
    await closeSession(s);
  }
}

/** Everything one training process works with; the stages below read and advance it. */
interface Session {
  o: ResolvedTrainOptions;
  onEvent: (e: TrainEvent) => void;
  collective: Collective;
  /** Whether this process writes the run folder (rank 0). */
  lead: boolean;
  ds: Dataset;
  kind: SchemeKind;
  classes: string[];
  flipPairs: [number, number][];
  /** Side of the square images, pixels. */
  side: number;
  /** This replica's share of a batch. */
  local: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  config: RunConfig;
  folder: TrainingFolder;
  model: tf.LayersModel;
  /** Trainable variables, and every variable (batch-norm statistics too) for checkpoints. */
  vars: tf.Variable[];
  everything: tf.Variable[];
  optimizer: Optimizer;
  loss: LossFn;
  ctx: MirroredContext;
  state: RunState;
  /** Checkpoints and the best model, written in the background while training goes on. */
  writes: WriteQueue;
  snapshotBuffers: SnapshotBuffers;
  clock: { start: number; elapsedBefore: number; lastSave: number; steps: number; images: number };
  disposed: boolean;
}

type Dataset = Awaited<ReturnType<typeof openDataset>>;

/** Seconds of training so far, over all sessions. */
function elapsed(s: Session): number {
  return s.clock.elapsedBefore + (performance.now() - s.clock.start) / 1000;
}

/** Open the run: dataset, settings, run folder (lock, checkpoint, config), model and optimizer. */
async function openSession(
  o0: TrainOptions,
  onEvent: (e: TrainEvent) => void,
  collective: Collective,
): Promise<Session> {
  if (o0.batch % collective.size !== 0) {
    throw new Error(`--batch ${o0.batch} does not split evenly over ${collective.size} replicas`);
  }
  const ds = await openDataset(o0.data);
  let folder: TrainingFolder | null = null;
  try {
    const plan = await planRun(o0, ds, collective);
    const lead = collective.rank === 0;
    folder = await openTrainingFolder(o0.out, {
      resume: o0.resume,
      lead,
      verify: o0.verify ?? true,
      config: plan.config,
    });
    const built = await buildModel(plan.o, ds, plan.config, folder.checkpoint, collective);
    const s: Session = {
      ...plan,
      ...built,
      onEvent,
      collective,
      lead,
      ds,
      folder,
      writes: new WriteQueue(),
      snapshotBuffers: new SnapshotBuffers(),
      clock: {
        start: performance.now(),
        elapsedBefore: built.state.elapsedSeconds,
        lastSave: performance.now(),
        steps: 0,
        images: 0,
      },
      disposed: false,
    };
    onEvent({
      type: "start",
      trainSize: ds.size("train"),
      valSize: ds.size("val"),
      stepsPerEpoch: s.stepsPerEpoch,
      params: s.vars.reduce((n, v) => n + v.size, 0),
      resumedAt: folder.checkpoint ? { ...s.state } : null,
      kind: s.kind,
      settings: plan.resolved,
      classes: s.classes,
      notes: folder.notes,
    });
    return s;
  } catch (e) {
    folder?.lock?.release();
    ds.close();
    throw e;
  }
}

/** The run's settings resolved against the dataset, and the config that records them. */
async function planRun(o0: TrainOptions, ds: Dataset, collective: Collective) {
  const m = ds.manifest;
  const kind = m.scheme.kind;
  const resolved = resolveDatasetSettings(m.scheme, o0);
  const { flipPairs, ...datasetSettings } = resolved.settings;
  const o: ResolvedTrainOptions = { ...o0, ...datasetSettings };
  const classes = m.scheme.classNames;
  const trainSize = ds.size("train");
  if (trainSize < o.batch) {
    throw new Error(
      `${o.data}: the train split has ${trainSize} images, fewer than --batch ${o.batch}`,
    );
  }
  const side = m.image.height;
  if (m.image.width !== side) {
    throw new Error(`${o.data}: images are not square (${side}x${m.image.width})`);
  }
  const stepsPerEpoch = Math.floor(trainSize / o.batch);
  const { data, out: _out, haltAfterSteps: _h, verify: _v, customLoss, ...recorded } = o;
  const config: RunConfig = {
    format: RUN_CONFIG_FORMAT,
    options: { ...recorded, ...(customLoss ? { customLoss: customLoss.name || "custom" } : {}) },
    fromScheme: resolved.fromScheme,
    dataset: {
      dir: data,
      manifestSha256: await sha256File(join(data, MANIFEST_FILE)),
      scheme: m.scheme.name,
      kind,
      classes,
      flipPairs,
      size: side,
      crop: m.image.crop,
      // The stretch FITS inputs were packed with, so predict applies the same one.
      ...(m.image.fitsStretch ? { fitsStretch: m.image.fitsStretch } : {}),
    },
    model: {
      inputSize: side,
      outputs: kind === "votes" ? NUM_VOTES : classes.length,
      head: o.head,
      stem: o.stem,
      width: o.width,
      dropout: o.dropout,
      weightDecay: o.weightDecay,
      mean: m.stats?.mean,
      std: m.stats?.std,
      seed: o.seed,
    },
    // Which network choices the run trained with (issue 23: torchvision padding, tree projection).
    architecture: ARCHITECTURE,
    replicas: collective.size,
    versions: { deno: Deno.version.deno, tfjs: tf.version.tfjs, galaxy: TOOLKIT_VERSION },
    backend: tf.getBackend(),
  };
  return {
    o,
    resolved,
    config,
    kind,
    classes,
    flipPairs,
    side,
    local: o.batch / collective.size,
    stepsPerEpoch,
    totalSteps: stepsPerEpoch * o.epochs,
    warmupSteps: Math.round(o.warmupEpochs * stepsPerEpoch),
  };
}

/** The network and optimizer, restored from the checkpoint or fresh (or from `initFrom`). */
async function buildModel(
  o: ResolvedTrainOptions,
  ds: Dataset,
  config: RunConfig,
  checkpoint: Checkpoint | null,
  collective: Collective,
) {
  const kind = ds.manifest.scheme.kind;
  // A vote head starts from the training split's mean fractions, not from saturated outputs.
  const initialVotes = kind === "votes" ? ds.meanVotes("train") ?? undefined : undefined;
  const model = resnet34({ ...config.model!, head: o.head, initialVotes });
  const vars = trainableVariables(model);
  const everything = allVariables(model);
  const optimizer: Optimizer = o.optimizer === "adam" ? adam(vars) : sgdNesterov(vars);
  const loss = o.customLoss ?? lossFor(o, kind, ds.classCounts("train"));
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
  } else {
    // Every replica loads them: the broadcast below covers only the trainable ones.
    if (o.initFrom !== undefined) await loadInitialWeights(model, o.initFrom, o.verify ?? true);
    // Every replica starts from rank 0's weights, not merely the same seed.
    await broadcastVariables(collective, vars);
  }
  const ctx: MirroredContext = { model, vars, optimizer, loss, collective };
  return { model, vars, everything, optimizer, loss, ctx, state };
}

/** The epoch's shuffled batches, from where the run stands (a resumed run starts mid-epoch). */
function epochBatches(s: Session) {
  return s.ds.batches("train", {
    batchSize: s.o.batch,
    shuffle: true,
    seed: s.o.seed,
    epoch: s.state.epoch,
    startBatch: s.state.batchInEpoch,
    dropRemainder: true,
  });
}

/** This replica's share of a batch, augmented, as input and target tensors. */
function batchTensors(s: Session, batch: Batch) {
  const { o, side, local, kind } = s;
  const from = s.collective.rank * local;
  const pixels = batch.pixels.subarray(from * side * side * 3, (from + local) * side * side * 3);
  const labels = batch.labels?.subarray(from, from + local) ?? null;
  const aug = o.augment
    ? augmentBatch(pixels, local, side, labels, s.flipPairs, {
      seed: o.seed,
      epoch: s.state.epoch,
      offset: s.state.batchInEpoch * o.batch + from,
    }, { ...DEFAULT_AUGMENT, maxShift: o.shift })
    : { pixels: Float32Array.from(pixels), labels };
  const x = tf.tensor4d(aug.pixels, [local, side, side, 3]);
  const y = kind === "votes"
    ? tf.tensor2d(batch.votes!.subarray(from * NUM_VOTES, (from + local) * NUM_VOTES), [
      local,
      NUM_VOTES,
    ])
    : tf.tidy(() => tf.oneHot(tf.tensor1d(aug.labels!, "int32"), s.classes.length));
  return { x, y, labels: kind === "classes" ? aug.labels : null };
}

/** Step: one update on one batch, its progress event, and a checkpoint when one is due. */
async function trainStep(s: Session, batch: Batch): Promise<void> {
  const { o, state } = s;
  const { x, y, labels } = batchTensors(s, batch);
  const lr = warmupCosine(state.step, s.totalSteps, o.lr, s.warmupSteps);
  let result;
  try {
    result = await mirroredStep(s.ctx, x, y, labels, lr, state.step);
  } finally {
    tf.dispose([x, y]);
  }
  if (!result.applied) {
    throw new TrainingDivergedError(
      `loss is ${result.loss} at step ${state.step + 1} (epoch ${state.epoch + 1}, batch ${
        state.batchInEpoch + 1
      }): stopped without applying it. The last good checkpoint is kept in ` +
        `${
          runPaths(o.out).checkpointDir
        } (resume with --resume, perhaps with a lower --lr than ${o.lr}).`,
    );
  }
  state.step++;
  state.batchInEpoch++;
  state.epochLossSum += result.loss * o.batch;
  state.epochCorrect += result.correct;
  state.epochSeen += o.batch;
  s.clock.steps++;
  s.clock.images += o.batch;
  const ips = s.clock.images / ((performance.now() - s.clock.start) / 1000);
  s.onEvent({
    type: "step",
    epoch: state.epoch,
    batch: state.batchInEpoch,
    batches: s.stepsPerEpoch,
    loss: result.loss,
    imagesPerSec: ips,
    etaSeconds: (s.totalSteps - state.step) * o.batch / ips,
  });
  // Background writes progress only when the event loop turns; a step never lets it.
  await s.writes.letProgress();
  // A checkpoint that could not be written (a full disk) stops the run now, not an epoch later.
  s.writes.check();
  if (o.haltAfterSteps !== undefined && s.clock.steps >= o.haltAfterSteps) {
    throw new TrainingHalted(`halted after ${s.clock.steps} steps`);
  }
  const due = (o.checkpointSteps > 0 && state.step % o.checkpointSteps === 0) ||
    (o.checkpointSeconds > 0 && performance.now() - s.clock.lastSave > o.checkpointSeconds * 1000);
  if (due && state.batchInEpoch < s.stepsPerEpoch) await saveCheckpoint(s);
}

/** Queues a checkpoint of where the run stands now; the "checkpoint" event comes once it is on disk. */
async function saveCheckpoint(s: Session): Promise<void> {
  s.state.elapsedSeconds = elapsed(s);
  s.clock.lastSave = performance.now();
  if (!s.lead) return s.onEvent({ type: "checkpoint", step: s.state.step });
  // Backends without synchronous reads (webgpu) download first.
  await readable([...s.everything, ...s.optimizer.stateTensors()]);
  const snapshot = snapshotCheckpoint(s.state, s.everything, {
    state: s.optimizer.stateTensors(),
    step: s.optimizer.step,
  }, s.snapshotBuffers);
  const dir = runPaths(s.o.out).checkpointDir;
  s.writes.add(`the checkpoint in ${dir}`, async () => {
    await writeCheckpoint(dir, snapshot);
    s.snapshotBuffers.release(snapshot);
    s.onEvent({ type: "checkpoint", step: snapshot.state.step });
  });
}

/** The metrics line of the epoch just trained, with its validation scores. */
async function epochRow(s: Session, epochStart: number): Promise<EpochRow> {
  const { o, state } = s;
  // Replica 0 validates; the others wait at the next collective and take its verdict.
  const val = s.lead
    ? await validate(s.model, s.ds, "val", o.evalBatch, s.loss, s.kind, s.classes.length)
    : { loss: NaN, metrics: null, rmse: null };
  return {
    epoch: state.epoch + 1,
    step: state.step,
    lr: warmupCosine(Math.max(0, state.step - 1), s.totalSteps, o.lr, s.warmupSteps),
    train_loss: state.epochLossSum / Math.max(1, state.epochSeen),
    train_accuracy: s.kind === "classes" ? state.epochCorrect / Math.max(1, state.epochSeen) : null,
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
    seconds: Math.round(elapsed(s)),
  };
}

/** End of epoch: validate, record, keep the best model, checkpoint, and stop early when due. */
async function endOfEpoch(s: Session, epochStart: number): Promise<void> {
  const { o, state } = s;
  const row = await epochRow(s, epochStart);
  await checkReplicasAgree(s.collective, s.vars, state.epoch + 1);
  const monitored = (await s.collective.allGather(score(o.monitor, row)))[0];
  // The first epoch is always "best": a run always has a model, even one that scores 0.
  const best = state.bestEpoch < 0 || monitored > state.bestScore;
  if (s.lead) {
    // The line of epoch N is logged only once the checkpoint before it is on disk, so a failed
    // write (a full disk) stops the run with metrics.jsonl at most one epoch ahead of it.
    await s.writes.flush();
    await appendMetricsRow(o.out, row);
    if (best) {
      const artifacts = await captureModel(s.model);
      s.writes.add(
        `the model in ${runPaths(o.out).modelDir}`,
        () => saveRunModel(o.out, artifacts, s.config),
      );
    }
  }
  if (best) {
    state.bestScore = monitored;
    state.bestEpoch = state.epoch + 1;
    state.sinceBest = 0;
  } else {
    state.sinceBest++;
  }
  s.onEvent({ type: "epoch", row, best });
  state.batchInEpoch = 0;
  state.epochLossSum = 0;
  state.epochCorrect = 0;
  state.epochSeen = 0;
  const stopEarly = o.patience > 0 && state.sinceBest >= o.patience;
  // The checkpoint of a finished epoch points at the start of the next one.
  state.epoch = stopEarly ? o.epochs : state.epoch + 1;
  await saveCheckpoint(s);
  if (stopEarly) s.onEvent({ type: "early_stop", epoch: row.epoch, bestEpoch: state.bestEpoch });
}

/** Finish: wait for the writes, score the best model on the test split, draw the curves. */
async function finish(s: Session): Promise<TrainReport | null> {
  await s.writes.flush();
  disposeModel(s);
  if (!s.lead) return null;
  const report = await finalReport(s);
  await writeJsonAtomic(runPaths(s.o.out).report, report);
  try {
    await writeTrainingCurves(s.o.out);
  } catch (e) {
    // A picture is not worth failing a finished run over.
    console.error(`warning: could not draw the training curves: ${(e as Error).message}`);
  }
  s.onEvent({ type: "done", report });
  return report;
}

function disposeModel(s: Session): void {
  if (s.disposed) return;
  s.disposed = true;
  s.optimizer.dispose();
  s.model.dispose();
}

/** Lets the last checkpoint land whole (also after an error), then frees the dataset and the lock. */
async function closeSession(s: Session): Promise<void> {
  try {
    await s.writes.settle();
  } finally {
    disposeModel(s);
    s.ds.close();
    s.folder.lock?.release();
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
  const lossTensor = tf.tidy(() => {
    const y = kind === "votes"
      ? tf.tensor2d(votes, [n, NUM_VOTES])
      : tf.oneHot(tf.tensor1d(labels, "int32"), numClasses);
    return loss(y, tf.tensor2d(outputs, [n, outputs.length / n]));
  });
  const lossValue = (await lossTensor.data())[0];
  lossTensor.dispose();
  // Scored as evaluate scores (lib/evaluate/score.ts): fractions for votes, classes otherwise.
  const scores = scoreOutputs(
    kind === "votes"
      ? { votes: { pred: outputs, truth: votes } }
      : { classes: { probs: outputs, labels, classes: ds.manifest.scheme.classNames } },
  );
  return { loss: lossValue, metrics: scores.classification, rmse: scores.votes?.rmse ?? null };
}

/** The best model (as saved, verified) scored on the test split, or on val when test is empty. */
async function finalReport(s: Session): Promise<TrainReport> {
  const { o, ds, state } = s;
  const split: Split = ds.size("test") > 0 ? "test" : "val";
  const best = await loadRunModel(o.out, { verify: o.verify ?? true });
  try {
    const r = await validate(best, ds, split, o.evalBatch, s.loss, s.kind, s.classes.length);
    return {
      bestEpoch: state.bestEpoch,
      monitor: o.monitor,
      bestScore: o.monitor === "loss" || o.monitor === "rmse" ? -state.bestScore : state.bestScore,
      split,
      classes: s.classes,
      metrics: r.metrics,
      rmse: r.rmse,
    };
  } finally {
    best.dispose();
  }
}

/**
 * Copies the weights of the model in `dir` (a model folder, `RUN/model`,
 * verified unless `verify` is false) into `model`, whose shapes must be the same.
 */
async function loadInitialWeights(model: tf.LayersModel, dir: string, verify: boolean) {
  const source = await loadModel(dir, { verify });
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
    const data = (await v.data() as Float32Array).slice();
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
  await readable(vars);
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
