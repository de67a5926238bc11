import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { setupBackend } from "../lib/backend.ts";
import { categoricalFocalLoss } from "../lib/focal_loss.ts";
import { singleProcess } from "../lib/train/collective.ts";
import { launchReplicas, mirroredStep, REPLICA_PERMISSIONS } from "../lib/train/mirrored.ts";
import { sgdNesterov } from "../lib/train/optimizers.ts";
import { trainableVariables } from "../lib/train/step.ts";
import { loadCheckpoint } from "../lib/train/checkpoint.ts";
import { globalBatch, smallNet } from "./workers/mirrored_model.ts";
import { tinyDataset } from "./fixtures_dataset.ts";
import { deadlineTest } from "./deadline.ts";
import { tempDir } from "./temp.ts";

await setupBackend({ requested: "cpu" });

const WORKER = new URL("./workers/mirrored_worker.ts", import.meta.url).pathname;
const TRAIN = new URL("../scripts/train.ts", import.meta.url).pathname;

interface WorkerResult {
  digest: string;
  transport: string;
  weights: number[][];
}

async function runReplicas(
  steps: number,
  kind: "plain" | "bn",
  signal: AbortSignal,
): Promise<WorkerResult[]> {
  const dir = await tempDir("galaxy-mirrored-test-");
  const out = join(dir, "weights");
  await launchReplicas({
    script: WORKER,
    args: ["--out", out, "--steps", String(steps), "--kind", kind],
    replicas: 2,
    permissions: REPLICA_PERMISSIONS,
    signal,
  });
  return await Promise.all(
    [0, 1].map(async (r) => JSON.parse(await Deno.readTextFile(`${out}.${r}.json`))),
  );
}

deadlineTest(
  "one mirrored step on 2 replicas equals one single-process step on the global batch",
  300,
  async (signal) => {
    const [r0] = await runReplicas(1, "plain", signal);
    const model = smallNet(false);
    const vars = trainableVariables(model);
    const ctx = {
      model,
      vars,
      optimizer: sgdNesterov(vars),
      loss: categoricalFocalLoss(),
      collective: singleProcess(),
    };
    const { x, y, labels } = globalBatch();
    await mirroredStep(ctx, x, y, labels, 0.05, 0);
    const single = vars.map((v) => Array.from(v.dataSync()));
    assert.equal(r0.weights.length, single.length);
    let moved = 0;
    r0.weights.forEach((w, i) =>
      w.forEach((value, j) => {
        assert.ok(
          Math.abs(value - single[i][j]) <= 1e-5,
          `weight ${i}[${j}]: ${value} vs ${single[i][j]}`,
        );
      })
    );
    // The step did change the weights (a test that compares untouched weights proves nothing).
    const fresh = trainableVariables(smallNet(false)).map((v) => Array.from(v.dataSync()));
    fresh.forEach((w, i) =>
      w.forEach((v, j) => moved += Math.abs(v - single[i][j]) > 1e-6 ? 1 : 0)
    );
    assert.ok(moved > 10);
    tf.dispose([x, y]);
  },
);

deadlineTest(
  "after several steps with batch norm the replicas' weights are bit-identical",
  300,
  async (signal) => {
    const [r0, r1] = await runReplicas(5, "bn", signal);
    assert.equal(r0.digest, r1.digest);
    // With train's own permissions (no --allow-all) the gradients still go through shared memory.
    assert.equal(r0.transport, "shared-memory");
  },
);

deadlineTest(
  "a replica that fails stops the whole group within seconds, naming it and its error",
  300,
  async (signal) => {
    const dir = await tempDir("galaxy-mirrored-test-");
    const started = performance.now();
    await assert.rejects(
      () =>
        launchReplicas({
          script: WORKER,
          args: [
            "--out",
            join(dir, "w"),
            "--steps",
            "100000",
            "--kind",
            "plain",
            "--crash-at",
            "3",
          ],
          replicas: 2,
          permissions: REPLICA_PERMISSIONS,
          signal,
        }),
      /^Error: replica 1 exited with status 1: .*replica 1 failed on purpose at step 3.*--resume/,
    );
    // Replica 0 was mid-run (100000 steps): it was stopped, not waited for.
    assert.ok(performance.now() - started < 30_000);
  },
);

deadlineTest(
  "launchReplicas: an aborted signal stops every replica and rejects with its reason",
  120,
  async () => {
    const dir = await tempDir("galaxy-mirrored-abort-");
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("stopped by the caller")), 1000);
    const started = performance.now();
    await assert.rejects(
      () =>
        launchReplicas({
          script: WORKER,
          args: ["--out", join(dir, "w"), "--steps", "100000", "--kind", "plain"],
          replicas: 2,
          permissions: REPLICA_PERMISSIONS,
          signal: abort.signal,
        }),
      /stopped by the caller/,
    );
    // SIGTERM, then SIGKILL after the 3 s grace: never the 100000 steps.
    assert.ok(performance.now() - started < 30_000);
  },
);

function trainMirrored(args: string[], signal: AbortSignal): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...REPLICA_PERMISSIONS, TRAIN, ...args],
    signal,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function checkpointStep(run: string): Promise<number> {
  try {
    return (await loadCheckpoint(join(run, "checkpoint")))?.state.step ?? 0;
  } catch {
    return 0;
  }
}

deadlineTest(
  "train --replicas 2: a replica killed with SIGKILL stops the run; --resume finishes it",
  600,
  async (signal) => {
    const data = await tinyDataset();
    const run = await tempDir("galaxy-mirrored-run-");
    const common = [
      "--data",
      data,
      "--out",
      run,
      "--epochs",
      "2",
      "--batch",
      "8",
      "--width",
      "0.125",
      "--checkpoint-steps",
      "1",
      "--checkpoint-seconds",
      "0",
      "--replicas",
      "2",
      "--backend",
      "cpu",
    ];
    const child = trainMirrored(common, signal);
    // However the checks below end, the launcher is stopped (SIGTERM: it stops its replicas).
    try {
      const deadline = Date.now() + 120_000;
      while ((await checkpointStep(run)) < 2) {
        assert.ok(Date.now() < deadline, "no checkpoint within 2 minutes");
        await new Promise((r) => setTimeout(r, 200));
      }
      // Kill replica 1 (a child of the launcher) the hard way.
      const ps = await new Deno.Command("pgrep", {
        signal,
        args: ["-f", `replica-rank=1 .*${run}|${run}.*replica-rank=1`],
        stdout: "piped",
      }).output();
      const pid = Number(new TextDecoder().decode(ps.stdout).trim().split("\n")[0]);
      assert.ok(pid > 0, "replica 1 not found");
      const killedAt = performance.now();
      Deno.kill(pid, "SIGKILL");
      const result = await child.output();
      assert.ok(performance.now() - killedAt < 15_000, "the run did not stop within seconds");
      assert.equal(result.success, false);
      assert.match(new TextDecoder().decode(result.stderr), /replica 1 was killed by SIGKILL/);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
    }
    const kept = await loadCheckpoint(join(run, "checkpoint"));
    assert.ok(kept && kept.state.step >= 2, "the last checkpoint is readable");

    const resumed = await trainMirrored([...common, "--resume"], signal).output();
    assert.ok(resumed.success, new TextDecoder().decode(resumed.stderr));
    const epochs = (await Deno.readTextFile(join(run, "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l).epoch);
    assert.deepEqual(epochs, [1, 2]);
    await Deno.stat(join(run, "report.json"));
  },
);

Deno.test("replica processes get exactly the permissions of deno task train", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  const train = config.tasks.train.split(" ").filter((w) => w.startsWith("--allow"));
  assert.deepEqual([...REPLICA_PERMISSIONS].sort(), train.sort());
});
