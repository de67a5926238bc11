/**
 * Decoding images on every core: a pool of decoder processes, each running
 * {@linkcode loadImage} ({@linkcode ./decode_worker.ts}), so the pixels are
 * exactly those of an in-process decode.
 *
 * Why processes: sharp's cost on a small JPEG is mostly per call (libvips
 * pipeline set-up, GObject bookkeeping, allocation), and in one process part
 * of it serialises on process-wide locks and one allocator. On 424 px Kaggle
 * JPEGs, two processes decoded about 1.25 times as many images per second
 * as one process with the same number of images in flight (threads inside
 * one process, sharp's own or Web Workers, share those locks). Images travel
 * in batches, so the pipes cost one message per batch.
 *
 * A decoder that dies (a crash in a native decoder, an OOM kill) is
 * replaced and its batches are sent again one image per batch; an image that
 * was in flight in a second death is reported as failed, so one poisonous
 * file cannot stop a run. A decoder that dies before saying it is ready (it
 * cannot start) makes every pending and later call reject.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { configureSharp, type ImageOptions } from "./image.ts";
import {
  type DecodeItem,
  type DecodeOutcome,
  type DecodeRequest,
  ReplyReader,
} from "./decode_protocol.ts";
import { decodeBatch, Lanes } from "./decode_worker.ts";

export type { DecodeItem, DecodeOutcome } from "./decode_protocol.ts";

/** Options of {@linkcode DecodePool.start}. */
export interface DecodePoolOptions extends ImageOptions {
  /**
   * Decoder processes; 0 decodes in this process. Default: one per core
   * when this process may run subprocesses (`--allow-run`), else 0.
   */
  processes?: number;
  /** Images each decoder works on at once (3; 6 when decoding in this process). */
  lanes?: number;
}

interface Job {
  items: DecodeItem[];
  /** Deaths of a decoder while this job was in flight. */
  deaths: number;
  resolve: (outcomes: DecodeOutcome[]) => void;
  reject: (e: Error) => void;
}

interface Decoder {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  jobs: Map<number, Job>;
  ready: boolean;
  /** Resolves when the decoder has said it is ready, or has exited. */
  started: Promise<void>;
  stderrTail: string[];
  done: Promise<void>;
}

const WORKER = fileURLToPath(new URL("./decode_worker.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Whether this process may start decoder processes. */
export function maySpawnDecoders(): boolean {
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted";
}

/** The default number of decoder processes: one per core, if they may be started. */
export function defaultDecoderProcesses(): number {
  return maySpawnDecoders() ? Math.min(navigator.hardwareConcurrency, 16) : 0;
}

/** Decodes batches of images with {@linkcode loadImage} semantics, in decoder processes or in this one. */
export class DecodePool {
  #decoders: Decoder[] = [];
  #local: Lanes | null = null;
  #nextId = 1;
  #closing = false;
  #fatal: Error | null = null;
  #encoder = new TextEncoder();

  private constructor(
    private readonly o: ImageOptions,
    processes: number,
    private readonly lanes: number,
  ) {
    if (processes === 0) {
      configureSharp();
      this.#local = new Lanes(lanes);
    }
    for (let k = 0; k < processes; k++) this.#decoders.push(this.#spawn());
  }

  /** Starts the decoder processes (none when `processes` is 0). */
  static start(o: DecodePoolOptions): DecodePool {
    const processes = o.processes ?? defaultDecoderProcesses();
    if (!Number.isInteger(processes) || processes < 0 || processes > 64) {
      throw new Error(`decoder processes must be an integer in [0, 64], got ${processes}`);
    }
    const lanes = o.lanes ?? (processes === 0 ? 6 : 3);
    if (!Number.isInteger(lanes) || lanes < 1 || lanes > 64) {
      throw new Error(`images in flight per decoder must be an integer in [1, 64], got ${lanes}`);
    }
    return new DecodePool({ size: o.size, crop: o.crop }, processes, lanes);
  }

  /** Number of decoder processes (0: decoding in this process). */
  get processes(): number {
    return this.#decoders.length;
  }

  /** Process ids of the decoders, for diagnostics and tests. */
  get pids(): number[] {
    return this.#decoders.map((d) => d.child.pid);
  }

  /** Resolves when every current decoder has started (or exited trying). */
  get ready(): Promise<void> {
    return Promise.all(this.#decoders.map((d) => d.started)).then(() => {});
  }

  /** Images the decoders hold now (sent, not yet answered). */
  get held(): number {
    return this.#decoders.reduce((a, d) => a + load(d), 0);
  }

  /**
   * Decodes `items`; one outcome per item, in order, a failed one carrying
   * the reason (without the file name). Rejects only when the decoders
   * cannot run.
   */
  decode(items: DecodeItem[]): Promise<DecodeOutcome[]> {
    if (this.#local) return decodeBatch(items, this.o, this.#local);
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (this.#closing) return Promise.reject(new Error("decode pool is closed"));
    return new Promise((resolve, reject) => this.#dispatch({ items, deaths: 0, resolve, reject }));
  }

  /** Lets the decoders finish what they hold, then waits for them to exit. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#decoders.map(async (d) => {
      await d.stdin.close().catch(() => {});
      await d.done;
    }));
  }

  /** Stops the decoders at once; what they hold is rejected. */
  async kill(): Promise<void> {
    this.#closing = true;
    for (const d of this.#decoders) {
      try {
        d.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await Promise.all(this.#decoders.map((d) => d.done));
  }

  #dispatch(job: Job): void {
    let best = this.#decoders[0];
    for (const d of this.#decoders) if (load(d) < load(best)) best = d;
    const request: DecodeRequest = { id: this.#nextId++, items: job.items };
    best.jobs.set(request.id, job);
    // A failed write means the decoder died; its exit handler sends the job again.
    best.stdin.write(this.#encoder.encode(JSON.stringify(request) + "\n")).catch(() => {});
  }

  #spawn(): Decoder {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        CONFIG,
        "--quiet",
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        WORKER,
        String(this.o.size),
        String(this.o.crop),
        String(this.lanes),
      ],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let started = () => {};
    const d: Decoder = {
      child,
      stdin: child.stdin.getWriter(),
      jobs: new Map(),
      ready: false,
      started: new Promise((resolve) => started = resolve),
      stderrTail: [],
      done: Promise.resolve(),
    };
    const reading = (async () => {
      const reader = new ReplyReader(this.o.size * this.o.size * 3);
      for await (const chunk of child.stdout) {
        for (const m of reader.push(chunk)) {
          if ("ready" in m) {
            d.ready = true;
            started();
            continue;
          }
          const job = d.jobs.get(m.id);
          d.jobs.delete(m.id);
          job?.resolve(m.outcomes);
        }
      }
    })();
    const stderr = (async () => {
      let partial = "";
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        const lines = (partial + text).split("\n");
        partial = lines.pop()!;
        d.stderrTail.push(...lines.filter((l) => l.trim()));
        d.stderrTail.splice(0, Math.max(0, d.stderrTail.length - 20));
      }
      if (partial.trim()) d.stderrTail.push(partial);
    })();
    d.done = child.status.then(async (status) => {
      const [read] = await Promise.allSettled([reading, stderr]);
      if (read.status === "rejected") d.stderrTail.push(String(read.reason));
      started();
      this.#exited(d, status);
    });
    return d;
  }

  #exited(d: Decoder, status: Deno.CommandStatus): void {
    const jobs = [...d.jobs.values()];
    d.jobs.clear();
    if (jobs.length === 0 && this.#closing) return;
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    if (this.#closing || !d.ready) {
      // It could not start (or we are stopping): no point in another.
      const tail = d.stderrTail.slice(-3).join(" | ");
      this.#fatal ??= new Error(
        `image decoder process ${how}${d.ready ? "" : " before it was ready"}` +
          (tail ? `: ${tail}` : ""),
      );
      for (const j of jobs) j.reject(this.#fatal);
      return;
    }
    this.#decoders[this.#decoders.indexOf(d)] = this.#spawn();
    for (const j of jobs) {
      if (j.deaths === 0) {
        // Again, one image per job, so a second death pins down the image.
        const parts = j.items.map((item) =>
          new Promise<DecodeOutcome[]>((resolve, reject) =>
            this.#dispatch({ items: [item], deaths: 1, resolve, reject })
          )
        );
        Promise.all(parts).then((o) => j.resolve(o.flat()), j.reject);
      } else {
        j.resolve([{ ok: false, message: `the image decoder process ${how} while decoding it` }]);
      }
    }
  }
}

/** Images a decoder holds. */
function load(d: Decoder): number {
  let n = 0;
  for (const j of d.jobs.values()) n += j.items.length;
  return n;
}
