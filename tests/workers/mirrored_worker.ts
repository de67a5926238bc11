/**
 * A replica process for the mirrored tests: joins a group of `size`
 * replicas, runs `steps` mirrored steps of a small conv net on its slice of
 * a fixed global batch, and writes its weights and their digest.
 *
 * Started by `launchReplicas` (which adds the --replica-* flags) with
 * `--out PREFIX --steps N --kind plain|bn [--crash-at STEP]`: "plain" is a
 * net without batch norm trained with SGD, "bn" one with batch norm and Adam.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { setupBackend } from "../../lib/backend.ts";
import { categoricalFocalLoss } from "../../lib/focal_loss.ts";
import { joinReplicas, mirroredStep } from "../../lib/train/mirrored.ts";
import { adam, sgdNesterov } from "../../lib/train/optimizers.ts";
import { trainableVariables } from "../../lib/train/step.ts";
import { weightsDigest } from "../../lib/train/trainer.ts";
import { globalBatch, smallNet } from "./mirrored_model.ts";

const { values: f } = parseArgs({
  args: Deno.args,
  options: {
    "replica-rank": { type: "string" },
    "replica-count": { type: "string" },
    "replica-dir": { type: "string" },
    out: { type: "string" },
    steps: { type: "string" },
    kind: { type: "string" },
    "crash-at": { type: "string" },
  },
});
const out = f.out!, steps = f.steps!, kind = f.kind!, crashAt = f["crash-at"];
await setupBackend({ requested: "cpu" });
const collective = await joinReplicas({
  rank: Number(f["replica-rank"]),
  count: Number(f["replica-count"]),
  dir: f["replica-dir"]!,
});
const model = smallNet(kind === "bn");
const vars = trainableVariables(model);
// Start from replica 0's weights, as the trainer does.
for (const v of vars) {
  const data = (v.dataSync() as Float32Array).slice();
  await collective.broadcast(data);
  tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
}
const optimizer = kind === "bn" ? adam(vars) : sgdNesterov(vars);
const ctx = { model, vars, optimizer, loss: categoricalFocalLoss(), collective };
const { x, y, labels, n } = globalBatch();
const local = n / collective.size;
const from = collective.rank * local;
for (let s = 0; s < Number(steps); s++) {
  if (crashAt !== undefined && collective.rank === 1 && s === Number(crashAt)) {
    throw new Error(`replica 1 failed on purpose at step ${s}`);
  }
  const xs = x.slice([from, 0, 0, 0], [local, -1, -1, -1]);
  const ys = y.slice([from, 0], [local, -1]);
  await mirroredStep(ctx, xs, ys, labels.slice(from, from + local), 0.05, s);
  tf.dispose([xs, ys]);
}
const weights = vars.map((v) => Array.from(v.dataSync()));
await Deno.writeTextFile(
  `${out}.${collective.rank}.json`,
  JSON.stringify({ digest: weightsDigest(vars), weights, transport: collective.transport }),
);
await collective.close();
