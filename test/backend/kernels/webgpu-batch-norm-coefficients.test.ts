// The library's DataflowBatchNormCoefficients on WebGPU (src/backend/kernels/webgpu/BatchNormCoefficients.ts): the
// packed [4, C] coefficients of the running statistics (inference), against their definition (names.ts) in tfjs ops on
// cpu. No tfjs kernel to compare with: the name is the library's own.
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import { batchNormCoefficientsConfig } from '../../../src/backend/kernels/webgpu/BatchNormCoefficients.js';
import { batchNormCoefficients, hasBatchNormKernels } from '../../../src/ops/batch-norm.js';
import { describeOnBackend } from '../../helpers/backends.js';
import { batchNormParameters, expectRegistered, expectWebGPUMatchesCpu } from '../../helpers/webgpu-kernels.js';

/** The kernel where the backend has it; elsewhere mean, rstd = 1 / sqrt(var + eps), scale = weight · rstd, shift = bias − mean · scale. */
function coefficients(channels: number, eps: number): tf.Tensor[] {
  const p = batchNormParameters(channels);
  return tf.tidy(() => {
    const [weight, bias, runningMean, runningVar] = [p.weight, p.bias, p.runningMean, p.runningVar].map((v) => tf.tensor1d(v));
    if (hasBatchNormKernels()) return [batchNormCoefficients(weight!, bias!, runningMean!, runningVar!, eps)];
    const rstd = tf.rsqrt(tf.add(runningVar!, eps));
    const scale = tf.mul(weight!, rstd);
    return [tf.stack([runningMean!, rstd, scale, tf.sub(bias!, tf.mul(runningMean!, scale))])];
  });
}

describeOnBackend('webgpu', 'WebGPU batch-norm coefficients', () => {
  it('is the registered DataflowBatchNormCoefficients once initBackend has run', () => expectRegistered(batchNormCoefficientsConfig));

  for (const channels of [3, 64, 70, 512, 70_000]) {
    it(`${channels} channels: equal their definition on cpu (1e-5), bit-identical run to run`, async () => {
      await expectWebGPUMatchesCpu(() => coefficients(channels, 1e-5), ['coefficients'], 1e-5);
    });
  }
});
