/**
 * What the Sum and Mean gradients (Sum_grad.ts, Mean_grad.ts) share: dy put back at x's rank.
 * @internal
 */
import { reshape, util, type MeanAttrs, type NamedAttrMap, type SumAttrs, type Tensor } from '@tensorflow/tfjs-core';

/** dy reshaped to x's rank with the reduced axes kept as 1, ready to broadcast back over x. */
export function expandReduced(dy: Tensor, x: Tensor, attrs: NamedAttrMap): { expanded: Tensor; reduceSize: number } {
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
