/**
 * The members of the backends' own classes that the library's kernels use. tfjs-backend-wasm and
 * tfjs-backend-webgpu are optional peers and their backend classes are internal, so the kernels
 * program against these shapes and never import the packages.
 * @internal
 */
import type { backend_util, DataType, TensorInfo } from '@tensorflow/tfjs-core';

export interface CpuBackendLike {
  makeTensorInfo(shape: number[], dtype: DataType, values: backend_util.BackendValues): TensorInfo;
}

export interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  wasm: { HEAPF32: Float32Array };
}

/** A uniform a WebGPU program takes beyond the shapes tfjs adds itself. */
export interface ProgramUniform {
  type: 'int32' | 'uint32' | 'float32';
  data: number[];
}

/**
 * The members of tfjs-backend-webgpu's `WebGPUProgram` a library program fills in. The backend
 * prepends the bindings (`result`, one array per `variableNames` entry, `uniforms`) and helpers,
 * and names the program's GPU time after its class in `tf.profile`, so programs are classes.
 */
export interface WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  /** Part of the pipeline cache key: everything baked into the WGSL must be in it. */
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Adds `uniforms.size` (the output's element count). */
  size?: boolean;
  /** WGSL struct members appended to the backend's `Uniforms`. */
  uniforms?: string;
  getUserCode(): string;
}

export interface WebGPUBackendLike {
  runWebGPUProgram(program: WebGPUProgram, inputs: TensorInfo[], dtype: DataType, uniforms?: ProgramUniform[]): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  device: GPUDevice;
  /** The stored buffers: `dtype` is what a shader binding reads, which may differ from a tensor's dtype after a cast. */
  tensorMap: { get(dataId: object): { dtype: DataType } | undefined };
}
