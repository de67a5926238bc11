/**
 * Peak resident memory of a child process and of everything it spawns,
 * measured from outside the process (Linux `/proc`).
 *
 * How: every `intervalMs` (50 ms) the sampler lists the process tree under
 * the root pid (parents are read from `/proc/<pid>/stat`, as this kernel
 * may lack `/proc/<pid>/task/<tid>/children`) and reads each process's
 * `VmHWM` (the kernel's high-water mark of its resident set) and `VmRSS`
 * from `/proc/<pid>/status`, keeping the last value read per pid. Since
 * `VmHWM` only grows, the last read is the process's peak up to that read;
 * only growth in the final interval before exit can be missed, and the
 * harness closes that gap with GNU time's `%M` (the kernel's `ru_maxrss`,
 * exact at exit) where `/usr/bin/time` exists (see lib/bench/process.ts).
 *
 * For a tree of processes the reported peak is the sum of the processes'
 * peaks: an upper bound of the tree's true simultaneous peak (exact for a
 * single process; for workers that run side by side all their lives, such
 * as a multiprocessing pool, it is close). The largest simultaneous sum of
 * `VmRSS` seen in one poll is kept too, as the lower bound.
 *
 * @module
 */

/** Memory figures of one process from `/proc/<pid>/status`, in KiB. */
export interface ProcMemory {
  /** Peak resident set size (`VmHWM`). */
  hwmKiB: number;
  /** Current resident set size (`VmRSS`). */
  rssKiB: number;
}

/**
 * Parses `VmHWM` and `VmRSS` out of the text of `/proc/<pid>/status`; null
 * when they are absent (a zombie or kernel thread has no memory lines).
 */
export function parseStatusMemory(text: string): ProcMemory | null {
  const hwm = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
  const rss = /^VmRSS:\s+(\d+)\s+kB$/m.exec(text);
  if (!hwm || !rss) return null;
  return { hwmKiB: Number(hwm[1]), rssKiB: Number(rss[1]) };
}

/** Reads a process's memory figures; null when it has gone or has none. */
export function readProcMemory(pid: number): ProcMemory | null {
  try {
    return parseStatusMemory(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return null;
  }
}

/**
 * Parent pid from the text of `/proc/<pid>/stat`. The command name (field
 * 2) is in parentheses and may itself hold spaces and parentheses, so the
 * fields are counted from the last `)`.
 */
export function parseStatParent(text: string): number | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is the state, fields[1] the parent pid.
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** Every live process's parent, read from `/proc/<pid>/stat`. */
export function readParents(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const ppid = parseStatParent(Deno.readTextFileSync(`/proc/${e.name}/stat`));
      if (ppid !== null) parents.set(Number(e.name), ppid);
    } catch {
      // exited while we listed
    }
  }
  return parents;
}

/** `root` and all its descendants, given a pid -> parent map. */
export function descendants(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** What {@linkcode RssSampler.stop} reports. */
export interface RssReport {
  /** Sum over every process seen of its last `VmHWM` read, KiB (see the module doc). */
  treePeakKiB: number;
  /** Largest sum of `VmRSS` over the tree in one poll, KiB. */
  concurrentPeakKiB: number;
  /** Last `VmHWM` read per process, KiB. */
  perProcessKiB: Record<string, number>;
  /** Polls taken. */
  polls: number;
}

/**
 * Polls the memory of a process tree until stopped. Pids in `exclude` (a
 * wrapper such as GNU time) are walked through but not counted.
 */
export class RssSampler {
  #hwm = new Map<number, number>();
  #concurrent = 0;
  #polls = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly root: number,
    readonly options: { intervalMs?: number; exclude?: ReadonlySet<number> } = {},
  ) {}

  /** Takes one reading of the whole tree now. */
  poll(): void {
    const pids = descendants(this.root, readParents());
    let rss = 0;
    for (const pid of pids) {
      if (this.options.exclude?.has(pid)) continue;
      const m = readProcMemory(pid);
      if (!m) continue;
      rss += m.rssKiB;
      this.#hwm.set(pid, Math.max(this.#hwm.get(pid) ?? 0, m.hwmKiB));
    }
    this.#concurrent = Math.max(this.#concurrent, rss);
    this.#polls++;
  }

  /** Starts polling every `intervalMs` (default 50). */
  start(): this {
    this.poll();
    this.#timer = setInterval(() => this.poll(), this.options.intervalMs ?? 50);
    return this;
  }

  /** Stops polling and reports. */
  stop(): RssReport {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    let sum = 0;
    const perProcessKiB: Record<string, number> = {};
    for (const [pid, kib] of this.#hwm) {
      sum += kib;
      perProcessKiB[String(pid)] = kib;
    }
    return {
      treePeakKiB: sum,
      concurrentPeakKiB: this.#concurrent,
      perProcessKiB,
      polls: this.#polls,
    };
  }
}
