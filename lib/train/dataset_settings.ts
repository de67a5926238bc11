/**
 * The training settings that depend on the dataset, derived in one place
 * from its label scheme: the head, the loss, the score that picks the best
 * epoch (`--monitor`), the focal weight alpha, and the class pairs a mirror
 * flip swaps.
 *
 * | scheme kind | head | loss | monitor | alpha | flip pairs |
 * | --- | --- | --- | --- | --- | --- |
 * | `classes` | `softmax` | `focal` (categorical) | `accuracy` | 0.25 | the scheme's |
 * | `votes` | `sigmoid` | `mse` | `rmse` | 0.5 (used by `bfocal` only) | the scheme's (none) |
 *
 * Why these votes defaults: on the real Kaggle sample (README, "On real
 * images") 37 sigmoids trained with MSE score a lower validation RMSE than
 * the tree-consistent head, and binary focal loss with alpha 0.25 weights
 * the "yes" side of every fraction by a third of its "no" side, which pulls
 * every prediction below its target; 0.5 is the weight that does not.
 *
 * A setting given explicitly wins, unless the dataset cannot honour it (a
 * monitor it cannot produce, a loss or head of the other kind): that is a
 * {@linkcode UsageError}, which the scripts turn into exit status 2.
 *
 * @module
 */
import { UsageError } from "../cli.ts";
import type { SchemeKind } from "../data/label_schemes.ts";
import type { FocalAlpha } from "../focal_loss.ts";
import type { HeadKind } from "../model/resnet.ts";

/** Loss names of `--loss`. */
export type LossName = "focal" | "ce" | "bfocal" | "mse";

/** Validation scores of `--monitor`. */
export type MonitorName = "accuracy" | "balanced_accuracy" | "macro_f1" | "loss" | "rmse";

/** The settings that depend on the dataset. */
export interface DatasetSettings {
  /** Output layer. */
  head: HeadKind;
  /** Training loss. */
  loss: LossName;
  /** Validation score that picks the best epoch. */
  monitor: MonitorName;
  /** Focal weight: a number, or a class weighting of the train split (lib/focal_loss.ts). */
  alpha: FocalAlpha;
  /** Class index pairs a mirror flip swaps (from the dataset's scheme). */
  flipPairs: [number, number][];
}

/** The names of the settings, in the order they are printed. */
export const DATASET_SETTING_NAMES = ["head", "loss", "monitor", "alpha", "flipPairs"] as const;

/** The default of each setting for each kind of scheme (flip pairs come from the scheme itself). */
export const SCHEME_DEFAULTS: Readonly<
  Record<
    SchemeKind,
    Omit<DatasetSettings, "flipPairs" | "monitor"> & { monitor: Exclude<MonitorName, "loss"> }
  >
> = {
  classes: { head: "softmax", loss: "focal", monitor: "accuracy", alpha: 0.25 },
  votes: { head: "sigmoid", loss: "mse", monitor: "rmse", alpha: 0.5 },
};

/** What each kind of dataset can be trained with and scored on. */
export const ALLOWED: Readonly<
  Record<SchemeKind, { heads: HeadKind[]; losses: LossName[]; monitors: MonitorName[] }>
> = {
  classes: {
    heads: ["softmax"],
    losses: ["focal", "ce", "bfocal", "mse"],
    monitors: ["accuracy", "balanced_accuracy", "macro_f1", "loss"],
  },
  // `focal` on fractions is binary focal loss; cross-entropy needs classes.
  votes: {
    heads: ["sigmoid", "tree"],
    losses: ["mse", "bfocal", "focal"],
    monitors: ["rmse", "loss"],
  },
};

/** The resolved settings and which of them came from the scheme rather than a flag. */
export interface ResolvedDatasetSettings {
  /** Every dataset-dependent setting, resolved. */
  settings: DatasetSettings;
  /** Names of the settings taken from the scheme's defaults. */
  fromScheme: (keyof DatasetSettings)[];
}

/**
 * Fills the dataset-dependent settings that `given` leaves unset from the
 * defaults of `scheme`'s kind, and checks the ones it sets.
 *
 * @throws {UsageError} naming the flag, when the dataset cannot honour a given setting.
 */
export function resolveDatasetSettings(
  scheme: { name: string; kind: SchemeKind; flipPairs: [number, number][] },
  given: Partial<Omit<DatasetSettings, "flipPairs">>,
): ResolvedDatasetSettings {
  const defaults = SCHEME_DEFAULTS[scheme.kind];
  const allowed = ALLOWED[scheme.kind];
  const check = <T extends string>(flag: string, value: T | undefined, ok: readonly T[]) => {
    if (value !== undefined && !ok.includes(value)) {
      throw new UsageError(
        `--${flag} ${value} does not fit the '${scheme.name}' dataset (a ${scheme.kind} scheme): ` +
          `use one of ${ok.join(", ")} (default ${defaults[flag as "head"]})`,
      );
    }
  };
  check("head", given.head, allowed.heads);
  check("loss", given.loss, allowed.losses);
  check("monitor", given.monitor, allowed.monitors);
  const settings: DatasetSettings = {
    head: given.head ?? defaults.head,
    loss: given.loss ?? defaults.loss,
    monitor: given.monitor ?? defaults.monitor,
    alpha: given.alpha ?? defaults.alpha,
    flipPairs: scheme.flipPairs.map(([a, b]) => [a, b]),
  };
  const fromScheme = DATASET_SETTING_NAMES.filter((k) =>
    k === "flipPairs" || given[k] === undefined
  );
  return { settings, fromScheme };
}

/**
 * One line for the start of a run, e.g. `votes dataset: head sigmoid, loss
 * mse, monitor rmse, alpha 0.5, flip pairs none (head, loss, monitor, alpha
 * from the scheme)`.
 */
export function describeDatasetSettings(
  kind: SchemeKind,
  r: ResolvedDatasetSettings,
  classNames: readonly string[] = [],
): string {
  const s = r.settings;
  const pairs = s.flipPairs.length === 0
    ? "none"
    : s.flipPairs.map(([a, b]) => `${classNames[a] ?? a}<->${classNames[b] ?? b}`).join(" ");
  const derived = r.fromScheme.filter((k) => k !== "flipPairs");
  return `${kind} dataset: head ${s.head}, loss ${s.loss}, monitor ${s.monitor}, ` +
    `alpha ${s.alpha}, flip pairs ${pairs}` +
    (derived.length > 0 ? ` (${derived.join(", ")} from the scheme's defaults)` : "");
}
