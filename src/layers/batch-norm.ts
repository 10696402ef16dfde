import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { batchNorm, batchNormGelu, type BatchNormState } from '../ops/batch-norm.js';
import { checkFiniteNonNegative, checkInput, checkUnitInterval, knownLastAxis, singleInput, singleShape } from '../validation.js';
import { namespacedClassName, registerLayerClass, scopedWeightName, withDefaultName } from './registry.js';
import type { CallKwargs, LayerArgs } from './types.js';

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
 * forward; elsewhere the unfused ops run. The computation is the `batchNorm` op (src/ops/batch-norm.ts), which
 * makes that choice; a block that applies a GELU after the norm calls `batchNormGelu(x, norm, kwargs)`, which
 * fuses the GELU into the same kernels.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { BatchNorm } from 'tfjs-dataflow';
 *
 * const norm = new BatchNorm({ name: 'norm', momentum: 0.4 });
 * const x = tf.randomNormal([8, 16, 16, 32]);
 * // Batch statistics, and the running mean and variance updated; without `training` the running ones are used.
 * const y = norm.apply(x, { training: true }) as tf.Tensor;
 * ```
 */
export class BatchNorm extends tfl.layers.Layer implements BatchNormState {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>BatchNorm'`. */
  static className = namespacedClassName('BatchNorm');
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Weight of the new batch statistics in the running averages (PyTorch's convention). */
  readonly momentum: number;
  /** Whether the scale trains. */
  readonly weightTrainable: boolean;
  /** Whether the shift trains. */
  readonly biasTrainable: boolean;
  /** Per-channel scale, `[C]`. */
  weight!: tfl.LayerVariable;
  /** Per-channel shift, `[C]`. */
  bias!: tfl.LayerVariable;
  /** Running mean, `[C]`. */
  runningMean!: tfl.LayerVariable;
  /** Running (unbiased) variance, `[C]`. */
  runningVar!: tfl.LayerVariable;

  constructor(args: BatchNormArgs = {}) {
    super(withDefaultName(args, 'BatchNorm'));
    const name = `BatchNorm '${this.name}'`;
    // An infinite eps zeroes every normalised value (and its gradient) without an error.
    this.eps = checkFiniteNonNegative(args.eps ?? 1e-12, 'eps', name);
    this.momentum = checkUnitInterval(args.momentum ?? 0.4, 'momentum', name);
    this.weightTrainable = args.weightTrainable ?? false;
    this.biasTrainable = args.biasTrainable ?? true;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape, `BatchNorm '${this.name}'`);
    checkInput({ shape }, 4, `BatchNorm '${this.name}'`);
    const c = knownLastAxis(shape, `BatchNorm '${this.name}'`);
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
    return batchNorm(singleInput(inputs, `BatchNorm '${this.name}'`), this, kwargs);
  }

  /** `gelu(this.call(inputs, kwargs))` through the `batchNormGelu` op, fused where the backend has the kernels. */
  callWithGelu(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor {
    return batchNormGelu(singleInput(inputs, `BatchNorm '${this.name}'`), this, kwargs);
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
registerLayerClass(BatchNorm, 'BatchNorm');
