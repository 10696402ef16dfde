// The library's DataflowChannelGradSums on WebGPU (src/backend/kernels/webgpu/ChannelGradSums.ts, the column sums'
// gradSums of column_sums.ts): Σ dy and Σ dy · (x - mean) per channel, the unfused batch norm's gradient sums, against
// the same sums from tfjs ops on cpu (which has no such kernel). No tfjs kernel to compare with: the name is the
// library's own.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { channelGradSumsConfig } from '../../../src/backend/kernels/webgpu/ChannelGradSums.js';
import { channelGradSums, channelMoments, hasChannelGradSumsKernel } from '../../../src/ops/moments.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { COLUMN_SUM_SHAPES, expectRegistered, expectWebGPUMatchesCpu, offsetUniform } from '../../helpers/webgpu-kernels.js';

/** Σ dy and Σ dy · (x - mean) per channel, mean the batch's: the kernel where the backend has it, tfjs ops elsewhere. */
function gradSums(shape: number[], xv: Float32Array, dyv: Float32Array): tf.Tensor[] {
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const dy = tf.tensor(dyv, shape);
    const lead = shape.slice(0, -1).map((_, i) => i);
    const { mean } = channelMoments(x);
    const { dySum, dyCentredSum } = hasChannelGradSumsKernel()
      ? channelGradSums(dy, x, mean)
      : { dySum: tf.sum(dy, lead), dyCentredSum: tf.sum(tf.mul(dy, tf.sub(x, mean)), lead) };
    return [dySum, dyCentredSum];
  });
}

describeOnBackend('webgpu', 'WebGPU channel gradient sums', () => {
  it('is the registered DataflowChannelGradSums once initBackend has run', () => {
    expectRegistered(channelGradSumsConfig);
    expect(hasChannelGradSumsKernel()).toBe(true);
  });

  for (const shape of COLUMN_SUM_SHAPES) {
    it(`[${shape.join(',')}]: Σdy and Σdy(x-mean) equal cpu (1e-4), bit-identical run to run`, async () => {
      await expectWebGPUMatchesCpu(
        () => gradSums(shape, offsetUniform(shape, 1, 10), offsetUniform(shape, 2, 0)),
        ['Σdy', 'Σdy(x-mean)'],
        1e-4,
      );
    });
  }

  it("propagates NaN: a NaN in dy makes its channel's sums NaN, and only those", async () => {
    await useBackend('webgpu');
    const shape = [2, 3, 3, 4];
    const dyv = offsetUniform(shape, 12, 0);
    dyv[6] = Number.NaN; // channel 2
    const [dySum, dyCentredSum] = gradSums(shape, offsetUniform(shape, 11, 1), dyv);
    expect([...(await dySum!.data())].map(Number.isNaN)).toEqual([false, false, true, false]);
    expect([...(await dyCentredSum!.data())].map(Number.isNaN)).toEqual([false, false, true, false]);
    tf.dispose([dySum!, dyCentredSum!]);
  });
});
