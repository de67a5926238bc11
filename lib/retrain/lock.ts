/**
 * The retraining job's lock: one file, `RUNS/retrain.lock`, created with
 * O_EXCL semantics (`Deno.open({ createNew: true })`) and holding who made
 * it ({@linkcode LockInfo}). While the job runs it also keeps an exclusive
 * `flock(2)` on the file, which the kernel drops when the process dies, even
 * by SIGKILL.
 *
 * A lock file that already exists belongs to a live run when either
 * - its `flock` is held: true across PID namespaces, so it also works when
 *   each nightly run is a new Docker container (each with its own host name
 *   and PIDs) sharing the runs folder on the same machine; or
 * - it names this host and a process that is still alive here (`/proc/<pid>`
 *   exists and, when recorded, started at the same time, so a reused PID is
 *   not mistaken for the old run).
 *
 * Otherwise it is stale (left by a killed run) and is taken over: the file
 * is unlinked while holding its `flock`, after checking that the path still
 * names the inode inspected, so two runs taking over at once cannot both win.
 *
 * @module
 */

/** What a lock file records about the run holding it. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the run started. */
  startedAt: string;
  /** Start time of the process in clock ticks since boot (Linux `/proc/<pid>/stat` field 22). */
  processStart?: number | null;
}

/** A lock this process holds; {@linkcode RetrainLock.release} gives it up. */
export interface RetrainLock {
  path: string;
  info: LockInfo;
  /** The stale lock this one replaced (`info` null when its record was unreadable), if any. */
  tookOver: { info: LockInfo | null } | null;
  /** Removes the lock file (when it is still ours) and drops the flock. Idempotent. */
  release(): void;
}

/** Outcome of {@linkcode acquireLock}: held, or busy with who holds it. */
export type LockResult =
  | { held: RetrainLock }
  | { busy: LockInfo | null; why: string };

/** Seconds an unreadable lock file is presumed to be in the middle of being written. */
const WRITING_GRACE_SECONDS = 60;

/** The host name recorded in a lock; `unknown` when it cannot be read. */
export function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** Start time of process `pid` in clock ticks since boot, or null where /proc cannot tell. */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/**
 * Whether process `pid` is alive on this host: `/proc/<pid>` exists (and, if
 * `startTicks` is given and readable, the process started then). Without
 * /proc, `kill -0` decides; when nothing can tell, the answer is yes (a live
 * run is never taken over on a guess).
 */
export function processAlive(pid: number, startTicks?: number | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let hasProc = false;
  try {
    hasProc = Deno.statSync("/proc/self").isDirectory;
  } catch {
    // no /proc: fall through to kill -0
  }
  if (hasProc) {
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      return false;
    }
    if (startTicks === undefined || startTicks === null) return true;
    const now = processStartTicks(pid);
    return now === null || now === startTicks;
  }
  try {
    return new Deno.Command("kill", { args: ["-0", String(pid)], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return true;
  }
}

/** Parses a lock file's text, or null when it is not a complete lock record. */
export function parseLockInfo(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text);
    if (
      v && Number.isInteger(v.pid) && typeof v.host === "string" && typeof v.startedAt === "string"
    ) {
      return v as LockInfo;
    }
  } catch {
    // fall through
  }
  return null;
}

/** The lock record of this process, started now. */
export function ownLockInfo(now = new Date()): LockInfo {
  return {
    pid: Deno.pid,
    host: hostName(),
    startedAt: now.toISOString(),
    processStart: processStartTicks(Deno.pid),
  };
}

/** One line naming a lock's holder, e.g. for the "already running" message. */
export function describeLock(info: LockInfo | null, now = new Date()): string {
  if (!info) return "a run whose lock record is still being written";
  const started = new Date(info.startedAt);
  const minutes = Math.max(0, Math.round((now.getTime() - started.getTime()) / 60000));
  return `pid ${info.pid} on host ${info.host}, started ${info.startedAt} (${minutes} min ago)`;
}

async function readAll(file: Deno.FsFile): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(out);
}

type Inspection =
  | { state: "held"; info: LockInfo | null; why: string }
  | { state: "stale"; info: LockInfo | null }
  | { state: "gone" };

/** Decides whether the existing lock file at `path` is live, and removes it if stale. */
async function inspect(path: string, host: string): Promise<Inspection> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "gone" };
    throw new Error(`cannot open the lock ${path}: ${(e as Error).message}`);
  }
  try {
    const locked = !(await file.tryLock(true));
    const info = parseLockInfo(await readAll(file));
    if (locked) return { state: "held", info, why: "its holder keeps it locked" };
    if (!info) {
      const st = await file.stat();
      const age = (Date.now() - (st.mtime?.getTime() ?? 0)) / 1000;
      if (age < WRITING_GRACE_SECONDS) {
        return { state: "held", info: null, why: "it is being written" };
      }
    } else if (info.host === host && processAlive(info.pid, info.processStart)) {
      return { state: "held", info, why: `process ${info.pid} is alive on this host` };
    }
    // Stale. Unlink it only if the path still names the file inspected (held by our flock).
    const [onPath, ours] = await Promise.all([Deno.stat(path).catch(() => null), file.stat()]);
    if (!onPath || onPath.ino !== ours.ino) return { state: "gone" };
    await Deno.remove(path);
    return { state: "stale", info };
  } finally {
    file.close();
  }
}

/**
 * Takes the lock at `path`, replacing a stale one; returns who holds it when
 * it is live. `info` defaults to this process, now.
 */
export async function acquireLock(
  path: string,
  info: LockInfo = ownLockInfo(),
): Promise<LockResult> {
  let tookOver: RetrainLock["tookOver"] = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { createNew: true, write: true, read: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) {
        throw new Error(`cannot create the lock ${path}: ${(e as Error).message}`);
      }
      const seen = await inspect(path, info.host);
      if (seen.state === "held") return { busy: seen.info, why: seen.why };
      if (seen.state === "stale") tookOver = { info: seen.info };
      continue;
    }
    try {
      // Blocking: another run may hold it for a moment while inspecting the new file.
      await file.lock(true);
      const bytes = new TextEncoder().encode(JSON.stringify(info) + "\n");
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } catch (e) {
      file.close();
      await Deno.remove(path).catch(() => {});
      throw e;
    }
    const ino = (await file.stat()).ino;
    let released = false;
    return {
      held: {
        path,
        info,
        tookOver,
        release() {
          if (released) return;
          released = true;
          try {
            // Never remove a lock file that is no longer ours (e.g. deleted by hand and retaken).
            if (Deno.statSync(path).ino === ino) Deno.removeSync(path);
          } catch {
            // already gone
          }
          file.close();
        },
      },
    };
  }
  throw new Error(`could not take the lock ${path}: it kept changing (another run starting?)`);
}
