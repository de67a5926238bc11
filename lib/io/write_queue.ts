/**
 * Writes that run in the background, one after another, while the caller
 * goes on: a training run queues its checkpoint and best model each epoch
 * (hundreds of MB to hash, write and sync, about a second) and keeps
 * training. Each write works on data the caller copied beforehand.
 *
 * The first write that fails is kept: later writes are skipped (so nothing
 * newer lands on disk after an older write failed), and the failure is
 * thrown by the next {@linkcode WriteQueue.add} or by
 * {@linkcode WriteQueue.flush}.
 *
 * @module
 */

/** A queue of background writes; see the module doc. */
export class WriteQueue {
  #tail: Promise<void> = Promise.resolve();
  #failure: Error | null = null;
  #pending = 0;

  /**
   * Whether writes are waiting or running. A caller that computes for long
   * stretches without awaiting anything asynchronous must then let the
   * event loop turn now and then ({@linkcode WriteQueue.letProgress}): file
   * operations complete only there.
   */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /** Lets the event loop turn once when writes are pending (else returns at once). */
  async letProgress(): Promise<void> {
    if (this.#pending > 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }

  /**
   * Runs `write` after every write added before it. `what` names it in the
   * error (e.g. "the checkpoint in runs/a/checkpoint"). Throws the failure
   * of an earlier write, if any.
   */
  add(what: string, write: () => Promise<void>): void {
    this.#throwFailure();
    this.#pending++;
    this.#tail = this.#tail.then(async () => {
      try {
        if (!this.#failure) await write();
      } catch (e) {
        this.#failure = new Error(`cannot write ${what}: ${(e as Error).message}`, { cause: e });
      } finally {
        this.#pending--;
      }
    });
  }

  /**
   * Throws the first failure, if a write has failed: a caller that goes on
   * working between writes (a training step) stops at once when, say, the
   * disk is full, instead of at its next write.
   */
  check(): void {
    this.#throwFailure();
  }

  /** Waits until every write added is done; throws the first failure. */
  async flush(): Promise<void> {
    await this.#tail;
    this.#throwFailure();
  }

  /** Waits for the writes without throwing (when the caller already failed for another reason). */
  async settle(): Promise<void> {
    await this.#tail;
  }

  #throwFailure(): void {
    if (this.#failure) throw this.#failure;
  }
}
