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
import { checkInput } from '../validation.js';
import { deviceScalar as c } from './constants.js';
import { gelu } from './gelu.js';
import { channelGradSums, channelMoments, hasChannelGradSumsKernel } from './moments.js';

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

// ---- The op: the seed's batch norm (and its GELU), fused where the backend has the kernels --------------------

/** A variable of the batch norm's state: a tfjs-layers `LayerVariable` (the `BatchNorm` layer's). */
export interface BatchNormVariable {
  /** The variable's current value. */
  read(): tf.Tensor;
  /** Replaces the variable's value. */
  write(value: tf.Tensor): unknown;
  /** Whether the variable trains (gets a gradient). */
  readonly trainable: boolean;
}

/**
 * What `batchNorm` and `batchNormGelu` read and update: the `BatchNorm` layer (src/layers/batch-norm.ts) is one, or
 * any object with its per-channel variables and settings.
 */
export interface BatchNormState {
  /** Names the norm in error messages. */
  readonly name: string;
  /** Per-channel scale `[C]`; its gradient is taken in training only when it is trainable. */
  readonly weight: BatchNormVariable;
  /** Per-channel shift `[C]`. */
  readonly bias: BatchNormVariable;
  /** Running mean `[C]`, updated by a training call. */
  readonly runningMean: BatchNormVariable;
  /** Running (unbiased) variance `[C]`, updated by a training call. */
  readonly runningVar: BatchNormVariable;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Weight of the new batch statistics in the running averages, PyTorch's convention. */
  readonly momentum: number;
}

const AXES = [0, 1, 2];

/**
 * The running statistics' update, `running · keep + batch · take`, for a batch of n values per channel. PyTorch's
 * momentum weights the new batch (Keras' weights the old average); running_var takes the unbiased variance.
 */
function runningAverageFactors(momentum: number, n: number): { keep: number; takeMean: number; takeVar: number } {
  return { keep: 1 - momentum, takeMean: momentum, takeVar: (momentum * n) / (n - 1) };
}

/**
 * The seed's batch norm (a PyTorch `BatchNorm2d` over NHWC x) with `norm`'s variables: with `training` in `kwargs`
 * the batch statistics, a hand-written gradient and the running statistics updated; otherwise the running
 * statistics. Where the backend has the fused kernels (WebGPU with the library's kernels) it runs them, elsewhere
 * the unfused ops. `BatchNorm.call` is this op.
 */
export function batchNorm(x: tf.Tensor, norm: BatchNormState, kwargs?: { training?: boolean }): tf.Tensor {
  return normalise(x, norm, Boolean(kwargs?.training), false);
}

/**
 * `gelu(batchNorm(x, norm, kwargs))`, the seed's norm-then-GELU, in fewer kernels where the backend has the fused
 * ones (WebGPU): the GELU is part of the normalisation kernel forward and of the gradient kernel backward, where
 * the unfused ops take about a dozen kernels each way. Elsewhere it is exactly the unfused ops. Any block that calls
 * it gets the fused path (`ConvGroup` does; `examples/custom-block`'s `ResidualBlock` too).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { BatchNorm, batchNormGelu } from 'tfjs-dataflow';
 *
 * const norm = new BatchNorm({ name: 'norm' });
 * norm.build([null, 8, 8, 16]);
 * const y = batchNormGelu(tf.randomNormal([4, 8, 8, 16]), norm, { training: true });
 * ```
 */
export function batchNormGelu(x: tf.Tensor, norm: BatchNormState, kwargs?: { training?: boolean }): tf.Tensor {
  return normalise(x, norm, Boolean(kwargs?.training), true);
}

function normalise(x: tf.Tensor, norm: BatchNormState, training: boolean, withGelu: boolean): tf.Tensor {
  return tf.tidy(() => {
    checkInput(x, 4, `BatchNorm '${norm.name}'`, norm.weight.read().shape[0]);
    if (hasBatchNormKernels()) return training ? trainForwardFused(x as tf.Tensor4D, norm, withGelu) : inferenceFused(x, norm, withGelu);
    const y = training ? trainForward(x as tf.Tensor4D, norm) : inference(x, norm);
    return withGelu ? gelu(y) : y;
  });
}

function valuesPerChannel(x: tf.Tensor4D, norm: BatchNormState): number {
  const [n0, h, w] = x.shape;
  const n = n0 * h * w;
  if (n < 2) {
    throw new Error(`BatchNorm '${norm.name}' in training needs more than 1 value per channel, got input shape [${x.shape.join(',')}]`);
  }
  return n;
}

/** The running-statistics normalisation, the unfused ops. */
function inference(x: tf.Tensor, norm: BatchNormState): tf.Tensor {
  const scale = tf.mul(norm.weight.read(), tf.rsqrt(tf.add(norm.runningVar.read(), c(norm.eps))));
  const shift = tf.sub(norm.bias.read(), tf.mul(norm.runningMean.read(), scale));
  return tf.add(tf.mul(x, scale), shift);
}

/**
 * The running-statistics normalisation (and its GELU with `withGelu`) through the fused kernels, differentiable
 * in x, bias and weight as the unfused ops are (the running statistics are not trained).
 */
function inferenceFused(x: tf.Tensor, norm: BatchNormState, withGelu: boolean): tf.Tensor {
  const { eps } = norm;
  const runningMean = norm.runningMean.read();
  const runningVar = norm.runningVar.read();
  const apply = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, bi, wi] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
    const save = args[3] as tf.GradSaveFunc;
    const coefficients = batchNormCoefficients(wi, bi, runningMean, runningVar, eps);
    save([xi, coefficients]);
    return {
      value: batchNormApply(xi, coefficients, withGelu),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, coeffs] = saved as [tf.Tensor, tf.Tensor];
        const { dx, dBias, dWeight } = batchNormGrad(xs, dy, coeffs, { gelu: withGelu, batchStats: false, weightGrad: true });
        return [dx, dBias, dWeight!];
      },
    };
  });
  return apply(x, norm.bias.read(), norm.weight.read());
}

/**
 * The batch-statistics normalisation (and its GELU with `withGelu`) through the fused kernels, with the gradient
 * of both written by hand; updates the running statistics.
 */
function trainForwardFused(x: tf.Tensor4D, norm: BatchNormState, withGelu: boolean): tf.Tensor {
  const factors = runningAverageFactors(norm.momentum, valuesPerChannel(x, norm));
  const weight = norm.weight.read();
  const weightIsInput = norm.weight.trainable;
  const { eps } = norm;
  const apply = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    const bi = args[1] as tf.Tensor;
    const wi = weightIsInput ? (args[2] as tf.Tensor) : weight;
    const stats = batchNormTrainStats(xi, wi, bi, norm.runningMean.read(), norm.runningVar.read(), { eps, ...factors });
    writeRunningStats(norm, stats.runningMean, stats.runningVar);
    save([xi, stats.coefficients]);
    return {
      value: batchNormApply(xi, stats.coefficients, withGelu),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, coefficients] = saved as [tf.Tensor, tf.Tensor];
        const grads = batchNormGrad(xs, dy, coefficients, { gelu: withGelu, batchStats: true, weightGrad: weightIsInput });
        return weightIsInput ? [grads.dx, grads.dBias, grads.dWeight!] : [grads.dx, grads.dBias];
      },
    };
  });
  const inputs = weightIsInput ? [x, norm.bias.read(), weight] : [x, norm.bias.read()];
  return apply(...inputs);
}

/** Σ dy and Σ dy · x̂ per channel for the unfused ops: one kernel where the backend has it (the library's WebGPU kernels), else sums sharing x̂ with dx. */
function gradSums(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  rstd: tf.Tensor,
  xhat: tf.Tensor,
): { dySum: tf.Tensor; dyXhatSum: tf.Tensor } {
  if (!hasChannelGradSumsKernel()) return { dySum: tf.sum(dy, AXES), dyXhatSum: tf.sum(tf.mul(dy, xhat), AXES) };
  const { dySum, dyCentredSum } = channelGradSums(dy, x, mean);
  return { dySum, dyXhatSum: tf.mul(dyCentredSum, rstd) };
}

/** Batch-statistics forward pass with a hand-written gradient, the unfused ops; updates the running statistics. */
function trainForward(x: tf.Tensor4D, norm: BatchNormState): tf.Tensor {
  const n = valuesPerChannel(x, norm);
  const weight = norm.weight.read();
  const weightIsInput = norm.weight.trainable;
  const { eps } = norm;
  const apply = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    const bi = args[1] as tf.Tensor;
    const wi = weightIsInput ? (args[2] as tf.Tensor) : weight;
    const { mean, variance } = channelMoments(xi);
    const rstd = tf.rsqrt(tf.add(variance, c(eps)));
    const scale = tf.mul(wi, rstd);
    const value = tf.add(tf.mul(xi, scale), tf.sub(bi, tf.mul(mean, scale)));
    updateRunningStats(norm, mean, variance, n);
    save([xi, mean, rstd, scale]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, r, sc] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const xhat = tf.mul(tf.sub(xs, m), r);
        const { dySum, dyXhatSum } = gradSums(dy, xs, m, r, xhat);
        // dx = scale · (dy − mean(dy) − x̂ · mean(dy · x̂)), the batch statistics' own gradient included.
        const dx = tf.sub(tf.mul(dy, sc), tf.add(tf.mul(xhat, tf.div(tf.mul(sc, dyXhatSum), c(n))), tf.div(tf.mul(sc, dySum), c(n))));
        return weightIsInput ? [dx, dySum, dyXhatSum] : [dx, dySum];
      },
    };
  });
  const inputs = weightIsInput ? [x, norm.bias.read(), weight] : [x, norm.bias.read()];
  return apply(...inputs);
}

function updateRunningStats(norm: BatchNormState, mean: tf.Tensor, variance: tf.Tensor, n: number): void {
  const { keep, takeMean, takeVar } = runningAverageFactors(norm.momentum, n);
  tf.tidy(() => {
    const newMean = tf.add(tf.mul(norm.runningMean.read(), c(keep)), tf.mul(mean, c(takeMean)));
    const newVar = tf.add(tf.mul(norm.runningVar.read(), c(keep)), tf.mul(variance, c(takeVar)));
    writeRunningStats(norm, newMean, newVar);
  });
}

/** The one place a training call updates the running statistics (once per call, fused or not). */
function writeRunningStats(norm: BatchNormState, newMean: tf.Tensor, newVar: tf.Tensor): void {
  // write() hands the data to the variable and releases its old value; the caller's tidy disposes the handles.
  norm.runningMean.write(newMean);
  norm.runningVar.write(newVar);
}
