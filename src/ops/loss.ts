import * as tf from '@tensorflow/tfjs-core';
import { deviceScalar as c } from './constants.js';

function checkPair(where: string, logits: tf.Tensor, targets: tf.Tensor): void {
  if (logits.rank !== 2) throw new Error(`${where}: logits must be [batch, classes], got shape [${logits.shape}]`);
  if (!tf.util.arraysEqual(logits.shape, targets.shape)) {
    throw new Error(`${where}: targets must have the logits' shape [${logits.shape}] (probabilities per class), got [${targets.shape}]`);
  }
}

/**
 * Per-example cross-entropy against probability (soft) targets with label smoothing,
 * exactly as `torch.nn.CrossEntropyLoss(label_smoothing=0.1, reduction='none')` computes
 * it for probability targets (the seed's one-hot or cutmix-mixed labels):
 * `-sum_c ((1 - ls) * target_c + ls / classes) * log_softmax(logits)_c`.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, labelSmoothing = 0.1): tf.Tensor1D {
  checkPair('crossEntropy', logits, targets);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
    throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  return tf.tidy(() => {
    const classes = logits.shape[1]!;
    const smoothed = labelSmoothing > 0 ? tf.add(tf.mul(targets, c(1 - labelSmoothing)), c(labelSmoothing / classes)) : targets;
    return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), smoothed), -1)) as tf.Tensor1D;
  });
}

/** Options of `seedLoss`, the seed's `hyp['opt']` loss knobs. */
export interface SeedLossArgs {
  /** Label smoothing of the cross-entropy. Default 0.1. */
  labelSmoothing?: number;
  /** The seed's `loss_scale_scaler`, applied inside the sum and divided out after. Default 1/32. */
  lossScale?: number;
  /** The seed's `loss_batchsize_scaler`, `512 / batchsize`. Default: 512 / (this batch's size). */
  batchScale?: number;
}

/**
 * The seed's training loss: label-smoothed cross-entropy summed (not averaged) over the
 * batch, `(ce * (lossScale * batchScale)).sum() / lossScale`, so the regularisation
 * strength stays comparable across batch sizes. With the seed's batch of 1024 this is
 * half the per-example sum.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { accuracy, seedLoss } from 'tfjs-dataflow';
 *
 * const logits = tf.randomNormal([4, 10]);
 * const targets = tf.cast(tf.oneHot(tf.tensor1d([3, 1, 0, 7], 'int32'), 10), 'float32');
 * const loss = seedLoss(logits, targets); // label smoothing 0.1, summed and scaled as the seed
 * const acc = accuracy(logits, targets); // fraction of argmax hits
 * ```
 */
export function seedLoss(logits: tf.Tensor, targets: tf.Tensor, args: SeedLossArgs = {}): tf.Scalar {
  checkPair('seedLoss', logits, targets);
  const { labelSmoothing = 0.1, lossScale = 1 / 32, batchScale = 512 / logits.shape[0]! } = args;
  if (!(Number.isFinite(lossScale) && lossScale > 0)) throw new Error(`seedLoss: lossScale must be a positive number, got ${lossScale}`);
  if (!Number.isFinite(batchScale)) throw new Error(`seedLoss: batchScale must be a finite number, got ${batchScale}`);
  return tf.tidy(() => {
    const ce = crossEntropy(logits, targets, labelSmoothing);
    // Same operation order as the seed: one multiply by the combined scale, sum, divide.
    return tf.div(tf.sum(tf.mul(ce, c(lossScale * batchScale))), c(lossScale)) as tf.Scalar;
  });
}

/**
 * Fraction of examples whose arg-max logit is the arg-max of their (possibly soft)
 * target, as the seed's `(outputs.argmax(-1) == targets.argmax(-1)).float().mean()`.
 */
export function accuracy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  checkPair('accuracy', logits, targets);
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(targets, -1)), 'float32')) as tf.Scalar);
}
