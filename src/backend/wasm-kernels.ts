import {
  backend_util,
  getKernel,
  slice_util,
  util,
  registerKernel,
  unregisterKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/**
 * Kernels the tfjs 4.22 wasm backend lacks or runs slowly, built from the
 * kernels it does run fast (Conv2D, Transpose, Reverse, BatchMatMul without
 * transposes). Installing them lets any tfjs model that uses conv2d or matMul
 * train on wasm, not only ours.
 *
 * @remarks
 * - `Conv2DBackpropFilter` (missing in 4.22): dW = conv2d(xᵀ, dyᵀ) with the
 *   forward stride as dilation, where xᵀ puts channels in the batch slot and
 *   the batch in the channel slot.
 * - `Conv2DBackpropInput` (slow in 4.22): for stride 1, dx = conv2d(dy, W
 *   flipped spatially with in/out channels swapped) with complementary padding.
 *   Strided cases fall back to the backend's own kernel.
 * - `BatchMatMul` / `_FusedMatMul` with transposeA/B: the operand is transposed
 *   explicitly first, which XNNPACK runs several times faster.
 * - `MaxPoolGrad` (wrong in 4.22 for more than one channel: part of the gradient is
 *   dropped): each window's gradient goes to its first maximum, in row-major order
 *   as PyTorch and the cpu backend do, computed in place on the wasm heap.
 * - `Slice` (4.22 copies the whole input out of the wasm heap into JavaScript first,
 *   e.g. the full eval set for each eval batch): rows are copied heap to heap. `SplitV`
 *   (4.22's calls that same Slice directly) goes through the new one.
 */

// The wasm backend's own type is internal to its package; these are the members we use.
interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPF32: Float32Array };
}

const BACKEND = 'wasm';
let installed = false;
const originals = new Map<string, KernelConfig>();

function run(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap, backend: unknown): TensorInfo {
  const kernel = kernelName in overrides ? originals.get(kernelName) : getKernel(kernelName, BACKEND);
  if (kernel == null) throw new Error(`wasm kernel '${kernelName}' is not registered; import @tensorflow/tfjs-backend-wasm first`);
  return kernel.kernelFunc({ inputs, attrs, backend: backend as never }) as TensorInfo;
}

function transpose(x: TensorInfo, perm: number[], backend: unknown): TensorInfo {
  return run('Transpose', { x }, { perm }, backend);
}

function dispose(backend: WasmBackendLike, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId, true);
}

function assertChannelsLast(dataFormat: unknown, kernel: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat 'NHWC' only, got '${String(dataFormat)}'`);
  }
}

const conv2dBackpropFilter: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: string;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  assertChannelsLast(dataFormat, 'Conv2DBackpropFilter');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  // Pad the far side so the output is at least the filter size; extra rows/columns are sliced off.
  const bottom = Math.max(0, kh - inHeight - top + sh * (outHeight - 1));
  const right = Math.max(0, kw - inWidth - left + sw * (outWidth - 1));
  const xT = transpose(x, [3, 1, 2, 0], backend); // [ci, H, W, n]
  const dyT = transpose(dy, [1, 2, 0, 3], backend); // [oh, ow, n, co]
  const conv = run('Conv2D', { x: xT, filter: dyT }, {
    strides: [1, 1], dilations: [sh, sw], dataFormat: 'NHWC', dimRoundingMode: undefined as never,
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]] as never,
  }, backend); // [ci, >=kh, >=kw, co]
  let cropped = conv;
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    cropped = run('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [conv.shape[0], kh, kw, conv.shape[3]] }, backend);
  }
  const dw = transpose(cropped, [1, 2, 0, 3], backend); // [kh, kw, ci, co]
  dispose(backend as WasmBackendLike, xT, dyT, conv);
  if (cropped !== conv) dispose(backend as WasmBackendLike, cropped);
  return dw;
};

const conv2dBackpropInput: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: string;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    inputShape: [number, number, number, number];
  };
  assertChannelsLast(dataFormat, 'Conv2DBackpropInput');
  const info = backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, bottom, left, right } = info.padInfo;
  const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
  if (sh !== 1 || sw !== 1 || pads.some((p) => p < 0)) {
    return originals.get('Conv2DBackpropInput')!.kernelFunc(args);
  }
  const flipped = flipSpatially(filter, backend as WasmBackendLike);
  const swapped = transpose(flipped, [0, 1, 3, 2], backend); // [kh, kw, co, ci]
  const dx = run('Conv2D', { x: dy, filter: swapped }, {
    strides: [1, 1], dilations: [1, 1], dataFormat: 'NHWC', dimRoundingMode: undefined as never,
    pad: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]] as never,
  }, backend);
  dispose(backend as WasmBackendLike, flipped, swapped);
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

function lastTwoSwapped(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

function explicitTranspose(kernelName: 'BatchMatMul' | '_FusedMatMul'): KernelFunc {
  return (args) => {
    const { inputs, attrs, backend } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return originals.get(kernelName)!.kernelFunc(args);
    const a2 = transposeA ? transpose(a, lastTwoSwapped(a.shape.length), backend) : a;
    const b2 = transposeB ? transpose(b, lastTwoSwapped(b.shape.length), backend) : b;
    const out = originals.get(kernelName)!.kernelFunc({
      inputs: { ...inputs, a: a2, b: b2 }, attrs: { ...attrs, transposeA: false, transposeB: false }, backend,
    }) as TensorInfo;
    if (a2 !== a) dispose(backend as WasmBackendLike, a2);
    if (b2 !== b) dispose(backend as WasmBackendLike, b2);
    return out;
  };
}

const maxPoolGrad: KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: [number, number] | number; strides: [number, number] | number;
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding; dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
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
function maxPoolGrad2x2(heap: Float32Array, g: {
  xOff: number; dyOff: number; dxOff: number; batchSize: number; inHeight: number; inWidth: number; c: number; outHeight: number; outWidth: number;
}): void {
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
          if (v01 > best) { best = v01; at = i01; }
          const v10 = heap[xOff + i10]!;
          if (v10 > best) { best = v10; at = i10; }
          if (heap[xOff + i11]! > best) at = i11;
          heap[dxOff + at] = heap[dyBase + ch]!;
        }
      }
    }
  }
}

const slice: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return originals.get('Slice')!.kernelFunc(args);
  const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [begin_, size_] = slice_util.parseSliceParams(x, begin, size);
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
  const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
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

const overrides: Record<string, KernelFunc> = {
  Slice: slice,
  SplitV: splitV,
  MaxPoolGrad: maxPoolGrad,
  Conv2DBackpropFilter: conv2dBackpropFilter,
  Conv2DBackpropInput: conv2dBackpropInput,
  BatchMatMul: explicitTranspose('BatchMatMul'),
  _FusedMatMul: explicitTranspose('_FusedMatMul'),
};

/**
 * Registers the library's wasm training kernels. Idempotent. Must run after
 * `@tensorflow/tfjs-backend-wasm` has been imported (it registers the kernels
 * these build on); `initBackend('wasm')` calls it for you.
 */
export function installWasmTrainingKernels(): void {
  if (installed) return;
  if (getKernel('Conv2D', BACKEND) == null) {
    throw new Error('installWasmTrainingKernels: the wasm backend is not loaded; import @tensorflow/tfjs-backend-wasm first');
  }
  for (const [kernelName, kernelFunc] of Object.entries(overrides)) {
    const original = getKernel(kernelName, BACKEND);
    if (original != null) {
      originals.set(kernelName, original);
      unregisterKernel(kernelName, BACKEND);
    }
    const config: KernelConfig = { kernelName, backendName: BACKEND, kernelFunc };
    if (original?.setupFunc) config.setupFunc = original.setupFunc;
    registerKernel(config);
  }
  installed = true;
}

/** Restores the wasm backend's own kernels (for comparisons in tests and benchmarks). */
export function uninstallWasmTrainingKernels(): void {
  if (!installed) return;
  for (const kernelName of Object.keys(overrides)) {
    unregisterKernel(kernelName, BACKEND);
    const original = originals.get(kernelName);
    if (original) registerKernel(original);
  }
  originals.clear();
  installed = false;
}
