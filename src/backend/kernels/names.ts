/**
 * The library's own kernels, registered by name for the backends that have a device path; the ops
 * that use them fall back to plain tfjs ops on a backend without one (`tf.getKernel` says which).
 */

/** `DeviceRandom`'s draws (src/ops/random.ts): cpu, wasm and webgpu. */
export const RANDOM_KERNEL = 'DataflowRandom';

/** Input `x` (channels last). Output [2, C]: mean and biased variance per channel; [2] over the whole tensor with `overAll`. */
export const CHANNEL_MOMENTS = 'DataflowChannelMoments';
export interface ChannelMomentsAttrs {
  overAll: boolean;
}

/** Inputs `x`, `dy` (same shape, channels last) and `mean` [C]. Output [2, C]: Σ dy and Σ dy · (x - mean) per channel. */
export const CHANNEL_GRAD_SUMS = 'DataflowChannelGradSums';
