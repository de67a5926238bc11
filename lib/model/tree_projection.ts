/**
 * Makes 37 predicted vote fractions obey the Galaxy Zoo decision tree: each
 * question's answers sum to the fraction that reached the question (the sum
 * of its parent answers; 1 for questions 1 and 6, asked of everyone), and
 * no fraction is negative.
 *
 * The default votes head (37 independent sigmoids) does not obey the tree
 * by itself (its question-1 answers can sum to more than 1). The fractions
 * are moved to the nearest (Euclidean) point that does: the orthogonal
 * projection onto the convex set C = {v >= 0 : A v = b} of tree-consistent
 * fractions, computed by Dykstra's alternating projections (Boyle & Dykstra
 * 1986) between the affine set {A v = b} (closed form,
 * v - A^T (A A^T)^-1 (A v - b)) and the non-negative orthant. The true
 * fractions lie in C, and projection onto a convex set never moves a point
 * further from any point of the set, so this can only lower every image's
 * squared error: a free improvement, unlike normalising each question and
 * rescaling it by its reach (the winning Kaggle solution's output layer),
 * which measured slightly worse than the raw sigmoids here
 * (docs/quality.md).
 *
 * The {@linkcode TreeProjection} layer applies it to a model's outputs at
 * prediction time only (training fits the sigmoids as they are), so
 * validation, `evaluate`, `predict`, `serve` and the web export all see
 * tree-consistent fractions.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { NUM_VOTES, QUESTIONS, questionSlice, voteIndex } from "../data/schema.ts";

/** The tree's constraints A v = b, one row per question (A: 11 x 37). */
function constraints(): { a: Float64Array[]; b: Float64Array } {
  const a: Float64Array[] = [];
  const b = new Float64Array(QUESTIONS.length);
  QUESTIONS.forEach((q, k) => {
    const row = new Float64Array(NUM_VOTES);
    const [lo, hi] = questionSlice(q);
    for (let i = lo; i < hi; i++) row[i] = 1;
    for (const p of q.parents) row[voteIndex(p)] -= 1;
    if (q.parents.length === 0) b[k] = 1;
    a.push(row);
  });
  return { a, b };
}

/** Inverse of a small symmetric positive definite matrix (Gauss-Jordan, float64). */
function invert(m: Float64Array[]): Float64Array[] {
  const n = m.length;
  const w = m.map((r, i) => {
    const row = new Float64Array(2 * n);
    row.set(r);
    row[n + i] = 1;
    return row;
  });
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(w[r][c]) > Math.abs(w[p][c])) p = r;
    [w[c], w[p]] = [w[p], w[c]];
    const d = w[c][c];
    for (let j = 0; j < 2 * n; j++) w[c][j] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = w[r][c];
      if (f !== 0) { for (let j = 0; j < 2 * n; j++) w[r][j] -= f * w[c][j]; }
    }
  }
  return w.map((r) => r.slice(n));
}

const { a: A, b: B } = constraints();
/** (A A^T)^-1, 11 x 11. */
const GRAM_INV = invert(
  A.map((ri) => Float64Array.from(A, (rj) => ri.reduce((s, x, k) => s + x * rj[k], 0))),
);

/**
 * The affine part of the projection as one map, v -> v M + c (row vectors):
 * M = I - A^T (A A^T)^-1 A (37 x 37, symmetric) and c = b^T (A A^T)^-1 A
 * (37), in float64. The same map as {@linkcode projectToTree}'s affine step
 * (which applies it factor by factor), for the exported graphs
 * (lib/export/onnx.ts, python/galaxy_torch.py).
 */
export function affineProjection(): { matrix: Float64Array; offset: Float64Array } {
  const k = A.length;
  // W = (A A^T)^-1 A, k x 37.
  const w = GRAM_INV.map((g) =>
    Float64Array.from({ length: NUM_VOTES }, (_, j) => g.reduce((s, x, i) => s + x * A[i][j], 0))
  );
  const matrix = new Float64Array(NUM_VOTES * NUM_VOTES);
  for (let r = 0; r < NUM_VOTES; r++) {
    for (let c = 0; c < NUM_VOTES; c++) {
      let s = r === c ? 1 : 0;
      for (let i = 0; i < k; i++) s -= A[i][r] * w[i][c];
      matrix[r * NUM_VOTES + c] = s;
    }
  }
  const offset = Float64Array.from(
    { length: NUM_VOTES },
    (_, j) => w.reduce((s, row, i) => s + B[i] * row[j], 0),
  );
  return { matrix, offset };
}

/** Dykstra iterations {@linkcode projectToTree} runs at most per row. */
export const MAX_PROJECTION_ITERATIONS = 10_000;
/** {@linkcode projectToTree}'s default stopping tolerance on the most negative fraction. */
export const PROJECTION_TOLERANCE = 1e-7;

/** In place: v <- v - A^T (A A^T)^-1 (A v - b). */
function projectAffine(v: Float64Array): void {
  const k = A.length;
  const r = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = -B[i];
    for (let j = 0; j < NUM_VOTES; j++) s += A[i][j] * v[j];
    r[i] = s;
  }
  for (let i = 0; i < k; i++) {
    let l = 0;
    for (let j = 0; j < k; j++) l += GRAM_INV[i][j] * r[j];
    for (let j = 0; j < NUM_VOTES; j++) v[j] -= A[i][j] * l;
  }
}

/** Largest |A v - b| of one row of fractions. */
export function treeViolation(v: ArrayLike<number>, offset = 0): number {
  let worst = 0;
  for (let i = 0; i < A.length; i++) {
    let s = -B[i];
    for (let j = 0; j < NUM_VOTES; j++) s += A[i][j] * v[offset + j];
    worst = Math.max(worst, Math.abs(s));
  }
  return worst;
}

/**
 * The nearest tree-consistent fractions to `votes` (n x 37, row-major):
 * every question's answers sum to its reach within `tolerance` (default
 * 1e-7) and none is negative.
 */
export function projectToTree(
  votes: ArrayLike<number>,
  tolerance = PROJECTION_TOLERANCE,
): Float32Array {
  if (votes.length % NUM_VOTES !== 0) {
    throw new Error(`projectToTree: ${votes.length} values are not rows of ${NUM_VOTES}`);
  }
  const out = new Float32Array(votes.length);
  const x = new Float64Array(NUM_VOTES);
  const y = new Float64Array(NUM_VOTES);
  const q = new Float64Array(NUM_VOTES);
  for (let r = 0; r < votes.length; r += NUM_VOTES) {
    for (let j = 0; j < NUM_VOTES; j++) x[j] = Number.isFinite(votes[r + j]) ? votes[r + j] : 0;
    q.fill(0);
    // Dykstra: the affine set needs no correction term (its projection is affine).
    for (let it = 0; it < MAX_PROJECTION_ITERATIONS; it++) {
      y.set(x);
      projectAffine(y);
      let negative = 0;
      for (let j = 0; j < NUM_VOTES; j++) {
        const z = y[j] + q[j];
        x[j] = z > 0 ? z : 0;
        q[j] = z - x[j];
        negative = Math.max(negative, -y[j]);
      }
      if (negative <= tolerance) {
        // y meets the tree exactly and is within `tolerance` of non-negative.
        for (let j = 0; j < NUM_VOTES; j++) x[j] = y[j] > 0 ? y[j] : 0;
        break;
      }
    }
    for (let j = 0; j < NUM_VOTES; j++) out[r + j] = x[j];
  }
  return out;
}

/**
 * {@linkcode projectToTree} as a layer: the identity in training (the loss
 * sees the raw outputs), the projection otherwise (computed on the CPU from
 * the outputs read back: 37 values an image). Serialised in model.json as
 * `GalaxyTreeProjection`.
 */
export class TreeProjection extends tf.layers.Layer {
  /** Name under which the layer is serialised in model.json. */
  static className = "GalaxyTreeProjection";

  /** `config.name` is the layer name. */
  constructor(config: { name?: string } = {}) {
    super(config);
  }

  /** Same shape as the input, which must end in the 37 vote fractions. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (s[s.length - 1] !== NUM_VOTES) {
      throw new Error(`TreeProjection needs ${NUM_VOTES} inputs, got ${s[s.length - 1]}`);
    }
    return s;
  }

  /** Projects outside training; passes the fractions through in training. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs?.training) return tf.clone(x);
    return tf.tensor(projectToTree(x.dataSync() as Float32Array), x.shape, "float32");
  }
}
tf.serialization.registerClass(TreeProjection);
