// A training stage of the example's own: the library's Trainer runs it in place of the seed's loss,
// with nothing in the library changed (`trainCustomBlockNet(net, data, { stages: { loss: focalLoss(2) } })`).
import * as tf from '@tensorflow/tfjs-core';
import type { LossStage } from '../../src/index.js';

/**
 * Focal loss (Lin et al. 2017), -Σ_c t_c (1 - p_c)^gamma log p_c per example, summed over the batch and
 * scaled like the seed's loss (`batchScale`), so the seed's learning rates still fit. Soft targets (cutmix)
 * work as they are. gamma 0 is plain cross-entropy without label smoothing.
 */
export function focalLoss(gamma: number): LossStage {
  if (!(Number.isFinite(gamma) && gamma >= 0)) throw new Error(`focalLoss: gamma must be a number >= 0, got ${gamma}`);
  return (logits, targets, { batchScale }) =>
    tf.tidy(() => {
      const logP = tf.logSoftmax(logits);
      const weight = tf.pow(tf.sub(1, tf.exp(logP)), gamma);
      const perExample = tf.neg(tf.sum(tf.mul(targets, tf.mul(weight, logP)), -1));
      return tf.mul(tf.sum(perExample), batchScale) as tf.Scalar;
    });
}
