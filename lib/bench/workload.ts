/**
 * What the benchmark workloads (bench/workloads/*.ts, each run as its own
 * process by the harness) share: their flags, the result line they end
 * with, seeded input data, and their permissions. The multi-process ones
 * also use replicas.ts.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { mulberry32 } from "../random.ts";

/**
 * The workload's flags (`Deno.args`, strict: an unknown flag or a
 * positional argument throws). Numbers and choices are read with
 * numberFlag and choiceFlag of lib/cli.ts.
 */
export function workloadFlags<T extends NonNullable<ParseArgsConfig["options"]>>(options: T) {
  return parseArgs({ args: Deno.args, options, strict: true, allowPositionals: false }).values;
}

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
