import assert from "node:assert/strict";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { writeSyntheticKaggle } from "../lib/data/synthetic.ts";
import { loadModel } from "../lib/io/model_io.ts";
import { fingerprintInputs } from "../lib/retrain/fingerprint.ts";
import {
  DATASETS_DIR,
  listRuns,
  newRunName,
  pruneDatasets,
  pruneRuns,
} from "../lib/retrain/keep.ts";
import { acquireLock, hostName, judgeLock, type LockInfo, parseLockInfo } from "../lib/io/lock.ts";
import { readRunConfig } from "../lib/run/config.ts";
import { readLog } from "../lib/retrain/log.ts";
import { atLeastAsGood, promote, readCurrent } from "../lib/retrain/promote.ts";
import { LOCK_FILE, retrain, type RetrainOptions } from "../lib/retrain/retrain.ts";
import { readState } from "../lib/retrain/state.ts";
import { deadlineTest, withDeadline } from "./deadline.ts";
import { encodeImage } from "./fixtures_images.ts";
import { runTask, taskCommandLine } from "./task_cli.ts";

await setupBackend();

const CLI = new URL("../tasks/retrain.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
/** Those of `deno task retrain`. */
const PERMISSIONS = taskCommandLine("retrain").permissions;

/** Runs the retrain CLI as `deno task retrain` does. */
function runCli(args: string[]): Promise<Deno.CommandOutput> {
  return runTask("retrain", args, { seconds: 600 });
}

const temps: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const d of temps) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch {
      // already gone
    }
  }
});

/** A temporary folder, deleted when the test process ends. */
async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  temps.push(dir);
  return dir;
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function writeLock(path: string, info: LockInfo): Promise<string> {
  const text = JSON.stringify(info) + "\n";
  await Deno.writeTextFile(path, text);
  return text;
}

// ----------------------------------------------------------------- the lock

/** A live process unrelated to any run (`sleep`), killed when `body` ends. */
async function withUnrelatedProcess<T>(body: (pid: number) => Promise<T>): Promise<T> {
  const child = new Deno.Command("sleep", { args: ["600"], stdout: "null", stderr: "null" })
    .spawn();
  try {
    return await body(child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

deadlineTest(
  "lock: with no flock held, a lock naming a live unrelated pid on this host is taken over; so is a dead one",
  60,
  async () => {
    const dir = await tempDir("galaxy-lock-");
    const path = join(dir, LOCK_FILE);
    // A killed run's lock whose pid now belongs to another live process (a reboot, pid 1 in a container).
    await withUnrelatedProcess(async (pid) => {
      await writeLock(path, { pid, host: hostName(), startedAt: "2024-01-01T00:00:00.000Z" });
      const got = await acquireLock(path);
      assert.ok("held" in got, "busy" in got ? got.why : "");
      assert.equal(got.held.tookOver?.info?.pid, pid);
      assert.match(got.held.tookOver!.why, /nobody holds its flock/);
      const record = parseLockInfo(await Deno.readTextFile(path));
      assert.equal(record?.pid, Deno.pid);
      assert.equal(record?.flock, true, "the record says its holder keeps the flock");
      got.held.release();
      assert.equal(await exists(path), false);
    });
    const dead = await deadPid();
    await writeLock(path, { pid: dead, host: hostName(), startedAt: "2024-01-01T00:00:00.000Z" });
    const got = await acquireLock(path);
    assert.ok("held" in got);
    assert.equal(got.held.tookOver?.info?.pid, dead);
    got.held.release();
  },
);

Deno.test("lock: the pid decides only where flock is not supported, or its holder had none", () => {
  const info = (pid: number, o: Partial<LockInfo> = {}): LockInfo => ({
    pid,
    host: "here",
    startedAt: "2024-01-01T00:00:00.000Z",
    ...o,
  });
  const alive = (pid: number) => pid === 42;
  const judge = (flockHeld: boolean | null, i: LockInfo | null, ageSeconds = 3600) =>
    judgeLock({ flockHeld, info: i, ageSeconds, host: "here", alive });
  // flock held: live, whatever the record says.
  assert.equal(judge(true, info(7, { host: "elsewhere" })).live, true);
  assert.equal(judge(true, null).live, true);
  // flock free: stale, even with a live pid here (the pid may have been reused).
  assert.equal(judge(false, info(42)).live, false);
  assert.equal(judge(false, info(42, { flock: true })).live, false);
  // flock not supported here, or the holder could not take it: the pid decides.
  assert.deepEqual(judge(null, info(42)), {
    live: true,
    why: "process 42 is alive on this host (no flock to go by)",
  });
  assert.equal(judge(null, info(7)).live, false);
  assert.equal(judge(false, info(42, { flock: false })).live, true);
  assert.equal(judge(false, info(7, { flock: false })).live, false);
  // An unreadable record: being written for a while, then stale.
  assert.equal(judge(false, null, 1).live, true);
  assert.equal(judge(false, null, 3600).live, false);
});

Deno.test("lock: a held flock means busy whatever the pid says; two takers in one process", async () => {
  const dir = await tempDir("galaxy-lock-");
  const path = join(dir, LOCK_FILE);
  // As a run in another container would leave it: another host name, a pid meaningless here.
  await writeLock(path, {
    pid: await deadPid(),
    host: "another-container",
    startedAt: "2024-01-01T00:00:00.000Z",
  });
  const holder = await Deno.open(path, { read: true, write: true });
  holder.lockSync(true);
  const busy = await acquireLock(path);
  assert.ok("busy" in busy);
  assert.match(busy.why, /locked/);
  holder.close(); // the holder died: the kernel drops its flock
  const first = await acquireLock(path);
  assert.ok("held" in first, "an unlocked lock of another host is stale");
  const second = await acquireLock(path);
  assert.ok("busy" in second, "the first taker's flock keeps the second out");
  first.held.release();
  const third = await acquireLock(path);
  assert.ok("held" in third);
  assert.equal(third.held.tookOver, null, "a released lock leaves no file to take over");
  third.held.release();
});

Deno.test("retrain: busy with a log it cannot write still answers busy (exit 3), warning, without throwing", async () => {
  const runs = await tempDir("galaxy-busy-log-");
  await Deno.mkdir(join(runs, "retrain.log")); // appending to a folder fails
  const holder = await acquireLock(join(runs, LOCK_FILE));
  assert.ok("held" in holder);
  const lines: string[] = [];
  try {
    const r = await retrain({ data: runs, runs, log: (l) => lines.push(l) });
    assert.equal(r.outcome, "busy");
    assert.equal(r.exitCode, 3);
    assert.ok(lines.some((l) => /warning: cannot append to the log/.test(l)), lines.join("\n"));
  } finally {
    holder.held.release();
  }
});

// ------------------------------------------------------------ fingerprint

Deno.test("fingerprint: changes with images' size or mtime and the labels' content, not other files", async () => {
  const dir = await tempDir("galaxy-fp-");
  await Deno.mkdir(join(dir, "images"));
  await Deno.writeTextFile(join(dir, "labels.csv"), "id,label\na,x\nb,y\n");
  await Deno.writeTextFile(join(dir, "images", "a.jpg"), "aaaa");
  await Deno.writeTextFile(join(dir, "images", "b.png"), "bb");
  const base = await fingerprintInputs(dir);
  assert.equal(base.layout, "labels-csv");
  assert.equal(base.images, 2);
  assert.equal(base.bytes, 6);
  assert.equal((await fingerprintInputs(dir)).digest, base.digest, "stable");

  await Deno.writeTextFile(join(dir, "notes.txt"), "not an input");
  await Deno.writeTextFile(join(dir, "images", ".hidden.jpg"), "x");
  await Deno.writeTextFile(join(dir, "images", "readme.md"), "x");
  assert.equal(
    (await fingerprintInputs(dir)).digest,
    base.digest,
    "ignores what preprocess ignores",
  );

  await Deno.utime(join(dir, "images", "a.jpg"), new Date(2020, 0, 1), new Date(2020, 0, 1));
  const touched = await fingerprintInputs(dir);
  assert.notEqual(touched.digest, base.digest, "an image's mtime");

  // Same size, other label: only the hash sees it.
  await Deno.writeTextFile(join(dir, "labels.csv"), "id,label\na,y\nb,x\n");
  const relabelled = await fingerprintInputs(dir);
  assert.notEqual(relabelled.digest, touched.digest, "the labels' content");
  assert.equal(relabelled.bytes, touched.bytes);

  await Deno.writeTextFile(join(dir, "images", "c.jpg"), "c");
  await Deno.writeTextFile(join(dir, "labels.csv"), "id,label\na,y\nb,x\nc,x\n");
  const grown = await fingerprintInputs(dir);
  assert.equal(grown.images, 3);
  assert.notEqual(grown.digest, relabelled.digest, "a new image");
});

// ---------------------------------------------------------- promote, keep

Deno.test("promote: current is switched by renaming a link; a folder named current is refused", async () => {
  const runs = await tempDir("galaxy-promote-");
  assert.equal(await readCurrent(runs), null);
  for (const name of ["run-a", "run-b"]) {
    await Deno.mkdir(join(runs, name));
    await promote(runs, name);
    const c = await readCurrent(runs);
    assert.equal(c?.target, name, "a relative link: the runs folder may be mounted anywhere");
    assert.equal(c?.dir, join(runs, name));
    assert.equal(c?.exists, true);
  }
  assert.equal(await exists(join(runs, ".current.tmp")), false);
  assert.ok(atLeastAsGood("accuracy", 0.5, 0.5), "a tie promotes");
  assert.ok(!atLeastAsGood("accuracy", 0.4, 0.5));
  assert.ok(atLeastAsGood("rmse", 0.09, 0.1), "lower RMSE is better");
  assert.ok(!atLeastAsGood("rmse", 0.11, 0.1));

  const other = await tempDir("galaxy-promote-");
  await Deno.mkdir(join(other, "current"));
  await assert.rejects(() => readCurrent(other), /not a symbolic link/);
});

Deno.test("keep: the newest K of the job's runs stay, and current's target, and hand-made runs", async () => {
  const runs = await tempDir("galaxy-keep-");
  const names = [1, 2, 3, 4, 5].map((d) => `run-2020010${d}T000000Z`);
  for (const n of [...names, "r1"]) await Deno.mkdir(join(runs, n));
  await Deno.symlink(names[0], join(runs, "current"));
  const deleted = await pruneRuns(runs, 2, [join(runs, names[0])]);
  assert.deepEqual(deleted, names.slice(1, 3));
  assert.deepEqual(await listRuns(runs), [names[0], names[3], names[4]]);
  assert.ok(await exists(join(runs, "r1")), "a run the job did not make is never deleted");

  // Datasets: one used by a remaining run stays, an unused one goes.
  for (const d of ["used", "unused"]) {
    await Deno.mkdir(join(runs, DATASETS_DIR, d), { recursive: true });
  }
  await Deno.writeTextFile(
    join(runs, names[4], "config.json"),
    JSON.stringify({ options: { data: join(runs, DATASETS_DIR, "used") } }),
  );
  assert.deepEqual(await pruneDatasets(runs, []), ["unused"]);
  assert.ok(await exists(join(runs, DATASETS_DIR, "used")));

  const t = new Date("2024-05-06T07:08:09.123Z");
  assert.equal(newRunName(t, new Set()), "run-20240506T070809Z");
  assert.equal(newRunName(t, new Set(["run-20240506T070809Z"])), "run-20240506T070809Z-2");
});

// -------------------------------------------------------------- schedules

Deno.test("tasks/crontab and the systemd units run the same job at the same time", async () => {
  const read = (f: string) => Deno.readTextFile(new URL(`../tasks/${f}`, import.meta.url));
  const jobs = (await read("crontab")).split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#") && !/^[A-Z_]+=/.test(l));
  assert.equal(jobs.length, 1, "one job line");
  const [minute, hour, dom, month, dow, ...command] = jobs[0].split(/\s+/);
  assert.ok(/^\d+$/.test(minute) && Number(minute) < 60, minute);
  assert.ok(/^\d+$/.test(hour) && Number(hour) < 24, hour);
  assert.deepEqual([dom, month, dow], ["*", "*", "*"], "every night");
  const line = command.join(" ");
  assert.ok(!line.includes("%"), "cron turns % into newlines");
  const [docker, redirect] = line.split(" >> ");
  assert.match(
    docker,
    /^docker run --rm --init --gpus all -v \/data:\/data -v galaxy-cuda-cache:\/cuda-cache galaxy deno task retrain /,
  );
  assert.match(docker, /--data \S+ --runs \S+/);
  assert.match(redirect, /2>&1$/);

  const service = await read("galaxy-retrain.service");
  const exec = /^ExecStart=(.*)$/m.exec(service)?.[1];
  assert.equal(exec, `/usr/bin/${docker.trim()}`, "the service runs the crontab's command");
  assert.match(service, /^Type=oneshot$/m);
  assert.match(service, /^SuccessExitStatus=2 3$/m);
  const timer = await read("galaxy-retrain.timer");
  assert.match(timer, /^Persistent=true$/m);
  const at = /^OnCalendar=\*-\*-\* (\d\d):(\d\d):00$/m.exec(timer);
  assert.ok(at, "a daily OnCalendar");
  assert.deepEqual([Number(at[1]), Number(at[2])], [Number(hour), Number(minute)]);
});

// ------------------------------------------------ the whole job, end to end

Deno.test("retrain end to end: promote, nothing new, busy, stale lock, not promoted, fine-tune, failures, SIGTERM", (t) =>
  withDeadline("retrain end to end", 1500, (signal) => endToEnd(t, signal)));

async function endToEnd(t: Deno.TestContext, signal: AbortSignal): Promise<void> {
  const root = await tempDir("galaxy-retrain-");
  const raw = join(root, "raw");
  const runs = join(root, "runs");
  const lockPath = join(runs, LOCK_FILE);
  const seed = 3;
  await writeSyntheticKaggle(raw, { count: 300, testCount: 0, seed });
  // More galaxies with the same seed: the first ones are unchanged, new ones appear.
  const grow = (count: number) => writeSyntheticKaggle(raw, { count, testCount: 0, seed });

  const lines: string[] = [];
  const train = {
    width: 0.125, // a narrow ResNet-34: seconds, not minutes, on a CPU
    batch: 16,
    epochs: 6,
    lr: 3e-3,
    warmupEpochs: 0.5,
    patience: 0,
    checkpointSeconds: 0,
  };
  const base: RetrainOptions = {
    data: raw,
    runs,
    dataSettings: { size: 32, val: 0.15, test: 0.2 },
    // Balanced accuracy: chance is 1/classes whatever the class shares, so an
    // untrained model cannot tie a trained one by always saying the largest class.
    metric: "balanced_accuracy",
    train,
    log: (l) => lines.push(l),
  };
  const cliArgs = [
    "--data",
    raw,
    "--runs",
    runs,
    "--size",
    "32",
    "--val",
    "0.15",
    "--test",
    "0.2",
    "--metric",
    "balanced_accuracy",
    "--width",
    "0.125",
    "--batch",
    "16",
    "--replicas",
    "1",
  ];
  const lastLog = async () => (await readLog(runs)).at(-1)!;
  let first = "";

  await t.step("first run: no current model, so the new run is promoted (exit 0)", async () => {
    const r = await retrain(base);
    assert.equal(r.outcome, "promoted", r.message);
    assert.equal(r.exitCode, 0);
    first = r.run!;
    assert.equal((await readCurrent(runs))?.target, first);
    assert.equal(r.metrics.current, null);
    assert.ok(r.metrics.new !== null && r.metrics.new > 0);
    const state = await readState(runs);
    assert.equal(state?.lastSuccess?.run, first);
    const log = await lastLog();
    assert.equal(log.outcome, "promoted");
    assert.equal(log.run, first);
    assert.equal(log.metrics.new, r.metrics.new);
    assert.equal(await exists(lockPath), false, "the lock is released");
  });

  await t.step("nothing new: exit 0 and no training", async () => {
    const before = await listRuns(runs);
    const r = await retrain(base);
    assert.equal(r.outcome, "nothing_new", r.message);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(await listRuns(runs), before);
    assert.equal((await lastLog()).outcome, "nothing_new");
  });

  await t.step(
    "a second run while one holds the lock exits 3 naming its pid and start",
    async () => {
      const startedAt = new Date().toISOString();
      const text = await writeLock(lockPath, { pid: Deno.pid, host: hostName(), startedAt });
      // This process is the running holder: it keeps the flock.
      const holder = await Deno.open(lockPath, { read: true, write: true });
      holder.lockSync(true);
      let out: Deno.CommandOutput;
      try {
        out = await runCli(cliArgs);
      } finally {
        holder.close();
      }
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 3, stderr);
      assert.match(stderr, /keeps it locked/);
      assert.match(stderr, new RegExp(`pid ${Deno.pid} on host`));
      assert.ok(stderr.includes(startedAt), stderr);
      assert.equal(await Deno.readTextFile(lockPath), text, "the holder's lock is not touched");
      const log = await lastLog();
      assert.equal(log.outcome, "busy");
      assert.match(log.error!, new RegExp(`pid ${Deno.pid}`));
      await Deno.remove(lockPath);
    },
  );

  await t.step(
    "a lock naming a live unrelated pid, its flock free, is taken over under retrain's own permissions, and the run proceeds",
    async () => {
      await withUnrelatedProcess(async (pid) => {
        await writeLock(lockPath, { pid, host: hostName(), startedAt: new Date().toISOString() });
        const out = await runCli(cliArgs);
        const stdout = new TextDecoder().decode(out.stdout);
        assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
        assert.match(
          stdout,
          new RegExp(`took over a stale lock .* pid ${pid} .*nobody holds its flock`),
        );
        assert.match(stdout, /nothing new since/, "the run went on");
        assert.equal(await exists(lockPath), false);
        assert.equal((await lastLog()).outcome, "nothing_new");
      });
    },
  );

  await t.step("a stale lock (its process is gone) is taken over", async () => {
    const dead = await deadPid();
    await writeLock(lockPath, { pid: dead, host: hostName(), startedAt: new Date().toISOString() });
    lines.length = 0;
    const r = await retrain(base);
    assert.equal(r.outcome, "nothing_new", r.message);
    assert.ok(lines.some((l) => l.includes(`took over a stale lock`) && l.includes(`pid ${dead}`)));
    assert.equal(await exists(lockPath), false);
  });

  let worse = "";
  await t.step(
    "new data, a worse candidate (untrained: lr 0) is not promoted: exit 2",
    async () => {
      await grow(340);
      const r = await retrain({
        ...base,
        fromScratch: true,
        train: { ...train, lr: 0, epochs: 1 },
      });
      assert.equal(r.outcome, "not_promoted", r.message);
      assert.equal(r.exitCode, 2);
      worse = r.run!;
      assert.ok(r.metrics.new! < r.metrics.current!, r.message);
      assert.equal((await readCurrent(runs))?.target, first, "current still points to the old run");
      assert.ok(await exists(join(runs, worse, "model", "model.json")), "the candidate is kept");
      const state = await readState(runs);
      assert.equal(state?.lastSuccess?.outcome, "not_promoted");
      assert.equal((await lastLog()).outcome, "not_promoted");

      // Both were scored on the new dataset, where every old galaxy kept its split.
      const oldData = (await readRunConfig(join(runs, first))).config.dataset.dir!;
      const newData = (await readRunConfig(join(runs, worse))).config.dataset.dir!;
      assert.notEqual(oldData, newData);
      const [a, b] = [await openDataset(oldData), await openDataset(newData)];
      try {
        for (const split of ["train", "val", "test"] as const) {
          const now = new Set(b.ids(split));
          const missing = a.ids(split).filter((id) => !now.has(id));
          assert.deepEqual(missing, [], `${split} ids of the old dataset are in the new ${split}`);
          assert.ok(b.size(split) >= a.size(split));
        }
        assert.ok(
          b.size("train") + b.size("val") + b.size("test") >
            a.size("train") + a.size("val") + a.size("test"),
        );
      } finally {
        a.close();
        b.close();
      }
    },
  );

  await t.step("fine-tuning starts from the current model's weights; keep prunes", async () => {
    await grow(360);
    // Read now: keep may delete the old run once another is promoted.
    const source = await loadModel(join(runs, first, "model"));
    const w0 = source.trainableWeights.map((w) => w.read().dataSync());
    source.dispose();
    // lr 0: the trainable weights cannot move, so they must be exactly the current model's.
    const r = await retrain({ ...base, train: { ...train, lr: 0, epochs: 1 }, keep: 2 });
    assert.ok(r.outcome === "promoted" || r.outcome === "not_promoted", r.message);
    assert.equal(r.exitCode, r.metrics.new! >= r.metrics.current! ? 0 : 2, r.message);
    const config = JSON.parse(await Deno.readTextFile(join(runs, r.run!, "config.json")));
    assert.equal(config.options.initFrom, join(runs, first, "model"));
    const tuned = await loadModel(join(runs, r.run!, "model"));
    const w1 = tuned.trainableWeights.map((w) => w.read().dataSync());
    tuned.dispose();
    assert.equal(w1.length, w0.length);
    for (let i = 0; i < w0.length; i++) {
      assert.ok(w1[i].every((x, k) => x === w0[i][k]), `weight ${i} differs`);
    }
    // keep 2: the two newest runs, plus current's target if older.
    const current = (await readCurrent(runs))!.target;
    const all = [worse, r.run!].concat(current === r.run ? [] : [current]).sort();
    assert.deepEqual(await listRuns(runs), all);
    // Every dataset left is used by a run left.
    const used = new Set<string>();
    for (const run of all) {
      used.add((await readRunConfig(join(runs, run))).config.dataset.dir!);
    }
    for await (const d of Deno.readDir(join(runs, DATASETS_DIR))) {
      assert.ok(used.has(join(runs, DATASETS_DIR, d.name)), `${d.name} is used`);
    }
  });

  await t.step(
    "a failure in training leaves current and the state as they were: exit 1",
    async () => {
      await grow(380);
      const current = await readCurrent(runs);
      const state = await readState(runs);
      const before = await listRuns(runs);
      const r = await retrain({ ...base, train: { ...train, batch: 100000 } });
      assert.equal(r.outcome, "failed", r.message);
      assert.deepEqual(await listRuns(runs), before, "the failed candidate's folder is deleted");
      assert.equal(r.exitCode, 1);
      assert.match(r.error!, /fewer than --batch 100000/);
      assert.deepEqual(await readCurrent(runs), current);
      assert.deepEqual(await readState(runs), state, "the next run retries: state not advanced");
      assert.equal(await exists(lockPath), false);
      const log = await lastLog();
      assert.equal(log.outcome, "failed");
      assert.match(log.error!, /fewer than --batch/);
    },
  );

  await t.step("fine-tuning a network of another width fails naming the mismatch", async () => {
    const current = await readCurrent(runs);
    const r = await retrain({ ...base, train: { ...train, width: 0.25 } });
    assert.equal(r.outcome, "failed", r.message);
    assert.match(r.error!, /its network differs \(.* is \[.*\] here, \[.*\] there\)/);
    assert.deepEqual(await readCurrent(runs), current);
  });

  await t.step(
    "SIGTERM mid-run: lock released, current untouched, logged, exit 1 (and --no-native-kernels)",
    async () => {
      const current = await readCurrent(runs);
      const runsBefore = await listRuns(runs);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--config",
          CONFIG,
          ...PERMISSIONS,
          CLI,
          ...cliArgs,
          "--epochs",
          "500",
          "--no-native-kernels",
        ],
        signal,
        stdout: "piped",
        stderr: "null",
        env: { NO_COLOR: "1" },
      }).spawn();
      // Wait until it has the lock and is about to train (its signal handlers are installed by then).
      const decoder = new TextDecoder();
      let seen = "";
      const reader = child.stdout.getReader();
      while (!/backend: .*\n/.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += decoder.decode(value);
      }
      assert.ok(seen.includes("preprocessing"), seen);
      assert.match(seen, /backend: wasm via .*; native kernels off \(--no-native-kernels\)\n/);
      assert.equal(parseLockInfo(await Deno.readTextFile(lockPath))?.pid, child.pid);
      child.kill("SIGTERM");
      // Drain the rest so the child never blocks on a full pipe.
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
      }
      const status = await child.status;
      assert.equal(status.code, 1);
      assert.deepEqual(await listRuns(runs), runsBefore, "the interrupted candidate is deleted");
      assert.equal(await exists(lockPath), false, "the lock is released");
      assert.deepEqual(await readCurrent(runs), current);
      const log = await lastLog();
      assert.equal(log.outcome, "failed");
      assert.match(log.error!, /interrupted by SIGTERM/);
    },
  );
}

// ----------------------------------------------------- a class set that changes

/** Writes `count` images into the class folder `dir/name`. */
async function classFolder(dir: string, name: string, count: number, seed: number): Promise<void> {
  await Deno.mkdir(join(dir, name), { recursive: true });
  for (let k = 0; k < count; k++) {
    await Deno.writeFile(join(dir, name, `${name}-${k}.jpg`), await encodeImage(24, 24, seed + k));
  }
}

deadlineTest(
  "retrain: a class set that changes trains from scratch, compares nothing, exits 2 naming --force; --force promotes",
  900,
  async () => {
    const root = await tempDir("galaxy-classes-");
    const raw = join(root, "raw");
    const runs = join(root, "runs");
    await classFolder(raw, "elliptical", 10, 1);
    await classFolder(raw, "spiral", 10, 100);
    const lines: string[] = [];
    const base: RetrainOptions = {
      data: raw,
      runs,
      dataSettings: { size: 16, val: 0.2, test: 0.2 },
      train: {
        stem: "small",
        width: 0.125,
        batch: 4,
        epochs: 1,
        warmupEpochs: 0,
        patience: 0,
        checkpointSeconds: 0,
      },
      log: (l) => lines.push(l),
    };
    const first = await retrain(base);
    assert.equal(first.outcome, "promoted", first.message);

    // A class folder gains its first images between two nights.
    await classFolder(raw, "irregular", 8, 200);
    lines.length = 0;
    const second = await retrain(base);
    assert.equal(second.outcome, "not_promoted", second.message);
    assert.equal(second.exitCode, 2);
    assert.match(second.message, /class set changed \(added 'irregular'\)/);
    assert.match(second.message, /--force/);
    assert.ok(
      lines.some((l) =>
        /class set of scheme 'csv' changed .*added 'irregular'.*from scratch/.test(l)
      ),
      lines.join("\n"),
    );
    assert.equal(second.metrics.current, null, "the current model is not scored on new labels");
    assert.equal((await readCurrent(runs))?.target, first.run);
    const config = JSON.parse(await Deno.readTextFile(join(runs, second.run!, "config.json")));
    assert.equal(config.options.initFrom, undefined, "trained from scratch");
    assert.deepEqual(config.dataset.classes, ["elliptical", "irregular", "spiral"]);
    const decision = JSON.parse(
      await Deno.readTextFile(join(runs, second.run!, "retrain", "decision.json")),
    );
    assert.deepEqual(decision.classChange, { added: ["irregular"], removed: [] });
    assert.equal(await exists(join(runs, second.run!, "retrain", "current")), false);
    assert.deepEqual(
      await listRuns(runs),
      [first.run, second.run].sort(),
      "no run folder left over",
    );

    // The next night, nothing new: it says the candidate waits for --force.
    const third = await retrain(base);
    assert.equal(third.outcome, "nothing_new", third.message);
    assert.match(third.message, new RegExp(`${second.run} is waiting to be promoted.*--force`));

    // --force promotes it, without training it again.
    const forced = await retrain({ ...base, force: true });
    assert.equal(forced.outcome, "promoted", forced.message);
    assert.equal(forced.exitCode, 0);
    assert.equal(forced.run, second.run);
    assert.equal((await readCurrent(runs))?.target, second.run);
    assert.deepEqual(await listRuns(runs), [first.run, second.run].sort());

    // A class removed, with --force from the start: trained from scratch and promoted, exit 0.
    await Deno.remove(join(raw, "elliptical"), { recursive: true });
    lines.length = 0;
    const removed = await retrain({ ...base, force: true });
    assert.equal(removed.outcome, "promoted", removed.message);
    assert.equal(removed.exitCode, 0);
    assert.match(removed.message, /--force; the class set changed: removed 'elliptical'/);
    assert.equal((await readCurrent(runs))?.target, removed.run);
    const c2 = JSON.parse(await Deno.readTextFile(join(runs, removed.run!, "config.json")));
    assert.equal(c2.options.initFrom, undefined);
    assert.deepEqual(
      await listRuns(runs),
      [first.run, second.run, removed.run].sort(),
      "one run folder per trained night, none left by failures",
    );
  },
);
