// The library's DataflowAddScaledNoise on WebGPU (src/backend/kernels/webgpu/AddScaledNoise.ts) past one dispatch
// dimension, through the discrete action, against cpu. test/ops/discrete-action-fused.test.ts holds it and its gradient
// kernel to a float64 bound at the seed's shapes, fused and unfused, on every backend.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { addScaledNoiseConfig, addScaledNoiseGradConfig } from '../../../src/backend/kernels/webgpu/AddScaledNoise.js';
import { simulateDiscreteAction } from '../../../src/ops/discrete-action.js';
import { maxRelativeError } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered, offsetUniform } from '../../helpers/webgpu-kernels.js';

describeOnBackend('webgpu', 'WebGPU discrete-action noise past one dispatch dimension (65,535 workgroups)', () => {
  it('is the registered DataflowAddScaledNoise and DataflowAddScaledNoiseGrad once initBackend has run', () => {
    expectRegistered(addScaledNoiseConfig);
    expectRegistered(addScaledNoiseGradConfig);
  });

  it("the discrete action over 29.5M values, the seed's flip-TTA eval at batch 2048", async () => {
    // 2048 x 15 x 15 x 64 = 29,491,200 values: 115,200 workgroups of 256, which tfjs spreads over two dimensions.
    const shape = [2048, 15, 15, 64];
    const xv = offsetUniform(shape, 9, 0);
    const noise = offsetUniform(shape, 10, 0);
    const cases = () => tf.tidy(() => simulateDiscreteAction(tf.tensor(xv, shape), { noise: tf.tensor(noise, shape) }));
    await useBackend('cpu');
    const ref = cases();
    const expected = await ref.data();
    ref.dispose();
    await useBackend('webgpu');
    const got = cases();
    expect(maxRelativeError(await got.data(), expected), 'discrete action').toBeLessThanOrEqual(1e-4);
    got.dispose();
  });
});
