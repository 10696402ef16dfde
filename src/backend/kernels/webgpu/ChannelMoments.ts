import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { CHANNEL_MOMENTS, type ChannelMomentsAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { columnSums } from './column_sums.js';

/**
 * DataflowChannelMoments (names.ts): the seed's batch statistics and the discrete action's std moments in one read
 * of x (the column sums' `moments`, column_sums.ts), where tfjs's `tf.moments` runs Mean, Sub, Square and Mean.
 * [2, C]: mean and biased variance per channel (last axis); or, with `overAll`, [3] over the whole tensor: mean,
 * variance and scale, the biased variance being variance · scale² (scale 1 unless the squares would overflow).
 * @internal
 */
const channelMoments: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  const { overAll } = attrs as unknown as ChannelMomentsAttrs;
  return columnSums(backend as unknown as WebGPUBackendLike, 'moments', [x], overAll);
};

export const channelMomentsConfig: KernelConfig = { kernelName: CHANNEL_MOMENTS, backendName: WEBGPU, kernelFunc: channelMoments };
