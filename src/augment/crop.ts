import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { checkImages, squareStarts } from './masks.js';

/**
 * The seed's `batch_crop`: one random `cropSize` x `cropSize` window per image (of the
 * reflect-padded batch), at the positions the seed's `make_random_square_masks` would
 * mask, so for 36 px padded images and a 32 px crop the offset is in 0..3 on each axis.
 * A single gather on the backend with per-image flat indices; nothing is read back.
 * `random` defaults to the global generator ({@link setGlobalSeed}).
 */
export function batchCrop(images: tf.Tensor, cropSize: number, random?: DeviceRandom): tf.Tensor4D {
  const [batch, height, width, channels] = checkImages('batchCrop', images);
  const generator = randomOrGlobal('batchCrop', random);
  if (!Number.isInteger(cropSize) || cropSize < 1 || cropSize > Math.min(height, width)) {
    throw new Error(`batchCrop: cropSize must be an integer in [1, ${Math.min(height, width)}] for images of ${height}x${width}, got ${cropSize}`);
  }
  const { top, left } = squareStarts('batchCrop', batch, height, width, cropSize, generator);
  return tf.tidy(() => {
    // Flat row index into [batch * height * width, channels] of pixel (i, j) of each window;
    // int32 scalars throughout, since a plain number would promote the indices to float32.
    const int = (v: number) => tf.scalar(v, 'int32');
    const base = tf.reshape(tf.add(tf.add(tf.mul(tf.range(0, batch, 1, 'int32'), int(height * width)), tf.mul(top, int(width))), left), [batch, 1, 1]);
    const i = tf.reshape(tf.range(0, cropSize, 1, 'int32'), [1, cropSize, 1]);
    const j = tf.reshape(tf.range(0, cropSize, 1, 'int32'), [1, 1, cropSize]);
    const index = tf.reshape(tf.add(base, tf.add(tf.mul(i, int(width)), j)), [-1]);
    top.dispose();
    left.dispose();
    return tf.reshape(tf.gather(tf.reshape(images, [batch * height * width, channels]), index), [batch, cropSize, cropSize, channels]) as tf.Tensor4D;
  });
}
