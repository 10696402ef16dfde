import { Sqrt, cast, div, mul, sqrt, type GradConfig, type Tensor } from '@tensorflow/tfjs-core';
import { deviceScalar } from '../../device-scalars.js';

/**
 * Sqrt's gradient. tfjs-core's divides by a JS number 2 times sqrt(x), the 2 written from the host on every call
 * (the unbiased std of each discrete action runs it); the same arithmetic with a kept device scalar.
 * @internal
 */
export const sqrtGradConfig: GradConfig = {
  kernelName: Sqrt,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const x = saved[0]!;
    return { x: () => div(dy as Tensor, mul(sqrt(cast(x, 'float32')), deviceScalar(2))) };
  },
};
