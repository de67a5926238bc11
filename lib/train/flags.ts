/**
 * The command-line flags of the training settings, declared once for
 * `deno task train` (which fills unset ones with {@linkcode TRAIN_DEFAULTS})
 * and `deno task retrain` (which inherits unset ones from the current run).
 * Each flag names its setting, how its value is read and checked, and its
 * help text; the default shown is the setting's entry in TRAIN_DEFAULTS or
 * the dataset's (lib/train/dataset_settings.ts).
 *
 * @module
 */
import { choiceFlag, numberFlag, type NumberRange } from "../cli.ts";
import { custom, type Flag } from "../flags.ts";
import { BALANCED_ALPHA_POWERS, isBalancedAlphaName } from "../focal_loss.ts";
import { SCHEME_DEFAULTS } from "./dataset_settings.ts";
import { TRAIN_DEFAULTS, type TrainOptions } from "./trainer.ts";

/** The settings these flags set. */
export type TrainSettings = Omit<TrainOptions, "data" | "out">;

/** A flag of a training setting: unset reads as undefined, so the caller's defaults apply. */
export interface SettingFlag extends Flag<unknown> {
  /** The setting the flag sets. */
  key: keyof TrainSettings;
}

const shownDefault = (key: keyof TrainSettings) =>
  TRAIN_DEFAULTS[key] === undefined ? undefined : String(TRAIN_DEFAULTS[key]);

const num = (key: keyof TrainSettings, arg: string, help: string, range: NumberRange) => ({
  key,
  ...custom(arg, help, (flag, value) => numberFlag(flag, value, 0, range), {
    shown: shownDefault(key),
  }),
});
const choice = (
  key: keyof TrainSettings,
  choices: readonly string[],
  help: string,
  shown?: string,
  arg = choices.join("|"),
) => ({
  key,
  ...custom(
    arg,
    help,
    (flag, value) => choiceFlag(flag, value, choices, choices[0]),
    {
      shown: shown ?? shownDefault(key),
    },
  ),
});

const { classes, votes } = SCHEME_DEFAULTS;
const byScheme = (k: "head" | "loss" | "alpha" | "monitor") =>
  `${classes[k]} for classes, ${votes[k]} for votes`;

/** Every training flag (without the leading `--`) and the setting it sets. */
export const TRAIN_FLAGS = {
  epochs: num("epochs", "N", "epochs", { min: 1, integer: true }),
  batch: num("batch", "N", "global batch size, split evenly across replicas", {
    min: 1,
    integer: true,
  }),
  lr: num("lr", "X", "peak learning rate; linear warm-up, then cosine decay", { min: 0 }),
  warmup: num("warmupEpochs", "EPOCHS", "warm-up length in epochs", { min: 0 }),
  optimizer: choice("optimizer", ["adam", "sgd"], "Adam, or SGD with Nesterov momentum 0.9"),
  head: choice(
    "head",
    ["softmax", "sigmoid", "tree"],
    "output layer: class softmax; for votes, 37 sigmoids or the tree-consistent head of the " +
      "winning Kaggle solution",
    byScheme("head"),
  ),
  loss: choice(
    "loss",
    ["focal", "ce", "bfocal", "mse"],
    "categorical focal loss (binary focal on the fractions of a votes dataset), cross-entropy, " +
      "binary focal, MSE",
    byScheme("loss"),
  ),
  gamma: num("gamma", "X", "focal exponent", { min: 0 }),
  alpha: {
    key: "alpha",
    ...custom(
      ["X", ...Object.keys(BALANCED_ALPHA_POWERS)].join("|"),
      "focal weight, or inverse class frequency of the train split (sqrt-balanced: its square root)",
      (flag, value) => isBalancedAlphaName(value) ? value : numberFlag(flag, value, 0, { min: 0 }),
      { shown: byScheme("alpha") },
    ),
  },
  "label-smoothing": num("labelSmoothing", "X", "label smoothing of the class targets", {
    min: 0,
    max: 0.99,
  }),
  seed: num(
    "seed",
    "N",
    "same seed: same data order, augmentation, dropout masks and initial weights",
    { integer: true },
  ),
  patience: num("patience", "N", "stop after N epochs without improvement; 0 never", {
    min: 0,
    integer: true,
  }),
  monitor: choice(
    "monitor",
    ["accuracy", "balanced_accuracy", "macro_f1", "loss", "rmse"],
    "the validation score that picks the best epoch: accuracy, balanced_accuracy, macro_f1 or " +
      "loss for classes; rmse or loss for votes",
    byScheme("monitor"),
    "M",
  ),
  stem: choice(
    "stem",
    ["imagenet", "small"],
    "7x7/2 conv + max-pool, or one 3x3/1 conv for small inputs",
  ),
  width: num("width", "X", "filter multiplier: 1 is ResNet-34 proper, less is narrower", {
    min: 0.01,
    max: 4,
  }),
  shift: num(
    "shift",
    "PX",
    "largest random shift of a training image, pixels per axis (Galaxy Zoo cutouts are centred)",
    { min: 0, integer: true },
  ),
  dropout: num("dropout", "X", "dropout before the head", { min: 0, max: 0.99 }),
  "weight-decay": num("weightDecay", "X", "L2 penalty on every kernel", { min: 0 }),
  "checkpoint-steps": num(
    "checkpointSteps",
    "N",
    "also checkpoint every N steps, besides every epoch; 0 epochs only",
    { min: 0, integer: true },
  ),
  "checkpoint-seconds": num(
    "checkpointSeconds",
    "N",
    "also checkpoint when N seconds passed since the last one; 0 never",
    { min: 0 },
  ),
  "eval-batch": num("evalBatch", "N", "batch size of validation and test passes", {
    min: 1,
    integer: true,
  }),
} satisfies Record<string, SettingFlag>;

/** A training flag's name. */
export type TrainFlag = keyof typeof TRAIN_FLAGS;

/** Every training flag's name. */
export const TRAIN_FLAG_NAMES = Object.keys(TRAIN_FLAGS) as TrainFlag[];

/** The flags `names`, as a flag table (for a task's table or parseArgs). */
export function trainFlags<F extends TrainFlag>(
  names: readonly F[],
): { [K in F]: (typeof TRAIN_FLAGS)[K] } {
  return Object.fromEntries(names.map((n) => [n, TRAIN_FLAGS[n]])) as {
    [K in F]: (typeof TRAIN_FLAGS)[K];
  };
}

/**
 * The settings that `names` give in `values`, the flags as
 * {@linkcode parseTask} read them (checked, by flag name), under their
 * settings' names; unset flags are left out, so the result can be spread
 * over defaults.
 */
export function readTrainFlags(
  values: Readonly<Record<string, unknown>>,
  names: readonly TrainFlag[],
): Partial<TrainSettings> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    if (values[name] !== undefined) out[TRAIN_FLAGS[name].key] = values[name];
  }
  return out as Partial<TrainSettings>;
}
