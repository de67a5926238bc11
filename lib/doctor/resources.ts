/**
 * The machine's room for a training run: free memory, free disk where the
 * data lives, and whether /dev/shm can carry the mirrored all-reduce.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { resolve } from "node:path";
import { sharedMemoryAvailable, sharedMemoryCanHold } from "../train/shared_memory.ts";

/** Free disk of a folder's file system. */
export interface DiskSpace {
  /** The folder, absolute. */
  path: string;
  /** Bytes an unprivileged user may still write. */
  freeBytes: number;
  /** Size of the file system, bytes. */
  totalBytes: number;
}

/** Free and total space of the file system holding `dir`; throws naming `dir` when it is not a folder. */
export function diskSpace(dir: string): DiskSpace {
  const path = resolve(dir);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    throw new Error(`data folder ${path} cannot be read: ${(e as Error).message}`);
  }
  if (!info.isDirectory) throw new Error(`data folder ${path} is not a folder`);
  const s = statfsSync(path);
  return { path, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

/** Memory the system can give a new process without swapping, and its total, bytes. */
export function memory(): { availableBytes: number; totalBytes: number } {
  const m = Deno.systemMemoryInfo();
  return { availableBytes: m.available, totalBytes: m.total };
}

/** Whether the mirrored all-reduce fits in /dev/shm. */
export interface SharedMemoryRoom {
  /** Shared memory works at all here (Linux, FFI, /dev/shm mappable). */
  available: boolean;
  /** Bytes the all-reduce needs: one float32 slot of every trainable weight per replica. */
  neededBytes: number;
  /** Whether /dev/shm could reserve `neededBytes` just now. */
  fits: boolean;
}

/**
 * Bytes the mirrored trainer maps in /dev/shm: a float32 slot of `params`
 * gradients for each of `replicas` (lib/train/ring.ts, withSharedMemory).
 */
export function allReduceBytes(params: number, replicas: number): number {
  return params * 4 * replicas;
}

/** Checks that /dev/shm can reserve the all-reduce of `params` weights over `replicas`. */
export function sharedMemoryRoom(params: number, replicas: number): SharedMemoryRoom {
  const neededBytes = allReduceBytes(params, replicas);
  const available = sharedMemoryAvailable();
  return { available, neededBytes, fits: available && sharedMemoryCanHold(neededBytes) };
}
