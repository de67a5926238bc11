/**
 * A 2-D convolution layer whose training pass computes only the gradients
 * that are needed.
 *
 * tfjs-layers' Conv2D runs `tf.fused.conv2d`, whose gradient computes the
 * input gradient and the filter gradient together, even where nothing
 * needs the input gradient: at the network's first convolution, whose input
 * is the image, that is a whole wasted backward-data convolution (the 7x7
 * stem, 4-7 ms of a ResNet-34 step on oneDNN) plus the gradient of the
 * zero padding in front of it. `tf.conv2d`'s gradient is evaluated per
 * input, and TF.js skips inputs that no trainable variable leads to.
 *
 * Only `call` in training mode changes, and only for the common case (NHWC,
 * no dilation, linear activation); the layer is tfjs-layers' Conv2D with
 * the same weights, class name and config, so saved models are unchanged
 * and load anywhere.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

type Conv2DLayer = ReturnType<typeof tf.layers.conv2d>;
type Conv2DArgs = Parameters<typeof tf.layers.conv2d>[0];

/** The fields of tfjs-layers' Conv2D that the training pass reads. */
interface Internals {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: number[];
  padding: "valid" | "same";
  dataFormat: string;
  dilationRate: number[];
  activation: { getClassName(): string };
}

const Base = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 }))
  .constructor as new (args: Conv2DArgs) => Conv2DLayer;

class LazyGradConv2D extends Base {
  /** Serialised as the layer it extends, so saved models load without this class. */
  static className = "Conv2D";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) {
    const self = this as unknown as Internals;
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (
      !kwargs["training"] || x.rank !== 4 || self.dataFormat !== "channelsLast" ||
      self.dilationRate.some((d) => d !== 1) || self.activation.getClassName() !== "linear"
    ) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const y = tf.conv2d(
        x as tf.Tensor4D,
        self.kernel.read() as tf.Tensor4D,
        self.strides as [number, number],
        self.padding,
      );
      return self.bias ? tf.add(y, self.bias.read()) : y;
    });
  }
}

/**
 * `tf.layers.conv2d(args)` whose training pass takes only the gradients the
 * step needs (see the module doc); inference is the base layer's.
 */
export function conv2d(args: Conv2DArgs): Conv2DLayer {
  return new LazyGradConv2D(args);
}
