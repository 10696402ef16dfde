import * as tf from '@tensorflow/tfjs-core';
import { CHANNEL_GRAD_SUMS, CHANNEL_MOMENTS, type ChannelMomentsAttrs } from '../backend/kernels/names.js';

/** Whether the active backend has the library's one-pass kernel `name` (WebGPU with its training kernels installed). */
function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) != null;
}

/** Whether `channelMoments` runs as one kernel here. @internal */
export function hasChannelMomentsKernel(): boolean {
  return hasKernel(CHANNEL_MOMENTS);
}

/** Whether `channelGradSums` can run here (WebGPU with the library's kernels). @internal */
export function hasChannelGradSumsKernel(): boolean {
  return hasKernel(CHANNEL_GRAD_SUMS);
}

function allAxesButLast(x: tf.Tensor): number[] {
  return x.shape.slice(0, -1).map((_, i) => i);
}

/**
 * Mean and biased variance of a channels-last tensor per channel (over every axis but the last), or
 * over the whole tensor with `overAll`. One pass over x on a backend with the library's kernel
 * (WebGPU), `tf.moments` elsewhere. Not differentiable: callers supply their own gradients.
 *
 * `scale` is null, except over the whole tensor with the kernel: then the biased variance is
 * `variance · scale²` (scale 1 unless the squares of x would overflow float32; see CHANNEL_MOMENTS).
 * @internal
 */
export function channelMoments(x: tf.Tensor, overAll = false): { mean: tf.Tensor; variance: tf.Tensor; scale: tf.Tensor | null } {
  if (!hasKernel(CHANNEL_MOMENTS)) {
    const { mean, variance } = tf.moments(x, overAll ? undefined : allAxesButLast(x));
    return { mean, variance, scale: null };
  }
  const attrs: ChannelMomentsAttrs = { overAll };
  const [mean, variance, scale] = tf.tidy(() =>
    tf.unstack(tf.engine().runKernel(CHANNEL_MOMENTS, { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor),
  );
  return { mean: mean!, variance: variance!, scale: scale ?? null };
}

/**
 * The batch norm gradient's per-channel sums, Σ dy and Σ dy · (x - mean), over every axis but the last, in
 * one pass over dy and x. Only where the backend has the library's kernel (`hasChannelGradSumsKernel`):
 * elsewhere the batch norm takes sums that share x̂ with its dx instead.
 * @internal
 */
export function channelGradSums(dy: tf.Tensor, x: tf.Tensor, mean: tf.Tensor): { dySum: tf.Tensor; dyCentredSum: tf.Tensor } {
  if (!hasKernel(CHANNEL_GRAD_SUMS)) {
    throw new Error(
      `channelGradSums: the '${tf.getBackend()}' backend has no ${CHANNEL_GRAD_SUMS} kernel; check hasChannelGradSumsKernel() first`,
    );
  }
  return tf.tidy(() => {
    const both = tf.engine().runKernel(CHANNEL_GRAD_SUMS, { x, dy, mean }) as tf.Tensor;
    const [dySum, dyCentredSum] = tf.unstack(both);
    return { dySum: dySum!, dyCentredSum: dyCentredSum! };
  });
}
