import * as tf from '@tensorflow/tfjs-core';
import { deviceScalar as c } from './constants.js';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const geluWithGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  // Φ(x) = (1 + erf(x / √2)) / 2, kept for the gradient: recomputing it there costs an Erf kernel per layer.
  const cdf = tf.tidy(() => tf.mul(tf.add(tf.erf(tf.mul(x, c(SQRT1_2))), c(1)), c(0.5)));
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, phi] = saved as [tf.Tensor, tf.Tensor];
      // d/dx x·Φ(x) = Φ(x) + x·φ(x), with φ the standard normal density.
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), c(-0.5))), c(INV_SQRT_2PI));
      return [tf.mul(dy, tf.add(phi, tf.mul(xs, pdf)))];
    },
  };
});

/**
 * GELU in its exact (erf) form, `x · Φ(x)`, as PyTorch's default `nn.GELU()` /
 * `F.gelu` that the seed uses after every batch norm and on the initial block.
 * The gradient is written out (`Φ(x) + x·φ(x)`) instead of differentiating
 * through `erf`, so backprop costs a handful of elementwise kernels.
 *
 * @param x A float32 tensor of any shape.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gelu } from 'tfjs-dataflow';
 *
 * const y = gelu(tf.tensor1d([-1, 0, 1])); // [-0.1587, 0, 0.8413]
 * ```
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (!(x instanceof tf.Tensor)) throw new TypeError(`gelu: argument 'x' must be a tf.Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new TypeError(`gelu: argument 'x' must be float32, got dtype '${x.dtype}'`);
  return geluWithGrad(x) as T;
}
