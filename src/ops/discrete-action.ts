import * as tf from '@tensorflow/tfjs-core';
import {
  ADD_SCALED_NOISE,
  ADD_SCALED_NOISE_GRAD,
  CHANNEL_MOMENTS,
  type AddScaledNoiseAttrs,
  type ChannelMomentsAttrs,
} from '../backend/kernels/names.js';
import { deviceScalar } from './constants.js';
import { channelMoments, hasChannelMomentsKernel } from './moments.js';
import { DeviceRandom } from './random.js';
import { stopGradient } from './stop-gradient.js';
import { globalRandom } from './global-random.js';

/** Options of `simulateDiscreteAction`. */
export interface SimulateDiscreteActionOptions {
  /** Noise scale as a multiple of std(x), the seed's `noise_std_mul`; default 1. */
  noiseStd?: number;
  /** Also cut the gradient through std(x); default false (the seed keeps it: a named variant, not the seed). */
  detachStd?: boolean;
  /** Generator for the noise; default the global generator (seeded at random unless `setGlobalSeed` was called). */
  random?: DeviceRandom;
  /** Seed of a fresh generator for this call alone (the same noise every call); instead of `random`. */
  seed?: number;
  /** Explicit standard-normal noise of x's shape (golden tests); overrides `random` and `seed`. */
  noise?: tf.Tensor;
}

/**
 * torch.std is unbiased (Bessel's correction, tf.moments is not): the sum of squares over n - 1, or the biased
 * variance times n / (n - 1), for n values. Every unbiased std here takes its factors from this one place.
 */
function besselFactors(n: number): { countLessOne: number; unbias: number } {
  return { countLessOne: n - 1, unbias: n / (n - 1) };
}

/**
 * Standard deviation with PyTorch's default correction, as the seed's `x.std()`
 * in `simulate_discrete_action` and its `torch.std_mean` (dirac renormalisation,
 * dataset statistics): over the whole tensor, or over `axis`.
 *
 * Inputs whose squares overflow float32 (max |x| beyond 2^40 per reduced slice: near 1e19 they gave an
 * infinite std) are scaled down first, so the std of any finite input is finite wherever it is itself
 * representable; below that bound the ops are the plain ones, bit for bit.
 *
 * @param x A float32 tensor with at least two elements along the reduced axes.
 * @param axis Axes to reduce; default all.
 * @param keepDims Keep reduced axes with size 1; default false.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { unbiasedStd } from 'tfjs-dataflow';
 *
 * const std = unbiasedStd(tf.tensor1d([1, 2, 3, 4])); // 1.29..., as torch.std
 * ```
 */
export function unbiasedStd(x: tf.Tensor, axis?: number | number[], keepDims = false): tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new TypeError(`unbiasedStd: argument 'x' must be a tf.Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new TypeError(`unbiasedStd: argument 'x' must be float32, got dtype '${x.dtype}'`);
  const axes = axis == null ? x.shape.map((_, i) => i) : tf.util.parseAxisParam(axis, x.shape);
  const n = axes.reduce((count, a) => count * x.shape[a]!, 1);
  if (n < 2) {
    throw new Error(`unbiasedStd: argument 'x' needs at least 2 elements along axes [${axes.join(',')}], got shape [${x.shape.join(',')}]`);
  }
  if (axis == null && hasChannelMomentsKernel()) return onePassStd(x, keepDims);
  return tf.tidy(() => {
    const { down, up } = overflowScale(x, axes, keepDims);
    // x · down twice, as x itself was taken twice (the mean, then the difference): the gradient reaches x in the
    // same two parts, added in the same order as without the scaling, so it is bit for bit the same where down is 1.
    const mean = tf.mean(tf.mul(x, down), axes, true);
    const centred = tf.sub(tf.mul(x, down), mean);
    const std = tf.sqrt(tf.div(tf.sum(tf.square(centred), axes, keepDims), deviceScalar(besselFactors(n).countLessOne)));
    return tf.mul(std, up);
  });
}

/** Beyond this largest |x| the std is taken of x scaled down: below it, n · (2 · 2^40)² overflows no float32 sum short of 2^46 values. */
const UNSCALED_UP_TO = 2 ** 40;

/**
 * The factors the std is computed with, per reduced slice: x · down, then the std · up. Both are exactly 1 where
 * max |x| <= 2^40, so the ops compute what they always did, bit for bit; beyond, x is scaled to at most 2^40 (its
 * squares, near 1e19 and above, overflow float32: an infinite std on cpu, NaN on WebGPU). Outside the gradient:
 * the std of x is that of x · down over down whatever down is, so a fixed factor gives the same derivative.
 */
function overflowScale(x: tf.Tensor, axes: number[], keepDims: boolean): { down: tf.Tensor; up: tf.Tensor } {
  return tf.tidy(() => {
    const maxAbs = stopGradient(tf.max(tf.abs(x), axes, true));
    // max(1, max|x| / 2^40): 1 exactly below the bound (the product by a power of two is exact), the division's 1 / 1 too.
    const up = tf.maximum(tf.mul(maxAbs, deviceScalar(1 / UNSCALED_UP_TO)), deviceScalar(1));
    const down = tf.div(deviceScalar(1), up);
    return { down, up: keepDims ? up : tf.reshape(up, tf.util.squeezeShape(up.shape, axes).newShape) };
  });
}

/**
 * The whole tensor's unbiased std from one kernel pass (WebGPU), with its gradient written out:
 * d std / dx = (x - mean) / ((n - 1) · std).
 */
function onePassStd(x: tf.Tensor, keepDims: boolean): tf.Tensor {
  const { countLessOne, unbias } = besselFactors(x.size);
  const std = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const xi = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const { mean, variance, scale } = channelMoments(xi, true);
    // The kernel's variance is in units of scale², scale 1 (an exact product) unless x's squares overflow float32.
    const value = tf.mul(tf.sqrt(tf.mul(variance, deviceScalar(unbias))), scale!);
    save([xi, mean, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, s] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.mul(tf.sub(xs, m), tf.div(dy, tf.mul(s, deviceScalar(countLessOne))));
      },
    };
  });
  if (!keepDims) return std(x);
  return tf.tidy(() =>
    tf.reshape(
      std(x),
      x.shape.map(() => 1),
    ),
  );
}

/**
 * The seed's `simulate_discrete_action`: `x.detach() + noiseStd * x.std() * randn_like(x)`.
 * Stands in for a discrete, non-backpropagable action between conv groups: the
 * value path is cut, and noise scaled by the whole tensor's unbiased std is added.
 *
 * @remarks
 * As in the seed, only the value path is detached: the std factor stays
 * differentiable, so x still receives a (weak) gradient through that one scalar,
 * `noiseStd * sum(dy * noise) * d std / dx`. `detachStd: true` cuts it too (a
 * different experiment). There is no training switch: the seed adds the noise in
 * eval too. `noiseStd: 0` returns the cut x alone (torch would give x a zero
 * gradient; here x gets none). On WebGPU with the library's kernels the whole
 * action is the moments kernel and one elementwise kernel (the gradient one more
 * after Σ dy · noise), the same f32 operations as the unfused ops elsewhere. On every backend the std stays
 * finite for finite x whose squares overflow float32 (see {@link unbiasedStd}; on WebGPU the moments kernel
 * also keeps scaled sums for that case).
 *
 * @param x A float32 tensor (any rank, at least 2 elements; NHWC activations in the network).
 * @param options Noise scale, the std cut, and where the noise comes from.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { DeviceRandom, simulateDiscreteAction } from 'tfjs-dataflow';
 *
 * const x = tf.randomNormal([8, 16, 16, 64]);
 * const random = new DeviceRandom(1);
 * // stopGradient(x) + 1 · std(x) · N(0, 1), the noise drawn on the backend.
 * const y = simulateDiscreteAction(x, { noiseStd: 1, random });
 * ```
 */
export function simulateDiscreteAction(x: tf.Tensor, options: SimulateDiscreteActionOptions = {}): tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new TypeError(`simulateDiscreteAction: argument 'x' must be a tf.Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new TypeError(`simulateDiscreteAction: argument 'x' must be float32, got dtype '${x.dtype}'`);
  if (x.size < 2) {
    throw new Error(
      `simulateDiscreteAction: argument 'x' needs at least 2 elements for the unbiased std, got shape [${x.shape.join(',')}]`,
    );
  }
  const { noiseStd = 1, detachStd = false, random, seed, noise } = options;
  if (typeof noiseStd !== 'number' || !Number.isFinite(noiseStd) || noiseStd < 0) {
    throw new Error(`simulateDiscreteAction: option 'noiseStd' must be a finite number >= 0, got ${String(noiseStd)}`);
  }
  if (random != null && seed != null) throw new Error(`simulateDiscreteAction: pass option 'random' or option 'seed', not both`);
  if (random != null && !(random instanceof DeviceRandom)) {
    throw new TypeError(`simulateDiscreteAction: option 'random' must be a DeviceRandom, got ${typeof random}`);
  }
  if (noise != null) {
    if (!(noise instanceof tf.Tensor) || noise.dtype !== 'float32' || !tf.util.arraysEqual(noise.shape, x.shape)) {
      const got = noise instanceof tf.Tensor ? `${noise.dtype} [${noise.shape.join(',')}]` : typeof noise;
      throw new Error(`simulateDiscreteAction: option 'noise' must be a float32 tensor of x's shape [${x.shape.join(',')}], got ${got}`);
    }
  }
  if (noiseStd === 0) return stopGradient(x);
  const generator = noise != null ? undefined : (random ?? (seed != null ? new DeviceRandom(seed) : globalRandom()));
  if (hasAddScaledNoiseKernel()) return tf.tidy(() => addScaledNoise(x, noise ?? generator!.normal(x.shape), noiseStd, detachStd));
  return tf.tidy(() => {
    const std = detachStd ? stopGradient(unbiasedStd(x)) : unbiasedStd(x);
    const n = noise ?? generator!.normal(x.shape);
    return tf.add(stopGradient(x), tf.mul(tf.mul(std, deviceScalar(noiseStd)), n));
  });
}

/** Whether the discrete action runs as the library's fused kernels here (WebGPU with its training kernels). @internal */
export function hasAddScaledNoiseKernel(): boolean {
  const backend = tf.getBackend();
  return (
    tf.getKernel(ADD_SCALED_NOISE, backend) != null && tf.getKernel(ADD_SCALED_NOISE_GRAD, backend) != null && hasChannelMomentsKernel()
  );
}

/**
 * `x.detach() + noiseStd * std(x) * noise` from the whole tensor's moments (one kernel) and one elementwise
 * kernel that takes the std from them, where the unfused ops run about a dozen kernels and saves. The gradient
 * is the unfused ops': x gets `noiseStd * sum(dy * noise) * d std / dx` through the std alone (nothing with
 * `detachStd`), in two kernels after Σ dy · noise.
 */
function addScaledNoise(x: tf.Tensor, noise: tf.Tensor, noiseStd: number, detachStd: boolean): tf.Tensor {
  const attrs = { noiseStd, ...besselFactors(x.size) } satisfies AddScaledNoiseAttrs as unknown as tf.NamedAttrMap;
  const overAll = { overAll: true } satisfies ChannelMomentsAttrs as unknown as tf.NamedAttrMap;
  const forward = (input: tf.Tensor) => {
    const moments = tf.engine().runKernel(CHANNEL_MOMENTS, { x: input }, overAll) as tf.Tensor;
    return { moments, value: tf.engine().runKernel(ADD_SCALED_NOISE, { x: input, moments, noise }, attrs) as tf.Tensor };
  };
  // x closed over, not passed in: the tape gets a node without inputs, and backprop stops there (as stopGradient).
  if (detachStd) return tf.customGrad(() => ({ value: forward(x).value, gradFunc: () => [] }))();
  const withStdGradient = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const xi = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const { moments, value } = forward(xi);
    save([xi, moments, noise]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, n] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const noiseDot = tf.sum(tf.mul(dy, n));
        return tf.engine().runKernel(ADD_SCALED_NOISE_GRAD, { x: xs, moments: m, noiseDot }, attrs) as tf.Tensor;
      },
    };
  });
  return withStdGradient(x);
}
