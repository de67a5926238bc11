/**
 * `evaluate`'s pass over a split: the run's predictions for every image
 * that has a class, kept as class probabilities (a votes run's question-1
 * fractions, renormalised), the 37 fractions where there are some, and the
 * most confidently wrong galaxies with their pixels for the picture.
 *
 * @module
 */
import type { Dataset, Split } from "../data/dataset.ts";
import { NUM_VOTES, voteIndex } from "../data/schema.ts";
import type { WrongGalaxy } from "../evaluate.ts";
import { predictBatch } from "../inference.ts";
import { argmaxAt } from "../metrics.ts";
import type { Run } from "../run/open.ts";
import type { LabelSource } from "./labels.ts";

/** A wrong galaxy with its pixels, for the grid. */
export interface WrongCandidate extends WrongGalaxy {
  /** side x side x 3 bytes. */
  pixels: Uint8Array;
}

/** Keeps the `k` wrong predictions with the highest predicted probability. */
export class WorstK {
  items: WrongCandidate[] = [];
  constructor(readonly k: number) {}
  offer(probability: number, make: () => WrongCandidate): void {
    if (this.k <= 0) return;
    if (
      this.items.length >= this.k && probability <= this.items[this.items.length - 1].probability
    ) {
      return;
    }
    this.items.push(make());
    // Ties keep the earlier (stored-order) image first: a stable sort.
    this.items.sort((a, b) => b.probability - a.probability);
    if (this.items.length > this.k) this.items.pop();
  }
}

/** The predictions of the images that have a class, in stored order. */
export interface Predictions {
  /** Images scored. */
  n: number;
  /** Images of the split without a class under the label source (not scored). */
  leftOut: number;
  /** n x classes probabilities. */
  probs: Float32Array;
  /** n true classes. */
  labels: Int32Array;
  /** n ids of the scored images (a paired comparison matches images by id). */
  ids: string[];
  /** n predicted classes (argmax of `probs`). */
  predicted: Int32Array;
  /** n x 37 predicted fractions (votes runs), else null. */
  outputs: Float32Array | null;
  /** n x 37 volunteers' fractions (datasets with fractions), else null. */
  truthVotes: Float32Array | null;
  /** The most confidently wrong galaxies, highest probability first. */
  worst: WrongCandidate[];
}

/** Settings of {@linkcode predictSplit}. */
export interface PredictSplitOptions {
  split: Split;
  labels: LabelSource;
  batchSize: number;
  tta?: boolean;
  /** Wrong galaxies to keep. */
  worst: number;
  onProgress?: (done: number, total: number) => void;
}

/** Predicts every image of the split and keeps what scoring and the pictures need. */
export async function predictSplit(
  run: Run,
  ds: Dataset,
  o: PredictSplitOptions,
): Promise<Predictions> {
  const r = run.dataset;
  const total = ds.size(o.split);
  const { classes, deriveClass } = o.labels;
  const c = classes.length;
  const width = r.classes.length;
  const probs = new Float32Array(total * c);
  const labels = new Int32Array(total);
  const outputs = r.kind === "votes" ? new Float32Array(total * NUM_VOTES) : null;
  const truthVotes = ds.manifest.hasVotes ? new Float32Array(total * NUM_VOTES) : null;
  const recordBytes = r.size * r.size * 3;
  const worst = new WorstK(o.worst);
  const ids: string[] = [];
  const predicted = new Int32Array(total);
  const q1 = voteIndex("Class1.1");
  let n = 0, seen = 0, leftOut = 0;
  o.onProgress?.(0, total);
  for await (const b of ds.batches(o.split, { batchSize: o.batchSize })) {
    const out = await predictBatch(run.model, b, { tta: o.tta, flipPairs: r.flipPairs });
    for (let i = 0; i < b.n; i++) {
      const v = b.votes ? b.votes.subarray(i * NUM_VOTES, (i + 1) * NUM_VOTES) : null;
      const label = deriveClass ? deriveClass(v!) : b.labels![i];
      if (label === null) {
        leftOut++;
        continue;
      }
      const row = out.subarray(i * width, (i + 1) * width);
      const p = probs.subarray(n * c, (n + 1) * c);
      if (outputs) {
        // Q1's three fractions sum to 1 by the head's construction; renormalise against rounding.
        const s = row[q1] + row[q1 + 1] + row[q1 + 2];
        for (let k = 0; k < 3; k++) p[k] = s > 0 ? row[q1 + k] / s : 1 / 3;
        outputs.set(row, n * NUM_VOTES);
      } else {
        p.set(row);
      }
      labels[n] = label;
      if (v && truthVotes) truthVotes.set(v, n * NUM_VOTES);
      const pred = argmaxAt(p, 0, c);
      ids.push(b.ids[i]);
      predicted[n] = pred;
      if (pred !== label) {
        worst.offer(p[pred], () => ({
          id: b.ids[i],
          true: classes[label],
          predicted: classes[pred],
          probability: p[pred],
          trueProbability: p[label],
          pixels: b.pixels.slice(i * recordBytes, (i + 1) * recordBytes),
        }));
      }
      n++;
    }
    seen += b.n;
    o.onProgress?.(seen, total);
  }
  return {
    n,
    leftOut,
    probs: probs.subarray(0, n * c),
    labels: labels.subarray(0, n),
    ids,
    predicted: predicted.subarray(0, n),
    outputs: outputs?.subarray(0, n * NUM_VOTES) ?? null,
    truthVotes: truthVotes?.subarray(0, n * NUM_VOTES) ?? null,
    worst: worst.items,
  };
}
