import { Mean, div, type GradConfig, type Tensor } from '@tensorflow/tfjs-core';
import { broadcastLike } from '../../broadcast.js';
import { deviceScalar } from '../../device-scalars.js';
import { expandReduced } from './reduce_util.js';

/**
 * Mean's gradient: dy over the reduced size, broadcast on the backend as Sum's is (Sum_grad.ts), where tfjs-core's
 * uploads `ones(x.shape)`; the divisor is a kept device scalar.
 * @internal
 */
export const meanGradConfig: GradConfig = {
  kernelName: Mean,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0]!;
    return {
      x: () => {
        const { expanded, reduceSize } = expandReduced(dy as Tensor, x, attrs);
        return broadcastLike(div(expanded, deviceScalar(reduceSize)), x);
      },
    };
  },
};
