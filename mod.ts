/**
 * galaxy: train and serve a Galaxy Zoo morphology classifier (ResNet-34
 * with focal loss) with TensorFlow.js under Deno.
 *
 * The scripts (`deno task fetch|preprocess|train|predict|evaluate|retrain|serve|export|export-web`)
 * are thin layers over these exports; see README.md.
 *
 * @example
 * ```ts
 * import { resnet34, categoricalFocalLoss, setupBackend } from "./mod.ts";
 * await setupBackend();
 * const model = resnet34({ inputSize: 64, outputs: 5 });
 * model.compile({ optimizer: "adam", loss: categoricalFocalLoss({ gamma: 2 }) });
 * ```
 *
 * @module
 */

// The network and its layers.
export {
  countTrainableParams,
  type HeadKind,
  initialVoteBias,
  resnet34,
  type ResNetOptions,
  VOTE_HEADS,
} from "./lib/model/resnet.ts";
export { GalaxyZooVotes, votesFromLogits } from "./lib/model/votes_head.ts";
export { Standardize, type StandardizeConfig } from "./lib/model/standardize.ts";
export { SeededDropout, setDropoutStep } from "./lib/model/seeded_dropout.ts";

// Losses.
export {
  balancedAlpha,
  binaryFocalLoss,
  type BinaryFocalOptions,
  categoricalFocalLoss,
  type CategoricalFocalOptions,
  type LossFn,
} from "./lib/focal_loss.ts";

// The backend, chosen in one place.
export {
  assertKernels,
  BACKEND_NAMES,
  type BackendCandidate,
  type BackendInfo,
  type BackendName,
  describeBackend,
  setupBackend,
} from "./lib/backend.ts";

// Will this machine train, and does its backend compute what the reference computes?
export {
  type DoctorOptions,
  type DoctorReport,
  examine,
  type Finding,
  renderFindings,
  verdict,
} from "./lib/doctor/doctor.ts";
export {
  SMOKE_TOLERANCE,
  type SmokeCheck,
  type SmokeOptions,
  smokeTest,
} from "./lib/doctor/smoke.ts";

// Galaxy Zoo labels and data formats.
export {
  checkTree,
  KAGGLE_HEADER,
  NUM_VOTES,
  type Question,
  QUESTIONS,
  type TreeViolation,
  VOTE_COLUMNS,
} from "./lib/data/schema.ts";
export {
  getLabelScheme,
  LABEL_SCHEMES,
  type LabelRow,
  type LabelScheme,
  type LabelSchemeEntry,
  type SchemeKind,
} from "./lib/data/label_schemes.ts";
export {
  type Batch,
  type BatchOptions,
  type Dataset,
  type Manifest,
  openDataset,
  type Split,
} from "./lib/data/dataset.ts";
export {
  DATASET_FORMAT,
  DATASET_FORMAT_VERSION,
  type ItemProblem,
  type ShardEntry,
  type SplitCounts,
} from "./lib/data/manifest.ts";
export { type Source, type SourceItem, type SourceLayout } from "./lib/data/sources.ts";
export { type ImageOptions, type LoadedImage, loadImage } from "./lib/data/image.ts";
export {
  preprocess,
  type PreprocessOptions,
  type PreprocessProgress,
  type PreprocessReport,
  type PreprocessResult,
} from "./lib/preprocess.ts";
export { GALAXY_KINDS } from "./lib/data/synthetic/scene.ts";
export {
  type GalaxyKind,
  type SyntheticOptions,
  type SyntheticSummary,
  writeSyntheticKaggle,
} from "./lib/data/synthetic.ts";

// Training, mirrored training, inference and metrics.
export {
  type EpochRow,
  train,
  TRAIN_DEFAULTS,
  type TrainEvent,
  type TrainOptions,
  type TrainReport,
} from "./lib/train/trainer.ts";
export {
  type DatasetSettings,
  resolveDatasetSettings,
  type ResolvedDatasetSettings,
  SCHEME_DEFAULTS,
} from "./lib/train/dataset_settings.ts";
export { type RunState } from "./lib/train/checkpoint.ts";
export {
  augmentBatch,
  type AugmentedBatch,
  type AugmentKey,
  type AugmentOptions,
  dihedralBatch,
} from "./lib/train/augment.ts";
export { adam, type Optimizer, sgdNesterov, warmupCosine } from "./lib/train/optimizers.ts";
export { computeGradients, type Gradients, trainableVariables } from "./lib/train/step.ts";
export { type Collective, singleProcess } from "./lib/train/collective.ts";
export {
  defaultReplicas,
  type LaunchOptions,
  launchReplicas,
  type MirroredContext,
  mirroredStep,
  type StepResult,
} from "./lib/train/mirrored.ts";
export {
  type ImageBatch,
  predictAll,
  predictBatch,
  type PredictOptions as InferenceOptions,
} from "./lib/inference.ts";
export {
  predict,
  type PredictOptions,
  type PredictProgress,
  type PredictSummary,
} from "./lib/predict/predict.ts";
export { type PredictFormat } from "./lib/predict/format.ts";
export { type ImageItem, type PredictError, type PredictInput } from "./lib/predict/inputs.ts";
export { openRun, type OpenRunOptions, type Run, type RunDataset } from "./lib/run/open.ts";
export { resolveRunDir, RUN_FORMS, RunDirError } from "./lib/run/run_dir.ts";
export {
  readRunConfig,
  RUN_CONFIG_FORMAT,
  type RunConfig,
  type RunDatasetRef,
  writeRunConfig,
} from "./lib/run/config.ts";
export { type RunPaths, runPaths } from "./lib/run/layout.ts";
export { lockRunFolder, RUN_IN_USE_EXIT, RunInUseError } from "./lib/run/lock.ts";
export { DigestMismatchError } from "./lib/io/verify.ts";
export { type Shard } from "./lib/predict/shard.ts";
export {
  EXPORT_FORMATS,
  type ExportFormat,
  exportModel,
  type ExportOptions,
  type ModelExportSummary,
} from "./lib/export/export.ts";
export { modelToOnnx, type OnnxExportOptions } from "./lib/export/onnx.ts";
export {
  evaluate,
  type EvaluateOptions,
  type EvaluationReport,
  type WrongGalaxy,
} from "./lib/evaluate.ts";
export {
  type ClassificationMetrics,
  classificationMetrics,
  type ClassMetrics,
  rmse,
} from "./lib/metrics.ts";
export { loadModel, saveModel } from "./lib/io/model_io.ts";
export { type GalaxyServer, type ServeOptions, startServer } from "./lib/serve/server.ts";
export { type PredictAnswer, type PredictApiLimits } from "./lib/serve/predict_api.ts";
export {
  type PredictionFilter,
  type PredictionPage,
  type PredictionRow,
  type PredictionSort,
  PredictionTable,
} from "./lib/serve/predictions_table.ts";
export { exportSite, type ExportSummary, type PageConfig } from "./lib/web/site.ts";
