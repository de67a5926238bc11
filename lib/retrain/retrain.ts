/**
 * One retraining run, as a scheduler starts it every night, in order:
 *
 * 1. take `RUNS/retrain.lock` ({@linkcode ./lock.ts}), or end `busy`;
 * 2. fingerprint the inputs ({@linkcode ./fingerprint.ts}) and end
 *    `nothing_new` when they and the preprocessing settings are those of
 *    the last successful run (`RUNS/retrain.state.json`);
 * 3. preprocess into `RUNS/datasets/<key>`, the key being a hash of the
 *    fingerprint and the settings. The split of a galaxy is a seeded hash of
 *    its id, so with the same `splitSeed`, `val` and `test` every galaxy
 *    keeps its split as data grows: the new test split is the old one plus
 *    new galaxies, and holds nothing the current model trained on. A retry
 *    after a failure finds the same key and reuses the shards done;
 * 4. train a candidate run `RUNS/run-<UTC time>`, by default starting from
 *    the current model's weights (fine-tuning), or from scratch;
 * 5. evaluate the candidate and the current model on the test split of the
 *    new dataset and promote the candidate when it is at least as good
 *    ({@linkcode ./promote.ts});
 * 6. delete the job's runs beyond the newest `keep` (never `current`'s
 *    target) and datasets no remaining run uses ({@linkcode ./keep.ts});
 * 7. append a line to `RUNS/retrain.log` ({@linkcode ./log.ts}).
 *
 * Settings not given are inherited from the current run, so the nightly job
 * keeps preprocessing (scheme, size, crop, split) and, when fine-tuning, the
 * network (stem, width) as the model it retrains; without a current run
 * they are the defaults of `deno task preprocess` and `deno task train`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { type BackendName, describeBackend, setupBackend } from "../backend.ts";
import type { Manifest } from "../data/manifest.ts";
import { evaluate, type EvaluationReport } from "../evaluate.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { preprocess, type PreprocessProgress } from "../preprocess.ts";
import { TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from "../train/trainer.ts";
import { ALLOWED } from "../train/dataset_settings.ts";
import type { HeadKind } from "../model/resnet.ts";
import { trainCandidate } from "./candidate.ts";
import { describeChange, fingerprintInputs } from "./fingerprint.ts";
import { DATASETS_DIR, newRunName, pruneDatasets, pruneRuns, takenNames } from "./keep.ts";
import { acquireLock, describeLock, type RetrainLock } from "./lock.ts";
import {
  appendLog,
  appendLogSync,
  EXIT_CODES,
  type RetrainLogEntry,
  type RetrainOutcome,
} from "./log.ts";
import {
  atLeastAsGood,
  type CurrentRun,
  defaultMetric,
  lowerIsBetter,
  metricOf,
  promote,
  type PromotionMetric,
  readCurrent,
} from "./promote.ts";
import { datasetKey, type DataSettings, readState, writeState } from "./state.ts";

/** Name of the lock inside the runs folder. */
export const LOCK_FILE = "retrain.lock";

/** Defaults of the preprocessing settings (those of `deno task preprocess`). */
export const DATA_DEFAULTS: Omit<DataSettings, "scheme"> = {
  size: 64,
  crop: 0.5,
  val: 0.1,
  test: 0.1,
  splitSeed: 0,
};

/** Training settings the job passes through to the trainer. */
export type RetrainTrainSettings = Partial<
  Pick<
    TrainOptions,
    | "epochs"
    | "batch"
    | "lr"
    | "warmupEpochs"
    | "seed"
    | "patience"
    | "stem"
    | "width"
    | "evalBatch"
    | "checkpointSeconds"
  >
>;

/** Settings of {@linkcode retrain}. */
export interface RetrainOptions {
  /** Input folder (any layout `deno task preprocess` reads). */
  data: string;
  /** Runs folder: runs, `current`, datasets, lock, state and log. */
  runs: string;
  /** Preprocessing settings given explicitly; the others are inherited (see the module doc). */
  dataSettings?: Partial<DataSettings>;
  /** Largest tolerated share of bad images (preprocess `maxBad`, 0.01). */
  maxBad?: number;
  train?: RetrainTrainSettings;
  /** Start from fresh weights instead of the current model's. */
  fromScratch?: boolean;
  /** Test-split metric that decides promotion; default accuracy (rmse for votes). */
  metric?: PromotionMetric;
  /** Promote the candidate whatever its score (and even when it cannot be compared). */
  force?: boolean;
  /** Train even when nothing changed since the last successful run. */
  always?: boolean;
  /** Run folders of the job to keep (default 5). */
  keep?: number;
  /** Replica processes for training (default 1). */
  replicas?: number;
  backend?: BackendName;
  /** The retraining script, which replica processes run. */
  script?: string;
  /** Release the lock and log on SIGINT/SIGTERM, then exit 1 (for the CLI; not in tests). */
  handleSignals?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  onTrainEvent?: (e: TrainEvent) => void;
  onPreprocessProgress?: (p: PreprocessProgress) => void;
}

/** What a run did; `exitCode` is what the CLI exits with. */
export interface RetrainResult {
  outcome: RetrainOutcome;
  exitCode: number;
  /** One line for people. */
  message: string;
  /** Run folder name of the candidate, if one was started. */
  run: string | null;
  metric: PromotionMetric | null;
  metrics: { new: number | null; current: number | null };
  seconds: number;
  error: string | null;
}

/** What the current run was trained with, as far as its files tell. */
interface Inherited {
  settings: Partial<DataSettings>;
  stem?: TrainOptions["stem"];
  width?: number;
  /** The output layer (runs from before `--head` saved the tree-consistent one as `votes`). */
  head?: HeadKind;
  notes: string[];
}

async function readJsonOrNull(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** Reads the settings of the current run from its config.json and its dataset's manifest. */
async function inherit(current: CurrentRun | null): Promise<Inherited> {
  const out: Inherited = { settings: {}, notes: [] };
  if (!current?.exists) return out;
  const configPath = join(current.dir, "config.json");
  const config = await readJsonOrNull(configPath);
  if (!config) throw new Error(`cannot read ${configPath}: the current run has no usable config`);
  const d = (config.dataset ?? {}) as Record<string, unknown>;
  const model = (config.model ?? {}) as Record<string, unknown>;
  if (typeof d.scheme === "string") out.settings.scheme = d.scheme;
  if (typeof d.size === "number") out.settings.size = d.size;
  if (typeof d.crop === "number") out.settings.crop = d.crop;
  if (model.stem === "imagenet" || model.stem === "small") out.stem = model.stem;
  if (typeof model.width === "number") out.width = model.width;
  if (model.head === "votes") out.head = "tree";
  else if (model.head === "softmax" || model.head === "sigmoid" || model.head === "tree") {
    out.head = model.head;
  }
  const dataDir = typeof d.dir === "string" ? resolve(current.dir, d.dir) : null;
  const manifest = dataDir
    ? await readJsonOrNull(join(dataDir, "manifest.json")) as Manifest | null
    : null;
  if (manifest?.split) {
    out.settings.val = manifest.split.val;
    out.settings.test = manifest.split.test;
    out.settings.splitSeed = manifest.split.seed;
  } else {
    out.notes.push(
      `the split settings of the current run's dataset (${dataDir ?? "unknown"}) cannot be read: ` +
        "assuming the defaults (val 0.1, test 0.1, split seed 0)",
    );
  }
  return out;
}

/** Settings given explicitly that differ from the current run's: they make the scores incomparable. */
function conflicts(explicit: Partial<DataSettings>, inherited: Partial<DataSettings>): string[] {
  const flag: Record<keyof DataSettings, string> = {
    scheme: "--scheme",
    size: "--size",
    crop: "--crop",
    val: "--val",
    test: "--test",
    splitSeed: "--split-seed",
  };
  return (Object.keys(flag) as (keyof DataSettings)[])
    .filter((k) =>
      explicit[k] !== undefined && inherited[k] !== undefined &&
      String(explicit[k]) !== String(inherited[k])
    )
    .map((k) => `${flag[k]} ${explicit[k]} (current run: ${inherited[k]})`);
}

function round(x: number | null, digits = 6): number | null {
  return x === null || !Number.isFinite(x) ? x : Number(x.toFixed(digits));
}

/** Runs the whole job once; never throws for a failed run (it is logged and returned). */
export async function retrain(o: RetrainOptions): Promise<RetrainResult> {
  const t0 = performance.now();
  const log = o.log ?? ((l: string) => console.log(l));
  const runs = resolve(o.runs);
  const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
  let run: string | null = null;
  let metric: PromotionMetric | null = null;
  const metrics: RetrainResult["metrics"] = { new: null, current: null };

  const result = (outcome: RetrainOutcome, message: string, error: string | null = null) => {
    const r: RetrainResult = {
      outcome,
      exitCode: EXIT_CODES[outcome],
      message,
      run,
      metric,
      metrics: { new: round(metrics.new), current: round(metrics.current) },
      seconds: seconds(),
      error,
    };
    return r;
  };
  const entry = (r: RetrainResult): RetrainLogEntry => ({
    time: new Date().toISOString(),
    outcome: r.outcome,
    run: r.run,
    metric: r.metric,
    metrics: r.metrics,
    seconds: r.seconds,
    error: r.error,
    pid: Deno.pid,
  });

  const lockPath = join(runs, LOCK_FILE);
  let got: Awaited<ReturnType<typeof acquireLock>>;
  try {
    await Deno.mkdir(runs, { recursive: true });
    got = await acquireLock(lockPath);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const r = result("failed", `failed: ${message}`, message);
    await appendLog(runs, entry(r)).catch(() => {});
    return r;
  }
  if ("busy" in got) {
    const who = describeLock(got.busy);
    const r = result(
      "busy",
      `another retrain is running: ${who} (${got.why}); lock ${lockPath}; exiting`,
      `busy: ${who}`,
    );
    await appendLog(runs, entry(r));
    return r;
  }
  const lock: RetrainLock = got.held;
  if (lock.tookOver) {
    log(
      `took over a stale lock ${lockPath} left by ` +
        (lock.tookOver.info
          ? `${describeLock(lock.tookOver.info)}: that process is gone`
          : "a run that died while writing it"),
    );
  }

  // Signals: log, release the lock, exit 1. With replicas the launcher first stops them.
  let finished = false;
  let replicasRunning = false;
  let interrupted: string | null = null;
  let fallback: ReturnType<typeof setTimeout> | undefined;
  const finishInterrupted = () => {
    if (finished) return;
    finished = true;
    try {
      appendLogSync(
        runs,
        entry(result("failed", "interrupted", `interrupted by ${interrupted}`)),
      );
    } finally {
      lock.release();
      Deno.exit(EXIT_CODES.failed);
    }
  };
  const signalHandlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const handler = () => {
      if (interrupted) return;
      interrupted = sig;
      log(`${sig}: stopping; the lock is released and ${runs}/current is left as it was`);
      // The launcher stops the replicas (3 s grace, then SIGKILL) and training rejects; wait for that.
      if (replicasRunning) fallback = setTimeout(finishInterrupted, 8000);
      else finishInterrupted();
    };
    return [sig, handler] as const;
  });
  if (o.handleSignals) {
    for (const [sig, h] of signalHandlers) Deno.addSignalListener(sig, h);
  }

  let backendReady = false;
  const ensureBackend = async () => {
    if (backendReady) return;
    log(describeBackend(await setupBackend({ requested: o.backend })));
    backendReady = true;
  };

  try {
    // 2. Anything new?
    const state = await readState(runs);
    const current = await readCurrent(runs);
    if (current && !current.exists) {
      log(`warning: ${runs}/current points to ${current.target}, which does not exist`);
    }
    const inherited = await inherit(current);
    for (const n of inherited.notes) log(`note: ${n}`);
    const explicit = o.dataSettings ?? {};
    const settings: DataSettings = {
      scheme: explicit.scheme ?? inherited.settings.scheme ?? null,
      size: explicit.size ?? inherited.settings.size ?? DATA_DEFAULTS.size,
      crop: explicit.crop ?? inherited.settings.crop ?? DATA_DEFAULTS.crop,
      val: explicit.val ?? inherited.settings.val ?? DATA_DEFAULTS.val,
      test: explicit.test ?? inherited.settings.test ?? DATA_DEFAULTS.test,
      splitSeed: explicit.splitSeed ?? inherited.settings.splitSeed ?? DATA_DEFAULTS.splitSeed,
    };
    const inputs = await fingerprintInputs(o.data);
    // The scheme preprocess picks when none is given (lib/preprocess.ts schemeFor), named, so
    // "unset" and its value make the same dataset key.
    settings.scheme ??= inputs.layout === "kaggle" ? "gz5" : "csv";
    const key = datasetKey(inputs, settings);
    const last = state?.lastSuccess ?? null;
    if (last && last.datasetKey === key && !o.always) {
      const r = result(
        "nothing_new",
        `nothing new since ${last.time} (${inputs.images} images, labels and settings ` +
          `unchanged; last run ${last.run}, ${last.outcome}): no training`,
      );
      log(r.message);
      finished = true;
      await appendLog(runs, entry(r));
      return r;
    }
    log(`inputs: ${describeChange(last?.inputs ?? null, inputs)}`);
    const clash = current?.exists ? conflicts(explicit, inherited.settings) : [];
    const comparable = clash.length === 0;
    if (!comparable && !o.force) {
      throw new Error(
        `${clash.join(", ")}: the new test split would not score the current model fairly ` +
          "(or at all); keep the current run's settings, or add --force to promote without comparing",
      );
    }

    // 3. Preprocess.
    const dataset = join(runs, DATASETS_DIR, key.slice(0, 16));
    log(
      `preprocessing ${o.data} -> ${dataset} (${settings.size} px, crop ${settings.crop}, ` +
        `split seed ${settings.splitSeed}, val ${settings.val}, test ${settings.test})`,
    );
    const pre = await preprocess({
      inDir: o.data,
      outDir: dataset,
      scheme: settings.scheme ?? undefined,
      size: settings.size,
      crop: settings.crop,
      val: settings.val,
      test: settings.test,
      splitSeed: settings.splitSeed,
      maxBad: o.maxBad,
      // Training never reads the unlabeled split; decoding it would double the work on Kaggle data.
      unlabeled: false,
      overwrite: true,
      log: (l) => log(`  ${l}`),
      onProgress: o.onPreprocessProgress,
    });
    log(`  ${pre.summary}`);
    if (!pre.ok) {
      throw new Error(
        `${(100 * pre.report.badFraction).toFixed(2)}% of the images are bad (more than ` +
          `${(100 * pre.report.maxBad).toFixed(2)}%): see ${join(dataset, "report.json")}`,
      );
    }
    const kind = pre.manifest.scheme.kind;
    metric = o.metric ?? defaultMetric(kind);
    if (!ALLOWED[kind].monitors.includes(metric)) {
      throw new Error(
        `--metric ${metric} does not fit the '${pre.manifest.scheme.name}' dataset: use one of ` +
          ALLOWED[kind].monitors.filter((m) => m !== "loss").join(", "),
      );
    }

    // 4. Train the candidate.
    run = newRunName(new Date(), await takenNames(runs));
    const runDir = join(runs, run);
    const initFrom = !o.fromScratch && current?.exists ? join(current.dir, "model") : undefined;
    const trainOptions: TrainOptions = {
      ...TRAIN_DEFAULTS,
      monitor: metric,
      ...(initFrom && inherited.stem ? { stem: inherited.stem } : {}),
      ...(initFrom && inherited.width !== undefined ? { width: inherited.width } : {}),
      // Fine-tuning needs the same output layer: a sigmoid head's weights are not a tree head's.
      ...(initFrom && inherited.head ? { head: inherited.head } : {}),
      ...o.train,
      data: dataset,
      out: runDir,
      resume: false,
      initFrom,
    };
    log(
      `training ${runDir} ` +
        (initFrom ? `from the weights of ${current!.target} (fine-tuning)` : "from scratch") +
        `: ${trainOptions.epochs} epochs, batch ${trainOptions.batch}, lr ${trainOptions.lr}, ` +
        `monitor ${trainOptions.monitor}`,
    );
    const replicas = o.replicas ?? 1;
    if (replicas <= 1) await ensureBackend();
    replicasRunning = replicas > 1;
    try {
      await trainCandidate(trainOptions, {
        replicas,
        backend: o.backend,
        script: o.script,
        onEvent: o.onTrainEvent,
      });
    } finally {
      replicasRunning = false;
    }
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);

    // 5. Judge on the same test split; promote.
    await ensureBackend();
    const evalNew = await evaluate({
      run: runDir,
      data: dataset,
      out: join(runDir, "retrain", "new"),
      worst: 0,
    });
    metrics.new = metricOf(evalNew, metric);
    let evalCurrent: EvaluationReport | null = null;
    if (current?.exists && comparable) {
      evalCurrent = await evaluate({
        run: current.dir,
        data: dataset,
        out: join(runDir, "retrain", "current"),
        worst: 0,
      });
      metrics.current = metricOf(evalCurrent, metric);
    }
    const better = lowerIsBetter(metric) ? "lower" : "higher";
    const scores = `${metric} on the ${evalNew.split} split (n = ${evalNew.n}, ${better} is ` +
      `better): new ${metrics.new.toFixed(4)}` +
      (metrics.current !== null ? `, current ${metrics.current.toFixed(4)}` : "");
    let promoted: boolean;
    let why: string;
    if (!current?.exists) {
      promoted = true;
      why = "there is no current model";
    } else if (o.force) {
      promoted = true;
      why = "--force";
    } else {
      promoted = atLeastAsGood(metric, metrics.new, metrics.current!);
      why = promoted ? "at least as good as the current model" : "worse than the current model";
    }
    const outcome: RetrainOutcome = promoted ? "promoted" : "not_promoted";
    await writeJsonAtomic(join(runDir, "retrain", "decision.json"), {
      time: new Date().toISOString(),
      outcome,
      why,
      metric,
      split: evalNew.split,
      n: evalNew.n,
      new: metrics.new,
      current: metrics.current,
      currentRun: current?.target ?? null,
      initFrom: initFrom ?? null,
      dataset,
      settings,
      inputs,
    });
    if (promoted) await promote(runs, run);
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);
    await writeState(runs, {
      time: new Date().toISOString(),
      outcome,
      run,
      dataset: join(DATASETS_DIR, key.slice(0, 16)),
      datasetKey: key,
      settings,
      inputs,
    });

    // 6. Keep the newest runs.
    const now = await readCurrent(runs);
    const protect = [runDir, ...(now?.exists ? [now.dir] : [])];
    const deletedRuns = await pruneRuns(runs, o.keep ?? 5, protect);
    const deletedData = await pruneDatasets(runs, [dataset], now?.exists ? [now.dir] : []);
    if (deletedRuns.length || deletedData.length) {
      log(
        `deleted ${deletedRuns.length} old run(s)` +
          (deletedRuns.length ? ` (${deletedRuns.join(", ")})` : "") +
          ` and ${deletedData.length} unused dataset(s)`,
      );
    }
    const r = result(
      outcome,
      promoted
        ? `promoted ${run} (${why}); ${scores}`
        : `not promoted: ${run} is ${why}; ${scores}; current stays ${current!.target}`,
    );
    log(r.message);
    finished = true;
    await appendLog(runs, entry(r));
    return r;
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    const message = interrupted && !text.startsWith("interrupted by")
      ? `interrupted by ${interrupted}: ${text}`
      : text;
    const r = result("failed", `failed: ${message}`, message);
    if (!finished) {
      finished = true;
      await appendLog(runs, entry(r)).catch(() => {});
    }
    return r;
  } finally {
    clearTimeout(fallback);
    if (o.handleSignals) {
      for (const [sig, h] of signalHandlers) Deno.removeSignalListener(sig, h);
    }
    lock.release();
  }
}
