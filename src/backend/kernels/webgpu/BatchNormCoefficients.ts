import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { BATCH_NORM_COEFFICIENTS, type BatchNormCoefficientsAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { coefficients } from './batch_norm.js';

/**
 * DataflowBatchNormCoefficients (names.ts): the packed [4, C] coefficients of the running statistics, for
 * inference, in the one per-channel program the training statistics use too (batch_norm.ts).
 * @internal
 */
const batchNormCoefficients: KernelFunc = ({ inputs, attrs, backend }) => {
  const { weight, bias, runningMean, runningVar } = inputs as Record<string, TensorInfo>;
  const { eps } = attrs as unknown as BatchNormCoefficientsAttrs;
  return coefficients(backend as unknown as WebGPUBackendLike, runningMean!, runningVar!, 0, weight!, bias!, eps);
};

export const batchNormCoefficientsConfig: KernelConfig = {
  kernelName: BATCH_NORM_COEFFICIENTS,
  backendName: WEBGPU,
  kernelFunc: batchNormCoefficients,
};
