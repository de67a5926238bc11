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
 *    the current model's weights (fine-tuning), or from scratch; from
 *    scratch, always, when the scheme's class set has changed
 *    ({@linkcode ./classes.ts});
 * 5. evaluate the candidate and the current model on the test split of the
 *    new dataset and promote the candidate when it is at least as good
 *    ({@linkcode ./promote.ts}). When the class set has changed the two
 *    cannot be compared: the candidate is kept, not promoted (exit 2), until
 *    `--force` promotes it (without retraining when nothing else changed);
 * 6. delete the job's runs beyond the newest `keep` (never `current`'s
 *    target) and datasets no remaining run uses ({@linkcode ./keep.ts}); a
 *    candidate whose run failed is deleted at once;
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
import { evaluate } from "../evaluate.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import {
  preprocess,
  PREPROCESS_DEFAULTS,
  type PreprocessProgress,
  type PreprocessResult,
} from "../preprocess.ts";
import { TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from "../train/trainer.ts";
import { ALLOWED } from "../train/dataset_settings.ts";
import type { HeadKind } from "../model/resnet.ts";
import { trainCandidate } from "./candidate.ts";
import { type ClassChange, classChange, describeClassChange } from "./classes.ts";
import { describeChange, fingerprintInputs } from "./fingerprint.ts";
import { DATASETS_DIR, newRunName, pruneDatasets, pruneRuns, takenNames } from "./keep.ts";
import { acquireLock, describeLock, type RetrainLock } from "../io/lock.ts";
import { datasetDirOf, readRunConfig } from "../run/config.ts";
import { runPaths } from "../run/layout.ts";
import { appendLog, EXIT_CODES, type RetrainOutcome } from "./log.ts";
import { entry, RetrainRecord, type RetrainResult } from "./record.ts";
import { Interruption } from "./signals.ts";
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
import { datasetKey, type DataSettings, type LastSuccess, readState, writeState } from "./state.ts";

export type { RetrainResult } from "./record.ts";

/** Name of the lock inside the runs folder. */
export const LOCK_FILE = "retrain.lock";

/** Defaults of the preprocessing settings (those of `deno task preprocess`). */
export const DATA_DEFAULTS: Omit<DataSettings, "scheme"> = {
  size: PREPROCESS_DEFAULTS.size,
  crop: PREPROCESS_DEFAULTS.crop,
  val: PREPROCESS_DEFAULTS.val,
  test: PREPROCESS_DEFAULTS.test,
  splitSeed: PREPROCESS_DEFAULTS.splitSeed,
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
  /** `false` (`--no-native-kernels`): plain WebAssembly, no oneDNN (see lib/kernels/native.ts). */
  nativeKernels?: boolean;
  /** The retraining script, which replica processes run. */
  script?: string;
  /** Release the lock and log on SIGINT/SIGTERM, then exit 1 (for the CLI; not in tests). */
  handleSignals?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  onTrainEvent?: (e: TrainEvent) => void;
  onPreprocessProgress?: (p: PreprocessProgress) => void;
}

/** What the current run was trained with, as far as its files tell. */
interface Inherited {
  settings: Partial<DataSettings>;
  /** Class names of a class model (config.json dataset.classes); undefined for votes or unknown. */
  classes?: string[];
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
  const { config } = await readRunConfig(current.dir);
  const d = config.dataset;
  const model = (config.model ?? {}) as Record<string, unknown>;
  if (typeof d.scheme === "string") out.settings.scheme = d.scheme;
  if (typeof d.size === "number") out.settings.size = d.size;
  if (typeof d.crop === "number") out.settings.crop = d.crop;
  if (model.stem === "imagenet" || model.stem === "small") out.stem = model.stem;
  if (typeof model.width === "number") out.width = model.width;
  if (d.kind === "classes") out.classes = d.classes;
  if (model.head === "votes") out.head = "tree";
  else if (model.head === "softmax" || model.head === "sigmoid" || model.head === "tree") {
    out.head = model.head;
  }
  const dataDir = datasetDirOf(config);
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

/**
 * The classes added and removed since the current run (its `config.json`),
 * when both are class models of the same scheme; null when unchanged or not comparable so.
 */
function classesChanged(inherited: Inherited, manifest: Manifest): ClassChange | null {
  if (!inherited.classes || manifest.scheme.kind !== "classes") return null;
  if (manifest.scheme.name !== inherited.settings.scheme) return null; // --scheme: see conflicts
  return classChange(inherited.classes, manifest.scheme.classNames);
}

/** Whether the last run's candidate was not promoted and is still there, waiting for --force. */
async function waitingRun(
  runs: string,
  last: LastSuccess,
  current: CurrentRun | null,
): Promise<boolean> {
  if (last.outcome !== "not_promoted" || current?.target === last.run) return false;
  return await Deno.stat(join(runs, last.run)).then((s) => s.isDirectory, () => false);
}

/** The preprocessing settings: those given, else the current run's, else the defaults. */
function mergeSettings(
  explicit: Partial<DataSettings>,
  inherited: Partial<DataSettings>,
): DataSettings {
  return {
    scheme: explicit.scheme ?? inherited.scheme ?? null,
    size: explicit.size ?? inherited.size ?? DATA_DEFAULTS.size,
    crop: explicit.crop ?? inherited.crop ?? DATA_DEFAULTS.crop,
    val: explicit.val ?? inherited.val ?? DATA_DEFAULTS.val,
    test: explicit.test ?? inherited.test ?? DATA_DEFAULTS.test,
    splitSeed: explicit.splitSeed ?? inherited.splitSeed ?? DATA_DEFAULTS.splitSeed,
  };
}

/**
 * Whether the candidate is promoted, and why: always when there is no current
 * model or with `--force`; never when the class set changed (the scores
 * cannot be compared); else when its score is at least as good.
 */
function decide(o: {
  hasCurrent: boolean;
  force: boolean;
  changed: ClassChange | null;
  metric: PromotionMetric;
  scoreNew: number;
  scoreCurrent: number | null;
}): { promoted: boolean; why: string } {
  if (!o.hasCurrent) return { promoted: true, why: "there is no current model" };
  if (o.force) {
    return {
      promoted: true,
      why: o.changed
        ? `--force; the class set changed: ${describeClassChange(o.changed)}`
        : "--force",
    };
  }
  if (o.changed) {
    return {
      promoted: false,
      why: `not comparable with the current model: the class set changed (${
        describeClassChange(o.changed)
      })`,
    };
  }
  const promoted = atLeastAsGood(o.metric, o.scoreNew, o.scoreCurrent!);
  return {
    promoted,
    why: promoted ? "at least as good as the current model" : "worse than the current model",
  };
}

/** Step 6: deletes runs beyond the newest `keep` and unused datasets, never the candidate or current. */
async function pruneOld(
  runs: string,
  runDir: string,
  dataset: string,
  keep: number,
  log: (line: string) => void,
): Promise<void> {
  const now = await readCurrent(runs);
  const protect = [runDir, ...(now?.exists ? [now.dir] : [])];
  const deletedRuns = await pruneRuns(runs, keep, protect);
  const deletedData = await pruneDatasets(runs, [dataset], now?.exists ? [now.dir] : []);
  if (deletedRuns.length || deletedData.length) {
    log(
      `deleted ${deletedRuns.length} old run(s)` +
        (deletedRuns.length ? ` (${deletedRuns.join(", ")})` : "") +
        ` and ${deletedData.length} unused dataset(s)`,
    );
  }
}

/**
 * Step 3: preprocesses `o.data` into `RUNS/datasets/<key>` (the shards a
 * failed try left are reused); throws when more images are bad than allowed.
 */
async function preprocessInputs(
  o: RetrainOptions,
  runs: string,
  key: string,
  settings: DataSettings,
  log: (line: string) => void,
): Promise<{ dataset: string; pre: PreprocessResult }> {
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
  return { dataset, pre };
}

/** Step 5's score: `metric` of the model of `run` on the test split of `dataset` (report in `out`). */
async function scoreRun(
  run: string,
  dataset: string,
  out: string,
  metric: PromotionMetric,
): Promise<{ split: string; n: number; score: number }> {
  const report = await evaluate({ run, data: dataset, out, worst: 0 });
  return { split: report.split, n: report.n, score: metricOf(report, metric) };
}

/** What one run of the job works with, whatever step it is at. */
interface Job {
  o: RetrainOptions;
  /** The runs folder, absolute. */
  runs: string;
  log: (line: string) => void;
  /** What the run has done so far, and its one way to end. */
  record: RetrainRecord;
  interruption: Interruption;
  /** Sets up the TF.js backend on first call (and says which); later calls do nothing. */
  backend: () => Promise<void>;
}

/** Step 2's findings: the current run, the settings, the inputs and the dataset key they make. */
interface Plan {
  current: CurrentRun | null;
  inherited: Inherited;
  explicit: Partial<DataSettings>;
  settings: DataSettings;
  inputs: Awaited<ReturnType<typeof fingerprintInputs>>;
  key: string;
  last: LastSuccess | null;
}

/** Step 3's dataset and what it means for judging the candidate. */
interface Prepared {
  dataset: string;
  /** Whether the current model can be scored on the new test split (same settings). */
  comparable: boolean;
  /** The class set's change since the current run, when it changed. */
  changed: ClassChange | null;
  metric: PromotionMetric;
}

/** Runs the whole job once; never throws for a failed run (it is logged and returned). */
export async function retrain(o: RetrainOptions): Promise<RetrainResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const runs = resolve(o.runs);
  const record = new RetrainRecord(runs);
  const locked = await takeLock(runs, record, log);
  if ("ended" in locked) return locked.ended;
  const lock = locked.lock;
  const interruption: Interruption = new Interruption({
    listen: o.handleSignals === true,
    log,
    what: `the lock is released and ${runs}/current is left as it was`,
    stop: () => {
      if (record.ended) return;
      try {
        record.failSync(`interrupted by ${interruption.signal}`);
      } finally {
        lock.release();
        Deno.exit(EXIT_CODES.failed);
      }
    },
  });
  const job: Job = { o, runs, log, record, interruption, backend: backendOnce(o, log) };
  try {
    return await runSteps(job);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    const signal = interruption.signal;
    return await record.fail(
      signal && !text.startsWith("interrupted by") ? `interrupted by ${signal}: ${text}` : text,
    );
  } finally {
    interruption.dispose();
    lock.release();
  }
}

/** Steps 2 to 7, once the lock is held. */
async function runSteps(job: Job): Promise<RetrainResult> {
  const plan = await planRun(job);
  const early = await endIfNothingNew(job, plan);
  if (early) return early;
  job.log(`inputs: ${describeChange(plan.last?.inputs ?? null, plan.inputs)}`);
  const prepared = await prepareDataset(job, plan);
  const { runDir, initFrom } = await trainNewRun(job, plan, prepared);
  const verdict = await judgeCandidate(job, plan, prepared, runDir, initFrom);
  await pruneOld(job.runs, runDir, prepared.dataset, job.o.keep ?? 5, job.log);
  return await endSaying(job, job.record.result(verdict.outcome, verdict.message));
}

/** Step 7 for a run that ends normally: says its message, then logs it. */
async function endSaying(job: Job, r: RetrainResult): Promise<RetrainResult> {
  job.log(r.message);
  return await job.record.end(r);
}

/** {@linkcode setupBackend} once, saying which backend it chose. */
function backendOnce(o: RetrainOptions, log: (line: string) => void): () => Promise<void> {
  let ready: Promise<void> | null = null;
  return () =>
    ready ??= setupBackend({ requested: o.backend, nativeKernels: o.nativeKernels }).then((b) =>
      log(describeBackend(b))
    );
}

/**
 * Step 1: takes `RUNS/retrain.lock`; a run that cannot (busy, or the runs
 * folder unusable) ends here, logged.
 */
async function takeLock(
  runs: string,
  record: RetrainRecord,
  log: (line: string) => void,
): Promise<{ lock: RetrainLock } | { ended: RetrainResult }> {
  const lockPath = join(runs, LOCK_FILE);
  let got: Awaited<ReturnType<typeof acquireLock>>;
  try {
    await Deno.mkdir(runs, { recursive: true });
    got = await acquireLock(lockPath);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const r = record.result("failed", `failed: ${message}`, message);
    await appendLog(runs, entry(r)).catch(() => {});
    return { ended: r };
  }
  if ("busy" in got) {
    const who = describeLock(got.busy);
    const r = record.result(
      "busy",
      `another retrain is running: ${who} (${got.why}); lock ${lockPath}; exiting`,
      `busy: ${who}`,
    );
    await appendLog(runs, entry(r)).catch((e) =>
      log(`warning: cannot append to the log in ${runs}: ${(e as Error).message}`)
    );
    return { ended: r };
  }
  const lock = got.held;
  if (lock.tookOver) {
    log(
      `took over a stale lock ${lockPath} left by ` +
        (lock.tookOver.info
          ? describeLock(lock.tookOver.info)
          : "a run that died while writing it") +
        `: ${lock.tookOver.why}`,
    );
  }
  return { lock };
}

/** Step 2: the current run, the settings (given, inherited, default) and the inputs' fingerprint. */
async function planRun({ o, runs, log }: Job): Promise<Plan> {
  const state = await readState(runs);
  const current = await readCurrent(runs);
  if (current && !current.exists) {
    log(`warning: ${runs}/current points to ${current.target}, which does not exist`);
  }
  const inherited = await inherit(current);
  for (const n of inherited.notes) log(`note: ${n}`);
  const explicit = o.dataSettings ?? {};
  const settings = mergeSettings(explicit, inherited.settings);
  const inputs = await fingerprintInputs(o.data);
  // The scheme preprocess picks when none is given (lib/preprocess.ts schemeFor), named, so
  // "unset" and its value make the same dataset key.
  settings.scheme ??= inputs.layout === "kaggle" ? "gz5" : "csv";
  const key = datasetKey(inputs, settings);
  return { current, inherited, explicit, settings, inputs, key, last: state?.lastSuccess ?? null };
}

/**
 * Step 2's ending: nothing new since the last successful run (unless
 * `--always`), or, with `--force`, the candidate it left waiting promoted
 * without training again. Null when there is work to do.
 */
async function endIfNothingNew(job: Job, plan: Plan): Promise<RetrainResult | null> {
  const { o, runs, record } = job;
  const { last, current, inputs, key } = plan;
  if (!last || last.datasetKey !== key || o.always) return null;
  const waiting = await waitingRun(runs, last, current);
  const why = last.why ? ` (${last.why})` : "";
  if (waiting && o.force) {
    // The candidate trained last time is what --force asks for: no need to train it again.
    record.run = last.run;
    await promote(runs, last.run);
    const r = record.result(
      "promoted",
      `promoted ${last.run} (--force), trained by the run of ${last.time} and not promoted ` +
        `then${why}; nothing new since, so no training`,
    );
    await writeState(runs, { ...last, outcome: "promoted", why: "--force" });
    return await endSaying(job, r);
  }
  return await endSaying(
    job,
    record.result(
      "nothing_new",
      `nothing new since ${last.time} (${inputs.images} images, labels and settings ` +
        `unchanged; last run ${last.run}, ${last.outcome}): no training` +
        (waiting ? `; ${last.run} is waiting to be promoted${why}: add --force to promote it` : ""),
    ),
  );
}

/**
 * Step 3: refuses settings that would make the scores incomparable (unless
 * `--force`), preprocesses, and finds the metric and whether the class set
 * changed.
 */
async function prepareDataset(job: Job, plan: Plan): Promise<Prepared> {
  const { o, runs, log } = job;
  const { current, inherited } = plan;
  const clash = current?.exists ? conflicts(plan.explicit, inherited.settings) : [];
  const comparable = clash.length === 0;
  if (!comparable && !o.force) {
    throw new Error(
      `${clash.join(", ")}: the new test split would not score the current model fairly ` +
        "(or at all); keep the current run's settings, or add --force to promote without comparing",
    );
  }
  const { dataset, pre } = await preprocessInputs(o, runs, plan.key, plan.settings, log);
  const { kind, name } = pre.manifest.scheme;
  // A class set that changed: the old output layer does not fit, its scores mean nothing here.
  const changed = current?.exists ? classesChanged(inherited, pre.manifest) : null;
  if (changed) {
    log(
      `the class set of scheme '${name}' changed since ${current!.target}: ` +
        `${describeClassChange(changed)}; training from scratch, and not comparing with the ` +
        "current model (its labels differ)",
    );
  }
  const metric = o.metric ?? defaultMetric(kind);
  job.record.metric = metric;
  if (!ALLOWED[kind].monitors.includes(metric)) {
    throw new Error(
      `--metric ${metric} does not fit the '${name}' dataset: use one of ` +
        ALLOWED[kind].monitors.filter((m) => m !== "loss").join(", "),
    );
  }
  return { dataset, comparable, changed, metric };
}

/**
 * Step 4: trains the candidate `RUNS/run-<UTC time>`, from the current
 * model's weights unless `--from-scratch` or the class set changed.
 */
async function trainNewRun(
  job: Job,
  plan: Plan,
  prepared: Prepared,
): Promise<{ runDir: string; initFrom: string | undefined }> {
  const { o, runs, log, record } = job;
  const { current, inherited } = plan;
  record.run = newRunName(new Date(), await takenNames(runs));
  const runDir = join(runs, record.run);
  const initFrom = !o.fromScratch && !prepared.changed && current?.exists
    ? runPaths(current.dir).modelDir
    : undefined;
  const trainOptions: TrainOptions = {
    ...TRAIN_DEFAULTS,
    monitor: prepared.metric,
    ...(initFrom && inherited.stem ? { stem: inherited.stem } : {}),
    ...(initFrom && inherited.width !== undefined ? { width: inherited.width } : {}),
    // Fine-tuning needs the same output layer: a sigmoid head's weights are not a tree head's.
    ...(initFrom && inherited.head ? { head: inherited.head } : {}),
    ...o.train,
    data: prepared.dataset,
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
  if (replicas <= 1) await job.backend();
  await job.interruption.whileTraining(replicas > 1, () =>
    trainCandidate(trainOptions, {
      replicas,
      backend: o.backend,
      nativeKernels: o.nativeKernels,
      script: o.script,
      onEvent: o.onTrainEvent,
    }));
  job.interruption.check();
  return { runDir, initFrom };
}

/**
 * Step 5: scores the candidate and the current model on the same test
 * split, records the decision in `RUN/retrain/decision.json`, promotes the
 * candidate when it wins, and remembers the run as the last successful one.
 */
async function judgeCandidate(
  job: Job,
  plan: Plan,
  prepared: Prepared,
  runDir: string,
  initFrom: string | undefined,
): Promise<{ outcome: RetrainOutcome; message: string }> {
  const { o, runs, record } = job;
  const { current, settings, inputs, key } = plan;
  const { dataset, metric, changed } = prepared;
  const run = record.run!;
  await job.backend();
  const evalNew = await scoreRun(runDir, dataset, join(runDir, "retrain", "new"), metric);
  const scoreNew = record.metrics.new = evalNew.score;
  if (current?.exists && prepared.comparable && !changed) {
    const out = join(runDir, "retrain", "current");
    record.metrics.current = (await scoreRun(current.dir, dataset, out, metric)).score;
  }
  const scoreCurrent = record.metrics.current;
  const better = lowerIsBetter(metric) ? "lower" : "higher";
  const scores = `${metric} on the ${evalNew.split} split (n = ${evalNew.n}, ${better} is ` +
    `better): new ${scoreNew.toFixed(4)}` +
    (scoreCurrent !== null ? `, current ${scoreCurrent.toFixed(4)}` : "");
  const { promoted, why } = decide({
    hasCurrent: current?.exists === true,
    force: o.force === true,
    changed,
    metric,
    scoreNew,
    scoreCurrent,
  });
  const outcome: RetrainOutcome = promoted ? "promoted" : "not_promoted";
  const time = () => new Date().toISOString();
  await writeJsonAtomic(join(runDir, "retrain", "decision.json"), {
    time: time(),
    outcome,
    why,
    metric,
    split: evalNew.split,
    n: evalNew.n,
    new: scoreNew,
    current: scoreCurrent,
    currentRun: current?.target ?? null,
    initFrom: initFrom ?? null,
    classChange: changed,
    dataset,
    settings,
    inputs,
  });
  if (promoted) await promote(runs, run);
  job.interruption.check();
  record.judged = true;
  const datasetDir = join(DATASETS_DIR, key.slice(0, 16));
  await writeState(runs, {
    time: time(),
    outcome,
    run,
    why,
    dataset: datasetDir,
    datasetKey: key,
    settings,
    inputs,
  });
  const stays = `current stays ${current?.target}`;
  const message = promoted
    ? `promoted ${run} (${why}); ${scores}`
    : changed
    ? `not promoted: ${run} is ${why}; ${scores}; ${stays}. ` +
      `Check ${run}, then promote it with --force (without retraining if nothing else changed)`
    : `not promoted: ${run} is ${why}; ${scores}; ${stays}`;
  return { outcome, message };
}
