/**
 * The collective operations a mirrored (data-parallel) step needs, behind
 * one interface: a single process is a group of one, and the mirrored
 * trainer supplies a group of replica processes.
 *
 * @module
 */

/** A group of replicas that all-reduce gradients and broadcast weights. */
export interface Collective {
  /** This replica's index, 0 for the one that writes files and prints. */
  readonly rank: number;
  /** Number of replicas. */
  readonly size: number;
  /** How gradients travel: `none` (one process), `shared-memory` or `tcp-ring`. */
  readonly transport: "none" | "shared-memory" | "tcp-ring";
  /** Replaces `data` in place with the element-wise mean over all replicas. */
  allReduceMean(data: Float32Array): Promise<void>;
  /**
   * A buffer of `n` floats to fill and pass to `allReduceMean`: with shared
   * memory it is this replica's own slot, which saves a copy.
   */
  scratch(n: number): Float32Array;
  /** Replaces `data` in place with replica 0's copy. */
  broadcast(data: Float32Array): Promise<void>;
  /** Resolves with the values every replica contributed, in rank order. */
  allGather(value: number): Promise<number[]>;
  /** Releases the transport (sockets, shared memory); the group is unusable afterwards. */
  close(): Promise<void>;
}

/** The group of one: every operation is the identity. */
export function singleProcess(): Collective {
  return {
    rank: 0,
    size: 1,
    transport: "none",
    allReduceMean: () => Promise.resolve(),
    scratch: (n) => new Float32Array(n),
    broadcast: () => Promise.resolve(),
    allGather: (v) => Promise.resolve([v]),
    close: () => Promise.resolve(),
  };
}
