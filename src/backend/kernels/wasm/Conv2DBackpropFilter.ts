import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Slice,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { WASM } from '../backends.js';
import { assertChannelsLast, disposeAll, runWasm, transpose } from './util.js';

/**
 * Conv2DBackpropFilter (missing in tfjs-backend-wasm 4.22): dW = conv2d(xᵀ, dyᵀ) with the forward
 * stride as dilation, where xᵀ puts channels in the batch slot and the batch in the channel slot.
 */
const conv2dBackpropFilter: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  assertChannelsLast(dataFormat, Conv2DBackpropFilter);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  // Pad the far side so the output is at least the filter size; extra rows/columns are sliced off.
  const bottom = Math.max(0, kh - inHeight - top + sh * (outHeight - 1));
  const right = Math.max(0, kw - inWidth - left + sw * (outWidth - 1));
  const xT = transpose(x, [3, 1, 2, 0], backend); // [ci, H, W, n]
  const dyT = transpose(dy, [1, 2, 0, 3], backend); // [oh, ow, n, co]
  const conv = runWasm(
    Conv2D,
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      dilations: [sh, sw],
      dataFormat: 'NHWC',
      dimRoundingMode: undefined as never,
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ] as never,
    },
    backend,
  ); // [ci, >=kh, >=kw, co]
  let cropped = conv;
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    cropped = runWasm(Slice, { x: conv }, { begin: [0, 0, 0, 0], size: [conv.shape[0]!, kh, kw, conv.shape[3]!] }, backend);
  }
  const dw = transpose(cropped, [1, 2, 0, 3], backend); // [kh, kw, ci, co]
  disposeAll(backend, xT, dyT, conv);
  if (cropped !== conv) disposeAll(backend, cropped);
  return dw;
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: WASM,
  kernelFunc: conv2dBackpropFilter,
};
