/**
 * What the benchmark workloads (bench/workloads/*.ts, each run as its own
 * process by the harness) share: the result line they end with, seeded
 * input data, and the flags and permissions of replica processes.
 *
 * @module
 */
import { mulberry32 } from "../random.ts";

/**
 * Prints the workload's result as one JSON line on stdout: the harness
 * reads the last stdout line. Nothing may be printed to stdout after it.
 */
export function printResult(result: Record<string, unknown>): void {
  console.log(JSON.stringify(result));
}

/** `n` seeded uint8 pixel values (random images for model benchmarks). */
export function randomPixels(n: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/** One-hot targets for `n` seeded classes out of `classes`. */
export function randomOneHot(n: number, classes: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) out[i * classes + Math.floor(rand() * classes)] = 1;
  return out;
}

/**
 * Deno permissions of a workload and of the replicas it launches: every
 * one, because Deno 2.9 opens `/dev/shm` (the mirrored trainer's shared
 * memory) only to a process that holds them all, and the replicas' ring
 * sockets need network permission.
 */
export const WORKLOAD_PERMISSIONS: readonly string[] = ["--allow-all"];

/** The flags by which launchReplicas (lib/train/mirrored.ts) names a replica. */
export const REPLICA_FLAG_OPTIONS = {
  "replica-rank": { type: "string" },
  "replica-count": { type: "string" },
  "replica-dir": { type: "string" },
} as const;

/** A number flag, or `fallback`; throws naming the flag when it is not a number. */
export function numberArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (value.trim() === "" || !Number.isFinite(x)) {
    throw new Error(`--${name} needs a number, got '${value}'`);
  }
  return x;
}
