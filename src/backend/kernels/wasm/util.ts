import { Transpose, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';
import { originalKernel } from '../install.js';
import { WASM } from '../backends.js';
import type { WasmBackendLike } from '../types.js';

// Re-exported for wasm/DecodeImages.ts on the branch that moves it there, which imports it from here.
export { WASM };

/** Runs tfjs-backend-wasm's own kernel `kernelName` (never one of the library's overrides). */
export function runWasm(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined, backend: unknown): TensorInfo {
  return originalKernel(kernelName, WASM).kernelFunc({ inputs, attrs: attrs ?? {}, backend: backend as never }) as TensorInfo;
}

export function transpose(x: TensorInfo, perm: number[], backend: unknown): TensorInfo {
  return runWasm(Transpose, { x }, { perm }, backend);
}

export function disposeAll(backend: unknown, ...infos: TensorInfo[]): void {
  for (const info of infos) (backend as WasmBackendLike).disposeData(info.dataId, true);
}

export function assertChannelsLast(dataFormat: unknown, kernel: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat 'NHWC' only, got '${String(dataFormat)}'`);
  }
}
