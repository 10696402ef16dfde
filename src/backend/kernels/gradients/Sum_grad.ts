import { Sum, type GradConfig, type Tensor } from '@tensorflow/tfjs-core';
import { broadcastLike } from '../../broadcast.js';
import { expandReduced } from './reduce_util.js';

/**
 * Sum's gradient. tfjs-core's multiplies dy by `ones(x.shape)`, an array built on the host and uploaded whole
 * (16 MB per SpeedyConvNet step at batch 64, through the discrete actions' std): broadcasting dy on the backend
 * gives the same values with nothing uploaded (broadcastLike, not tf.broadcastTo: see broadcast.ts).
 * @internal
 */
export const sumGradConfig: GradConfig = {
  kernelName: Sum,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0]!;
    return { x: () => broadcastLike(expandReduced(dy as Tensor, x, attrs).expanded, x) };
  },
};
