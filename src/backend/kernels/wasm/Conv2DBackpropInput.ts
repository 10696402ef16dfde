import {
  backend_util,
  Conv2D,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from '../types.js';
import { WASM } from '../backends.js';
import { assertChannelsLast, disposeAll, runWasm, transpose } from './util.js';

/**
 * Conv2DBackpropInput (slow in tfjs-backend-wasm 4.22): for stride 1, dx = conv2d(dy, W flipped
 * spatially with in/out channels swapped) with complementary padding. Strided cases go to the
 * backend's own kernel.
 */
const conv2dBackpropInput: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  assertChannelsLast(dataFormat, Conv2DBackpropInput);
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, bottom, left, right } = info.padInfo;
  const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
  if (sh !== 1 || sw !== 1 || pads.some((p) => p < 0)) return runWasm(Conv2DBackpropInput, inputs, attrs, backend);
  const flipped = flipSpatially(filter, backend as WasmBackendLike);
  const swapped = transpose(flipped, [0, 1, 3, 2], backend); // [kh, kw, co, ci]
  const dx = runWasm(
    Conv2D,
    { x: dy, filter: swapped },
    {
      strides: [1, 1],
      dilations: [1, 1],
      dataFormat: 'NHWC',
      dimRoundingMode: undefined as never,
      pad: [
        [0, 0],
        [pads[0], pads[1]],
        [pads[2], pads[3]],
        [0, 0],
      ] as never,
    },
    backend,
  );
  disposeAll(backend, flipped, swapped);
  return dx;
};

/**
 * The filter [kh, kw, ci, co] with both spatial axes reversed. Each (row, column) tap is one contiguous
 * block of ci * co values, so the flip is kh * kw block copies on the heap; tfjs-wasm's Reverse kernel
 * walks single elements and took 57 ms for a 3x3x512x512 filter, five times the Transpose after it.
 */
function flipSpatially(filter: TensorInfo, backend: WasmBackendLike): TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput(filter.shape, 'float32');
  // Views are taken after the allocation above, which may have grown (and so detached) the heap.
  const heap = backend.wasm.HEAPF32;
  const src = backend.dataIdMap.get(filter.dataId).memoryOffset / 4;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset / 4;
  const block = ci * co;
  const taps = kh * kw;
  for (let t = 0; t < taps; t++) {
    const from = src + (taps - 1 - t) * block;
    heap.copyWithin(dst + t * block, from, from + block);
  }
  return out;
}

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: WASM,
  kernelFunc: conv2dBackpropInput,
};
