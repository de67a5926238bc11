/**
 * One training step, split at the point where a mirrored (data-parallel)
 * run all-reduces: {@linkcode computeGradients} on a batch, then the
 * optimizer applies the (possibly averaged) gradients.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { LossFn } from "../focal_loss.ts";
import { setDropoutStep } from "../model/seeded_dropout.ts";

/** The model's trainable variables, in a fixed order (that of `model.trainableWeights`). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  // LayersVariable.read() hands back the underlying tf.Variable itself.
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** All of the model's variables (trainable, then batch-norm statistics), in a fixed order. */
export function allVariables(model: tf.LayersModel): tf.Variable[] {
  return [...model.trainableWeights, ...model.nonTrainableWeights].map((w) =>
    w.read() as tf.Variable
  );
}

/** The loss and the gradient of every trainable variable, in order. */
export interface Gradients {
  /** Data loss plus any weight-decay penalty; NaN when the outputs are not finite. */
  loss: number;
  /** Gradient of the loss for each variable, in the order of the variables given. */
  grads: tf.Tensor[];
  /** Arg-max of the outputs in the same forward pass (class heads), for train accuracy. */
  predicted: Int32Array | null;
}

/**
 * Forward and backward pass on one batch in training mode (batch norm uses
 * and updates batch statistics; dropout masks are keyed by `step`).
 * The caller owns (and disposes) the returned gradients. The loss is read
 * back asynchronously: a GPU backend (webgpu) has no synchronous download.
 */
export async function computeGradients(
  model: tf.LayersModel,
  vars: readonly tf.Variable[],
  loss: LossFn,
  x: tf.Tensor,
  y: tf.Tensor,
  step: number,
  options: { replica?: number; argmax?: boolean } = {},
): Promise<Gradients> {
  setDropoutStep(model, step, options.replica ?? 0);
  let argmax: tf.Tensor | null = null;
  let outputSum: tf.Tensor | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const pred = model.apply(x, { training: true }) as tf.Tensor;
    // Clipping inside a loss can hide NaN outputs (the wasm clip returns a bound for NaN),
    // so divergence is judged on the outputs as well as on the loss.
    outputSum = tf.keep(tf.sum(pred));
    if (options.argmax) argmax = tf.keep(tf.argMax(pred, -1));
    let total = loss(y, pred);
    // Weight decay, where the model has L2 regularisers (as Keras' fit adds them).
    for (const penalty of model.calculateLosses()) total = tf.add(total, penalty);
    return total as tf.Scalar;
  }, vars as tf.Variable[]);
  let lossValue = (await value.data())[0];
  value.dispose();
  const sum = (outputSum as tf.Tensor | null)!;
  if (!Number.isFinite((await sum.data())[0])) lossValue = NaN;
  sum.dispose();
  let predicted: Int32Array | null = null;
  if (argmax !== null) {
    predicted = (await (argmax as tf.Tensor).data()) as Int32Array;
    (argmax as tf.Tensor).dispose();
  }
  return { loss: lossValue, grads: vars.map((v) => grads[v.name]), predicted };
}
