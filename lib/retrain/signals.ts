/**
 * SIGINT and SIGTERM during a retraining run: say so, then end the run as
 * failed (the candidate deleted, the log line written, the lock released)
 * and exit 1. While replica processes train, the launcher stops them first
 * (3 s grace, then SIGKILL) and training rejects; the handler waits up to
 * {@linkcode REPLICA_GRACE_MS} for that before ending the run itself.
 *
 * @module
 */

/** How long a signal waits for the replicas to stop before the run ends anyway. */
export const REPLICA_GRACE_MS = 8000;

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Watches for SIGINT/SIGTERM over a run; {@linkcode dispose} stops watching. */
export class Interruption {
  /** The signal that arrived, or null. */
  signal: Deno.Signal | null = null;
  #replicasRunning = false;
  #fallback: ReturnType<typeof setTimeout> | undefined;
  #handlers: [Deno.Signal, () => void][] = [];

  /**
   * `stop` ends the run for good (synchronously, then exits); `listen`
   * false only records nothing (library use and tests: no handlers).
   */
  constructor(
    private readonly o: {
      listen: boolean;
      log: (line: string) => void;
      what: string;
      stop: () => void;
    },
  ) {
    if (!o.listen) return;
    for (const sig of SIGNALS) {
      const handler = () => this.#arrived(sig);
      this.#handlers.push([sig, handler]);
      Deno.addSignalListener(sig, handler);
    }
  }

  #arrived(sig: Deno.Signal): void {
    if (this.signal) return;
    this.signal = sig;
    this.o.log(`${sig}: stopping; ${this.o.what}`);
    if (this.#replicasRunning) this.#fallback = setTimeout(this.o.stop, REPLICA_GRACE_MS);
    else this.o.stop();
  }

  /** Runs `work`; while it runs with `replicas` true, a signal waits for the replicas to stop. */
  async whileTraining<T>(replicas: boolean, work: () => Promise<T>): Promise<T> {
    this.#replicasRunning = replicas;
    try {
      return await work();
    } finally {
      this.#replicasRunning = false;
    }
  }

  /** Throws `interrupted by SIGNAL` when a signal has arrived. */
  check(): void {
    if (this.signal) throw new Error(`interrupted by ${this.signal}`);
  }

  /** Stops watching (and cancels a pending fallback). */
  dispose(): void {
    clearTimeout(this.#fallback);
    for (const [sig, h] of this.#handlers) Deno.removeSignalListener(sig, h);
    this.#handlers = [];
  }
}
