/**
 * A run's `config.json`: the {@linkcode RunConfig} type, written and read
 * (validated) here only. It records every training setting, the dataset the
 * run was trained on (once: {@linkcode RunConfig.dataset}`.dir`), what
 * inference needs to preprocess images and read the outputs, and the
 * versions that made it. The file is sealed with its SHA-256
 * (lib/io/verify.ts).
 *
 * Formats: 2 (this one: sealed, the dataset folder only in `dataset.dir`);
 * files without `format` were written before, with the dataset folder also
 * in `options.data`, and without a seal. They are still read: an old run
 * opens, with {@linkcode LoadedRunConfig.verified} false.
 *
 * @module
 */
import { resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { readSealedJson, sealJson } from "../io/verify.ts";
import { NUM_VOTES } from "../data/schema.ts";
import type { ARCHITECTURE, ResNetOptions } from "../model/resnet.ts";
import type { ResolvedDatasetSettings } from "../train/dataset_settings.ts";
import type { ResolvedTrainOptions } from "../train/trainer.ts";
import { runPaths } from "./layout.ts";
import { checkFitsStretch, DEFAULT_FITS_STRETCH, type FitsStretch } from "../data/stretch.ts";

/** `format` of the config.json this module writes. */
export const RUN_CONFIG_FORMAT = 2;

/** What inference reads of a run: how images were preprocessed and what the outputs mean. */
export interface RunDataset {
  /** Label scheme name (`gz5`, `q1`, `votes`, `csv`). */
  scheme: string;
  /** Whether the model outputs class probabilities or the 37 vote fractions. */
  kind: "classes" | "votes";
  /** Class names in output order (the 37 answer columns for `votes`). */
  classes: string[];
  /** Class pairs a mirror swaps (handed classes). */
  flipPairs: [number, number][];
  /** Side of the square network input, pixels. */
  size: number;
  /** Centre crop, fraction of the shorter side. */
  crop: number;
  /**
   * How FITS inputs become 8-bit RGB, as the training dataset was packed
   * (`dataset.fitsStretch`; the default for runs made before FITS was read).
   */
  fitsStretch: FitsStretch;
}

/** The dataset a run was trained on: where, which (its manifest's SHA-256), and how it reads. */
export interface RunDatasetRef extends Omit<RunDataset, "fitsStretch"> {
  /** As in {@linkcode RunDataset}; absent in runs made before FITS was read (the default then). */
  fitsStretch?: FitsStretch;
  /** The preprocessed dataset folder, as given to `train` (relative to the working folder then). */
  dir?: string;
  /** SHA-256 of its `manifest.json`: a resumed run must see the same dataset. */
  manifestSha256?: string;
}

/** The training settings as recorded: a run's options without where it is or reads from. */
export type RunOptions =
  & Omit<ResolvedTrainOptions, "data" | "out" | "customLoss" | "haltAfterSteps">
  & {
    /** Name of a library-supplied loss function, when one replaced `loss`. */
    customLoss?: string;
  };

/** The network's settings (lib/model/resnet.ts' options that shape the weights). */
export type RunModelOptions =
  & Pick<
    ResNetOptions,
    "head" | "stem" | "width" | "dropout" | "weightDecay" | "mean" | "std" | "seed"
  >
  & { inputSize: number; outputs: number };

/** Contents of `config.json`. */
export interface RunConfig {
  format: typeof RUN_CONFIG_FORMAT;
  /** Every training flag, resolved; absent for a model made outside `train` (tests, benchmarks). */
  options?: RunOptions;
  /** Which of options.head/loss/monitor/alpha (and the flip pairs) came from the scheme. */
  fromScheme?: ResolvedDatasetSettings["fromScheme"];
  /** The dataset, stored once. */
  dataset: RunDatasetRef;
  model?: RunModelOptions;
  /**
   * The network's torchvision-matching choices (lib/model/resnet.ts' `ARCHITECTURE`); absent in
   * runs trained before them (TF 'same' padding on strided convs, no tree projection).
   */
  architecture?: Partial<Record<keyof typeof ARCHITECTURE, string>>;
  /** Replica processes that trained the run. */
  replicas?: number;
  versions?: { deno: string; tfjs: string; galaxy: string };
  backend?: string;
}

/** A config.json as read. */
export interface LoadedRunConfig {
  config: RunConfig;
  /** Whether its seal matched (false: written before seals, or not checked). */
  verified: boolean;
}

/** Writes `RUN/config.json`, sealed, atomically. */
export async function writeRunConfig(dir: string, config: RunConfig): Promise<void> {
  await writeFileAtomic(
    runPaths(dir).config,
    sealJson(config as unknown as Record<string, unknown>),
  );
}

function field<T>(d: Record<string, unknown>, key: string, ok: (v: unknown) => boolean): T {
  const v = d[key];
  if (!ok(v)) throw new Error(`dataset.${key} is missing or invalid`);
  return v as T;
}

/** Checks the `dataset` block of a config (`where` names the file in errors). */
export function parseRunDataset(
  config: Record<string, unknown>,
  where: string,
): RunDatasetRef & RunDataset {
  const d = config.dataset as Record<string, unknown> | undefined;
  if (!d || typeof d !== "object") throw new Error(`${where}: no "dataset" block`);
  try {
    const kind = field<"classes" | "votes">(d, "kind", (v) => v === "classes" || v === "votes");
    const classes = field<string[]>(
      d,
      "classes",
      (v) => Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === "string"),
    );
    const size = field<number>(d, "size", (v) => Number.isInteger(v) && (v as number) > 0);
    const crop = field<number>(d, "crop", (v) => typeof v === "number" && v > 0 && v <= 1);
    const flipPairs = (d.flipPairs ?? []) as [number, number][];
    if (
      !Array.isArray(flipPairs) ||
      !flipPairs.every((p) =>
        Array.isArray(p) && p.length === 2 && p.every((i) => Number.isInteger(i) && i >= 0) &&
        p[0] < classes.length && p[1] < classes.length
      )
    ) {
      throw new Error("dataset.flipPairs is invalid");
    }
    const scheme = typeof d.scheme === "string" ? d.scheme : kind;
    if (kind === "votes" && classes.length !== NUM_VOTES) {
      throw new Error(`a votes run needs ${NUM_VOTES} classes, config lists ${classes.length}`);
    }
    const fitsStretch = d.fitsStretch === undefined
      ? DEFAULT_FITS_STRETCH
      : checkFitsStretch(d.fitsStretch, "dataset.fitsStretch");
    return {
      scheme,
      kind,
      classes,
      flipPairs,
      size,
      crop,
      fitsStretch,
      ...(typeof d.dir === "string" ? { dir: d.dir } : {}),
      ...(typeof d.manifestSha256 === "string" ? { manifestSha256: d.manifestSha256 } : {}),
    };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/**
 * Validates a parsed config.json (of format 2, or older: see the module
 * doc) and returns it in format 2.
 */
export function parseRunConfig(raw: Record<string, unknown>, where: string): RunConfig {
  if (raw.format !== undefined && raw.format !== RUN_CONFIG_FORMAT) {
    throw new Error(
      `${where}: config format ${raw.format} is newer than this galaxy reads ` +
        `(${RUN_CONFIG_FORMAT}): update galaxy`,
    );
  }
  const dataset = parseRunDataset(raw, where);
  const dir = recordedDatasetDir(raw);
  if (dir !== null) dataset.dir = dir;
  const rawOptions = raw.options as Record<string, unknown> | undefined;
  let options: RunOptions | undefined;
  if (rawOptions !== undefined) {
    if (typeof rawOptions !== "object" || rawOptions === null) {
      throw new Error(`${where}: "options" is not an object`);
    }
    const { data: _data, out: _out, haltAfterSteps: _h, ...rest } = rawOptions;
    options = rest as unknown as RunOptions;
  }
  const model = raw.model as RunModelOptions | undefined;
  if (model !== undefined && (typeof model !== "object" || !Number.isInteger(model.outputs))) {
    throw new Error(`${where}: "model" has no integer "outputs"`);
  }
  return {
    ...(raw as Partial<RunConfig>),
    format: RUN_CONFIG_FORMAT,
    dataset,
    ...(options ? { options } : {}),
  };
}

/**
 * Reads and validates `RUN/config.json`, checking its seal unless `verify`
 * is false.
 *
 * @throws {DigestMismatchError} when the seal does not match.
 * @throws {Error} naming the file when it is missing, not JSON or invalid.
 */
export async function readRunConfig(dir: string, verify = true): Promise<LoadedRunConfig> {
  const path = runPaths(dir).config;
  const { value, sealed } = await readSealedJson<Record<string, unknown>>(path, verify);
  return { config: parseRunConfig(value, path), verified: verify && sealed };
}

/**
 * The dataset folder a parsed config.json records, as recorded: `dataset.dir`,
 * or, before format 2, `options.data`; null when neither is a string.
 */
function recordedDatasetDir(raw: Record<string, unknown>): string | null {
  const d = (raw.dataset as Record<string, unknown> | undefined)?.dir;
  if (typeof d === "string") return d;
  const data = (raw.options as Record<string, unknown> | undefined)?.data;
  return typeof data === "string" ? data : null;
}

/**
 * The dataset folder that run `dir`'s config.json records, absolute, read
 * without verifying or validating the rest (retrain keeps the datasets its
 * runs use: a config damaged elsewhere must not get its dataset deleted);
 * null when the file or the record is missing.
 */
export async function readRecordedDatasetDir(dir: string): Promise<string | null> {
  try {
    const d = recordedDatasetDir(JSON.parse(await Deno.readTextFile(runPaths(dir).config)));
    return d === null ? null : resolve(d);
  } catch {
    return null;
  }
}

/**
 * The dataset folder a run was trained on, absolute, or null if not
 * recorded. A relative one was given to `train` relative to its working
 * folder, so it resolves against this process's.
 */
export function datasetDirOf(config: RunConfig): string | null {
  const d = config.dataset.dir;
  return d === undefined ? null : resolve(d);
}

/**
 * Options a resumed run must keep: under others its checkpoint is
 * meaningless, or (`shift`) the run would no longer be the one its
 * config.json records.
 */
export const FIXED_ON_RESUME = [
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
  "shift",
] as const;

/**
 * What a run recorded before an option existed was trained with: the
 * default of that time (shifts of up to 3 px until `--shift` came, with 0).
 */
export const RECORDED_BEFORE: Partial<Record<(typeof FIXED_ON_RESUME)[number], unknown>> = {
  shift: 3,
};

/**
 * Why a run recorded as `old` cannot be resumed with the settings `now`, or
 * null when it can: another dataset, or a setting of
 * {@linkcode FIXED_ON_RESUME} changed.
 */
export function resumeConflict(old: RunConfig, now: RunConfig, dir: string): string | null {
  const oldHash = old.dataset.manifestSha256;
  if (oldHash !== undefined && oldHash !== now.dataset.manifestSha256) {
    return `${dir} was trained on another dataset (manifest.json differs): cannot resume`;
  }
  const a = (old.options ?? {}) as Record<string, unknown>;
  const b = (now.options ?? {}) as Record<string, unknown>;
  for (const k of FIXED_ON_RESUME) {
    const was = a[k] ?? RECORDED_BEFORE[k];
    if (JSON.stringify(was) !== JSON.stringify(b[k])) {
      return `${dir} was started with --${k} ${was}, not ${b[k]}: resume with the same value`;
    }
  }
  return null;
}
