import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { withInferenceNoise, type InferenceNoiseOptions } from '../layers/inference-noise.js';
import { deviceScalar } from '../ops/constants.js';

/**
 * The seed's eval-time forward: the batch is doubled with its left-right mirror,
 * run through the network in inference mode (so the discrete actions' noise scale is
 * the std of the doubled batch, as the seed's), and the two halves' logits averaged.
 *
 * @remarks
 * Stochastic by default, as the seed's: its discrete actions add noise at inference too, so two calls on the same
 * images give different logits (and each call moves the layers' noise streams on). `{ seed }` makes a call
 * reproducible: the same seed on the same batch gives the same logits, bit for bit on one backend, on the model
 * saved and loaded too, and leaves the layers' streams where they were ({@link withInferenceNoise}).
 * `{ noise: 'off' }` predicts without the noise: deterministic, but not the seed's evaluation nor its expectation.
 * The Trainer's evaluation and the CLI keep the seed's unseeded noise.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { predictWithFlipTTA, speedyConvNet } from 'tfjs-dataflow';
 *
 * const { model } = speedyConvNet({ hyp: { net: { baseDepth: 8 } }, seed: 0 });
 * const images = tf.randomNormal([4, 32, 32, 3]) as tf.Tensor4D;
 * const a = predictWithFlipTTA(model, images, { seed: 7 });
 * const b = predictWithFlipTTA(model, images, { seed: 7 }); // the same values as a
 * ```
 */
export function predictWithFlipTTA(model: tfl.LayersModel, images: tf.Tensor4D, options?: InferenceNoiseOptions): tf.Tensor2D {
  const predict = () =>
    tf.tidy(() => {
      const n = images.shape[0];
      const doubled = tf.concat([images, tf.reverse(images, 2)], 0);
      const logits = model.apply(doubled, { training: false }) as tf.Tensor2D;
      const [orig, flipped] = tf.split(logits, [n, n], 0) as [tf.Tensor2D, tf.Tensor2D];
      return tf.add(tf.mul(orig, deviceScalar(0.5)), tf.mul(flipped, deviceScalar(0.5))) as tf.Tensor2D;
    });
  return options === undefined ? predict() : withInferenceNoise(model, options, predict);
}
