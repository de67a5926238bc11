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
 * replaced, and the images it held become suspects: a quarantine decoder
 * takes them one at a time, alone. An image whose quarantine decoder dies
 * is reported as failed (it was the only one in flight), so one poisonous
 * file costs only itself. A decoder that dies before saying it is ready (it
 * cannot start) makes every pending and later call reject.
 *
 * Nothing waits forever: a decoder that has not said it is ready within
 * `startSeconds`, or that holds images and has answered nothing for
 * `deadlineSeconds` (an image on a hung network mount, a FIFO), is killed
 * and dealt with as one that died; a quarantined image that outlasts it is
 * reported as failed. So every {@linkcode DecodePool.decode} settles.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { configureSharp, DEFAULT_FITS_STRETCH, type LoadOptions } from "./image.ts";
import {
  type DecodeItem,
  type DecodeOutcome,
  type DecodeRequest,
  ReplyReader,
} from "./decode_protocol.ts";
import { decodeBatch, Lanes } from "./decode_worker.ts";
import { keepLastLines } from "../io/lines.ts";

export type { DecodeItem, DecodeOutcome } from "./decode_protocol.ts";

/** Options of {@linkcode DecodePool.start}. */
export interface DecodePoolOptions extends LoadOptions {
  /**
   * Decoder processes; 0 decodes in this process. Default: one per core
   * when this process may run subprocesses (`--allow-run`), else 0.
   */
  processes?: number;
  /** Images each decoder works on at once (3; 6 when decoding in this process). */
  lanes?: number;
  /**
   * Seconds a decoder that holds images may go without answering anything
   * before it is killed as hung (120).
   */
  deadlineSeconds?: number;
  /** Seconds a decoder may take to start (load its modules and sharp) before it is killed (120). */
  startSeconds?: number;
}

/** Default of {@linkcode DecodePoolOptions.deadlineSeconds} and `startSeconds`. */
export const DECODER_DEADLINE_SECONDS = 120;

interface Job {
  items: DecodeItem[];
  resolve: (outcomes: DecodeOutcome[]) => void;
  reject: (e: Error) => void;
}

interface Decoder {
  child: Deno.ChildProcess;
  /** Takes suspects one at a time. */
  quarantine: boolean;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  jobs: Map<number, Job>;
  ready: boolean;
  alive: boolean;
  /** Resolves when the decoder has said it is ready, or has exited. */
  started: Promise<void>;
  stderrTail: string[];
  /** Resolves when the decoder has exited and its jobs are dealt with. */
  done: Promise<void>;
  /** Fires when the decoder has been silent too long (see `deadlineSeconds`). */
  watchdog?: ReturnType<typeof setTimeout>;
  /** Set when the watchdog killed it: why. */
  hung: string | null;
}

/** Whether this process may start decoder processes. */
export function maySpawnDecoders(): boolean {
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted";
}

/** The default number of decoder processes: one per core, if they may be started. */
export function defaultDecoderProcesses(): number {
  return maySpawnDecoders() ? Math.min(navigator.hardwareConcurrency, 16) : 0;
}

/**
 * `processes` and `lanes` with their defaults filled in, checked (the
 * messages name the preprocess flags that set them).
 */
export function decodeSettings(
  o: Pick<DecodePoolOptions, "processes" | "lanes">,
): { processes: number; lanes: number } {
  const processes = o.processes ?? defaultDecoderProcesses();
  if (!Number.isInteger(processes) || processes < 0 || processes > 64) {
    throw new Error(
      `--processes (decoder processes) must be an integer in [0, 64], got ${processes}`,
    );
  }
  const lanes = o.lanes ?? (processes === 0 ? 6 : 3);
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 64) {
    throw new Error(
      `--concurrency (images in flight per decoder) must be an integer in [1, 64], got ${lanes}`,
    );
  }
  return { processes, lanes };
}

/** Decodes batches of images with {@linkcode loadImage} semantics, in decoder processes or in this one. */
export class DecodePool {
  #decoders: Decoder[] = [];
  #quarantine: Decoder | null = null;
  #suspects: Job[] = [];
  #local: Lanes | null = null;
  #nextId = 1;
  #closing = false;
  #fatal: Error | null = null;
  #encoder = new TextEncoder();

  /** Every decoder process, the quarantine decoder included. */
  get #all(): Decoder[] {
    return this.#quarantine ? [...this.#decoders, this.#quarantine] : this.#decoders;
  }

  private constructor(
    private readonly o: LoadOptions,
    processes: number,
    private readonly lanes: number,
    private readonly deadlines: { answerMs: number; startMs: number },
  ) {
    if (processes === 0) {
      configureSharp();
      this.#local = new Lanes(lanes);
    }
    try {
      for (let k = 0; k < processes; k++) this.#decoders.push(this.#spawn(false));
    } catch (e) {
      for (const d of this.#decoders) stop(d);
      throw e;
    }
  }

  /** Starts the decoder processes (none when `processes` is 0). */
  static start(o: DecodePoolOptions): DecodePool {
    const { processes, lanes } = decodeSettings(o);
    const deadline = o.deadlineSeconds ?? DECODER_DEADLINE_SECONDS;
    const start = o.startSeconds ?? DECODER_DEADLINE_SECONDS;
    if (!(deadline > 0)) throw new Error(`deadlineSeconds must be positive, got ${deadline}`);
    if (!(start > 0)) throw new Error(`startSeconds must be positive, got ${start}`);
    return new DecodePool({ size: o.size, crop: o.crop, stretch: o.stretch }, processes, lanes, {
      answerMs: deadline * 1000,
      startMs: start * 1000,
    });
  }

  /** Number of decoder processes (0: decoding in this process), not counting quarantine. */
  get processes(): number {
    return this.#decoders.length;
  }

  /** Process ids of the decoders (not the quarantine decoder), for diagnostics and tests. */
  get pids(): number[] {
    return this.#decoders.map((d) => d.child.pid);
  }

  /** Process id of the quarantine decoder, while there is one. */
  get quarantinePid(): number | null {
    return this.#quarantine?.alive ? this.#quarantine.child.pid : null;
  }

  /** Name of the image the quarantine decoder holds, while it holds one. */
  get quarantined(): string | null {
    const q = this.#quarantine;
    if (!q?.alive) return null;
    for (const j of q.jobs.values()) return j.items[0]?.name ?? null;
    return null;
  }

  /** Resolves when every current decoder has started (or exited trying). */
  get ready(): Promise<void> {
    return Promise.all(this.#all.map((d) => d.started)).then(() => {});
  }

  /** Images sent to decoders and not yet answered (suspects waiting for quarantine are not). */
  get held(): number {
    return this.#all.reduce((a, d) => a + load(d), 0);
  }

  /**
   * Decodes `items`; one outcome per item, in order, a failed one carrying
   * the reason (without the file name). Rejects only when the decoders
   * cannot run.
   */
  decode(items: DecodeItem[]): Promise<DecodeOutcome[]> {
    if (this.#local) return decodeBatch(items, this.o, this.#local);
    if (this.#closing) return Promise.reject(new Error("decode pool is closed"));
    return new Promise((resolve, reject) => this.#dispatch({ items, resolve, reject }));
  }

  /**
   * Lets the decoders finish what they hold, then waits for them to exit.
   * Meant for when no call is pending; suspects still waiting for
   * quarantine are rejected.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#all.map(async (d) => {
      await d.stdin.close().catch(() => {});
      await d.done;
    }));
    this.#failAll(this.#suspects.splice(0), new Error("decode pool was closed"));
  }

  /** Stops the decoders at once; what they hold is rejected. */
  async kill(): Promise<void> {
    this.#closing = true;
    const all = this.#all;
    for (const d of all) stop(d);
    await Promise.all(all.map((d) => d.done));
    this.#failAll(this.#suspects.splice(0), new Error("decode pool was stopped"));
  }

  #dispatch(job: Job): void {
    if (this.#fatal) return job.reject(this.#fatal);
    let best: Decoder | null = null;
    for (const d of this.#decoders) {
      if (d.alive && (best === null || load(d) < load(best))) best = d;
    }
    if (!best) return job.reject(new Error("no image decoder process is running"));
    this.#send(best, job);
  }

  #send(d: Decoder, job: Job): void {
    const request: DecodeRequest = { id: this.#nextId++, items: job.items };
    d.jobs.set(request.id, job);
    if (d.ready && d.jobs.size === 1) this.#watch(d);
    // A failed write means the decoder died; its exit handler deals with the job.
    d.stdin.write(this.#encoder.encode(JSON.stringify(request) + "\n")).catch(() => {});
  }

  /**
   * (Re)arms the watchdog of `d`: while it is starting, or holds images, it
   * must say something within its deadline, or it is killed as hung.
   */
  #watch(d: Decoder): void {
    clearTimeout(d.watchdog);
    d.watchdog = undefined;
    if (!d.alive || (d.ready && d.jobs.size === 0)) return;
    const ms = d.ready ? this.deadlines.answerMs : this.deadlines.startMs;
    d.watchdog = setTimeout(() => {
      d.watchdog = undefined;
      d.hung = d.ready
        ? `answered nothing for ${ms / 1000} s`
        : `did not start within ${ms / 1000} s`;
      stop(d);
    }, ms);
  }

  /** Sends the next suspect to the quarantine decoder when it holds none. */
  #pumpSuspects(): void {
    if (this.#fatal) return this.#failAll(this.#suspects.splice(0), this.#fatal);
    if (this.#closing) {
      // No new decoder once closing: one would be left running.
      return this.#failAll(this.#suspects.splice(0), new Error("decode pool was stopped"));
    }
    if (this.#suspects.length === 0) return;
    if (!this.#quarantine?.alive) this.#quarantine = this.#spawn(true);
    if (this.#quarantine.jobs.size === 0) this.#send(this.#quarantine, this.#suspects.shift()!);
  }

  #spawn(quarantine: boolean): Decoder {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        fileURLToPath(new URL("../../deno.json", import.meta.url)),
        "--quiet",
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        fileURLToPath(new URL("./decode_worker.ts", import.meta.url)),
        String(this.o.size),
        String(this.o.crop),
        String(quarantine ? 1 : this.lanes),
        JSON.stringify(this.o.stretch ?? DEFAULT_FITS_STRETCH),
      ],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let started = () => {};
    const d: Decoder = {
      child,
      quarantine,
      stdin: child.stdin.getWriter(),
      jobs: new Map(),
      ready: false,
      alive: true,
      started: new Promise((resolve) => started = resolve),
      stderrTail: [],
      done: Promise.resolve(),
      hung: null,
    };
    this.#watch(d);
    const reading = (async () => {
      const reader = new ReplyReader(this.o.size * this.o.size * 3);
      for await (const chunk of child.stdout) {
        for (const m of reader.push(chunk)) {
          if ("ready" in m) {
            d.ready = true;
            started();
            this.#watch(d);
            continue;
          }
          const job = d.jobs.get(m.id);
          d.jobs.delete(m.id);
          this.#watch(d);
          job?.resolve(m.outcomes);
          if (quarantine) this.#pumpSuspects();
        }
      }
    })().catch((e) => {
      // Out of step (or unreadable): treat the decoder as dead.
      d.stderrTail.push(`reading its replies failed: ${e instanceof Error ? e.message : e}`);
      stop(d);
    });
    const stderr = keepLastLines(child.stderr, d.stderrTail).catch(() => {});
    d.done = child.status.then(async (status) => {
      await Promise.all([reading, stderr]);
      d.alive = false;
      clearTimeout(d.watchdog);
      started();
      try {
        this.#exited(d, status);
      } catch (e) {
        // Replacing it failed (e.g. spawning): nothing more can be decoded.
        this.#fatal ??= e instanceof Error ? e : new Error(String(e));
        this.#failAll(this.#suspects.splice(0), this.#fatal);
      }
    });
    return d;
  }

  /** Settles or re-queues what a decoder held when it exited (any job left would hang). */
  #exited(d: Decoder, status: Deno.CommandStatus): void {
    const jobs = [...d.jobs.values()];
    d.jobs.clear();
    if (jobs.length === 0 && this.#closing) return;
    const how = d.hung
      ? `was stopped: it ${d.hung}`
      : status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    if (this.#closing || !d.ready || this.#fatal) {
      // It could not start (or we are stopping): no point in another.
      const tail = d.stderrTail.slice(-3).join(" | ");
      this.#fatal ??= new Error(
        `image decoder process ${how}${d.ready || d.hung ? "" : " before it was ready"}` +
          (tail ? `: ${tail}` : ""),
      );
      // Suspects wait for a quarantine decoder that will not come.
      this.#failAll([...jobs, ...this.#suspects.splice(0)], this.#fatal);
      return;
    }
    if (d.quarantine) {
      // It held one image alone: that image killed it.
      for (const j of jobs) {
        j.resolve([{ ok: false, message: `the image decoder process ${how} while decoding it` }]);
      }
      this.#pumpSuspects();
      return;
    }
    // Suspects first, so that a failure to spawn below fails them too.
    for (const j of jobs) {
      const parts = j.items.map((item) =>
        new Promise<DecodeOutcome[]>((resolve, reject) =>
          this.#suspects.push({ items: [item], resolve, reject })
        )
      );
      Promise.all(parts).then((o) => j.resolve(o.flat()), j.reject);
    }
    this.#decoders[this.#decoders.indexOf(d)] = this.#spawn(false);
    this.#pumpSuspects();
  }

  #failAll(jobs: Job[], e: Error): void {
    for (const j of jobs) j.reject(e);
  }
}

/** Images a decoder holds. */
function load(d: Decoder): number {
  let n = 0;
  for (const j of d.jobs.values()) n += j.items.length;
  return n;
}

/** Kills a decoder process; a no-op once it has gone. */
function stop(d: Decoder): void {
  try {
    d.child.kill("SIGKILL");
  } catch { /* already gone */ }
}
