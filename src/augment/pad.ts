import * as tf from '@tensorflow/tfjs-core';
import { checkImages } from './masks.js';

/**
 * The seed's `F.pad(images, (amount,) * 4, 'reflect')` in NHWC: reflect-pads height and
 * width by `amount` on every side (the edge pixel is not repeated), on the backend.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { reflectPad } from 'tfjs-dataflow';
 *
 * const padded = reflectPad(tf.randomUniform([8, 32, 32, 3]), 2); // [8, 36, 36, 3]
 * ```
 */
export function reflectPad(images: tf.Tensor, amount: number): tf.Tensor4D {
  const [, height, width] = checkImages('reflectPad', images);
  if (!Number.isInteger(amount) || amount < 0) throw new Error(`reflectPad: amount must be a non-negative integer, got ${amount}`);
  if (amount >= Math.min(height, width)) {
    throw new Error(`reflectPad: amount ${amount} must be smaller than the image's height and width (${height}x${width}) for a reflection`);
  }
  if (amount === 0) return tf.clone(images) as tf.Tensor4D;
  return tf.mirrorPad(
    images as tf.Tensor4D,
    [
      [0, 0],
      [amount, amount],
      [amount, amount],
      [0, 0],
    ],
    'reflect',
  );
}
