/**
 * Batch normalisation whose training-mode pass has a hand-written gradient,
 * instead of the ~20 element-wise kernels TF.js' autodiff builds from
 * `tf.moments` and `tf.batchNorm`. On the wasm backend with the oneDNN
 * kernels the forward and the backward pass are one oneDNN call each;
 * elsewhere they are a few TF.js ops, using the closed form
 * `dx = gamma rstd / N (N dy - sum(dy) - xhat sum(dy xhat))`
 * (Ioffe & Szegedy 2015, with the batch statistics differentiated).
 *
 * The layer is tfjs-layers' BatchNormalization with only `call` in training
 * mode replaced: same weights, same moving-average updates, same class name
 * and config, so saved models are unchanged and load anywhere.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from "../kernels/onednn/kernels.ts";
import { tensorStorage } from "../train/tensor_storage.ts";

/** Result of {@linkcode batchNormTraining}. */
export interface BatchNormResult {
  /** Normalised, scaled and shifted `x` (differentiable in x, gamma, beta). */
  y: tf.Tensor4D;
  /** Batch mean per channel (not differentiable: for the moving averages). */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel, as `tf.moments` gives it. */
  variance: tf.Tensor1D;
}

function closedFormGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  epsilon: number,
): tf.Tensor[] {
  return tf.tidy(() => {
    const n = x.size / x.shape[3]!;
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(tf.sub(x, mean), rstd);
    const dbeta = tf.sum(dy, [0, 1, 2]);
    const dgamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
    const inner = tf.sub(tf.sub(tf.mul(dy, n), dbeta), tf.mul(xhat, dgamma));
    const dx = tf.mul(inner, tf.div(tf.mul(gamma, rstd), n));
    return [dx, dgamma, dbeta];
  });
}

/**
 * Training-mode batch norm of NHWC `x` over N, H and W. The caller owns
 * (and disposes) `mean` and `variance`.
 */
export function batchNormTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): BatchNormResult {
  const native = tf.getKernel(BATCH_NORM_TRAINING, tf.getBackend()) !== undefined &&
    x.dtype === "float32" && x.size > 0;
  let mean: tf.Tensor1D | null = null;
  let variance: tf.Tensor1D | null = null;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    let y: tf.Tensor;
    if (native) {
      [y, mean, variance] = tf.engine().runKernel(
        BATCH_NORM_TRAINING,
        { x: xi, gamma: g, beta: b },
        {
          epsilon,
        } as never,
      ) as [tf.Tensor, tf.Tensor1D, tf.Tensor1D];
    } else {
      const m = tf.moments(xi, [0, 1, 2]);
      [mean, variance] = [m.mean as tf.Tensor1D, m.variance as tf.Tensor1D];
      y = tf.batchNorm(xi, mean, variance, b, g, epsilon);
    }
    tf.keep(mean!);
    tf.keep(variance!);
    save([xi, g, b, mean!, variance!]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sb, sm, sv] = saved;
        if (native) {
          return tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, {
            dy,
            x: sx,
            mean: sm,
            variance: sv,
            gamma: sg,
            beta: sb,
          }, { epsilon } as never) as tf.Tensor[];
        }
        return closedFormGrad(dy, sx, sg, sm, sv, epsilon);
      },
    };
  });
  const y = f(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean!, variance: variance! };
}

type BatchNormLayer = ReturnType<typeof tf.layers.batchNormalization>;
type BatchNormArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;

/** The fields of tfjs-layers' BatchNormalization that the training pass reads. */
interface Internals {
  axis: number;
  epsilon: number;
  momentum: number;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

const Base = Object.getPrototypeOf(tf.layers.batchNormalization({})).constructor as new (
  args: BatchNormArgs,
) => BatchNormLayer;

/**
 * `moving = moving - (moving - value) (1 - momentum)`, to the bit as the
 * base layer's three TF.js ops compute it (each step rounded to float32),
 * but as one pass over the backend's storage where it has one (wasm, cpu):
 * ResNet-34 has 72 moving statistics, and three kernels each cost more in
 * bookkeeping than the arithmetic on a few hundred values.
 */
export function updateMovingAverage(
  moving: tf.LayerVariable,
  value: tf.Tensor,
  momentum: number,
): void {
  const old = moving.read();
  const storage = tensorStorage();
  if (storage === null || old.dtype !== "float32" || value.dtype !== "float32") {
    tf.tidy(() => {
      moving.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - momentum)));
    });
    return;
  }
  const fresh = storage.allocate(old.shape);
  // Views after the allocation (the wasm heap may have grown).
  const [o, v, out] = [storage.view(old), storage.view(value), storage.view(fresh.info)];
  const decay = Math.fround(1 - momentum);
  const f = Math.fround;
  for (let k = 0; k < out.length; k++) out[k] = f(o[k] - f(f(o[k] - v[k]) * decay));
  const t = tf.engine().makeTensorFromTensorInfo(fresh.info);
  moving.write(t);
  t.dispose();
}

class CustomGradBatchNormalization extends Base {
  /** Serialised as the layer it extends, so saved models load without this class. */
  static className = "BatchNormalization";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const self = this as unknown as Internals;
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = self.axis < 0 ? self.axis + x.rank : self.axis;
    if (
      !kwargs["training"] || x.rank !== 4 || axis !== 3 || self.gamma === null ||
      self.beta === null
    ) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(
        x as tf.Tensor4D,
        self.gamma!.read() as tf.Tensor1D,
        self.beta!.read() as tf.Tensor1D,
        self.epsilon,
      );
      updateMovingAverage(self.movingMean, mean, self.momentum);
      // The moving variance tracks the unbiased batch variance, as torch's BatchNorm2d does
      // (tfjs-layers' base layer feeds it the biased one); see docs/quality.md.
      const count = x.size / x.shape[3]!;
      const unbiased = count > 1 ? tf.mul(variance, count / (count - 1)) : variance;
      updateMovingAverage(self.movingVariance, unbiased, self.momentum);
      tf.dispose([mean, variance]);
      return y;
    });
  }
}

/**
 * `tf.layers.batchNormalization(args)` with the training pass of
 * {@linkcode batchNormTraining} (NHWC inputs, channel axis last; other
 * inputs take the base layer's path).
 */
export function batchNormalization(args: BatchNormArgs): BatchNormLayer {
  return new CustomGradBatchNormalization(args);
}
