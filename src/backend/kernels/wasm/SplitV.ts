import { backend_util, SplitV, util, type KernelConfig, type KernelFunc, type SplitVAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { WASM } from '../backends.js';
import { slice } from './Slice.js';

/**
 * SplitV as slices through the library's heap-to-heap Slice (Slice.ts): tfjs-backend-wasm 4.22's SplitV calls its own
 * Slice directly, which reads the whole input back to JavaScript.
 */
const splitV: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = attrs as unknown as SplitVAttrs;
  const splitAxis = util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, splitAxis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((part) => {
    const size = x.shape.slice();
    size[splitAxis] = part;
    const out = slice({ inputs: { x }, attrs: { begin: begin.slice(), size }, backend }) as TensorInfo;
    begin[splitAxis]! += part;
    return out;
  });
};

export const splitVConfig: KernelConfig = { kernelName: SplitV, backendName: WASM, kernelFunc: splitV };
