/**
 * The small network and fixed global batch the mirrored tests share
 * between the test process and its replica processes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** A seeded conv net, with or without batch norm. */
export function smallNet(batchNorm: boolean): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({
      inputShape: [8, 8, 3],
      filters: 4,
      kernelSize: 3,
      kernelInitializer: init(1),
    }),
  ];
  if (batchNorm) layers.push(tf.layers.batchNormalization());
  layers.push(
    tf.layers.reLU(),
    tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, kernelInitializer: init(2) }),
    tf.layers.globalAveragePooling2d({}),
    tf.layers.dense({ units: 3, activation: "softmax", kernelInitializer: init(3) }),
  );
  return tf.sequential({ layers });
}

/** A fixed global batch of 8 images of 8x8x3 and their labels. */
export function globalBatch(): { x: tf.Tensor4D; y: tf.Tensor2D; labels: Int32Array; n: number } {
  const n = 8;
  const x = tf.randomUniform([n, 8, 8, 3], 0, 1, "float32", 11) as tf.Tensor4D;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return { x, y: tf.oneHot(tf.tensor1d(labels, "int32"), 3) as tf.Tensor2D, labels, n };
}
