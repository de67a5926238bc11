/**
 * Training the candidate run: in this process, or mirrored over several
 * replica processes (one per GPU). Replicas are started with the retraining
 * script itself (hidden flags `--train-replica OPTIONS_JSON` and the
 * launcher's `--replica-*`), so they get every option the job sets,
 * `initFrom` included, which `deno task train` has no flag for.
 *
 * @module
 */
import { type BackendName, describeBackend, setupBackend } from "../backend.ts";
import { readJson } from "../io/atomic.ts";
import { runPaths } from "../run/layout.ts";
import {
  joinReplicas,
  launchReplicas,
  REPLICA_PERMISSIONS,
  type ReplicaFlags,
} from "../train/mirrored.ts";
import { train, type TrainEvent, type TrainOptions, type TrainReport } from "../train/trainer.ts";

/** How to train the candidate. */
export interface CandidateOptions {
  /** Replica processes; 1 trains here. */
  replicas: number;
  /** Backend the replicas ask for (this process's is already set up when training here). */
  backend?: BackendName;
  /** `false`: the replicas run without native CPU kernels (`--no-native-kernels`). */
  nativeKernels?: boolean;
  /** The script the replicas run (the retraining CLI); needed when `replicas > 1`. */
  script?: string;
  onEvent?: (e: TrainEvent) => void;
}

/** The flag that makes the retraining CLI a replica of a candidate's training. */
export const REPLICA_FLAG = "--train-replica";

/** Trains `options` and returns the run's report (the best model on the test split). */
export async function trainCandidate(
  options: TrainOptions,
  c: CandidateOptions,
): Promise<TrainReport> {
  if (c.replicas <= 1) {
    const report = await train(options, c.onEvent);
    if (!report) throw new Error(`training ${options.out} returned no report`);
    return report;
  }
  if (!c.script) throw new Error("mirrored training needs the script the replicas run");
  if (options.batch % c.replicas !== 0) {
    throw new Error(`--batch ${options.batch} does not split evenly over ${c.replicas} replicas`);
  }
  await launchReplicas({
    script: c.script,
    args: [
      REPLICA_FLAG,
      JSON.stringify(options),
      ...(c.backend ? ["--backend", c.backend] : []),
      ...(c.nativeKernels === false ? ["--no-native-kernels"] : []),
    ],
    replicas: c.replicas,
    permissions: REPLICA_PERMISSIONS,
  });
  return await readJson<TrainReport>(runPaths(options.out).report);
}

/** Parses the options a replica was handed, naming what is wrong. */
export function parseReplicaOptions(json: string): TrainOptions {
  let o: Partial<TrainOptions>;
  try {
    o = JSON.parse(json);
  } catch (e) {
    throw new Error(`${REPLICA_FLAG}: not JSON: ${(e as Error).message}`);
  }
  for (const k of ["data", "out"] as const) {
    if (typeof o?.[k] !== "string") throw new Error(`${REPLICA_FLAG}: no "${k}"`);
  }
  for (const k of ["epochs", "batch", "lr", "seed", "width"] as const) {
    if (typeof o[k] !== "number") throw new Error(`${REPLICA_FLAG}: no number "${k}"`);
  }
  return o as TrainOptions;
}

/** Body of a replica process: joins the group and trains its share. */
export async function runReplica(
  json: string,
  flags: ReplicaFlags,
  backend: BackendName | undefined,
  onEvent: (e: TrainEvent) => void,
  nativeKernels?: boolean,
): Promise<void> {
  const options = parseReplicaOptions(json);
  const info = await setupBackend({ requested: backend, nativeKernels });
  console.error(`replica ${flags.rank}: ${describeBackend(info)}`);
  const collective = await joinReplicas(flags);
  try {
    await train(options, flags.rank === 0 ? onEvent : () => {}, collective);
  } finally {
    await collective.close();
  }
}
