import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { BATCH_NORM_TRAIN_STATS, type BatchNormTrainStatsAttrs } from '../names.js';
import type { ProgramUniform, WebGPUBackendLike } from '../types.js';
import { channelsOf, coefficients, sizeOf } from './batch_norm.js';
import { columnSums } from './column_sums.js';
import { FlatProgram } from './util.js';

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

function runningAverage(
  backend: WebGPUBackendLike,
  running: TensorInfo,
  stats: TensorInfo,
  statsOffset: number,
  keep: number,
  take: number,
) {
  const uniforms: ProgramUniform[] = [
    { type: 'int32', data: [statsOffset] },
    { type: 'float32', data: [keep] },
    { type: 'float32', data: [take] },
  ];
  return backend.runWebGPUProgram(new RunningAverageProgram(sizeOf(running)), [running, stats], 'float32', uniforms);
}

/**
 * DataflowBatchNormTrainStats (names.ts): the batch's moments in one column-sum pass, then the packed coefficients
 * (batch_norm.ts) and the new running mean and variance, each a per-channel program.
 * @internal
 */
const batchNormTrainStats: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, weight, bias, runningMean, runningVar } = inputs as Record<string, TensorInfo>;
  const { eps, keep, takeMean, takeVar } = attrs as unknown as BatchNormTrainStatsAttrs;
  const gpu = backend as unknown as WebGPUBackendLike;
  const channels = channelsOf(x!);
  const moments = columnSums(gpu, 'moments', [x!], false);
  const coeffs = coefficients(gpu, moments, moments, channels, weight!, bias!, eps);
  // The factors are uniforms, rounded to f32 as the unfused ops' device scalars are.
  const newMean = runningAverage(gpu, runningMean!, moments, 0, keep, takeMean);
  const newVar = runningAverage(gpu, runningVar!, moments, channels, keep, takeVar);
  gpu.disposeData(moments.dataId);
  return [coeffs, newMean, newVar];
};

export const batchNormTrainStatsConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_STATS,
  backendName: WEBGPU,
  kernelFunc: batchNormTrainStats,
};
