import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import {
  BATCH_NORM_APPLY,
  BATCH_NORM_COEFFICIENTS,
  BATCH_NORM_GRAD,
  BATCH_NORM_TRAIN_STATS,
  type BatchNormApplyAttrs,
  type BatchNormCoefficientsAttrs,
  type BatchNormGradAttrs,
  type BatchNormTrainStatsAttrs,
} from '../names.js';
import type { ProgramUniform, WebGPUBackendLike } from '../types.js';
import { columnSums } from './column_sums.js';
import { FlatProgram } from './util.js';
import { GELU_WGSL } from './wgsl.js';

/**
 * The seed's batch norm (and the GELU after it) as one engine kernel per step: tfjs ops take about 27 per
 * norm (the statistics' unpacking, rstd, scale and shift, the running averages, the per-channel factors
 * of the gradient). Each kernel runs the column sums (`column_sums.ts`) plus small programs here: per-channel
 * ones over [C], and elementwise ones over [rows, C] (channels last) that read the per-channel values
 * from the packed [4, C] coefficients (mean, rstd, scale, shift). The elementwise backward recomputes
 * g = dy · GELU'(x · scale + shift) from x, so no z, Φ or g tensor is kept.
 *
 * Every per-channel value is computed with the unfused ops' formulas in their order (BatchNorm.trainForward
 * and trainForwardGelu in src/layers/batch-norm.ts), and a NaN anywhere reaches the outputs as it does
 * there (no min/max/clamp). Sizes and factors are uniforms: one pipeline per program serves every shape.
 * @internal
 */

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

/** [C]: running · keep + stats[statsOffset + c] · take, one running average (mean or variance). */
class RunningAverageProgram extends FlatProgram {
  readonly variableNames = ['running', 'stats'];
  readonly shaderKey = 'dataflowBatchNormRunningAverage';
  readonly uniforms = 'statsOffset : i32, keep : f32, take : f32,';

  constructor(channels: number) {
    super([channels], channels);
  }

  getUserCode(): string {
    return `
      fn main(c : i32) {
        if (c < uniforms.size) {
          setOutputAtIndex(c, f32(running[c]) * uniforms.keep + f32(stats[uniforms.statsOffset + c]) * uniforms.take);
        }
      }
    `;
  }
}

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
    // trainForwardGelu: alpha = −(scale · rstd² · Σ g(x − mean)) / n, beta = −(scale · Σ g) / n − mean · alpha,
    // dx = g · scale + x · alpha + beta. trainForward: dx = dy · scale − (x̂ · (scale · Σ dy · x̂) / n + (scale · Σ dy) / n),
    // x̂ = (x − mean) · rstd, Σ dy · x̂ = rstd · Σ dy(x − mean). Without batch statistics: g · scale.
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

type Backend = WebGPUBackendLike;

function channelsOf(x: TensorInfo): number {
  return x.shape[x.shape.length - 1] ?? 1;
}

function sizeOf(x: TensorInfo): number {
  return x.shape.reduce((a, b) => a * b, 1);
}

function coefficients(
  backend: Backend,
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

function runningAverage(backend: Backend, running: TensorInfo, stats: TensorInfo, statsOffset: number, keep: number, take: number) {
  const uniforms: ProgramUniform[] = [
    { type: 'int32', data: [statsOffset] },
    { type: 'float32', data: [keep] },
    { type: 'float32', data: [take] },
  ];
  return backend.runWebGPUProgram(new RunningAverageProgram(sizeOf(running)), [running, stats], 'float32', uniforms);
}

/** [coefficients, new running mean, new running variance] from the batch's moments. */
const batchNormTrainStats: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, weight, bias, runningMean, runningVar } = inputs as Record<string, TensorInfo>;
  const { eps, keep, takeMean, takeVar } = attrs as unknown as BatchNormTrainStatsAttrs;
  const gpu = backend as unknown as Backend;
  const channels = channelsOf(x!);
  const moments = columnSums(gpu, 'moments', [x!], false);
  const coeffs = coefficients(gpu, moments, moments, channels, weight!, bias!, eps);
  // The factors are uniforms, rounded to f32 as the unfused ops' device scalars are.
  const newMean = runningAverage(gpu, runningMean!, moments, 0, keep, takeMean);
  const newVar = runningAverage(gpu, runningVar!, moments, channels, keep, takeVar);
  gpu.disposeData(moments.dataId);
  return [coeffs, newMean, newVar];
};

/** [4, C] coefficients from the running statistics. */
const batchNormCoefficients: KernelFunc = ({ inputs, attrs, backend }) => {
  const { weight, bias, runningMean, runningVar } = inputs as Record<string, TensorInfo>;
  const { eps } = attrs as unknown as BatchNormCoefficientsAttrs;
  return coefficients(backend as unknown as Backend, runningMean!, runningVar!, 0, weight!, bias!, eps);
};

const batchNormApply: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, coefficients: coeffs } = inputs as Record<string, TensorInfo>;
  const { gelu } = attrs as unknown as BatchNormApplyAttrs;
  const length = sizeOf(x!);
  const out = (backend as unknown as Backend).runWebGPUProgram(new ApplyProgram(gelu, length), [x!, coeffs!], 'float32', [
    { type: 'int32', data: [channelsOf(x!)] },
  ]);
  return { ...out, shape: x!.shape };
};

/** [dx, Σ g] or [dx, Σ g, rstd · Σ g · (x − mean)]. */
const batchNormGrad: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy, coefficients: coeffs } = inputs as Record<string, TensorInfo>;
  const { gelu, batchStats, weightGrad } = attrs as unknown as BatchNormGradAttrs;
  const gpu = backend as unknown as Backend;
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

export const batchNormTrainStatsConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_STATS,
  backendName: 'webgpu',
  kernelFunc: batchNormTrainStats,
};
export const batchNormCoefficientsConfig: KernelConfig = {
  kernelName: BATCH_NORM_COEFFICIENTS,
  backendName: 'webgpu',
  kernelFunc: batchNormCoefficients,
};
export const batchNormApplyConfig: KernelConfig = { kernelName: BATCH_NORM_APPLY, backendName: 'webgpu', kernelFunc: batchNormApply };
export const batchNormGradConfig: KernelConfig = { kernelName: BATCH_NORM_GRAD, backendName: 'webgpu', kernelFunc: batchNormGrad };
