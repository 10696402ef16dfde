import * as tf from '@tensorflow/tfjs-core';
import { checkSpatialAtLeast } from '../validation.js';
import { broadcastLike } from './broadcast.js';

const maxOverSpace = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const value = tf.max(x, [1, 2]);
  save([x, value]);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [input, max] = saved as [tf.Tensor4D, tf.Tensor2D];
      const [n, , , c] = input.shape;
      // torch.amax splits the gradient evenly among tied maxima; tf.max's gradient gives each tie all of it.
      // (tf.where, not a cast: webgpu 4.22 casts bool to float32 by aliasing the int buffer.)
      // The max is broadcast before the comparison: tfjs-wasm's broadcasting Equal is 20x slower (broadcast.ts).
      const mask = tf.where(tf.equal(input, broadcastLike(tf.reshape(max, [n, 1, 1, c]), input)), tf.onesLike(input), tf.zerosLike(input));
      const share = tf.div(tf.reshape(dy, [n, 1, 1, c]), tf.sum(mask, [1, 2], true));
      return [tf.mul(mask, share)];
    },
  };
});

/**
 * Global max pooling over height and width, the seed's `FastGlobalMaxPooling`
 * (`torch.amax(x, dim=(2, 3))`), on NHWC input: `[N, H, W, C]` to `[N, C]`.
 *
 * @remarks
 * The gradient goes to the maximum of each (example, channel). Where several
 * positions tie for the maximum it is split evenly among them, as torch.amax
 * does (tfjs's own `tf.max` gradient would give each tied position all of it).
 *
 * @param x A float32 tensor of rank 4, NHWC.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { globalMaxPool } from 'tfjs-dataflow';
 *
 * const features = globalMaxPool(tf.randomNormal([2, 4, 4, 8]) as tf.Tensor4D); // [2, 8]
 * ```
 */
export function globalMaxPool(x: tf.Tensor4D): tf.Tensor2D {
  if (!(x instanceof tf.Tensor)) throw new TypeError(`globalMaxPool: argument 'x' must be a tf.Tensor, got ${typeof x}`);
  if (x.rank !== 4) throw new Error(`globalMaxPool: argument 'x' must have rank 4 (NHWC), got shape [${x.shape.join(',')}]`);
  if (x.dtype !== 'float32') throw new TypeError(`globalMaxPool: argument 'x' must be float32, got dtype '${x.dtype}'`);
  if (x.shape[1] * x.shape[2] === 0)
    throw new Error(`globalMaxPool: argument 'x' has no positions to pool, got shape [${x.shape.join(',')}]`);
  return maxOverSpace(x) as tf.Tensor2D;
}

/**
 * 2x2 max-pool with stride 2 (PyTorch's `MaxPool2d(2)`, odd sizes floored). Its
 * gradient goes to each window's first maximum, as PyTorch routes it (on wasm through
 * the library's MaxPoolGrad kernel, which `initBackend('wasm')` installs).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { maxPool2 } from 'tfjs-dataflow';
 *
 * const pooled = maxPool2(tf.randomNormal([2, 9, 9, 8]) as tf.Tensor4D); // [2, 4, 4, 8]
 * ```
 */
export function maxPool2(x: tf.Tensor4D): tf.Tensor4D {
  // A side below 2 floors to an empty output rather than an error.
  checkSpatialAtLeast(x.shape, 2, 'maxPool2', 'it max-pools 2x2 windows');
  return tf.maxPool(x, 2, 2, 'valid');
}
