/**
 * A lock file that one process at a time holds: the retraining job's
 * `RUNS/retrain.lock`, and a run folder's `run.lock` while `train` writes
 * it (lib/run/lock.ts). The file is created with
 * O_EXCL semantics (`Deno.open({ createNew: true })`) and holding who made
 * it ({@linkcode LockInfo}). While the job runs it also keeps an exclusive
 * `flock(2)` on the file ({@linkcode Deno.FsFile.lock}), which the kernel
 * drops when the process dies, even by SIGKILL.
 *
 * Whether a lock file that already exists belongs to a live run is decided
 * by {@linkcode judgeLock}:
 * - where its `flock` can be tried, the flock is the truth: held means a live
 *   run (true across PID namespaces, so it also works when each nightly run
 *   is a new Docker container sharing the runs folder on the same machine);
 *   free means its holder is gone, whatever process now has its PID (a PID
 *   is reused after a reboot, and is often 1 in a container with a fixed
 *   host name). The PID is not consulted: under `deno task retrain`'s
 *   permissions Deno cannot read `/proc/<pid>/stat`, so a reused PID could
 *   not be told from the old run, and the job would stop for good;
 * - only where flock is not supported (the file system refuses it), or the
 *   holder recorded that it could not take it, does the PID decide: the lock
 *   is live when it names this host and a process alive here.
 *
 * A stale lock is taken over: the file is unlinked while holding its
 * `flock`, after checking that the path still names the inode inspected,
 * so two runs taking over at once cannot both win.
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
  /**
   * Whether the holder keeps a `flock` on the file. False where the file
   * system refused it; absent in older records, whose writers always held it.
   */
  flock?: boolean;
}

/** A lock this process holds; {@linkcode RetrainLock.release} gives it up. */
export interface RetrainLock {
  /** The lock file. */
  path: string;
  /** The record written in it (this process). */
  info: LockInfo;
  /** The stale lock this one replaced (`info` null when its record was unreadable) and why it was stale. */
  tookOver: { info: LockInfo | null; why: string } | null;
  /** Removes the lock file (when it is still ours) and drops the flock. Idempotent. */
  release(): void;
}

/** Outcome of {@linkcode acquireLock}: held, or busy with who holds it. */
export type LockResult =
  | { held: RetrainLock }
  | { busy: LockInfo | null; why: string };

/** Seconds an unreadable lock file is presumed to be in the middle of being written. */
const WRITING_GRACE_SECONDS = 60;

/** Seconds a new lock waits for an inspecting run to let go of its flock. */
const FLOCK_WAIT_SECONDS = 10;

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
 * `startTicks` is given and readable, the process started then). Where Deno
 * may not read /proc (without `--allow-all`), `kill -0` decides ("not
 * permitted" means it exists); when nothing can tell, the answer is yes (a
 * live run is never taken over on a guess). Only used where flock is not
 * supported (see the module doc).
 */
export function processAlive(pid: number, startTicks?: number | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let hasProc = false;
  try {
    hasProc = Deno.statSync("/proc/self").isDirectory;
  } catch {
    // no /proc, or not readable with these permissions: fall through to kill -0
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
    const out = new Deno.Command("kill", {
      args: ["-0", String(pid)],
      stdout: "null",
      stderr: "piped",
    })
      .outputSync();
    if (out.success) return true;
    return !/no such process/i.test(new TextDecoder().decode(out.stderr));
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

/** What is known of an existing lock file, for {@linkcode judgeLock}. */
export interface LockEvidence {
  /** Whether another process holds its flock; null where flock is not supported. */
  flockHeld: boolean | null;
  /** Its record, or null when unreadable (still being written, or cut short). */
  info: LockInfo | null;
  /** Seconds since the file was last modified. */
  ageSeconds: number;
  /** This host's name. */
  host: string;
  /** Whether process `pid` (started at `start`, when known) is alive on this host. */
  alive: (pid: number, start?: number | null) => boolean;
}

/** The verdict on an existing lock file: live (with why) or stale. */
export type LockVerdict = { live: true; why: string } | { live: false; why: string };

/** Decides whether an existing lock belongs to a live run; see the module doc for the rule. */
export function judgeLock(e: LockEvidence): LockVerdict {
  if (e.flockHeld) return { live: true, why: "its holder keeps it locked" };
  if (!e.info) {
    // The creator writes its record right after creating the file.
    return e.ageSeconds < WRITING_GRACE_SECONDS
      ? { live: true, why: "it is being written" }
      : { live: false, why: "its record is unreadable and nobody holds it" };
  }
  if (e.flockHeld === false && e.info.flock !== false) {
    return { live: false, why: "nobody holds its flock: its run has ended" };
  }
  // No flock to go by: the PID decides.
  if (e.info.host === e.host && e.alive(e.info.pid, e.info.processStart)) {
    return { live: true, why: `process ${e.info.pid} is alive on this host (no flock to go by)` };
  }
  return { live: false, why: `process ${e.info.pid} is not alive on this host` };
}

/** Tries an exclusive flock on `file`: taken, held by another, or null where unsupported. */
async function tryFlock(file: Deno.FsFile): Promise<boolean | null> {
  try {
    return await file.tryLock(true);
  } catch {
    // ENOLCK, EOPNOTSUPP...: this file system does not do flock.
    return null;
  }
}

type Inspection =
  | { state: "held"; info: LockInfo | null; why: string }
  | { state: "stale"; info: LockInfo | null; why: string }
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
    const taken = await tryFlock(file);
    const info = parseLockInfo(await readAll(file));
    const st = await file.stat();
    const verdict = judgeLock({
      flockHeld: taken === null ? null : !taken,
      info,
      ageSeconds: (Date.now() - (st.mtime?.getTime() ?? 0)) / 1000,
      host,
      alive: processAlive,
    });
    if (verdict.live) return { state: "held", info, why: verdict.why };
    // Stale. Unlink it only if the path still names the file inspected (held by our flock).
    const onPath = await Deno.stat(path).catch(() => null);
    if (!onPath || onPath.ino !== st.ino) return { state: "gone" };
    await Deno.remove(path);
    return { state: "stale", info, why: verdict.why };
  } finally {
    file.close();
  }
}

/** Takes the flock of a lock just created, waiting (bounded) for an inspector; false if unsupported. */
async function flockNew(file: Deno.FsFile, path: string): Promise<boolean> {
  const end = Date.now() + FLOCK_WAIT_SECONDS * 1000;
  for (;;) {
    const taken = await tryFlock(file);
    if (taken === null) return false;
    if (taken) return true;
    // Another run holds it for a moment while inspecting the new file.
    if (Date.now() > end) {
      throw new Error(
        `the new lock ${path} stayed locked by another process for ${FLOCK_WAIT_SECONDS} s`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
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
      if (seen.state === "stale") tookOver = { info: seen.info, why: seen.why };
      continue;
    }
    try {
      info = { ...info, flock: await flockNew(file, path) };
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
