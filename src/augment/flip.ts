import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages } from './masks.js';

/**
 * The flip's decision: bool `[batch]`, true for each image to mirror, with probability `flipChance`
 * (default 0.5) from one uniform draw per image on the backend. The caller owns it.
 */
export function drawFlips(batch: number, random: DeviceRandom, flipChance = 0.5): tf.Tensor1D {
  if (!(flipChance >= 0 && flipChance <= 1)) throw new Error(`drawFlips: flipChance must be in [0, 1], got ${flipChance}`);
  const u = random.uniform([batch]);
  try {
    return tf.tidy(() => tf.less(u, flipChance) as tf.Tensor1D);
  } finally {
    u.dispose();
  }
}

/**
 * The flip's execution: each image whose `flips` entry (bool `[batch]`) is true, mirrored left-right.
 *
 * @remarks
 * A compact set's batches are mirrored by the decode kernel from the same decisions, so a different
 * flip rule belongs in {@link drawFlips} (both paths follow it) and a new pixel operation in
 * `EpochBatchesArgs.augment`, not here.
 */
export function flipImages(images: tf.Tensor, flips: tf.Tensor1D): tf.Tensor4D {
  const [batch] = checkImages('flipImages', images);
  return tf.tidy(() => {
    // NHWC: width is axis 2 (the seed flips NCHW's last axis).
    return tf.where(tf.reshape(flips, [batch, 1, 1, 1]), tf.reverse(images, 2), images) as tf.Tensor4D;
  });
}

/**
 * The seed's `batch_flip_lr`: each image is mirrored left-right with probability
 * `flipChance` (default 0.5), {@link drawFlips} then {@link flipImages}.
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
  const flips = drawFlips(batch, generator, flipChance);
  try {
    return flipImages(images, flips);
  } finally {
    flips.dispose();
  }
}
