import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages } from './masks.js';

/**
 * The seed's `batch_flip_lr`: each image is mirrored left-right with probability
 * `flipChance` (default 0.5), decided by one uniform draw per image on the backend.
 * `random` defaults to the global generator ({@link setGlobalSeed}).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { batchFlipLR, setGlobalSeed } from 'tfjs-dataflow';
 *
 * setGlobalSeed(7); // reproducible draws when no DeviceRandom is passed
 * const flipped = batchFlipLR(tf.randomUniform([8, 32, 32, 3])); // each image mirrored with chance 0.5
 * ```
 */
export function batchFlipLR(images: tf.Tensor, random?: DeviceRandom, flipChance = 0.5): tf.Tensor4D {
  const [batch] = checkImages('batchFlipLR', images);
  const generator = randomOrGlobal('batchFlipLR', random);
  if (!(flipChance >= 0 && flipChance <= 1)) throw new Error(`batchFlipLR: flipChance must be in [0, 1], got ${flipChance}`);
  const u = generator.uniform([batch]);
  return tf.tidy(() => {
    const flip = tf.reshape(tf.less(u, flipChance), [batch, 1, 1, 1]);
    u.dispose();
    // NHWC: width is axis 2 (the seed flips NCHW's last axis).
    return tf.where(flip, tf.reverse(images, 2), images) as tf.Tensor4D;
  });
}
