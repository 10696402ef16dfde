import * as tf from '@tensorflow/tfjs-core';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';

/** Checks an NHWC image batch and returns its shape. */
export function checkImages(where: string, images: tf.Tensor): [number, number, number, number] {
  if (images == null || images.rank !== 4) {
    throw new Error(`${where} expects NHWC images [batch, height, width, channels], got shape [${images?.shape ?? String(images)}]`);
  }
  return images.shape as [number, number, number, number];
}

/**
 * The largest square side the seed's masks fit in `extent` (see {@link squareStarts}): `extent`
 * itself when it is odd, one less when it is even (an even side's centre range needs one spare row).
 */
export function largestSeedSquare(extent: number): number {
  return extent % 2 === 1 ? extent : extent - 1;
}

/** One square's top-left corner per image: int32 `[batch]` rows and columns. */
export interface SquareStarts {
  /** Each square's first row, int32 `[batch]`. */
  top: tf.Tensor1D;
  /** Each square's first column, int32 `[batch]`. */
  left: tf.Tensor1D;
}

/**
 * Top-left corners of one `size` x `size` square per image, drawn exactly where the seed's
 * `make_random_square_masks` puts its squares. The seed draws centres in
 * `[size//2 - isEven, extent - size//2 - isEven)` and covers `centre - size//2 + isEven ..
 * centre + size//2`, so the first row is uniform in `[0, extent - 2 * (size//2))`: for an
 * even size the last row/column is never reached (the seed's own TODO), reproduced here.
 * Returns int32 `[batch]` tensors for rows and columns (rows drawn first, as the seed does).
 */
export function squareStarts(
  where: string,
  batch: number,
  height: number,
  width: number,
  size: number,
  random: DeviceRandom,
): SquareStarts {
  if (!Number.isInteger(size) || size < 1) throw new Error(`${where}: size must be a positive integer, got ${size}`);
  const half = Math.floor(size / 2);
  for (const [axis, extent] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (extent - 2 * half < 1) {
      throw new Error(
        `${where}: a ${size}x${size} square does not fit the seed's centre range in ${axis} ${extent} (needs ${axis} > ${2 * half})`,
      );
    }
  }
  const top = random.randInt([batch], 0, height - 2 * half) as tf.Tensor1D;
  const left = random.randInt([batch], 0, width - 2 * half) as tf.Tensor1D;
  return { top, left };
}

/**
 * Boolean `[batch, height, width, 1]` masks, true in the `size` x `size` square at each image's
 * `starts` (the caller keeps `starts`). Built on the backend; nothing is read back.
 */
export function squareMasks(starts: SquareStarts, height: number, width: number, size: number): tf.Tensor4D {
  const batch = starts.top.shape[0];
  return tf.tidy(() => {
    const inWindow = (start: tf.Tensor1D, extent: number) => {
      const offset = tf.sub(tf.reshape(tf.range(0, extent, 1, 'int32'), [1, extent]), tf.reshape(start, [batch, 1]));
      return tf.logicalAnd(tf.greaterEqual(offset, tf.scalar(0, 'int32')), tf.less(offset, tf.scalar(size, 'int32')));
    };
    const rows = tf.reshape(inWindow(starts.top, height), [batch, height, 1, 1]);
    const cols = tf.reshape(inWindow(starts.left, width), [batch, 1, width, 1]);
    return tf.logicalAnd(rows, cols) as tf.Tensor4D;
  });
}

/**
 * The seed's `make_random_square_masks` in NHWC: a boolean `[batch, height, width, 1]`
 * mask per image holding one `maskSize` x `maskSize` square of true at a random position,
 * with the seed's centre ranges for odd and even sizes. Built on the backend from two
 * int32 draws per image; nothing is read back. `random` defaults to the global generator
 * ({@link setGlobalSeed}).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { DeviceRandom, randomSquareMasks } from 'tfjs-dataflow';
 *
 * const masks = randomSquareMasks(tf.zeros([4, 32, 32, 3]), 8, new DeviceRandom(1)); // bool [4, 32, 32, 1]
 * ```
 */
export function randomSquareMasks(images: tf.Tensor, maskSize: number, random?: DeviceRandom): tf.Tensor4D {
  const [batch, height, width] = checkImages('randomSquareMasks', images);
  const starts = squareStarts('randomSquareMasks', batch, height, width, maskSize, randomOrGlobal('randomSquareMasks', random));
  try {
    return squareMasks(starts, height, width, maskSize);
  } finally {
    tf.dispose([starts.top, starts.left]);
  }
}
