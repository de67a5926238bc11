/**
 * What the quality comparison scores: a run's predictions on the pooled
 * validation and test splits of a dataset, image by image, for the toolkit
 * (through `evaluate`) and for the PyTorch reference (from the predictions
 * file `bench/torch_train_reference.py --predictions` writes), on the same
 * images with the same true classes.
 *
 * @module
 */
import { join } from "node:path";
import { openDataset, type Split } from "../data/dataset.ts";
import { getLabelScheme } from "../data/label_schemes.ts";
import { NUM_VOTES, voteIndex } from "../data/schema.ts";
import { evaluate } from "../evaluate.ts";
import type { ScoredImages } from "../evaluate/compare.ts";
import { argmaxAt } from "../metrics.ts";

/** The splits pooled into one evaluation set. */
export const POOLED_SPLITS: readonly Split[] = ["val", "test"];

/** Images of several scorings of the same run concatenated (ids must not repeat). */
export function concatScored(parts: readonly ScoredImages[]): ScoredImages {
  if (parts.length === 0) throw new Error("nothing scored");
  const [first] = parts;
  const ids = parts.flatMap((p) => p.ids);
  if (new Set(ids).size !== ids.length) throw new Error("an image id is scored twice");
  const cat = <T extends Float32Array | Int32Array>(xs: T[], make: (n: number) => T) => {
    const out = make(xs.reduce((n, x) => n + x.length, 0));
    let off = 0;
    for (const x of xs) {
      out.set(x as never, off);
      off += x.length;
    }
    return out;
  };
  return {
    kind: first.kind,
    classes: first.classes,
    ids,
    predicted: cat(parts.map((p) => p.predicted), (n) => new Int32Array(n)),
    labels: cat(parts.map((p) => p.labels), (n) => new Int32Array(n)),
    votes: first.votes
      ? {
        pred: cat(parts.map((p) => p.votes!.pred), (n) => new Float32Array(n)),
        truth: cat(parts.map((p) => p.votes!.truth), (n) => new Float32Array(n)),
      }
      : null,
  };
}

/** Ids prefixed with `tag/`, so scorings of different seeds can be pooled. */
export function tagScored(s: ScoredImages, tag: string): ScoredImages {
  return { ...s, ids: s.ids.map((id) => `${tag}/${id}`) };
}

/**
 * A toolkit run scored by `evaluate` on the pooled splits (reports under
 * `out/<split>`), with test-time augmentation if `tta`.
 */
export async function toolkitScored(
  run: string,
  data: string,
  out: string,
  tta = false,
): Promise<ScoredImages> {
  const parts: ScoredImages[] = [];
  for (const split of POOLED_SPLITS) {
    let scored: ScoredImages | null = null;
    await evaluate({
      tta,
      run,
      data,
      split,
      out: join(out, split),
      worst: 0,
      onScored: (s) => scored = s,
    });
    parts.push(scored!);
  }
  return concatScored(parts);
}

/** `--predictions` file of bench/torch_train_reference.py. */
interface TorchPredictions {
  kind: "classes" | "votes";
  classes: string[];
  splits: Record<string, { ids: string[]; outputs: number[][] }>;
}

/**
 * The PyTorch reference's predictions on the pooled splits, scored as
 * `evaluate` scores a toolkit run: votes by question 1 of the fractions
 * (true class by the `q1` scheme, images it leaves out left out), classes
 * by the dataset's labels.
 *
 * @throws {Error} when the file and the dataset disagree on ids or kind.
 */
export async function torchScored(predictions: string, data: string): Promise<ScoredImages> {
  const p = JSON.parse(await Deno.readTextFile(predictions)) as TorchPredictions;
  const ds = await openDataset(data);
  try {
    const votes = ds.manifest.scheme.kind === "votes";
    if (votes !== (p.kind === "votes")) {
      throw new Error(`${predictions} holds ${p.kind} predictions; ${data} is not that kind`);
    }
    const q1 = getLabelScheme("q1");
    const classes = votes ? q1.classNames : p.classes;
    const c = classes.length;
    const ids: string[] = [];
    const predicted: number[] = [];
    const labels: number[] = [];
    const pred: number[] = [];
    const truth: number[] = [];
    const a = voteIndex("Class1.1");
    for (const split of POOLED_SPLITS) {
      const rows = p.splits[split];
      if (!rows) throw new Error(`${predictions} has no '${split}' split`);
      let i = 0;
      for await (const b of ds.batches(split, { batchSize: 256 })) {
        for (let k = 0; k < b.n; k++, i++) {
          if (rows.ids[i] !== b.ids[k]) {
            throw new Error(
              `${predictions}: image ${i} of '${split}' is ${rows.ids[i]}, the dataset's is ${
                b.ids[k]
              }: not predicted on this dataset`,
            );
          }
          const out = rows.outputs[i];
          if (votes) {
            const v = b.votes!.subarray(k * NUM_VOTES, (k + 1) * NUM_VOTES);
            const label = q1.target({ id: b.ids[k], votes: v });
            if (label === null) continue;
            labels.push(label);
            predicted.push(argmaxAt(out, a, 3));
            pred.push(...out);
            truth.push(...v);
          } else {
            if (out.length !== c) throw new Error(`${predictions}: row ${i} is not ${c} wide`);
            labels.push(b.labels![k]);
            predicted.push(argmaxAt(out, 0, c));
          }
          ids.push(b.ids[k]);
        }
      }
      if (i !== rows.ids.length) {
        throw new Error(`${predictions}: '${split}' has ${rows.ids.length} rows, the dataset ${i}`);
      }
    }
    return {
      kind: votes ? "votes" : "classes",
      classes: [...classes],
      ids,
      predicted: Int32Array.from(predicted),
      labels: Int32Array.from(labels),
      votes: votes ? { pred: Float32Array.from(pred), truth: Float32Array.from(truth) } : null,
    };
  } finally {
    ds.close();
  }
}
