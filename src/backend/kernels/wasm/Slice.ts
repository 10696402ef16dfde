import {
  backend_util,
  slice_util,
  Slice,
  SplitV,
  util,
  type KernelConfig,
  type KernelFunc,
  type SliceAttrs,
  type SplitVAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from '../types.js';
import { WASM } from '../backends.js';
import { runWasm } from './util.js';

// Slice: tfjs-backend-wasm 4.22 copies the whole input out of the heap into JavaScript first (e.g. the
// full eval set for each eval batch); rows are copied heap to heap here. SplitV: 4.22's calls that same
// Slice directly, so it goes through this one.

const slice: KernelFunc = (args) => {
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

/** SplitV as slices through the kernel above: tfjs-wasm 4.22's SplitV calls its own Slice, which reads the input back to JavaScript. */
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

export const sliceConfig: KernelConfig = { kernelName: Slice, backendName: WASM, kernelFunc: slice };
export const splitVConfig: KernelConfig = { kernelName: SplitV, backendName: WASM, kernelFunc: splitV };
