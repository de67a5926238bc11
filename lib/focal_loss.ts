/**
 * Focal loss (Lin et al. 2017), which down-weights easy examples so that a
 * strongly imbalanced set does not train a majority-class predictor.
 *
 * Both forms are plain `(yTrue, yPred) => tf.Scalar` functions, usable in
 * `model.compile({ loss })` and in a hand-written training step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A loss as TensorFlow.js' `compile` and a custom step both take it. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

/** Options of {@linkcode binaryFocalLoss}. */
export interface BinaryFocalOptions {
  /** Weight of the positive side; negatives get 1 - alpha. Default 0.25. */
  alpha?: number;
  /** Focusing exponent; 0 gives alpha-weighted binary cross-entropy. Default 2. */
  gamma?: number;
  /** Probabilities are clipped to [epsilon, 1 - epsilon]. Default 1e-7. */
  epsilon?: number;
}

/**
 * Per-element binary focal loss, averaged over every element:
 * `-alpha_t (1 - p_t)^gamma log(p_t)` with `p_t = p` where y = 1, else
 * `1 - p`. Soft targets (vote fractions) interpolate both terms linearly.
 */
export function binaryFocalLoss(options: BinaryFocalOptions = {}): LossFn {
  const { alpha = 0.25, gamma = 2, epsilon = 1e-7 } = options;
  checkGamma(gamma);
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const y = tf.cast(yTrue, "float32");
      const p = tf.clipByValue(yPred, epsilon, 1 - epsilon);
      const oneMinusY = tf.sub(1, y);
      const alphaT = tf.add(tf.mul(y, alpha), tf.mul(oneMinusY, 1 - alpha));
      const pT = tf.add(tf.mul(y, p), tf.mul(oneMinusY, tf.sub(1, p)));
      const loss = tf.mul(tf.mul(alphaT, modulate(pT, gamma)), tf.neg(tf.log(pT)));
      return tf.mean(loss) as tf.Scalar;
    });
}

/** Options of {@linkcode categoricalFocalLoss}. */
export interface CategoricalFocalOptions {
  /** One weight for every class, or one per class (class balancing). Default 0.25. */
  alpha?: number | number[];
  /** Focusing exponent; 0 gives alpha-weighted cross-entropy. Default 2. */
  gamma?: number;
  /** Probabilities are clipped to [epsilon, 1 - epsilon]. Default 1e-7. */
  epsilon?: number;
  /** yPred holds logits, not probabilities. Default false. */
  fromLogits?: boolean;
  /** Mixes the one-hot targets with the uniform distribution. Default 0. */
  labelSmoothing?: number;
}

/**
 * Categorical focal cross-entropy with Keras' `CategoricalFocalCrossentropy`
 * semantics: renormalise, clip, sum over classes of
 * `alpha (1 - p_c)^gamma (-y_c log p_c)`, mean over the batch.
 */
export function categoricalFocalLoss(options: CategoricalFocalOptions = {}): LossFn {
  const { alpha = 0.25, gamma = 2, epsilon = 1e-7, fromLogits = false, labelSmoothing = 0 } =
    options;
  checkGamma(gamma);
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
    throw new Error(`labelSmoothing must be in [0, 1), got ${labelSmoothing}`);
  }
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const classes = yPred.shape[yPred.rank - 1]!;
      if (Array.isArray(alpha) && alpha.length !== classes) {
        throw new Error(`alpha has ${alpha.length} weights for ${classes} classes`);
      }
      let p = fromLogits ? tf.softmax(yPred) : yPred;
      p = tf.div(p, tf.sum(p, -1, true));
      p = tf.clipByValue(p, epsilon, 1 - epsilon);
      let y = tf.cast(yTrue, "float32");
      if (labelSmoothing > 0) y = tf.add(tf.mul(y, 1 - labelSmoothing), labelSmoothing / classes);
      const ce = tf.mul(tf.neg(y), tf.log(p));
      const weight = tf.mul(modulate(p, gamma), Array.isArray(alpha) ? tf.tensor1d(alpha) : alpha);
      return tf.mean(tf.sum(tf.mul(weight, ce), -1)) as tf.Scalar;
    });
}

/**
 * The named class weightings `--alpha` takes, each with the power of the
 * inverse class frequency it uses in {@linkcode balancedAlpha}.
 */
export const BALANCED_ALPHA_POWERS = { balanced: 1, "sqrt-balanced": 0.5 } as const;

/** A named class weighting of `--alpha`. */
export type BalancedAlphaName = keyof typeof BALANCED_ALPHA_POWERS;

/** `--alpha`: a fixed focal weight, or a named class weighting. */
export type FocalAlpha = number | BalancedAlphaName;

/** Whether `value` names a class weighting of {@linkcode BALANCED_ALPHA_POWERS}. */
export function isBalancedAlphaName(value: string): value is BalancedAlphaName {
  return Object.hasOwn(BALANCED_ALPHA_POWERS, value);
}

/**
 * Inverse-frequency class weights raised to `power`, normalised to mean 1:
 * `(total / (present * count))^power` (absent classes 0). `power` 1 is
 * `--alpha balanced`; 0.5, `--alpha sqrt-balanced`, the softer inverse
 * square-root form (as the square-root resampling of rare hashtags in
 * Mahajan et al. 2018, "Exploring the Limits of Weakly Supervised
 * Pretraining"), which gives the rarest class of a 100:1 split 10x rather
 * than 100x the weight of the commonest.
 */
export function balancedAlpha(counts: readonly number[], power = 1): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const present = counts.filter((c) => c > 0).length;
  if (total === 0 || present === 0) throw new Error("balancedAlpha: no examples");
  const raw = counts.map((c) => (c > 0 ? (total / (present * c)) ** power : 0));
  const mean = raw.reduce((a, b) => a + b, 0) / counts.length;
  return raw.map((r) => r / mean);
}

/** `(1 - p)^gamma`, exact for gamma 0 (no pow of 0^0 in the graph). */
function modulate(p: tf.Tensor, gamma: number): tf.Tensor {
  return gamma === 0 ? tf.onesLike(p) : tf.pow(tf.sub(1, p), gamma);
}

function checkGamma(gamma: number): void {
  if (!(gamma >= 0)) throw new Error(`gamma must be >= 0, got ${gamma}`);
}
