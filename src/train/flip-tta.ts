import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { deviceScalar } from '../ops/constants.js';

/**
 * The seed's eval-time forward: the batch is doubled with its left-right mirror,
 * run through the network in inference mode (so the discrete actions' noise scale is
 * the std of the doubled batch, as the seed's), and the two halves' logits averaged.
 */
export function predictWithFlipTTA(model: tfl.LayersModel, images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const n = images.shape[0];
    const doubled = tf.concat([images, tf.reverse(images, 2)], 0);
    const logits = model.apply(doubled, { training: false }) as tf.Tensor2D;
    const [orig, flipped] = tf.split(logits, [n, n], 0) as [tf.Tensor2D, tf.Tensor2D];
    return tf.add(tf.mul(orig, deviceScalar(0.5)), tf.mul(flipped, deviceScalar(0.5)));
  });
}
