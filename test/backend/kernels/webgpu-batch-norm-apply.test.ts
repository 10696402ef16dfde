// The library's DataflowBatchNormApply on WebGPU (src/backend/kernels/webgpu/BatchNormApply.ts): x · scale + shift per
// channel from the packed coefficients, or its GELU, against their definition (names.ts) in tfjs ops on cpu (the GELU
// the library's op, src/ops/gelu.ts); and the whole norm through the layer past one dispatch dimension. No tfjs
// kernel to compare with: the name is the library's own.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { batchNormApplyConfig } from '../../../src/backend/kernels/webgpu/BatchNormApply.js';
import { BatchNorm } from '../../../src/layers/batch-norm.js';
import { batchNormApply, hasBatchNormKernels } from '../../../src/ops/batch-norm.js';
import { gelu } from '../../../src/ops/gelu.js';
import { maxRelativeError } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import {
  batchNormParameters,
  COLUMN_SUM_SHAPES,
  expectRegistered,
  expectWebGPUMatchesCpu,
  hostCoefficients,
  offsetUniform,
} from '../../helpers/webgpu-kernels.js';

/** The kernel where the backend has it; elsewhere x · scale + shift (coefficients' rows 2 and 3), or GELU of it. */
function apply(shape: number[], xv: Float32Array, withGelu: boolean): tf.Tensor[] {
  const channels = shape[shape.length - 1]!;
  const { weight, bias } = batchNormParameters(channels);
  const packed = hostCoefficients(xv, channels, weight, bias, 1e-5);
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const coefficients = tf.tensor2d(packed, [4, channels]);
    if (hasBatchNormKernels()) return [batchNormApply(x, coefficients, withGelu)];
    const [, , scale, shift] = tf.unstack(coefficients);
    const z = tf.add(tf.mul(x, scale!), shift!);
    return [withGelu ? gelu(z) : z];
  });
}

describeOnBackend('webgpu', 'WebGPU batch-norm apply', () => {
  it('is the registered DataflowBatchNormApply once initBackend has run', () => expectRegistered(batchNormApplyConfig));

  for (const shape of COLUMN_SUM_SHAPES) {
    it(`[${shape.join(',')}]: x · scale + shift and its GELU equal their definition on cpu (1e-5), bit-identical run to run`, async () => {
      const xv = offsetUniform(shape, 1, 10);
      await expectWebGPUMatchesCpu(() => [...apply(shape, xv, false), ...apply(shape, xv, true)], ['normalised', 'GELU'], 1e-5);
    });
  }
});

describeOnBackend('webgpu', 'WebGPU batch norm past one dispatch dimension (65,535 workgroups)', () => {
  it("the batch norm (with its GELU) over 29.5M values, the seed's flip-TTA eval at batch 2048", async () => {
    // 2048 x 15 x 15 x 64 = 29,491,200 values: 115,200 workgroups of 256, which tfjs spreads over two dimensions.
    const shape = [2048, 15, 15, 64];
    const xv = offsetUniform(shape, 9, 0);
    const cases = () =>
      tf.tidy(() => {
        const x = tf.tensor(xv, shape);
        const norm = new BatchNorm({ name: 'wide_norm' });
        norm.build(shape);
        return [norm.callWithGelu(x, { training: true }), norm.callWithGelu(x, {})];
      });
    await useBackend('cpu');
    const ref = cases();
    const expected = await Promise.all(ref.map((t) => t.data()));
    tf.dispose(ref);
    await useBackend('webgpu');
    const got = cases();
    const values = await Promise.all(got.map((t) => t.data()));
    tf.dispose(got);
    const names = ['training batch norm + GELU', 'inference batch norm + GELU'];
    values.forEach((v, i) => expect(maxRelativeError(v, expected[i]!), names[i]).toBeLessThanOrEqual(1e-4));
  });
});
