/**
 * The `tree` vote head (`--head tree`): 37 outputs that obey the Galaxy Zoo
 * decision tree.
 *
 * Each question's answers are a softmax over its logits scaled by the
 * fraction that reached the question (the sum of its parent answers), the
 * constraint the winning Kaggle solution built into its output layer
 * (Dieleman 2014). Outputs are then valid vote fractions by construction.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { NUM_VOTES, QUESTIONS, questionSlice, voteIndex } from "../data/schema.ts";

/** Maps 37 logits to 37 tree-consistent vote fractions. */
export function votesFromLogits(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const cols: tf.Tensor2D[] = new Array(NUM_VOTES);
    for (const q of QUESTIONS) {
      const [a, b] = questionSlice(q);
      let p = tf.softmax(logits.slice([0, a], [-1, b - a])) as tf.Tensor2D;
      if (q.parents.length > 0) {
        // Parents are earlier questions, so their columns are already final.
        const reach = tf.addN(q.parents.map((c) => cols[voteIndex(c)]));
        p = tf.mul(p, reach);
      }
      for (let i = a; i < b; i++) cols[i] = p.slice([0, i - a], [-1, 1]);
    }
    return tf.concat(cols, 1);
  });
}

/** Layer form of {@linkcode votesFromLogits}, serialisable in model.json. */
export class GalaxyZooVotes extends tf.layers.Layer {
  /** Name under which the layer is serialised in model.json. */
  static className = "GalaxyZooVotes";

  /** `config.name` is the layer name. */
  constructor(config: { name?: string } = {}) {
    super(config);
  }

  /** Same shape as the input, which must end in the 37 vote logits. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (s[s.length - 1] !== NUM_VOTES) {
      throw new Error(`GalaxyZooVotes needs ${NUM_VOTES} inputs, got ${s[s.length - 1]}`);
    }
    return s;
  }

  /** Turns the 37 logits into vote fractions with {@linkcode votesFromLogits}. */
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return votesFromLogits(x as tf.Tensor2D);
  }
}
tf.serialization.registerClass(GalaxyZooVotes);
