/**
 * The command-line flags of the training settings, declared once for
 * `deno task train` (which fills unset ones with {@linkcode TRAIN_DEFAULTS})
 * and `deno task retrain` (which inherits unset ones from the current run).
 * Each flag names its setting and how its value is read and checked.
 *
 * @module
 */
import { choiceFlag, numberFlag, type NumberRange } from "../cli.ts";
import type { TrainOptions } from "./trainer.ts";

/** The settings these flags set. */
export type TrainSettings = Omit<TrainOptions, "data" | "out">;

interface FlagDef {
  key: keyof TrainSettings;
  read: (flag: string, value: string) => TrainSettings[keyof TrainSettings];
}

const num = (key: keyof TrainSettings, range: NumberRange): FlagDef => ({
  key,
  read: (flag, value) => numberFlag(flag, value, 0, range),
});
const choice = (key: keyof TrainSettings, choices: readonly string[]): FlagDef => ({
  key,
  read: (flag, value) => choiceFlag(flag, value, choices, choices[0]) as never,
});

/** Every training flag (without the leading `--`) and the setting it sets. */
export const TRAIN_FLAGS = {
  epochs: num("epochs", { min: 1, integer: true }),
  batch: num("batch", { min: 1, integer: true }),
  lr: num("lr", { min: 0 }),
  warmup: num("warmupEpochs", { min: 0 }),
  optimizer: choice("optimizer", ["adam", "sgd"]),
  head: choice("head", ["softmax", "sigmoid", "tree"]),
  loss: choice("loss", ["focal", "ce", "bfocal", "mse"]),
  gamma: num("gamma", { min: 0 }),
  alpha: {
    key: "alpha",
    read: (flag, value) =>
      value === "balanced" ? "balanced" : numberFlag(flag, value, 0, { min: 0 }),
  },
  "label-smoothing": num("labelSmoothing", { min: 0, max: 0.99 }),
  seed: num("seed", { integer: true }),
  patience: num("patience", { min: 0, integer: true }),
  monitor: choice("monitor", ["accuracy", "balanced_accuracy", "macro_f1", "loss", "rmse"]),
  stem: choice("stem", ["imagenet", "small"]),
  width: num("width", { min: 0.01, max: 4 }),
  dropout: num("dropout", { min: 0, max: 0.99 }),
  "weight-decay": num("weightDecay", { min: 0 }),
  "checkpoint-steps": num("checkpointSteps", { min: 0, integer: true }),
  "checkpoint-seconds": num("checkpointSeconds", { min: 0 }),
  "eval-batch": num("evalBatch", { min: 1, integer: true }),
} satisfies Record<string, FlagDef>;

/** A training flag's name. */
export type TrainFlag = keyof typeof TRAIN_FLAGS;

/** Every training flag's name. */
export const TRAIN_FLAG_NAMES = Object.keys(TRAIN_FLAGS) as TrainFlag[];

/** The parseArgs declarations of `names` (all string-valued). */
export function trainFlagOptions<F extends TrainFlag>(
  names: readonly F[],
): { [K in F]: { type: "string" } } {
  return Object.fromEntries(names.map((n) => [n, { type: "string" }])) as {
    [K in F]: { type: "string" };
  };
}

/**
 * The settings that `names` give in the parsed flag `values`, each checked
 * (a UsageError names a bad flag); unset flags are left out, so the result
 * can be spread over defaults.
 */
export function readTrainFlags(
  values: Record<string, unknown>,
  names: readonly TrainFlag[],
): Partial<TrainSettings> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const value = values[name];
    if (typeof value !== "string") continue;
    const def: FlagDef = TRAIN_FLAGS[name];
    out[def.key] = def.read(name, value);
  }
  return out as Partial<TrainSettings>;
}
