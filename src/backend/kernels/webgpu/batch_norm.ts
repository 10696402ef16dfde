/**
 * What the batch-norm kernels share (BatchNormTrainStats.ts, BatchNormCoefficients.ts, BatchNormApply.ts,
 * BatchNormGrad.ts): the seed's batch norm (and the GELU after it) runs as one engine kernel per step, where tfjs
 * ops take about 27 per norm (the statistics' unpacking, rstd, scale and shift, the running averages, the
 * per-channel factors of the gradient). Each kernel runs the column sums (column_sums.ts) plus small programs
 * beside it: per-channel ones over [C], and elementwise ones over [rows, C] (channels last) that read the
 * per-channel values from the packed [4, C] coefficients (mean, rstd, scale, shift) that this module's program
 * computes. The elementwise backward recomputes g = dy · GELU'(x · scale + shift) from x, so no z, Φ or g tensor
 * is kept.
 *
 * Every per-channel value is computed with the unfused ops' formulas in their order (`trainForward` and
 * `inference` in src/ops/batch-norm.ts), and a NaN anywhere reaches the outputs as it does there (no
 * min/max/clamp). Sizes and factors are uniforms: one pipeline per program serves every shape.
 * @internal
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { ProgramUniform, WebGPUBackendLike } from '../types.js';
import { FlatProgram } from './util.js';

/**
 * [4, C]: mean, rstd = 1 / sqrt(variance + eps) (tfjs's Rsqrt is inverseSqrt too), scale = weight · rstd,
 * shift = bias − mean · scale. The variance is read at `varianceOffset`, so the batch moments [2, C] can
 * serve as both `mean` and `variance`.
 */
class CoefficientsProgram extends FlatProgram {
  readonly variableNames = ['mean', 'variance', 'weight', 'bias'];
  readonly shaderKey = 'dataflowBatchNormCoefficients';
  readonly uniforms = 'channels : i32, varianceOffset : i32, eps : f32,';

  constructor(channels: number) {
    super([4, channels], channels);
  }

  // Reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast.
  getUserCode(): string {
    return `
      fn main(c : i32) {
        if (c < uniforms.channels) {
          let m = f32(mean[c]);
          let rstd = inverseSqrt(f32(variance[uniforms.varianceOffset + c]) + uniforms.eps);
          let scale = f32(weight[c]) * rstd;
          result[c] = m;
          result[uniforms.channels + c] = rstd;
          result[2 * uniforms.channels + c] = scale;
          result[3 * uniforms.channels + c] = f32(bias[c]) - m * scale;
        }
      }
    `;
  }
}

/** The channels of a channels-last tensor (its last axis). */
export function channelsOf(x: TensorInfo): number {
  return x.shape[x.shape.length - 1] ?? 1;
}

/** The elements of x. */
export function sizeOf(x: TensorInfo): number {
  return x.shape.reduce((a, b) => a * b, 1);
}

/** [4, C] coefficients from a mean and a variance (read at `varianceOffset`), the weight and the bias. */
export function coefficients(
  backend: WebGPUBackendLike,
  mean: TensorInfo,
  variance: TensorInfo,
  varianceOffset: number,
  weight: TensorInfo,
  bias: TensorInfo,
  eps: number,
) {
  const channels = sizeOf(weight);
  const uniforms: ProgramUniform[] = [
    { type: 'int32', data: [channels] },
    { type: 'int32', data: [varianceOffset] },
    { type: 'float32', data: [eps] },
  ];
  return backend.runWebGPUProgram(new CoefficientsProgram(channels), [mean, variance, weight, bias], 'float32', uniforms);
}
