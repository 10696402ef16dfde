import { broadcastTo, div, registerGradient, reshape, util, type NamedAttrMap, type Tensor } from '@tensorflow/tfjs-core';
// tfjs-core registers no gradients by itself; tfjs-layers' entry registers all of them
// (into the registry shared through globalThis), in Node and in bundlers alike.
import '@tensorflow/tfjs-layers';

/** dy reshaped to x's rank with the reduced axes kept as 1, ready to broadcast back over x. */
function expandReduced(dy: Tensor, x: Tensor, attrs: NamedAttrMap): { expanded: Tensor; reduceSize: number } {
  const axes = util.parseAxisParam(attrs['axis'] as number | number[], x.shape);
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
// backend gives the same values with nothing uploaded.
registerGradient({
  kernelName: 'Sum',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0]!;
    return { x: () => broadcastTo(expandReduced(dy as Tensor, x, attrs).expanded, x.shape) };
  },
});

registerGradient({
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const x = saved[0]!;
    return {
      x: () => {
        const { expanded, reduceSize } = expandReduced(dy as Tensor, x, attrs);
        return broadcastTo(div(expanded, reduceSize), x.shape);
      },
    };
  },
});
