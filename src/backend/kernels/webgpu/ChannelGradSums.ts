import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { CHANNEL_GRAD_SUMS } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { columnSums } from './column_sums.js';

/**
 * DataflowChannelGradSums (names.ts): [2, C], Σ dy and Σ dy · (x - mean) per channel, the two sums of a batch
 * norm's gradient, in one read of dy and x (the column sums' `gradSums`, column_sums.ts).
 * @internal
 */
const channelGradSums: KernelFunc = ({ inputs, backend }) => {
  const { x, dy, mean } = inputs as { x: TensorInfo; dy: TensorInfo; mean: TensorInfo };
  return columnSums(backend as unknown as WebGPUBackendLike, 'gradSums', [x, dy, mean], false);
};

export const channelGradSumsConfig: KernelConfig = { kernelName: CHANNEL_GRAD_SUMS, backendName: WEBGPU, kernelFunc: channelGradSums };
