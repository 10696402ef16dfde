import * as tf from '@tensorflow/tfjs-core';

/**
 * A true cut of the gradient tape, the seed's `x.detach()`: the result has x's
 * values, and no gradient flows through it to x or to anything upstream of x.
 *
 * @remarks
 * tfjs has no such op, and `tf.customGrad` with x as an input does not cut: it
 * still backpropagates (zeros) through every upstream op. Here x is closed over
 * instead of passed in, so the tape records a node with no inputs and backprop
 * stops at it: upstream variables get no gradient (they are absent from
 * `tf.variableGrads(...).grads`) and no backward kernel runs for upstream ops.
 * The value is a zero-copy reshape of x (a shared buffer, no kernel work).
 *
 * @param x A tensor of any shape and dtype.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { stopGradient } from 'tfjs-dataflow';
 *
 * const x = tf.scalar(3);
 * const dx = tf.grad((v: tf.Tensor) => tf.add(tf.mul(v, v), stopGradient(tf.mul(v, v))))(x); // 6: only the first term
 * ```
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  if (!(x instanceof tf.Tensor)) throw new TypeError(`stopGradient: argument 'x' must be a tf.Tensor, got ${typeof x}`);
  return tf.customGrad(() => ({ value: tf.reshape(x, x.shape), gradFunc: () => [] }))() as T;
}
