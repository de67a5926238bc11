/**
 * `deno task quality`: the toolkit's defaults against the PyTorch reference
 * (bench/torch_train_reference.py) over several seeds on one of the shared
 * real samples, written as tables into docs/quality.md.
 *
 * For each seed s: preprocess the sample with `--split-seed s` (so each
 * seed holds out different images), `deno task train` with the defaults
 * and the scheme's budget, the reference on the same shards with the same
 * budget, then both scored on the pooled val + test images
 * (lib/quality/summary.ts). Everything lands in a work folder and a step
 * whose output is there is not redone, so a killed run resumes.
 *
 * @module
 */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.ts";
import { type SeedScores, summarize, summaryMarkdown } from "./summary.ts";
import { toolkitScored, torchScored } from "./scored.ts";

/** A comparison the command knows how to set up. */
export interface QualityScheme {
  /** Sample folder under the shared data. */
  sample: string;
  /** preprocess flags. */
  preprocess: string[];
  /** Epochs of both sides. */
  epochs: number;
  /** Reference flags beyond data, epochs, batch and seed. */
  reference: string[];
  /** What the table is about. */
  title: string;
}

/** The comparisons of issue 23: the Kaggle votes, gz5 on the same images, Galaxy Zoo 1 classes. */
export const QUALITY_SCHEMES: Readonly<Record<string, QualityScheme>> = {
  votes: {
    sample: "kaggle-votes-sample",
    preprocess: ["--scheme", "votes", "--size", "32"],
    epochs: 10,
    reference: [],
    title: "Kaggle votes (37 fractions, RMSE; Q1 classes read off the fractions)",
  },
  gz5: {
    sample: "kaggle-votes-sample",
    preprocess: ["--scheme", "gz5", "--size", "32"],
    epochs: 10,
    reference: ["--loss", "focal", "--alpha", "0.25", "--gamma", "2"],
    title: "gz5 classes of the Kaggle sample (focal loss)",
  },
  gz1: {
    sample: "gz1-sample",
    preprocess: ["--size", "32"],
    epochs: 8,
    reference: ["--loss", "focal", "--alpha", "0.25", "--gamma", "2"],
    title: "Galaxy Zoo 1 classes (focal loss)",
  },
};

/** Settings of {@linkcode runQuality}. */
export interface QualityOptions {
  /** Key of {@linkcode QUALITY_SCHEMES}. */
  scheme: string;
  /** Seeds to run. */
  seeds: number[];
  /** Folder of the shared samples (`../shared/data`). */
  shared: string;
  /** Work folder (datasets, runs, predictions). */
  work: string;
  /** Markdown file whose section for this scheme is replaced (created if missing). */
  doc: string;
  /** Extra `deno task train` flags (then the table is not "the defaults"). */
  trainFlags: string[];
  /** Score the toolkit with test-time augmentation (`evaluate --tta`). */
  tta: boolean;
  /** Repository root (where deno.json is). */
  root: string;
  /** Python with torch and torchvision. */
  python: string;
  /** Seconds any one step may take. */
  stepSeconds: number;
  /** Progress lines. */
  log: (line: string) => void;
}

async function run(cmd: string, args: string[], o: QualityOptions, logFile: string) {
  const r = await new Deno.Command(cmd, {
    args,
    cwd: o.root,
    // OpenMP threads that sleep instead of spinning: on a shared machine torch runs 3-4 times
    // faster so (the results do not change).
    env: Deno.env.get("OMP_WAIT_POLICY") ? {} : { OMP_WAIT_POLICY: "PASSIVE" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(o.stepSeconds * 1000),
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  await Deno.writeTextFile(logFile, text);
  if (!r.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ""}); ` +
        `its output is in ${logFile}:\n${text.slice(-2000)}`,
    );
  }
}

/** Runs (or resumes) every seed and rewrites the scheme's section of the doc. */
export async function runQuality(o: QualityOptions): Promise<string> {
  const q = QUALITY_SCHEMES[o.scheme];
  if (!q) throw new Error(`unknown scheme '${o.scheme}': use ${Object.keys(QUALITY_SCHEMES)}`);
  const sample = join(o.shared, q.sample);
  if (!existsSync(sample)) throw new Error(`${sample} does not exist (the shared samples)`);
  await Deno.mkdir(join(o.work, "logs"), { recursive: true });
  const scores: SeedScores[] = [];
  for (const seed of o.seeds) {
    const data = join(o.work, `${o.scheme}-s${seed}`);
    const runDir = join(o.work, `toolkit-${o.scheme}-s${seed}`);
    const ref = join(o.work, `torch-${o.scheme}-s${seed}`);
    const log = (step: string) => join(o.work, "logs", `${step}-${o.scheme}-s${seed}.log`);
    if (!existsSync(join(data, "manifest.json"))) {
      o.log(`seed ${seed}: preprocess (split seed ${seed})`);
      await run(
        "deno",
        [
          ...["task", "-q", "preprocess", "--in", sample, "--out", data],
          ...q.preprocess,
          ...["--split-seed", String(seed)],
        ],
        o,
        log("preprocess"),
      );
    }
    if (!existsSync(join(runDir, "report.json"))) {
      o.log(`seed ${seed}: train the toolkit`);
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
      await run(
        "deno",
        [
          ...["task", "-q", "train", "--data", data, "--out", runDir],
          ...["--epochs", String(q.epochs), "--batch", "32", "--patience", "0"],
          ...["--seed", String(seed), ...o.trainFlags],
        ],
        o,
        log("train"),
      );
    }
    if (!existsSync(`${ref}.predictions.json`)) {
      o.log(`seed ${seed}: train the PyTorch reference`);
      await run(
        o.python,
        [
          join(o.root, "bench", "torch_train_reference.py"),
          ...["--data", data, "--epochs", String(q.epochs), "--batch", "32"],
          ...["--seed", String(seed), ...q.reference],
          ...["--out", `${ref}.json`, "--predictions", `${ref}.predictions.json.partial`],
        ],
        o,
        log("torch"),
      );
      await Deno.rename(`${ref}.predictions.json.partial`, `${ref}.predictions.json`);
    }
    o.log(`seed ${seed}: score both on val + test`);
    scores.push({
      seed,
      toolkit: await toolkitScored(
        runDir,
        data,
        join(runDir, o.tta ? "quality-tta" : "quality"),
        o.tta,
      ),
      reference: await torchScored(`${ref}.predictions.json`, data),
    });
  }
  const summary = summarize(scores);
  const flags = o.trainFlags.length ? ` ${o.trainFlags.join(" ")}` : "";
  const variant = `${flags ? ":flags" : ""}${o.tta ? ":tta" : ""}`;
  const section = [
    `### ${q.title}`,
    "",
    `Written by \`deno task quality --scheme ${o.scheme} --seeds ${o.seeds.join(",")}${
      flags ? ` --train-flags '${flags.trim()}'` : ""
    }${o.tta ? " --tta" : ""}\` (${
      new Date().toISOString().slice(0, 10)
    }): \`${q.sample}\` preprocessed with ` +
    `\`${q.preprocess.join(" ")} --split-seed SEED\`, ${q.epochs} epochs, batch 32, both sides ` +
    `scored on the pooled val + test images of each seed's split.`,
    "",
    summaryMarkdown(summary, {
      toolkit: `toolkit${flags ? ` (${flags.trim()})` : " defaults"}${
        o.tta ? ", evaluated with TTA" : ""
      }`,
      reference: "PyTorch reference",
    }),
  ].join("\n");
  await writeSection(o.doc, `quality:${o.scheme}${variant}`, section);
  // Tables as `deno task check` wants them (aligned columns).
  const fmt = await new Deno.Command("deno", {
    args: ["fmt", "--quiet", o.doc],
    cwd: o.root,
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!fmt.success) {
    o.log(`warning: deno fmt ${o.doc} failed: ${new TextDecoder().decode(fmt.stderr).trim()}`);
  }
  return section;
}

/** Replaces the text between `<!-- KEY -->` and `<!-- /KEY -->` in `path`, or appends it. */
export async function writeSection(path: string, key: string, body: string): Promise<void> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const open = `<!-- ${key} -->`;
  const close = `<!-- /${key} -->`;
  const block = `${open}\n${body.trim()}\n${close}`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  const next = a >= 0 && b > a
    ? text.slice(0, a) + block + text.slice(b + close.length)
    : `${text.trimEnd()}${text ? "\n\n" : ""}${block}\n`;
  await writeFileAtomic(path, next);
}
