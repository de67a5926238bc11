/**
 * The run folder (lib/run): damaged models are refused by predict,
 * evaluate and serve; one writer at a time; resume after a failed write
 * continues from the last intact checkpoint; lib/run alone names the files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { openDataset } from "../lib/data/dataset.ts";
import { DigestMismatchError } from "../lib/io/verify.ts";
import { readModelFolder } from "../lib/io/model_io.ts";
import { readRunConfig } from "../lib/run/config.ts";
import { runPaths } from "../lib/run/layout.ts";
import { lockRunFolder, RUN_IN_USE_EXIT, RunInUseError } from "../lib/run/lock.ts";
import { openRun } from "../lib/run/open.ts";
import { loadCheckpoint } from "../lib/train/checkpoint.ts";
import { train, TRAIN_DEFAULTS, type TrainEvent, type TrainOptions } from "../lib/train/trainer.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { imageFolder, toyRun } from "./fixtures_run.ts";
import { buildWeb } from "./fixtures_web.ts";
import { ROOT, runTask } from "./task_cli.ts";
import { tempDir } from "./temp.ts";

await setupBackend();

async function datasetImage(data: string) {
  const ds = await openDataset(data);
  const img = ds.manifest.image;
  ds.close();
  return img;
}

/** A toy run the tiny dataset's images fit, and the path of its (only) weights file. */
async function runWithWeights(seed: number): Promise<{ dir: string; weights: string }> {
  const img = await datasetImage(await tinyDataset());
  const dir = await toyRun({ size: img.width, crop: img.crop, seed });
  const { weightFiles } = await readModelFolder(runPaths(dir).modelDir);
  return { dir, weights: join(runPaths(dir).modelDir, weightFiles[0]) };
}

/** The three same-size damages of the issue, applied to `weights`. */
const DAMAGES: Record<string, (weights: string, other: string) => Promise<void>> = {
  "half zero-filled": async (weights) => {
    const b = await Deno.readFile(weights);
    b.fill(0, 0, b.length >> 1);
    await Deno.writeFile(weights, b);
  },
  "a few flipped bits": async (weights) => {
    const b = await Deno.readFile(weights);
    for (const i of [3, 101, b.length - 7]) b[i] ^= 0x10;
    await Deno.writeFile(weights, b);
  },
  "another run's weights of the same size": async (weights, other) => {
    const b = await Deno.readFile(other);
    assert.equal(b.length, (await Deno.stat(weights)).size);
    await Deno.writeFile(weights, b);
  },
};

for (const [damage, apply] of Object.entries(DAMAGES)) {
  Deno.test(`a model with ${damage} is refused by predict, evaluate and serve, naming the file`, async () => {
    const run = await runWithWeights(1);
    const other = await runWithWeights(2);
    await apply(run.weights, other.weights);
    const named = new RegExp(
      `${
        run.weights.replaceAll("/", "\\/")
      } is damaged: its SHA-256 is [0-9a-f]{64}, but [0-9a-f]{64} was recorded`,
    );
    await assert.rejects(() => openRun(run.dir), DigestMismatchError);
    const images = await imageFolder(2);
    const out = await tempDir("galaxy-damaged-");
    // serve checks its pages are built before it opens the model.
    await buildWeb();
    const runs = {
      predict: await runTask("predict", [
        "--model",
        run.dir,
        "--in",
        images,
        "--out",
        join(out, "p.csv"),
      ]),
      evaluate: await runTask("evaluate", [
        "--model",
        run.dir,
        "--data",
        await tinyDataset(),
        "--out",
        join(out, "eval"),
      ]),
      serve: await runTask("serve", ["--model", run.dir, "--port", "0"], { seconds: 120 }),
    };
    for (const [task, r] of Object.entries(runs)) {
      const stderr = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 1, `${task} exit status; stderr:\n${stderr}`);
      assert.match(stderr, named, task);
    }
    assert.ok(!await Deno.stat(join(out, "p.csv")).then(() => true, () => false), "no predictions");
  });
}

Deno.test("a damaged model.json or config.json is refused; --no-verify uses the run, saying so", async () => {
  const run = await runWithWeights(3);
  const paths = runPaths(run.dir);
  const json = await Deno.readTextFile(paths.modelJson);
  // A digit of a weight's shape changed: still valid JSON, another model.
  await Deno.writeTextFile(paths.modelJson, json.replace(/"shape": \[\s*(\d)/, '"shape": [9$1'));
  await assert.rejects(() => openRun(run.dir), (e: Error) => {
    assert.ok(e instanceof DigestMismatchError, e.message);
    assert.equal(e.path, paths.modelJson);
    return true;
  });
  await Deno.writeTextFile(paths.modelJson, json);
  const config = await Deno.readTextFile(paths.config);
  await Deno.writeTextFile(paths.config, config.replace('"crop": 0.', '"crop": 0.9'));
  await assert.rejects(() => openRun(run.dir), new RegExp(`${paths.config} is damaged`));

  await Deno.writeTextFile(paths.config, config);
  await DAMAGES["a few flipped bits"](run.weights, run.weights);
  const out = join(await tempDir("galaxy-noverify-"), "p.csv");
  const r = await runTask("predict", [
    "--model",
    run.dir,
    "--in",
    await imageFolder(2),
    "--out",
    out,
    "--no-verify",
  ]);
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, stderr);
  assert.match(stderr, /not verified \(--no-verify\)/);
});

Deno.test("a run folder written before digests opens, saying it is not verified", async () => {
  const run = await runWithWeights(4);
  const paths = runPaths(run.dir);
  // What galaxy wrote before: no seals, no weight digests, the dataset folder in options.data.
  const strip = async (path: string, extra: (v: Record<string, unknown>) => void) => {
    const v = JSON.parse(await Deno.readTextFile(path));
    delete v.contentSha256;
    delete v.weightsSha256;
    extra(v);
    await Deno.writeTextFile(path, JSON.stringify(v));
  };
  await strip(paths.modelJson, () => {});
  await strip(paths.config, (v) => {
    delete v.format;
    v.options = { data: "some/dataset", batch: 8 };
  });
  const warnings: string[] = [];
  const opened = await openRun(run.dir, { warn: (l) => warnings.push(l) });
  opened.model.dispose();
  assert.equal(opened.verified, false);
  assert.match(warnings.join("\n"), /written before galaxy recorded SHA-256 digests/);
  const { config } = await readRunConfig(run.dir);
  assert.equal(config.dataset.dir, "some/dataset");
  assert.equal((config.options as Record<string, unknown>).data, undefined);
});

async function trainOptions(extra: Partial<TrainOptions> = {}): Promise<TrainOptions> {
  return {
    ...TRAIN_DEFAULTS,
    data: await tinyDataset(),
    out: await tempDir("galaxy-runfolder-"),
    epochs: 1,
    batch: 8,
    warmupEpochs: 0.5,
    patience: 0,
    checkpointSeconds: 0,
    width: 0.125,
    ...extra,
  };
}

/** The epochs `metrics.jsonl` lists, in order. */
async function metricsEpochs(dir: string): Promise<number[]> {
  const text = await Deno.readTextFile(runPaths(dir).metrics);
  return text.trim().split("\n").map((l) => JSON.parse(l).epoch);
}

Deno.test("a second train --resume on a folder in use exits 3, and the first run's history is intact", async () => {
  const o = await trainOptions();
  await train(o);
  const paths = runPaths(o.out);
  const before = {
    metrics: await Deno.readTextFile(paths.metrics),
    state: await Deno.readTextFile(paths.checkpointState),
    config: await Deno.readTextFile(paths.config),
  };
  // This process stands in for the first run: it holds the lock as `train` does.
  const lock = await lockRunFolder(o.out);
  try {
    await assert.rejects(() => train({ ...o, resume: true, epochs: 2 }), RunInUseError);
    const r = await runTask("train", [
      "--data",
      o.data,
      "--out",
      o.out,
      "--resume",
      "--epochs",
      "2",
      "--batch",
      "8",
      "--width",
      "0.125",
      "--replicas",
      "1",
    ]);
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, RUN_IN_USE_EXIT, stderr);
    assert.match(stderr, new RegExp(`run folder in use by pid ${Deno.pid} since \\d{4}-`));
  } finally {
    lock.release();
  }
  assert.deepEqual({
    metrics: await Deno.readTextFile(paths.metrics),
    state: await Deno.readTextFile(paths.checkpointState),
    config: await Deno.readTextFile(paths.config),
  }, before);
});

Deno.test("a stale lock (its process gone) is taken over, saying so", async () => {
  const o = await trainOptions();
  await Deno.mkdir(o.out, { recursive: true });
  // A record nobody holds the flock of, as a killed train leaves it.
  await Deno.writeTextFile(
    runPaths(o.out).lock,
    JSON.stringify({ pid: 999999, host: Deno.hostname(), startedAt: "2026-01-01T00:00:00Z" }),
  );
  const notes: string[] = [];
  await train(o, (e) => e.type === "start" && notes.push(...e.notes));
  assert.match(notes.join("\n"), /took over the stale lock .* of pid 999999/);
  assert.ok(!await Deno.stat(runPaths(o.out).lock).then(() => true, () => false), "lock released");
});

Deno.test("a damaged checkpoint is refused on --resume, naming the file", async () => {
  const o = await trainOptions();
  await train(o);
  const dir = runPaths(o.out).checkpointDir;
  const file = [...Deno.readDirSync(dir)].find((e) => e.name.startsWith("variables-"))!.name;
  const bytes = await Deno.readFile(join(dir, file));
  bytes[bytes.length >> 1] ^= 1;
  await Deno.writeFile(join(dir, file), bytes);
  await assert.rejects(
    () => train({ ...o, resume: true, epochs: 2 }),
    new RegExp(`${join(dir, file)} is damaged: .* cannot be resumed from`),
  );
  // The refusal wrote nothing: the history is that of the first run.
  assert.deepEqual(await metricsEpochs(o.out), [1]);
});

Deno.test("resume after a checkpoint that could not be written: no epoch twice in metrics.jsonl", async () => {
  const o = await trainOptions({ epochs: 2 });
  // Once the folder is open, a file where the checkpoint folder goes: every checkpoint write
  // fails, as on a full disk.
  const block = (e: TrainEvent) => {
    if (e.type === "start") Deno.writeTextFileSync(runPaths(o.out).checkpointDir, "");
  };
  await assert.rejects(() => train(o, block), /cannot write the checkpoint/);
  assert.deepEqual(await metricsEpochs(o.out), [1], "epoch 1 was logged before its checkpoint");
  await Deno.remove(runPaths(o.out).checkpointDir);
  const notes: string[] = [];
  await train({ ...o, resume: true }, (e) => e.type === "start" && notes.push(...e.notes));
  assert.match(notes.join("\n"), /no checkpoint in .*: starting at epoch 1/);
  assert.match(notes.join("\n"), /dropped the .*metrics\.jsonl lines of epoch\(s\) 1/);
  assert.deepEqual(await metricsEpochs(o.out), [1, 2]);
});

/** Whether this machine lets an unprivileged user namespace mount a tmpfs (a small full disk). */
async function canMountTmpfs(): Promise<boolean> {
  try {
    const r = await new Deno.Command("unshare", {
      args: ["--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    n += e.isDirectory ? await folderBytes(p) : (await Deno.stat(p)).size;
  }
  return n;
}

const FULL_DISK = await canMountTmpfs();

Deno.test({
  name: "train --resume after a full disk (ENOSPC) continues from the last intact epoch",
  ignore: !FULL_DISK,
  fn: async () => {
    // Epoch 1 on a roomy disk; then epochs 2-3 on a tmpfs with room for the run but not for
    // another checkpoint beside it, so the checkpoint of epoch 2 fails with ENOSPC.
    const o = await trainOptions({ epochs: 1 });
    await train(o);
    const cp = await loadCheckpoint(runPaths(o.out).checkpointDir);
    const checkpointBytes = cp!.variables.reduce((n, v) => n + 4 * v.length, 0);
    const size = Math.ceil((await folderBytes(o.out) + 65536 + checkpointBytes / 2) / 4096) * 4096;
    const mnt = await tempDir("galaxy-fulldisk-mnt-");
    const after = await tempDir("galaxy-fulldisk-after-");
    const script = "scripts/train.ts";
    const trainArgs = [
      "--data",
      o.data,
      "--out",
      mnt,
      "--resume",
      "--epochs",
      "3",
      "--batch",
      "8",
      "--width",
      "0.125",
      "--warmup",
      "0.5",
      "--patience",
      "0",
      "--checkpoint-seconds",
      "0",
      "--replicas",
      "1",
    ];
    const deno = [Deno.execPath(), "run", "-A", "--config", `${ROOT}/deno.json`, script];
    const q = (a: string) => `'${a}'`;
    const sh = [
      `mount -t tmpfs -o size=${size} tmpfs ${q(mnt)}`,
      `cp -a ${q(o.out)}/. ${q(mnt)}/`,
      `${[...deno, ...trainArgs].map(q).join(" ")}; rc=$?`,
      `cp -a ${q(mnt)}/. ${q(after)}/`,
      "exit $rc",
    ].join("\n");
    const full = await new Deno.Command("unshare", {
      args: ["--user", "--map-root-user", "--mount", "sh", "-c", sh],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(300_000),
    }).output();
    const stderr = new TextDecoder().decode(full.stderr);
    assert.equal(full.code, 1, `the full-disk session's exit status; stderr:\n${stderr}`);
    assert.match(stderr, /No space left on device|ENOSPC/, stderr);
    const intact = await loadCheckpoint(runPaths(after).checkpointDir);
    assert.equal(intact!.state.epoch, 1, "the checkpoint on disk is the intact one of epoch 1");

    // The disk has room again: resume from the copy of the full disk's folder.
    const events: TrainEvent[] = [];
    await train({ ...o, out: after, epochs: 3, resume: true }, (e) => events.push(e));
    const start = events.find((e) => e.type === "start");
    assert.ok(start?.type === "start" && start.resumedAt?.epoch === 1, "resumed at epoch 2");
    assert.deepEqual(await metricsEpochs(after), [1, 2, 3]);
  },
});

Deno.test("evaluate and predict refuse an --out they cannot write before doing any work", async () => {
  const run = await runWithWeights(5);
  const blocker = join(await tempDir("galaxy-readonly-"), "a-file");
  await Deno.writeTextFile(blocker, "");
  const cases = [
    ["evaluate", ["--model", run.dir, "--data", await tinyDataset(), "--out", join(blocker, "r")]],
    ["predict", [
      "--model",
      run.dir,
      "--in",
      await imageFolder(2),
      "--out",
      join(blocker, "p.csv"),
    ]],
  ] as const;
  for (const [task, args] of cases) {
    const r = await runTask(task, [...args]);
    const stderr = new TextDecoder().decode(r.stderr);
    const stdout = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 1, `${task}: ${stderr}`);
    assert.match(stderr, /--out .*: cannot write (into|beside) it .* nothing was done/, task);
    // The check comes before the backend, the model and the images.
    assert.doesNotMatch(stdout, /model:|backend|input:/i, task);
  }
  if (Deno.uid() !== 0) {
    // A read-only folder (root writes anyway, so only as another user).
    const ro = await tempDir("galaxy-readonly-");
    await Deno.chmod(ro, 0o555);
    const r = await runTask("evaluate", [
      "--model",
      run.dir,
      "--data",
      await tinyDataset(),
      "--out",
      join(ro, "r"),
    ]);
    assert.equal(r.code, 1);
  }
});

Deno.test("lib/run is the only code that names the run folder's files", async () => {
  const names =
    /["'`](config\.json|metrics\.jsonl|state\.json|run\.lock|checkpoint)["'`/]|join\([^)]*["'`]model["'`]/;
  const offenders: string[] = [];
  const scan = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await scan(p);
      else if (p.endsWith(".ts") && !relative(ROOT, p).startsWith("lib/run/")) {
        (await Deno.readTextFile(p)).split("\n").forEach((line, i) => {
          const code = line.replace(/\/\/.*$/, "");
          if (/^\s*(\*|\/\*\*)/.test(line) || !names.test(code)) return;
          // Event types and the doctor's scratch model folder are not run-folder files.
          if (/type: "checkpoint"|saveReload/.test(code)) return;
          offenders.push(`${relative(ROOT, p)}:${i + 1}: ${line.trim()}`);
        });
      }
    }
  };
  for (const d of ["lib", "scripts", "tasks"]) await scan(join(ROOT, d));
  assert.deepEqual(offenders, []);
});
