import { Square, cast, mul, type GradConfig, type Tensor } from '@tensorflow/tfjs-core';
import { deviceScalar } from '../../device-scalars.js';

/**
 * Square's gradient. tfjs-core's multiplies by a JS number 2, a scalar written from the host on every call (the
 * unbiased std of each discrete action runs it); the same arithmetic with a kept device scalar.
 * @internal
 */
export const squareGradConfig: GradConfig = {
  kernelName: Square,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const x = saved[0]!;
    return { x: () => mul(dy as Tensor, mul(cast(x, 'float32'), deviceScalar(2))) };
  },
};
