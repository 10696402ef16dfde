/**
 * The library's own kernels, registered by name for the backends that have a device path; the ops
 * that use them fall back to plain tfjs ops on a backend without one (`tf.getKernel` says which).
 */

/** `DeviceRandom`'s draws (src/ops/random.ts): cpu, wasm and webgpu. */
export const RANDOM_KERNEL = 'DataflowRandom';

/**
 * Input `x` (channels last). Output [2, C]: mean and biased variance per channel; with `overAll`, [3] over the whole
 * tensor: mean, variance and scale, the biased variance being variance · scale² (scale 1 unless the squares of x
 * would overflow float32: then 2^100, so that no finite input overflows it).
 */
export const CHANNEL_MOMENTS = 'DataflowChannelMoments';
export interface ChannelMomentsAttrs {
  overAll: boolean;
}

/** Inputs `x`, `dy` (same shape, channels last) and `mean` [C]. Output [2, C]: Σ dy and Σ dy · (x - mean) per channel. */
export const CHANNEL_GRAD_SUMS = 'DataflowChannelGradSums';

/**
 * The seed's batch norm on WebGPU, in one engine kernel per step. `coefficients` are packed [4, C]: mean, rstd
 * (1 / sqrt(variance + eps)), scale (weight · rstd) and shift (bias − mean · scale) per channel.
 *
 * Training statistics: inputs `x` (channels last), `weight`, `bias`, `runningMean`, `runningVar` ([C]). Outputs
 * `coefficients` from the batch (biased variance), then the new running mean `running · keep + mean · takeMean` and
 * running variance `running · keep + variance · takeVar` (the factors of PyTorch's convention come from the layer:
 * `runningAverageFactors` in src/layers/batch-norm.ts).
 */
export const BATCH_NORM_TRAIN_STATS = 'DataflowBatchNormTrainStats';
export interface BatchNormTrainStatsAttrs {
  eps: number;
  keep: number;
  takeMean: number;
  takeVar: number;
}

/** Inputs `weight`, `bias`, `runningMean`, `runningVar` ([C]). Output `coefficients` [4, C] from the running statistics. */
export const BATCH_NORM_COEFFICIENTS = 'DataflowBatchNormCoefficients';
export interface BatchNormCoefficientsAttrs {
  eps: number;
}

/** Inputs `x` (channels last), `coefficients` [4, C]. Output like x: x · scale + shift, or its GELU with `gelu`. */
export const BATCH_NORM_APPLY = 'DataflowBatchNormApply';
export interface BatchNormApplyAttrs {
  gelu: boolean;
}

/**
 * The gradient of BATCH_NORM_APPLY's output (`dy`), through the batch statistics with `batchStats` (training) or
 * not (inference). Inputs `x`, `dy` (same shape, channels last), `coefficients` [4, C]. Outputs dx (like x),
 * the bias gradient Σ g [C] and, with `weightGrad`, the weight gradient rstd · Σ g · (x − mean) [C], where g is
 * dy, or dy · GELU'(x · scale + shift) with `gelu`.
 */
export const BATCH_NORM_GRAD = 'DataflowBatchNormGrad';
export interface BatchNormGradAttrs {
  gelu: boolean;
  batchStats: boolean;
  weightGrad: boolean;
}

/**
 * Compact images (src/data/compact.ts) decoded into a float32 batch by an epoch's plan (src/augment/plan.ts),
 * executed as given: inputs `plan` (int32 [B, 4], or [B, 10] with `mixSize`: see DECODE_PLAN_COLUMNS), `lut`
 * (float32 [C * 256]: the normalised value of byte v in channel c at c * 256 + v) and `p0`..`p{parts - 1}` (int32
 * [images, words]: each image's NHWC bytes, four to a word, little-endian). Output float32 [B, size, size, C]:
 * the size x size window at (top, left) of each image reflect-padded by `pad`, mirrored left-right where flip is
 * 1; with `mixSize`, the output pixels in the mixSize square at (squareTop, squareLeft) come from the partner's
 * image, window and flip instead: cutmix.
 */
export const DECODE_IMAGES = 'DataflowDecodeImages';
/** A decode plan row's columns: the image, its window and flip; with cutmix, the partner's four, then the pasted square's corner. */
export const DECODE_PLAN_COLUMNS = [
  'image',
  'top',
  'left',
  'flip',
  'partner',
  'partnerTop',
  'partnerLeft',
  'partnerFlip',
  'squareTop',
  'squareLeft',
] as const;
export interface DecodeImagesAttrs {
  parts: number;
  /** Images in every part but the last. */
  perPart: number;
  /** Stored (unpadded) image height, width and channels. */
  height: number;
  width: number;
  channels: number;
  pad: number;
  size: number;
  /** Side of the cutmix square; 0: no cutmix, and the plan has the first four columns only. */
  mixSize: number;
}

/**
 * The discrete action's `x + noiseStd · std · noise` in one pass: inputs `x`, `moments` ([3]: mean, variance and
 * scale over the whole of x, CHANNEL_MOMENTS's `overAll` output) and `noise` (x's shape). Output like x, with
 * std = sqrt(variance · unbias) · scale, unbias = n / (n - 1) for n the size of x (PyTorch's unbiased std).
 */
export const ADD_SCALED_NOISE = 'DataflowAddScaledNoise';
export interface AddScaledNoiseAttrs {
  noiseStd: number;
  /** n / (n - 1) and n - 1 for n, the size of x: the unbiased std's factors (src/ops/discrete-action.ts). */
  unbias: number;
  countLessOne: number;
}

/**
 * The gradient ADD_SCALED_NOISE sends to x through its std: inputs `x`, `moments` (as above) and `noiseDot`
 * ([]: Σ dy · noise). Output like x: (x - mean) · (noiseStd · noiseDot / (std · (n - 1))).
 */
export const ADD_SCALED_NOISE_GRAD = 'DataflowAddScaledNoiseGrad';

/**
 * One weight's whole `SGD.step` (src/train/sgd.ts), torch 1.13's order of float32 operations: inputs `param`,
 * `grad` (same shape), `lr` (float32: a scalar, or a table of per-step rates read at `lrIndex`) and, after a
 * weight's first momentum step, its momentum `buffer` (same shape). With d = grad + weightDecay · param (d = grad
 * when weightDecay is 0): buffer' = d on the first step, buffer · momentum + d after; the update u is d without
 * momentum, d + buffer' · momentum with Nesterov, else buffer'; param' = param - u · lr. Outputs [param'] when
 * momentum is 0, else [param', buffer'].
 */
export const SGD_STEP = 'DataflowSGDStep';
export interface SGDStepAttrs {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** The entry of `lr` to use (0 for a scalar). */
  lrIndex: number;
}

/**
 * `NetworkEMA`'s blend (src/train/ema.ts): inputs `ema`, `live` (same shape), `keep` and `take` (float32: scalars,
 * or tables of per-step decays read at `decayIndex`). Output like ema: ema · keep + live · take.
 */
export const EMA_UPDATE = 'DataflowEMAUpdate';
export interface EMAUpdateAttrs {
  /** The entry of `keep` and `take` to use (0 for scalars). */
  decayIndex: number;
}
