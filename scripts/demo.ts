/**
 * `deno task demo`: the whole pipeline on built-in generated data, in a few
 * minutes on a laptop CPU: generate Galaxy-Zoo-format galaxies, preprocess,
 * train a short ResNet-34 run, predict the unlabeled images, evaluate on the
 * test split, and print where each output is.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { describeBackend, setupBackend } from "../lib/backend.ts";
import { runMain } from "../lib/cli.ts";
import { parseTask } from "../lib/flags.ts";
import { DEMO_TASK } from "../lib/tasks/demo.ts";
import { TEST_IMAGES_DIR, writeSyntheticKaggle } from "../lib/data/synthetic.ts";
import { evaluate } from "../lib/evaluate.ts";
import { resolveInput } from "../lib/predict/inputs.ts";
import { predict } from "../lib/predict/predict.ts";
import { openRun } from "../lib/run/open.ts";
import { preprocess } from "../lib/preprocess.ts";
import { train, TRAIN_DEFAULTS } from "../lib/train/trainer.ts";
import { printer } from "./train.ts";

await runMain(async () => {
  const { count, size, epochs, seed, ...f } = parseTask(DEMO_TASK, Deno.args);
  const out = resolve(f.out);
  const started = performance.now();
  const step = (n: number, what: string) => console.log(`\n[${n}/5] ${what}`);

  const backend = await setupBackend();
  console.log(describeBackend(backend));

  step(1, `generating ${count} Galaxy-Zoo-format galaxies`);
  const raw = join(out, "raw");
  const gen = await writeSyntheticKaggle(raw, { count, seed });
  console.log(`  ${raw} (${gen.rendered} rendered, ${gen.skipped} already there)`);

  step(2, `preprocessing to ${size} px`);
  const dataset = join(out, "dataset");
  const pre = await preprocess({
    inDir: raw,
    outDir: dataset,
    size,
    splitSeed: seed,
    overwrite: true,
  });
  const c = pre.manifest.counts;
  console.log(
    `  ${dataset}: train ${c.train.total}, val ${c.val.total}, test ${c.test.total}, ` +
      `unlabeled ${c.unlabeled.total} (${pre.manifest.problems.leftOut} fit no gz5 class)`,
  );

  step(3, `training ResNet-34 for ${epochs} epochs`);
  const run = join(out, `run-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  await train(
    {
      ...TRAIN_DEFAULTS,
      data: dataset,
      out: run,
      epochs,
      batch: 16,
      seed,
      lr: 2e-3,
      warmupEpochs: 1,
      patience: 0,
      alpha: "balanced",
    },
    printer(),
  );

  step(4, "predicting the unlabeled galaxies");
  const predictions = join(out, "predictions.csv");
  const opened = await openRun(run);
  try {
    const images = join(raw, TEST_IMAGES_DIR);
    const summary = await predict({
      run: opened,
      input: await resolveInput(images),
      inPath: images,
      out: predictions,
      resume: false,
    });
    console.log(`  ${summary.predicted} predicted, ${summary.failed} unreadable`);
  } finally {
    opened.model.dispose();
  }

  step(5, "evaluating on the test split");
  const reportDir = join(out, "report");
  const report = await evaluate({ run, data: dataset, out: reportDir, backend: backend.name });
  const m = report.classification;
  {
    console.log(
      `  accuracy ${(100 * m.accuracy).toFixed(1)}%, balanced ${
        (100 * m.balancedAccuracy).toFixed(1)
      }%, ` +
        `macro-F1 ${(100 * m.macroF1).toFixed(1)}% on ${m.n} test galaxies`,
    );
  }

  const minutes = ((performance.now() - started) / 60000).toFixed(1);
  console.log(`\ndone in ${minutes} min. Outputs:
  generated data   ${raw}
  dataset          ${dataset}  (manifest.json, report.json)
  training run     ${run}  (model/, metrics.jsonl, curves.png, report.json)
  predictions      ${predictions}
  evaluation       ${reportDir}  (report.md, confusion.png, curves.png, wrong.png)`);
});
