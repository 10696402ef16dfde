import { util, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { RANDOM_KERNEL } from '../names.js';
import { fillDraws, randomDtype, type RandomAttrs } from '../random-draws.js';
import type { WasmBackendLike } from '../types.js';
import { WASM } from '../backends.js';

// The output lives on the wasm heap, which JavaScript can write in place (no transfer).
const wasmRandom: KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(a.shape, randomDtype(a.distribution));
  if (util.sizeFromShape(a.shape) > 0) fillDraws(b.typedArrayFromHeap(out) as Float32Array | Int32Array, a);
  return out;
};

export const randomConfig: KernelConfig = { kernelName: RANDOM_KERNEL, backendName: WASM, kernelFunc: wasmRandom };
