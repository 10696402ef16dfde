// The library's DataflowChannelMoments on WebGPU (src/backend/kernels/webgpu/ChannelMoments.ts, the column sums'
// moments of column_sums.ts): per channel (batch statistics) and over the whole tensor (the discrete action's std,
// `unbiasedStd`, and its gradient), against cpu, whose `channelMoments` is tf.moments. No tfjs kernel to compare
// with: the name is the library's own.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { channelMomentsConfig } from '../../../src/backend/kernels/webgpu/ChannelMoments.js';
import { unbiasedStd } from '../../../src/ops/discrete-action.js';
import { channelMoments, hasChannelMomentsKernel } from '../../../src/ops/moments.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { liveTensors } from '../../helpers/memory.js';
import { COLUMN_SUM_SHAPES, expectRegistered, expectWebGPUMatchesCpu, offsetUniform } from '../../helpers/webgpu-kernels.js';

/** The moments per channel and over the whole tensor, and the std that reads the latter, with its gradient. */
function moments(shape: number[], xv: Float32Array): tf.Tensor[] {
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const { mean, variance } = channelMoments(x);
    const all = channelMoments(x, true);
    const stdGrad = tf.grad((t: tf.Tensor) => tf.mul(unbiasedStd(t), 3))(x);
    return [mean, variance, all.mean, all.variance, unbiasedStd(x), stdGrad, unbiasedStd(x, undefined, true)];
  });
}
const NAMES = ['mean', 'variance', 'overall mean', 'overall variance', 'std', 'std gradient', 'std keepDims'];

describeOnBackend('webgpu', 'WebGPU channel moments', () => {
  it('is the registered DataflowChannelMoments once initBackend has run', () => {
    expectRegistered(channelMomentsConfig);
    expect(hasChannelMomentsKernel()).toBe(true);
  });

  for (const shape of COLUMN_SUM_SHAPES) {
    it(`[${shape.join(',')}]: batch statistics, overall moments, std and its gradient equal cpu (1e-4), bit-identical run to run`, async () => {
      const xv = offsetUniform(shape, 1, 10);
      // New device scalars (n - 1 and n / (n - 1) of this shape) are kept, not leaked.
      await expectWebGPUMatchesCpu(() => moments(shape, xv), NAMES, 1e-4);
    });
  }

  it('unbiasedStd with keepDims leaves no tensor behind', async () => {
    await useBackend('webgpu');
    const x = tf.tensor(offsetUniform([2, 3, 3, 4], 6, 0), [2, 3, 3, 4]);
    unbiasedStd(x).dispose(); // makes this shape's device scalars first
    const before = liveTensors();
    const std = unbiasedStd(x, undefined, true);
    expect(std.shape).toEqual([1, 1, 1, 1]);
    std.dispose();
    expect(liveTensors()).toBe(before);
    x.dispose();
  });

  it('propagates NaN as torch does: a NaN anywhere makes the statistics that include it NaN', async () => {
    await useBackend('webgpu');
    const values = offsetUniform([2, 3, 3, 4], 5, 1);
    values[7] = Number.NaN; // channel 3
    const x = tf.tensor(values, [2, 3, 3, 4]);
    const { mean, variance } = channelMoments(x);
    const all = channelMoments(x, true);
    const std = unbiasedStd(x);
    const [m, v, am, av, s] = await Promise.all([mean, variance, all.mean, all.variance, std].map((t) => t.data()));
    expect([...m!].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect([...v!].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect([am![0], av![0], s![0]].every(Number.isNaN)).toBe(true);
    tf.dispose([x, mean, variance, all.mean, all.variance, std]);
  });
});

describeOnBackend('webgpu', 'WebGPU channel moments past one dispatch dimension (65,535 workgroups)', () => {
  it('per column with more channels than one dimension of finishing workgroups, and over a flat tensor of 16.8M', async () => {
    // [2, 70000]: 70,000 finishing workgroups; a flat 16.8M: 262k column groups as its own last axis.
    const wide = offsetUniform([2, 70_000], 7, 1);
    const flatLength = 65_536 * 256 + 1_000;
    const flat = offsetUniform([flatLength], 8, 2);
    const cases = () =>
      tf.tidy(() => {
        const w = tf.tensor(wide, [2, 70_000]);
        const f = tf.tensor(flat, [flatLength]);
        const all = channelMoments(f, true);
        return [channelMoments(w).mean, channelMoments(w).variance, all.mean, all.variance, unbiasedStd(f)];
      });
    await expectWebGPUMatchesCpu(cases, ['mean per column', 'variance per column', 'flat mean', 'flat variance', 'flat std'], 1e-4, 1);
  });
});
