import * as tf from '@tensorflow/tfjs-core';
import { deviceScalar } from '../ops/constants.js';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages, largestSeedSquare, squareMasks, squareStarts, type SquareStarts } from './masks.js';

/** Cutmix's decision for a batch: each image's partner and the square pasted from it. */
export interface CutmixDraws extends SquareStarts {
  /** int32 `[batch]`: the image each one takes its patch from (a permutation of the batch). */
  partner: tf.Tensor1D;
  /** Side of the pasted square, in pixels. */
  size: number;
}

/**
 * Cutmix's decision for a batch of `batch` images of `height` x `width`: a random permutation of the
 * batch (each image's partner), then one `patchSize` x `patchSize` square per image where the seed's
 * `make_random_square_masks` puts it (the seed draws in this order). The caller owns the tensors.
 */
export function drawCutmix(batch: number, height: number, width: number, patchSize: number, random: DeviceRandom): CutmixDraws {
  const partner = random.permutation(batch);
  try {
    return { partner, ...squareStarts('randomSquareMasks', batch, height, width, patchSize, random), size: patchSize };
  } catch (e) {
    partner.dispose();
    throw e;
  }
}

/**
 * Cutmix's execution on images: each image with its square taken from its partner (the caller keeps `draws`).
 *
 * @remarks
 * A compact set's batches are mixed by the decode kernel from the same draws, so partners and squares
 * are decided in {@link drawCutmix}, which both paths follow.
 */
export function cutmixImages(images: tf.Tensor, draws: CutmixDraws): tf.Tensor4D {
  const [, height, width] = checkImages('cutmixImages', images);
  return tf.tidy(() => tf.where(squareMasks(draws, height, width, draws.size), tf.gather(images, draws.partner), images) as tf.Tensor4D);
}

/**
 * Cutmix's execution on soft labels: `area * partnerTargets + (1 - area) * targets`, `area` the share of
 * an `height` x `width` image a `patchSize` square covers. `partnerTargets` are the partners' rows, in
 * the order of `targets`, so a batch of the set mixes exactly as the whole set does.
 */
export function cutmixTargets(
  targets: tf.Tensor,
  partnerTargets: tf.Tensor,
  patchSize: number,
  height: number,
  width: number,
): tf.Tensor2D {
  const portion = (patchSize * patchSize) / (height * width);
  // Device scalars: a compact set mixes every batch's targets, and a JS number would be a write per batch.
  return tf.tidy(() => tf.add(tf.mul(partnerTargets, deviceScalar(portion)), tf.mul(targets, deviceScalar(1 - portion))) as tf.Tensor2D);
}

/**
 * The seed's `batch_cutmix`: each image gets a random `patchSize` x `patchSize` square
 * pasted from a partner chosen by a random permutation of the batch, and its soft label
 * becomes `area * partnerLabel + (1 - area) * label` with `area = patchSize^2 / (H * W)`:
 * {@link drawCutmix}, then {@link cutmixImages} and {@link cutmixTargets}.
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
  const draws = drawCutmix(batch, height, width, patchSize, generator);
  try {
    return tf.tidy(() => ({
      images: cutmixImages(images, draws),
      targets: cutmixTargets(targets, tf.gather(targets, draws.partner), patchSize, height, width),
    }));
  } finally {
    tf.dispose([draws.partner, draws.top, draws.left]);
  }
}
