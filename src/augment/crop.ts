import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages, squareStarts } from './masks.js';

/**
 * The seed's `batch_crop`: one random `cropSize` x `cropSize` window per image (of the
 * reflect-padded batch), at the positions the seed's `make_random_square_masks` would
 * mask, so for 36 px padded images and a 32 px crop the offset is in 0..3 on each axis.
 * Gathers on the backend (one per 2^24 pixel rows of input); nothing is read back.
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
  const [batch, height, width, channels] = checkImages('batchCrop', images);
  const generator = randomOrGlobal('batchCrop', random);
  if (!Number.isInteger(cropSize) || cropSize < 1 || cropSize > Math.min(height, width)) {
    throw new Error(
      `batchCrop: cropSize must be an integer in [1, ${Math.min(height, width)}] for images of ${height}x${width}, got ${cropSize}`,
    );
  }
  const { top, left } = squareStarts('batchCrop', batch, height, width, cropSize, generator);
  try {
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
  } finally {
    top.dispose();
    left.dispose();
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
