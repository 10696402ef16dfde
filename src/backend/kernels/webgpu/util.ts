import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';

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

const THREADS = 256;

/**
 * A program over a flat output, one element per thread in workgroups of 256, through tfjs's `main(index)`
 * (`size`: tfjs passes the output's length as `uniforms.size`): the library's elementwise and per-channel kernels.
 * @internal
 */
export abstract class FlatProgram implements WebGPUProgram {
  abstract readonly variableNames: string[];
  readonly outputShape: number[];
  abstract readonly shaderKey: string;
  abstract readonly uniforms: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly size = true;

  constructor(outputShape: number[], threads: number) {
    this.outputShape = outputShape;
    // tfjs folds a flat dispatch past the device's per-dimension limit (and keys the pipeline on it).
    this.dispatch = [Math.ceil(threads / THREADS), 1, 1];
  }

  abstract getUserCode(): string;
}
