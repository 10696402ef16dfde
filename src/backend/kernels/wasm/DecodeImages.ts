/**
 * DataflowDecodeImages (names.ts) on the wasm backend: the cpu kernel's JavaScript decode
 * (cpu/DecodeImages.ts) run over views of the wasm heap, writing the output in place.
 * `installLibraryKernels` installs it.
 * @internal
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { WASM } from '../backends.js';
import { asBytes, decodeImagesImpl, decodeImagesInputs } from '../cpu/DecodeImages.js';
import { DECODE_IMAGES, type DecodeImagesAttrs } from '../names.js';
import type { WasmBackendLike } from '../types.js';

const wasmDecodeImages: KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut, parts, batch } = decodeImagesInputs(inputs, a);
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput([batch, a.size, a.size, a.channels], 'float32');
  // Views are taken after the allocation above, which may have grown (and so detached) the heap.
  decodeImagesImpl(
    b.typedArrayFromHeap(out) as Float32Array,
    b.typedArrayFromHeap(plan) as Int32Array,
    b.typedArrayFromHeap(lut) as Float32Array,
    parts.map((p) => asBytes(b.typedArrayFromHeap(p))),
    a,
  );
  return out;
};

export const decodeImagesConfig: KernelConfig = { kernelName: DECODE_IMAGES, backendName: WASM, kernelFunc: wasmDecodeImages };
