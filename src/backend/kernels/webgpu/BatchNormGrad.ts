import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { BATCH_NORM_GRAD, type BatchNormGradAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { channelsOf, sizeOf } from './batch_norm.js';
import { columnSums } from './column_sums.js';
import { FlatProgram } from './util.js';
import { GELU_WGSL } from './wgsl.js';

/** [C]: one row of the gradient sums [2, C], times rstd (coefficients' row 1) with `timesRstd`: the bias or weight gradient. */
class SumsRowProgram extends FlatProgram {
  readonly variableNames: string[];
  readonly shaderKey: string;
  readonly uniforms = '';

  constructor(
    private readonly timesRstd: boolean,
    channels: number,
  ) {
    super([channels], channels);
    this.variableNames = timesRstd ? ['sums', 'coefficients'] : ['sums'];
    this.shaderKey = `dataflowBatchNormSumsRow_${timesRstd}`;
  }

  getUserCode(): string {
    const value = this.timesRstd ? 'f32(sums[uniforms.size + c]) * f32(coefficients[uniforms.size + c])' : 'f32(sums[c])';
    return `
      fn main(c : i32) {
        if (c < uniforms.size) {
          setOutputAtIndex(c, ${value});
        }
      }
    `;
  }
}

/**
 * Like x: dx from dy (the gradient at the apply kernel's output), with the batch statistics' own gradient
 * when `batchStats`, from the sums [2, C] (Σ g, Σ g · (x − mean)) over n = rows values per channel.
 */
class InputGradProgram extends FlatProgram {
  readonly variableNames: string[];
  readonly shaderKey: string;
  readonly uniforms = 'channels : i32, n : f32,';

  constructor(
    private readonly gelu: boolean,
    private readonly batchStats: boolean,
    length: number,
  ) {
    super([length], length);
    this.variableNames = batchStats ? ['x', 'dy', 'coefficients', 'sums'] : ['x', 'dy', 'coefficients'];
    this.shaderKey = `dataflowBatchNormInputGrad_${gelu}_${batchStats}`;
  }

  getUserCode(): string {
    const { gelu, batchStats } = this;
    // With the GELU: alpha = −(scale · rstd² · Σ g(x − mean)) / n, beta = −(scale · Σ g) / n − mean · alpha,
    // dx = g · scale + x · alpha + beta (algebraically the unfused ops' gradient of gelu(norm(x))). Without: trainForward's
    // (src/ops/batch-norm.ts) dx = dy · scale − (x̂ · (scale · Σ dy · x̂) / n + (scale · Σ dy) / n), x̂ = (x − mean) · rstd,
    // Σ dy · x̂ = rstd · Σ dy(x − mean). Without batch statistics: g · scale.
    const dx = !batchStats
      ? 'g * scale'
      : gelu
        ? `g * scale + xv * alpha + beta`
        : 'g * scale - (xhat * ((scale * (gCentredSum * rstd)) / uniforms.n) + (scale * gSum) / uniforms.n)';
    return `
      ${gelu ? GELU_WGSL : ''}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let C = uniforms.channels;
          let c = index % C;
          let xv = f32(x[index]);
          let mean = f32(coefficients[c]);
          let rstd = f32(coefficients[C + c]);
          let scale = f32(coefficients[2 * C + c]);
          let shift = f32(coefficients[3 * C + c]);
          let g = f32(dy[index])${gelu ? ' * geluDerivative(xv * scale + shift)' : ''};
          ${
            batchStats
              ? `let gSum = f32(sums[c]);
          let gCentredSum = f32(sums[C + c]);`
              : ''
          }
          ${
            batchStats && gelu
              ? `let alpha = -(((scale * (rstd * rstd)) * gCentredSum) / uniforms.n);
          let beta = -((scale * gSum) / uniforms.n) - mean * alpha;`
              : ''
          }
          ${batchStats && !gelu ? 'let xhat = (xv - mean) * rstd;' : ''}
          setOutputAtIndex(index, ${dx});
        }
      }
    `;
  }
}

/**
 * DataflowBatchNormGrad (names.ts): [dx, Σ g] or [dx, Σ g, rstd · Σ g · (x − mean)], from one column-sum pass (Σ g
 * and Σ g · (x − mean), g through the GELU computed on the fly), one elementwise dx program and one per-channel
 * program per parameter gradient.
 * @internal
 */
const batchNormGrad: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy, coefficients: coeffs } = inputs as Record<string, TensorInfo>;
  const { gelu, batchStats, weightGrad } = attrs as unknown as BatchNormGradAttrs;
  const gpu = backend as unknown as WebGPUBackendLike;
  const channels = channelsOf(x!);
  const length = sizeOf(x!);
  const sums = columnSums(gpu, gelu ? 'geluGradSums' : 'gradSums', [x!, dy!, coeffs!], false);
  const dxInputs = batchStats ? [x!, dy!, coeffs!, sums] : [x!, dy!, coeffs!];
  const dx = gpu.runWebGPUProgram(new InputGradProgram(gelu, batchStats, length), dxInputs, 'float32', [
    { type: 'int32', data: [channels] },
    { type: 'float32', data: [length / channels] },
  ]);
  const dBias = gpu.runWebGPUProgram(new SumsRowProgram(false, channels), [sums], 'float32');
  const outputs = [{ ...dx, shape: x!.shape }, dBias];
  if (weightGrad) outputs.push(gpu.runWebGPUProgram(new SumsRowProgram(true, channels), [sums, coeffs!], 'float32'));
  gpu.disposeData(sums.dataId);
  return outputs;
};

export const batchNormGradConfig: KernelConfig = { kernelName: BATCH_NORM_GRAD, backendName: WEBGPU, kernelFunc: batchNormGrad };
