import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { BATCH_NORM_APPLY, type BatchNormApplyAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { channelsOf, sizeOf } from './batch_norm.js';
import { FlatProgram } from './util.js';
import { GELU_WGSL } from './wgsl.js';

/** Like x: x · scale + shift, or GELU of it. */
class ApplyProgram extends FlatProgram {
  readonly variableNames = ['x', 'coefficients'];
  readonly shaderKey: string;
  readonly uniforms = 'channels : i32,';

  constructor(
    private readonly gelu: boolean,
    length: number,
  ) {
    super([length], length);
    this.shaderKey = `dataflowBatchNormApply_${gelu}`;
  }

  getUserCode(): string {
    const z = 'f32(x[index]) * f32(coefficients[2 * C + c]) + f32(coefficients[3 * C + c])';
    return `
      ${this.gelu ? GELU_WGSL : ''}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let C = uniforms.channels;
          let c = index % C;
          setOutputAtIndex(index, ${this.gelu ? `gelu(${z})` : z});
        }
      }
    `;
  }
}

/**
 * DataflowBatchNormApply (names.ts): x · scale + shift per channel from the packed coefficients (batch_norm.ts),
 * or its GELU, in one elementwise pass.
 * @internal
 */
const batchNormApply: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, coefficients: coeffs } = inputs as Record<string, TensorInfo>;
  const { gelu } = attrs as unknown as BatchNormApplyAttrs;
  const length = sizeOf(x!);
  const out = (backend as unknown as WebGPUBackendLike).runWebGPUProgram(new ApplyProgram(gelu, length), [x!, coeffs!], 'float32', [
    { type: 'int32', data: [channelsOf(x!)] },
  ]);
  return { ...out, shape: x!.shape };
};

export const batchNormApplyConfig: KernelConfig = { kernelName: BATCH_NORM_APPLY, backendName: WEBGPU, kernelFunc: batchNormApply };
