import { slice_util, Slice, util, type KernelConfig, type KernelFunc, type SliceAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from '../types.js';
import { WASM } from '../backends.js';
import { runWasm } from './util.js';

// tfjs-backend-wasm 4.22's Slice copies the whole input out of the heap into JavaScript first (e.g. the
// full eval set for each eval batch); rows are copied heap to heap here. SplitV.ts splits through it.

export const slice: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return runWasm(Slice, inputs, attrs, backend);
  const { begin, size } = attrs as unknown as SliceAttrs;
  const [begin_, size_] = slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
  const b = backend as WasmBackendLike;
  const out = b.makeOutput(size_, x.dtype);
  if (util.sizeFromShape(size_) === 0) return out;
  // Views are taken after the allocation above, which may have grown (and so detached) the heap.
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  const strides = util.computeStrides(x.shape);
  const rank = x.shape.length;
  if (rank === 0 || slice_util.isSliceContinous(x.shape, begin_, size_)) {
    const from = rank === 0 ? 0 : slice_util.computeFlatOffset(begin_, strides);
    dst.set(src.subarray(from, from + dst.length));
    return out;
  }
  // Copy runs along the last axis, stepping an index over the leading axes.
  const run = size_[rank - 1]!;
  const index = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < dst.length; o += run) {
    let from = begin_[rank - 1]!;
    for (let d = 0; d < rank - 1; d++) from += (begin_[d]! + index[d]!) * strides[d]!;
    dst.set(src.subarray(from, from + run), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d]! < size_[d]!) break;
      index[d] = 0;
    }
  }
  return out;
};

export const sliceConfig: KernelConfig = { kernelName: Slice, backendName: WASM, kernelFunc: slice };
