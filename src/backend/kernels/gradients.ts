/**
 * The library's gradients in place of tfjs-core's for Sum, Mean, Square and Sqrt: the same values with
 * nothing written from the host. `installLibraryKernels` (./index.ts) installs them over tfjs's, keeping those.
 */
import {
  Mean,
  Sqrt,
  Square,
  Sum,
  cast,
  div,
  mul,
  reshape,
  sqrt,
  util,
  type GradConfig,
  type MeanAttrs,
  type NamedAttrMap,
  type SumAttrs,
  type Tensor,
} from '@tensorflow/tfjs-core';
// tfjs-core registers no gradients by itself; tfjs-layers' entry registers all of them
// (into the registry shared through globalThis), in Node and in bundlers alike. Imported here so
// tfjs's are in place, and kept as the originals, before the library's are installed.
import '@tensorflow/tfjs-layers';
import { broadcastLike } from '../broadcast.js';
import { deviceScalar } from '../device-scalars.js';

/** dy reshaped to x's rank with the reduced axes kept as 1, ready to broadcast back over x. */
function expandReduced(dy: Tensor, x: Tensor, attrs: NamedAttrMap): { expanded: Tensor; reduceSize: number } {
  // Sum and Mean share their attrs; a GradConfig's gradFunc receives them untyped, as tfjs-core's own gradients do.
  const { axis } = attrs as unknown as SumAttrs | MeanAttrs;
  const axes = util.parseAxisParam(axis, x.shape);
  const shape = x.shape.slice();
  let reduceSize = 1;
  for (const axis of axes) {
    reduceSize *= shape[axis]!;
    shape[axis] = 1;
  }
  return { expanded: reshape(dy, shape), reduceSize };
}

// tfjs-core's Sum and Mean gradients multiply dy by `ones(x.shape)`, an array built on the host and uploaded
// whole (16 MB per SpeedyConvNet step at batch 64, through the discrete actions' std): broadcasting dy on the
// backend gives the same values with nothing uploaded (broadcastLike, not tf.broadcastTo: see broadcast.ts).
const sumGradConfig: GradConfig = {
  kernelName: Sum,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0]!;
    return { x: () => broadcastLike(expandReduced(dy as Tensor, x, attrs).expanded, x) };
  },
};

const meanGradConfig: GradConfig = {
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

// tfjs-core's Square and Sqrt gradients multiply by a JS number 2, a scalar written from the host on every
// call (the unbiased std of each discrete action runs both); the same arithmetic with a kept device scalar.
const squareGradConfig: GradConfig = {
  kernelName: Square,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const x = saved[0]!;
    return { x: () => mul(dy as Tensor, mul(cast(x, 'float32'), deviceScalar(2))) };
  },
};

const sqrtGradConfig: GradConfig = {
  kernelName: Sqrt,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const x = saved[0]!;
    return { x: () => div(dy as Tensor, mul(sqrt(cast(x, 'float32')), deviceScalar(2))) };
  },
};

/** Every gradient the library installs over tfjs-core's. */
export const LIBRARY_GRADIENTS: readonly GradConfig[] = [sumGradConfig, meanGradConfig, squareGradConfig, sqrtGradConfig];
