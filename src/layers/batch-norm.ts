import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { batchNormApply, batchNormCoefficients, batchNormGrad, batchNormTrainStats, hasBatchNormKernels } from '../ops/batch-norm.js';
import { deviceScalar as c } from '../ops/constants.js';
import { gelu } from '../ops/gelu.js';
import { channelGradSums, channelMoments, hasChannelGradSumsKernel } from '../ops/moments.js';
import {
  checkFiniteNonNegative,
  checkInput,
  scopedWeightName,
  singleInput,
  singleShape,
  type CallKwargs,
  type LayerArgs,
} from './registry.js';

export interface BatchNormArgs extends LayerArgs {
  /** Added to the variance before the square root; default 1e-12, the seed's. */
  eps?: number;
  /** Weight of the new batch statistics in the running averages, PyTorch's convention; default 0.4, the seed's. */
  momentum?: number;
  /** Whether the scale (`weight`, initialised to 1) trains; default false: the seed freezes it. */
  weightTrainable?: boolean;
  /** Whether the shift (`bias`, initialised to 0) trains; default true. */
  biasTrainable?: boolean;
}

const AXES = [0, 1, 2];

/**
 * The running statistics' update, `running · keep + batch · take`, for a batch of n values per channel. PyTorch's
 * momentum weights the new batch (Keras' weights the old average); running_var takes the unbiased variance.
 */
function runningAverageFactors(momentum: number, n: number): { keep: number; takeMean: number; takeVar: number } {
  return { keep: 1 - momentum, takeMean: momentum, takeVar: (momentum * n) / (n - 1) };
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

/**
 * The seed's `BatchNorm` (a PyTorch `BatchNorm2d` over NHWC input): per-channel
 * `weight` (scale, 1, frozen by default), `bias` (shift, 0, trainable),
 * `running_mean` (0) and `running_var` (1), eps 1e-12, momentum 0.4.
 *
 * @remarks
 * With `training: true` in the call's kwargs it normalises with the batch mean
 * and biased batch variance and updates the running statistics as PyTorch does:
 * `running = (1 - momentum) · running + momentum · batch`, with the unbiased batch
 * variance for `running_var`. Otherwise it normalises with the running statistics
 * and changes nothing. The training-mode gradient is written by hand (one
 * custom-gradient op), so no `tf.batchNorm` gradient runs. Where the backend has the fused kernels (WebGPU),
 * a training call is two kernels forward (statistics, normalisation) and one backward, an inference call two
 * forward; elsewhere the unfused ops run.
 */
export class BatchNorm extends tfl.layers.Layer {
  static className = 'BatchNorm';
  readonly eps: number;
  readonly momentum: number;
  readonly weightTrainable: boolean;
  readonly biasTrainable: boolean;
  /** Per-channel scale, `[C]`. */
  weight!: tfl.LayerVariable;
  /** Per-channel shift, `[C]`. */
  bias!: tfl.LayerVariable;
  /** Running mean, `[C]`. */
  runningMean!: tfl.LayerVariable;
  /** Running (unbiased) variance, `[C]`. */
  runningVar!: tfl.LayerVariable;
  private channels: number | null = null;

  constructor(args: BatchNormArgs = {}) {
    super(args);
    const name = `BatchNorm '${this.name}'`;
    // An infinite eps zeroes every normalised value (and its gradient) without an error.
    this.eps = checkFiniteNonNegative(args.eps ?? 1e-12, 'eps', name);
    this.momentum = args.momentum ?? 0.4;
    if (typeof this.momentum !== 'number' || !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new Error(`${name}: argument 'momentum' must be a number in [0, 1], got ${String(args.momentum)}`);
    }
    this.weightTrainable = args.weightTrainable ?? false;
    this.biasTrainable = args.biasTrainable ?? true;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape, `BatchNorm '${this.name}'`);
    checkInput({ shape }, 4, `BatchNorm '${this.name}'`);
    const c = shape[3];
    if (c == null) throw new Error(`BatchNorm '${this.name}' needs a known channel count (last axis), got shape [${shape.join(',')}]`);
    this.channels = c;
    const add = (name: string, init: 'ones' | 'zeros', trainable: boolean) =>
      this.addWeight(scopedWeightName(this, name), [c], 'float32', tfl.initializers[init](), undefined, trainable);
    this.weight = add('weight', 'ones', this.weightTrainable);
    this.bias = add('bias', 'zeros', this.biasTrainable);
    this.runningMean = add('running_mean', 'zeros', false);
    this.runningVar = add('running_var', 'ones', false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return singleShape(inputShape, `BatchNorm '${this.name}'`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `BatchNorm '${this.name}'`);
      checkInput(x, 4, `BatchNorm '${this.name}'`, this.channels);
      if (hasBatchNormKernels()) return kwargs?.training ? this.trainForwardFused(x as tf.Tensor4D, false) : this.inferenceFused(x, false);
      if (kwargs?.training) return this.trainForward(x as tf.Tensor4D);
      const scale = tf.mul(this.weight.read(), tf.rsqrt(tf.add(this.runningVar.read(), c(this.eps))));
      const shift = tf.sub(this.bias.read(), tf.mul(this.runningMean.read(), scale));
      return tf.add(tf.mul(x, scale), shift);
    });
  }

  /**
   * `gelu(this.call(inputs, kwargs))`, the seed's norm-then-GELU, in fewer kernels where the backend has the
   * fused ones (WebGPU): the GELU is part of the normalisation kernel forward and of the gradient kernel
   * backward, where the unfused ops take about a dozen kernels each way. Elsewhere it is exactly the unfused ops.
   */
  callWithGelu(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor {
    if (!hasBatchNormKernels()) return tf.tidy(() => gelu(this.call(inputs, kwargs)));
    return tf.tidy(() => {
      const x = singleInput(inputs, `BatchNorm '${this.name}'`);
      checkInput(x, 4, `BatchNorm '${this.name}'`, this.channels);
      return kwargs?.training ? this.trainForwardFused(x as tf.Tensor4D, true) : this.inferenceFused(x, true);
    });
  }

  private valuesPerChannel(x: tf.Tensor4D): number {
    const [n0, h, w] = x.shape;
    const n = n0 * h * w;
    if (n < 2) {
      throw new Error(`BatchNorm '${this.name}' in training needs more than 1 value per channel, got input shape [${x.shape.join(',')}]`);
    }
    return n;
  }

  /**
   * The running-statistics normalisation (and its GELU with `withGelu`) through the fused kernels, differentiable
   * in x, bias and weight as the unfused ops are (the running statistics are not trained).
   */
  private inferenceFused(x: tf.Tensor, withGelu: boolean): tf.Tensor {
    const { eps } = this;
    const runningMean = this.runningMean.read();
    const runningVar = this.runningVar.read();
    const normalise = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
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
    return normalise(x, this.bias.read(), this.weight.read());
  }

  /**
   * The batch-statistics normalisation (and its GELU with `withGelu`) through the fused kernels, with the gradient
   * of both written by hand; updates the running statistics.
   */
  private trainForwardFused(x: tf.Tensor4D, withGelu: boolean): tf.Tensor {
    const factors = runningAverageFactors(this.momentum, this.valuesPerChannel(x));
    const weight = this.weight.read();
    const weightIsInput = this.weight.trainable;
    const { eps } = this;
    const normalise = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const xi = args[0] as tf.Tensor;
      const bi = args[1] as tf.Tensor;
      const wi = weightIsInput ? (args[2] as tf.Tensor) : weight;
      const stats = batchNormTrainStats(xi, wi, bi, this.runningMean.read(), this.runningVar.read(), { eps, ...factors });
      this.writeRunningStats(stats.runningMean, stats.runningVar);
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
    const inputs = weightIsInput ? [x, this.bias.read(), weight] : [x, this.bias.read()];
    return normalise(...inputs);
  }

  /** Batch-statistics forward pass with a hand-written gradient, the unfused ops; updates the running statistics. */
  private trainForward(x: tf.Tensor4D): tf.Tensor {
    const n = this.valuesPerChannel(x);
    const weight = this.weight.read();
    const weightIsInput = this.weight.trainable;
    const eps = this.eps;
    const normalise = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const xi = args[0] as tf.Tensor;
      const bi = args[1] as tf.Tensor;
      const wi = weightIsInput ? (args[2] as tf.Tensor) : weight;
      const { mean, variance } = channelMoments(xi);
      const rstd = tf.rsqrt(tf.add(variance, c(eps)));
      const scale = tf.mul(wi, rstd);
      const value = tf.add(tf.mul(xi, scale), tf.sub(bi, tf.mul(mean, scale)));
      this.updateRunningStats(mean, variance, n);
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
    const inputs = weightIsInput ? [x, this.bias.read(), weight] : [x, this.bias.read()];
    return normalise(...inputs);
  }

  private updateRunningStats(mean: tf.Tensor, variance: tf.Tensor, n: number): void {
    const { keep, takeMean, takeVar } = runningAverageFactors(this.momentum, n);
    tf.tidy(() => {
      const newMean = tf.add(tf.mul(this.runningMean.read(), c(keep)), tf.mul(mean, c(takeMean)));
      const newVar = tf.add(tf.mul(this.runningVar.read(), c(keep)), tf.mul(variance, c(takeVar)));
      this.writeRunningStats(newMean, newVar);
    });
  }

  /** The one place a training call updates the running statistics (once per call, fused or not). */
  private writeRunningStats(newMean: tf.Tensor, newVar: tf.Tensor): void {
    // write() hands the data to the variable and releases its old value; the caller's tidy disposes the handles.
    this.runningMean.write(newMean);
    this.runningVar.write(newVar);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      eps: this.eps,
      momentum: this.momentum,
      weightTrainable: this.weightTrainable,
      biasTrainable: this.biasTrainable,
    };
  }
}
tf.serialization.registerClass(BatchNorm);
