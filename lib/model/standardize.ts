/**
 * A layer that maps raw 0-255 pixels to standardised inputs, so a saved
 * model takes images exactly as they come out of the dataset.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Configuration of {@linkcode Standardize}: per-channel statistics in pixel units. */
export interface StandardizeConfig {
  /** Per-channel mean, 0-255 units. */
  mean: number[];
  /** Per-channel standard deviation, 0-255 units; each must be > 0. */
  std: number[];
  /** Layer name. */
  name?: string;
}

/** `(x - mean) / std` per channel; no trainable weights. */
export class Standardize extends tf.layers.Layer {
  /** Name under which the layer is serialised in model.json. */
  static className = "GalaxyStandardize";
  /** Per-channel mean subtracted, 0-255 units. */
  readonly mean: number[];
  /** Per-channel standard deviation divided by, 0-255 units. */
  readonly std: number[];

  /** Checks that mean and std have the same channels and every std is positive. */
  constructor(config: StandardizeConfig) {
    super({ name: config.name });
    if (config.mean.length !== config.std.length) {
      throw new Error(
        `Standardize: mean has ${config.mean.length} channels, std ${config.std.length}`,
      );
    }
    if (config.std.some((s) => !(s > 0))) throw new Error("Standardize: every std must be > 0");
    this.mean = [...config.mean];
    this.std = [...config.std];
  }

  /** Casts the pixels to float32 and standardises them per channel. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.div(tf.sub(tf.cast(x, "float32"), this.mean), this.std));
  }

  /** The layer's config plus mean and std, so model.json restores it. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mean: this.mean, std: this.std };
  }
}
tf.serialization.registerClass(Standardize);
