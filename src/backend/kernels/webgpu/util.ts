import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../types.js';

/**
 * Whether every tensor is float32 in its GPU buffer too. A cast can hand a float32 tensor the buffer of
 * its int32 or bool input, and tfjs binds buffers with their stored type, so the logical dtype alone
 * does not say what the shader reads.
 */
export function storedAsFloat32(backend: WebGPUBackendLike, ...infos: TensorInfo[]): boolean {
  return infos.every((t) => t.dtype === 'float32' && backend.tensorMap.get(t.dataId)?.dtype === 'float32');
}

/** Elements of a shape, with the u32 indexing the library's shaders use checked. */
export function fitsU32Indexing(...shapes: number[][]): boolean {
  return shapes.every((s) => s.reduce((a, b) => a * b, 1) < 2 ** 31);
}
