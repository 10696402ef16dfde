import * as tf from '@tensorflow/tfjs-core';
import { GELU_CHANNEL_GRAD_SUMS, SCALE_SHIFT_GELU, SCALE_SHIFT_GELU_GRAD } from '../backend/kernels/names.js';

/**
 * The fused batch-norm + GELU kernels (`BatchNorm.callWithGelu`), where the backend has them (WebGPU with the
 * library's kernels). Elsewhere the layer runs its unfused ops, which cpu and wasm run as fast.
 * @internal
 */
export function hasBatchNormGeluKernels(): boolean {
  const backend = tf.getBackend();
  return [SCALE_SHIFT_GELU, GELU_CHANNEL_GRAD_SUMS, SCALE_SHIFT_GELU_GRAD].every((name) => tf.getKernel(name, backend) != null);
}

function requireKernels(op: string): void {
  if (!hasBatchNormGeluKernels()) {
    throw new Error(`${op}: the '${tf.getBackend()}' backend has no fused batch-norm/GELU kernels; check hasBatchNormGeluKernels() first`);
  }
}

/** GELU(x · scale + shift), scale and shift per channel (last axis). Not differentiable. @internal */
export function scaleShiftGelu(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor): tf.Tensor {
  requireKernels('scaleShiftGelu');
  return tf.engine().runKernel(SCALE_SHIFT_GELU, { x, scale, shift }) as tf.Tensor;
}

/** Σ g and Σ g · (x - mean) per channel, g = dy · GELU'(x · scale + shift), in one pass over x and dy. @internal */
export function geluChannelGradSums(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  scale: tf.Tensor,
  shift: tf.Tensor,
): { gSum: tf.Tensor; gCentredSum: tf.Tensor } {
  requireKernels('geluChannelGradSums');
  return tf.tidy(() => {
    const both = tf.engine().runKernel(GELU_CHANNEL_GRAD_SUMS, { x, dy, mean, scale, shift }) as tf.Tensor;
    const [gSum, gCentredSum] = tf.unstack(both);
    return { gSum: gSum!, gCentredSum: gCentredSum! };
  });
}

/** g · scale + x · alpha + beta, g = dy · GELU'(x · scale + shift), coefficients per channel. @internal */
export function scaleShiftGeluGrad(
  x: tf.Tensor,
  dy: tf.Tensor,
  scale: tf.Tensor,
  shift: tf.Tensor,
  alpha: tf.Tensor,
  beta: tf.Tensor,
): tf.Tensor {
  requireKernels('scaleShiftGeluGrad');
  return tf.engine().runKernel(SCALE_SHIFT_GELU_GRAD, { x, dy, scale, shift, alpha, beta }) as tf.Tensor;
}
