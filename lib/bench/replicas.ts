/**
 * What the multi-process benchmark workloads (bench/workloads/allreduce.ts,
 * train_step.ts) share: the flags by which launchReplicas
 * (lib/train/mirrored.ts) names a replica, and the launcher's part.
 *
 * Apart from workload.ts because it loads the mirrored trainer and so
 * TF.js, which the single-process workloads must not carry in their
 * memory figures.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { launchReplicas, type ReplicaFlags } from "../train/mirrored.ts";
import { WORKLOAD_PERMISSIONS } from "./workload.ts";

/** The flags by which launchReplicas names a replica, for a workload's flag options. */
export const REPLICA_FLAG_OPTIONS = {
  "replica-rank": { type: "string" },
  "replica-count": { type: "string" },
  "replica-dir": { type: "string" },
} as const;

/** Values of {@linkcode REPLICA_FLAG_OPTIONS}, as parsed. */
export interface ReplicaFlagValues {
  "replica-rank"?: string;
  "replica-count"?: string;
  "replica-dir"?: string;
}

/** The replica this process is, or null in a process started without the replica flags. */
export function replicaOf(flags: ReplicaFlagValues): ReplicaFlags | null {
  if (flags["replica-rank"] === undefined) return null;
  return {
    rank: Number(flags["replica-rank"]),
    count: Number(flags["replica-count"]),
    dir: flags["replica-dir"]!,
  };
}

/**
 * The launcher's part: runs `replicas` processes of the workload
 * `scriptUrl` (its `import.meta.url`) with this process's arguments, to
 * which launchReplicas adds the replica flags, until they are done.
 * Replica 0's stdout is the launcher's, so its result line is the last line.
 */
export function launchWorkloadReplicas(scriptUrl: string, replicas: number): Promise<void> {
  return launchReplicas({
    script: fileURLToPath(scriptUrl),
    args: Deno.args,
    replicas,
    permissions: [...WORKLOAD_PERMISSIONS],
  });
}
