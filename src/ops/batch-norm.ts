import * as tf from '@tensorflow/tfjs-core';
import {
  BATCH_NORM_APPLY,
  BATCH_NORM_COEFFICIENTS,
  BATCH_NORM_GRAD,
  BATCH_NORM_TRAIN_STATS,
  type BatchNormApplyAttrs,
  type BatchNormCoefficientsAttrs,
  type BatchNormGradAttrs,
  type BatchNormTrainStatsAttrs,
} from '../backend/kernels/names.js';

/**
 * The fused batch-norm kernels (`BatchNorm` in src/layers/batch-norm.ts), where the backend has them (WebGPU with
 * the library's kernels): one kernel for the statistics and one for the normalisation (and its GELU) forward, one
 * backward. Elsewhere the layer runs its unfused ops, which cpu and wasm run as fast. `coefficients` are packed
 * [4, C]: mean, rstd, scale, shift per channel.
 * @internal
 */
export function hasBatchNormKernels(): boolean {
  const backend = tf.getBackend();
  return [BATCH_NORM_TRAIN_STATS, BATCH_NORM_COEFFICIENTS, BATCH_NORM_APPLY, BATCH_NORM_GRAD].every(
    (name) => tf.getKernel(name, backend) != null,
  );
}

function requireKernels(op: string): void {
  if (!hasBatchNormKernels()) {
    throw new Error(`${op}: the '${tf.getBackend()}' backend has no fused batch-norm kernels; check hasBatchNormKernels() first`);
  }
}

const attrMap = (attrs: object) => attrs as unknown as tf.NamedAttrMap;

function channelsOf(op: string, x: tf.Tensor): number {
  const channels = x.shape[x.shape.length - 1];
  if (x.rank < 2 || channels == null || x.dtype !== 'float32') {
    throw new Error(`${op}: x must be a float32 tensor of rank >= 2 (channels last), got ${x.dtype} [${x.shape.join(',')}]`);
  }
  return channels;
}

function checkShape(op: string, name: string, t: tf.Tensor, shape: number[]): void {
  if (t.dtype !== 'float32' || !tf.util.arraysEqual(t.shape, shape)) {
    throw new Error(`${op}: '${name}' must be float32 [${shape.join(',')}], got ${t.dtype} [${t.shape.join(',')}]`);
  }
}

/**
 * The batch's coefficients and the new running averages (`running · keep + batch · take`, the layer's factors), from x
 * (channels last) in one kernel. Not differentiable. @internal
 */
export function batchNormTrainStats(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  runningMean: tf.Tensor,
  runningVar: tf.Tensor,
  attrs: BatchNormTrainStatsAttrs,
): { coefficients: tf.Tensor2D; runningMean: tf.Tensor1D; runningVar: tf.Tensor1D } {
  const op = 'batchNormTrainStats';
  requireKernels(op);
  const c = channelsOf(op, x);
  for (const [name, t] of Object.entries({ weight, bias, runningMean, runningVar })) checkShape(op, name, t, [c]);
  const inputs = { x, weight, bias, runningMean, runningVar };
  const [coefficients, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN_STATS, inputs, attrMap(attrs)) as tf.Tensor[];
  return { coefficients: coefficients as tf.Tensor2D, runningMean: mean as tf.Tensor1D, runningVar: variance as tf.Tensor1D };
}

/** The coefficients of the running statistics, in one kernel. Not differentiable. @internal */
export function batchNormCoefficients(
  weight: tf.Tensor,
  bias: tf.Tensor,
  runningMean: tf.Tensor,
  runningVar: tf.Tensor,
  eps: number,
): tf.Tensor2D {
  const op = 'batchNormCoefficients';
  requireKernels(op);
  const c = weight.size;
  for (const [name, t] of Object.entries({ weight, bias, runningMean, runningVar })) checkShape(op, name, t, [c]);
  const attrs: BatchNormCoefficientsAttrs = { eps };
  return tf.engine().runKernel(BATCH_NORM_COEFFICIENTS, { weight, bias, runningMean, runningVar }, attrMap(attrs)) as tf.Tensor2D;
}

/** x · scale + shift per channel (last axis), or GELU of it with `gelu`. Not differentiable. @internal */
export function batchNormApply(x: tf.Tensor, coefficients: tf.Tensor, gelu: boolean): tf.Tensor {
  requireKernels('batchNormApply');
  checkShape('batchNormApply', 'coefficients', coefficients, [4, channelsOf('batchNormApply', x)]);
  const attrs: BatchNormApplyAttrs = { gelu };
  return tf.engine().runKernel(BATCH_NORM_APPLY, { x, coefficients }, attrMap(attrs)) as tf.Tensor;
}

/**
 * `batchNormApply`'s gradients from dy at its output: dx (through the batch statistics with `batchStats`), the
 * bias gradient and, with `weightGrad`, the weight gradient, in one kernel. @internal
 */
export function batchNormGrad(
  x: tf.Tensor,
  dy: tf.Tensor,
  coefficients: tf.Tensor,
  attrs: BatchNormGradAttrs,
): { dx: tf.Tensor; dBias: tf.Tensor1D; dWeight?: tf.Tensor1D } {
  requireKernels('batchNormGrad');
  checkShape('batchNormGrad', 'coefficients', coefficients, [4, channelsOf('batchNormGrad', x)]);
  checkShape('batchNormGrad', 'dy', dy, x.shape);
  const [dx, dBias, dWeight] = tf.engine().runKernel(BATCH_NORM_GRAD, { x, dy, coefficients }, attrMap(attrs)) as tf.Tensor[];
  return { dx: dx!, dBias: dBias as tf.Tensor1D, ...(dWeight ? { dWeight: dWeight as tf.Tensor1D } : {}) };
}
