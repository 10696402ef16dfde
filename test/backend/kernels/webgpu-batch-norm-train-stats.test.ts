// The library's DataflowBatchNormTrainStats on WebGPU (src/backend/kernels/webgpu/BatchNormTrainStats.ts): the packed
// [4, C] coefficients from x's batch statistics and the new running mean and variance, against their definition
// (names.ts) in tfjs ops on cpu. No tfjs kernel to compare with: the name is the library's own; the layer's suites
// (test/layers/batch-norm*.test.ts) hold the whole norm to PyTorch and to a float64 bound.
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import type { BatchNormTrainStatsAttrs } from '../../../src/backend/kernels/names.js';
import { batchNormTrainStatsConfig } from '../../../src/backend/kernels/webgpu/BatchNormTrainStats.js';
import { batchNormTrainStats, hasBatchNormKernels } from '../../../src/ops/batch-norm.js';
import { describeOnBackend } from '../../helpers/backends.js';
import {
  batchNormParameters,
  COLUMN_SUM_SHAPES,
  expectRegistered,
  expectWebGPUMatchesCpu,
  offsetUniform,
} from '../../helpers/webgpu-kernels.js';

/** The kernel where the backend has it; elsewhere its definition: moments, then rstd, scale, shift and the running averages. */
function trainStats(shape: number[], xv: Float32Array, attrs: BatchNormTrainStatsAttrs): tf.Tensor[] {
  const channels = shape[shape.length - 1]!;
  const p = batchNormParameters(channels);
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const [weight, bias, runningMean, runningVar] = [p.weight, p.bias, p.runningMean, p.runningVar].map((v) => tf.tensor1d(v));
    if (hasBatchNormKernels()) {
      const out = batchNormTrainStats(x, weight!, bias!, runningMean!, runningVar!, attrs);
      return [out.coefficients, out.runningMean, out.runningVar];
    }
    const { mean, variance } = tf.moments(
      x,
      shape.slice(0, -1).map((_, i) => i),
    );
    const rstd = tf.rsqrt(tf.add(variance, attrs.eps));
    const scale = tf.mul(weight!, rstd);
    const coefficients = tf.stack([mean, rstd, scale, tf.sub(bias!, tf.mul(mean, scale))]);
    const newMean = tf.add(tf.mul(runningMean!, attrs.keep), tf.mul(mean, attrs.takeMean));
    const newVar = tf.add(tf.mul(runningVar!, attrs.keep), tf.mul(variance, attrs.takeVar));
    return [coefficients, newMean, newVar];
  });
}

describeOnBackend('webgpu', 'WebGPU batch-norm training statistics', () => {
  it('is the registered DataflowBatchNormTrainStats once initBackend has run', () => expectRegistered(batchNormTrainStatsConfig));

  for (const shape of COLUMN_SUM_SHAPES) {
    it(`[${shape.join(',')}]: coefficients and running statistics equal their definition on cpu (1e-4), bit-identical run to run`, async () => {
      // PyTorch's momentum 0.1 over n values per channel: keep 0.9, take 0.1 of the mean and 0.1 · n / (n - 1) of the variance.
      const n = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const attrs = { eps: 1e-5, keep: 0.9, takeMean: 0.1, takeVar: (0.1 * n) / (n - 1) };
      await expectWebGPUMatchesCpu(
        () => trainStats(shape, offsetUniform(shape, 1, 10), attrs),
        ['coefficients', 'running mean', 'running variance'],
        1e-4,
      );
    });
  }
});
