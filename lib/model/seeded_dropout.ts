/**
 * Dropout whose masks are a pure function of (seed, training step), so an
 * interrupted and resumed run draws exactly the masks an uninterrupted one
 * would. TF.js' own Dropout draws from an unseeded generator (or, seeded,
 * the same mask every call).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mixSeed } from "../random.ts";

/** Configuration of {@linkcode SeededDropout}. */
export interface SeededDropoutConfig {
  /** Fraction of units dropped, in [0, 1). */
  rate: number;
  /** Seed mixed with the step and replica into each mask's seed (0). */
  seed?: number;
  /** Layer name. */
  name?: string;
}

/** Inverted dropout with step-keyed masks; the identity outside training. */
export class SeededDropout extends tf.layers.Layer {
  /** Name under which the layer is serialised in model.json. */
  static className = "GalaxySeededDropout";
  /** Fraction of units dropped, in [0, 1). */
  readonly rate: number;
  /** Seed mixed with the step and replica into each mask's seed. */
  readonly seed: number;
  /** The training step the next mask belongs to; the trainer sets it before each step. */
  step = 0;
  /** Replica index in a mirrored run, so replicas drop different units of their own slices. */
  replica = 0;

  /** Throws unless the rate is in [0, 1). */
  constructor(config: SeededDropoutConfig) {
    super({ name: config.name });
    if (!(config.rate >= 0 && config.rate < 1)) {
      throw new Error(`dropout rate must be in [0, 1), got ${config.rate}`);
    }
    this.rate = config.rate;
    this.seed = config.seed ?? 0;
  }

  /** In training, zeroes units with the step's mask and scales the rest by 1 / (1 - rate). */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs?.training || this.rate === 0) return tf.clone(x);
    return tf.tidy(() => {
      // TF.js treats seed 0 as "unseeded".
      const seed = mixSeed(this.seed, this.step, this.replica) || 1;
      const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, "float32", seed), this.rate);
      return tf.mul(x, tf.mul(tf.cast(keep, "float32"), 1 / (1 - this.rate)));
    });
  }

  /** The layer's config plus rate and seed, so model.json restores it. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}
tf.serialization.registerClass(SeededDropout);

/** Sets the step (and replica) of every {@linkcode SeededDropout} in a model. */
export function setDropoutStep(model: tf.LayersModel, step: number, replica = 0): void {
  for (const layer of model.layers) {
    if (layer instanceof SeededDropout) {
      layer.step = step;
      layer.replica = replica;
    }
  }
}
