import { Conv2D, getKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { installOverrides, overridesInstalled, uninstallOverrides } from '../install.js';
import { conv2dBackpropFilterConfig } from './Conv2DBackpropFilter.js';
import { conv2dBackpropInputConfig } from './Conv2DBackpropInput.js';
import { addScaledNoiseConfig, addScaledNoiseGradConfig } from './AddScaledNoise.js';
import { batchNormApplyConfig } from './BatchNormApply.js';
import { batchNormCoefficientsConfig } from './BatchNormCoefficients.js';
import { batchNormGradConfig } from './BatchNormGrad.js';
import { batchNormTrainStatsConfig } from './BatchNormTrainStats.js';
import { channelGradSumsConfig } from './ChannelGradSums.js';
import { channelMomentsConfig } from './ChannelMoments.js';
import { meanConfig } from './Mean.js';
import { sumConfig } from './Sum.js';
import { conv2dConfig } from './Conv2D.js';
import { emaUpdateConfig } from './EMAUpdate.js';
import { sgdStepConfig } from './SGDStep.js';

/**
 * The library's WebGPU training kernels: convolutions and their gradients as implicit GEMMs, one-pass
 * batch statistics, Sum/Mean over leading axes, the batch norm (with or without its GELU) in one kernel per
 * step, the discrete action's noise in one pass, and the optimizer's and the EMA's per-weight updates as one
 * kernel each, each faster than tfjs-backend-webgpu 4.22's (each file says why).
 */
export const WEBGPU_TRAINING_KERNELS: readonly KernelConfig[] = [
  conv2dConfig,
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  channelMomentsConfig,
  channelGradSumsConfig,
  sumConfig,
  meanConfig,
  batchNormTrainStatsConfig,
  batchNormCoefficientsConfig,
  batchNormApplyConfig,
  batchNormGradConfig,
  addScaledNoiseConfig,
  addScaledNoiseGradConfig,
  sgdStepConfig,
  emaUpdateConfig,
];

/**
 * Registers the library's WebGPU training kernels over tfjs-backend-webgpu's, keeping the originals
 * (cases a kernel does not handle go to them). Idempotent. Must run after
 * `@tensorflow/tfjs-backend-webgpu` has registered its kernels; `initBackend('webgpu')` calls it.
 */
export function installWebGPUTrainingKernels(): void {
  if (getKernel(Conv2D, WEBGPU) == null) {
    throw new Error('installWebGPUTrainingKernels: the webgpu backend is not loaded; import @tensorflow/tfjs-backend-webgpu first');
  }
  installOverrides(WEBGPU, Object.fromEntries(WEBGPU_TRAINING_KERNELS.map((k) => [k.kernelName, k.kernelFunc])));
}

/** Restores tfjs-backend-webgpu's own kernels (for comparisons in tests and benchmarks). */
export function uninstallWebGPUTrainingKernels(): void {
  uninstallOverrides(
    WEBGPU,
    WEBGPU_TRAINING_KERNELS.map((k) => k.kernelName),
  );
}

/** Whether the library's WebGPU training kernels are installed now. */
export function webgpuTrainingKernelsInstalled(): boolean {
  return overridesInstalled(
    WEBGPU,
    WEBGPU_TRAINING_KERNELS.map((k) => k.kernelName),
  );
}
