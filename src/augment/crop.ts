import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages, squareStarts, type SquareStarts } from './masks.js';

/** Refuses a crop side that does not fit images of `height` x `width`. */
function checkCropSize(where: string, cropSize: number, height: number, width: number): void {
  if (!Number.isInteger(cropSize) || cropSize < 1 || cropSize > Math.min(height, width)) {
    throw new Error(
      `${where}: cropSize must be an integer in [1, ${Math.min(height, width)}] for images of ${height}x${width}, got ${cropSize}`,
    );
  }
}

/**
 * The crop's decision: one `cropSize` x `cropSize` window per image of a `height` x `width` set,
 * its top-left corner where the seed's `make_random_square_masks` would put the square (so for 36 px
 * padded images and a 32 px crop the offset is in 0..3 on each axis). Two int32 draws of `[batch]`,
 * rows then columns; the caller owns both.
 */
export function drawCrops(batch: number, height: number, width: number, cropSize: number, random: DeviceRandom): SquareStarts {
  checkCropSize('drawCrops', cropSize, height, width);
  return squareStarts('batchCrop', batch, height, width, cropSize, random);
}

/**
 * The crop's execution: each image's `cropSize` x `cropSize` window at its `starts` (the caller keeps
 * them). Gathers on the backend (one per 2^24 pixel rows of input); nothing is read back.
 *
 * @remarks
 * A compact set's batches are cropped by the decode kernel from the same starts: where crops go is
 * decided in {@link drawCrops}, which both paths follow.
 */
export function cropImages(images: tf.Tensor, starts: SquareStarts, cropSize: number): tf.Tensor4D {
  const [batch, height, width, channels] = checkImages('cropImages', images);
  checkCropSize('cropImages', cropSize, height, width);
  const { top, left } = starts;
  return tf.tidy(() => {
    const perChunk = Math.max(1, Math.floor(CROP_CHUNK_ROWS / (height * width)));
    if (batch <= perChunk) return cropChunk(images, top, left, cropSize) as tf.Tensor4D;
    const parts: tf.Tensor[] = [];
    for (let start = 0; start < batch; start += perChunk) {
      const count = Math.min(perChunk, batch - start);
      const chunk = tf.slice(images, [start, 0, 0, 0], [count, height, width, channels]);
      parts.push(cropChunk(chunk, tf.slice(top, start, count), tf.slice(left, start, count), cropSize));
    }
    return tf.concat(parts, 0) as tf.Tensor4D;
  });
}

/**
 * The seed's `batch_crop`: one random `cropSize` x `cropSize` window per image (of the
 * reflect-padded batch), {@link drawCrops} then {@link cropImages}.
 * `random` defaults to the global generator ({@link setGlobalSeed}).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { DeviceRandom, batchCrop, reflectPad } from 'tfjs-dataflow';
 *
 * const images = tf.randomUniform([8, 32, 32, 3]);
 * // Pad by 2 with reflection, then a random 32x32 window of each 36x36 image.
 * const cropped = batchCrop(reflectPad(images, 2), 32, new DeviceRandom(1));
 * ```
 */
export function batchCrop(images: tf.Tensor, cropSize: number, random?: DeviceRandom): tf.Tensor4D {
  const [batch, height, width] = checkImages('batchCrop', images);
  const generator = randomOrGlobal('batchCrop', random);
  checkCropSize('batchCrop', cropSize, height, width);
  const starts = drawCrops(batch, height, width, cropSize, generator);
  try {
    return cropImages(images, starts, cropSize);
  } finally {
    tf.dispose([starts.top, starts.left]);
  }
}

/**
 * Pixel rows per gather. tfjs-backend-webgpu 4.22's Gather reads its indices through float32, exact only below
 * 2^24: a whole padded CIFAR-10 training set has 6.5e7 pixel rows, and every image past the 12,945th came out
 * with misplaced pixels. (tfjs-wasm's batched Gather, the other way to keep indices small, fails outright.)
 */
const CROP_CHUNK_ROWS = 2 ** 24;

/** Crops of `images` at (top, left), one gather with flat pixel-row indices, all below CROP_CHUNK_ROWS. */
function cropChunk(images: tf.Tensor, top: tf.Tensor, left: tf.Tensor, cropSize: number): tf.Tensor {
  const [batch, height, width, channels] = images.shape as [number, number, number, number];
  // int32 scalars throughout, since a plain number would promote the indices to float32.
  const int = (v: number) => tf.scalar(v, 'int32');
  const base = tf.reshape(tf.add(tf.add(tf.mul(tf.range(0, batch, 1, 'int32'), int(height * width)), tf.mul(top, int(width))), left), [
    batch,
    1,
    1,
  ]);
  const i = tf.reshape(tf.range(0, cropSize, 1, 'int32'), [1, cropSize, 1]);
  const j = tf.reshape(tf.range(0, cropSize, 1, 'int32'), [1, 1, cropSize]);
  const index = tf.reshape(tf.add(base, tf.add(tf.mul(i, int(width)), j)), [-1]);
  return tf.reshape(tf.gather(tf.reshape(images, [batch * height * width, channels]), index), [batch, cropSize, cropSize, channels]);
}
