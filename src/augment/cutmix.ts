import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages, largestSeedSquare, randomSquareMasks } from './masks.js';

/**
 * The seed's `batch_cutmix`: each image gets a random `patchSize` x `patchSize` square
 * pasted from a partner chosen by a random permutation of the batch, and its soft label
 * becomes `area * partnerLabel + (1 - area) * label` with `area = patchSize^2 / (H * W)`.
 * `patchSize` 0 turns it off (copies come back, so ownership is the same either way).
 * `random` defaults to the global generator ({@link setGlobalSeed}).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { DeviceRandom, batchCutmix } from 'tfjs-dataflow';
 *
 * const images = tf.randomUniform([8, 32, 32, 3]);
 * const targets = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10), 'float32');
 * // A 6x6 patch from a partner per image; the labels mixed by area (36 / 1024).
 * const mixed = batchCutmix(images, targets, 6, new DeviceRandom(1));
 * ```
 */
export function batchCutmix(
  images: tf.Tensor,
  targets: tf.Tensor,
  patchSize: number,
  random?: DeviceRandom,
): {
  /** The images with their partners' patches, `[N, H, W, C]`. */
  images: tf.Tensor4D;
  /** The mixed soft labels, `[N, classes]`. */
  targets: tf.Tensor2D;
} {
  const [batch, height, width] = checkImages('batchCutmix', images);
  const generator = randomOrGlobal('batchCutmix', random);
  if (targets == null || targets.rank !== 2 || targets.shape[0] !== batch) {
    throw new Error(
      `batchCutmix expects targets [${batch}, classes] (soft labels, one row per image), got shape [${targets?.shape ?? String(targets)}]`,
    );
  }
  if (!Number.isInteger(patchSize) || patchSize < 0)
    throw new Error(`batchCutmix: patchSize must be a non-negative integer, got ${patchSize}`);
  if (patchSize === 0) return { images: tf.clone(images) as tf.Tensor4D, targets: tf.clone(targets) as tf.Tensor2D };
  // Refused before anything is drawn or allocated: the mask's own refusal came after the permutation existed.
  if (batch === 0) throw new Error(`batchCutmix expects at least one image in 'images', got shape [${images.shape}]`);
  const largest = largestSeedSquare(Math.min(height, width));
  if (patchSize > largest) {
    throw new Error(
      `batchCutmix: patchSize ${patchSize} does not fit the ${height}x${width} images; it must be at most ${largest} ` +
        "(the seed's square masks need a spare row for an even side; 0 turns cutmix off)",
    );
  }
  // The seed draws the permutation first, then the mask.
  const partner = generator.permutation(batch);
  const mask = randomSquareMasks(images, patchSize, generator);
  return tf.tidy(() => {
    const mixed = tf.where(mask, tf.gather(images, partner), images) as tf.Tensor4D;
    const portion = (patchSize * patchSize) / (height * width);
    const labels = tf.add(tf.mul(tf.gather(targets, partner), portion), tf.mul(targets, 1 - portion)) as tf.Tensor2D;
    partner.dispose();
    mask.dispose();
    return { images: mixed, targets: labels };
  });
}
