// The library's DataflowBatchNormGrad on WebGPU (src/backend/kernels/webgpu/BatchNormGrad.ts): dx, the bias gradient
// and the weight gradient of the apply kernel's output, with or without the GELU, through the batch statistics or not,
// against their definition (names.ts) in tfjs ops on cpu: g = dy, or dy · GELU'(z) as the library's gelu op
// differentiates; dx as the unfused batch norm's `trainForward` (src/ops/batch-norm.ts) computes it. No tfjs kernel to
// compare with: the name is the library's own.
import * as tf from '@tensorflow/tfjs-core';
import { it } from 'vitest';
import type { BatchNormGradAttrs } from '../../../src/backend/kernels/names.js';
import { batchNormGradConfig } from '../../../src/backend/kernels/webgpu/BatchNormGrad.js';
import { batchNormGrad, hasBatchNormKernels } from '../../../src/ops/batch-norm.js';
import { gelu } from '../../../src/ops/gelu.js';
import { describeOnBackend } from '../../helpers/backends.js';
import {
  batchNormParameters,
  COLUMN_SUM_SHAPES,
  expectRegistered,
  expectWebGPUMatchesCpu,
  hostCoefficients,
  offsetUniform,
} from '../../helpers/webgpu-kernels.js';

/** The kernel where the backend has it; elsewhere its definition: [dx, Σ g] and, with `weightGrad`, rstd · Σ g · (x − mean). */
function grad(shape: number[], xv: Float32Array, dyv: Float32Array, attrs: BatchNormGradAttrs): tf.Tensor[] {
  const channels = shape[shape.length - 1]!;
  const { weight, bias } = batchNormParameters(channels);
  const packed = hostCoefficients(xv, channels, weight, bias, 1e-5);
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const dy = tf.tensor(dyv, shape);
    const coefficients = tf.tensor2d(packed, [4, channels]);
    if (hasBatchNormKernels()) {
      const { dx, dBias, dWeight } = batchNormGrad(x, dy, coefficients, attrs);
      return dWeight ? [dx, dBias, dWeight] : [dx, dBias];
    }
    const lead = shape.slice(0, -1).map((_, i) => i);
    const n = xv.length / channels;
    const [mean, rstd, scale, shift] = tf.unstack(coefficients) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const g = attrs.gelu ? tf.grad((z: tf.Tensor) => gelu(z))(tf.add(tf.mul(x, scale), shift), dy) : dy;
    const gSum = tf.sum(g, lead);
    const gCentredSum = tf.sum(tf.mul(g, tf.sub(x, mean)), lead);
    const xhat = tf.mul(tf.sub(x, mean), rstd);
    const dx = attrs.batchStats
      ? tf.sub(tf.mul(g, scale), tf.add(tf.mul(xhat, tf.div(tf.mul(scale, tf.mul(gCentredSum, rstd)), n)), tf.div(tf.mul(scale, gSum), n)))
      : tf.mul(g, scale);
    return attrs.weightGrad ? [dx, gSum, tf.mul(gCentredSum, rstd)] : [dx, gSum];
  });
}

// Two rows per channel ([2, 7]) make dx through the batch statistics zero but for rounding: [5, 7] instead.
const SHAPES = COLUMN_SUM_SHAPES.map((shape) => (shape.length === 2 ? [5, 7] : shape));

const VARIANTS: BatchNormGradAttrs[] = [
  { gelu: true, batchStats: true, weightGrad: true },
  { gelu: true, batchStats: false, weightGrad: true },
  { gelu: false, batchStats: true, weightGrad: false },
  { gelu: false, batchStats: false, weightGrad: true },
];

describeOnBackend('webgpu', 'WebGPU batch-norm gradient', () => {
  it('is the registered DataflowBatchNormGrad once initBackend has run', () => expectRegistered(batchNormGradConfig));

  for (const shape of SHAPES) {
    it(`[${shape.join(',')}]: dx, bias and weight gradients, with and without the GELU and the batch statistics, equal their definition on cpu (1e-4), bit-identical run to run`, async () => {
      const xv = offsetUniform(shape, 1, 10);
      const dyv = offsetUniform(shape, 2, 0);
      const names = VARIANTS.flatMap((v) => {
        const label = `gelu ${v.gelu}, batchStats ${v.batchStats}`;
        return [`dx (${label})`, `Σ g (${label})`, ...(v.weightGrad ? [`rstd · Σ g(x − mean) (${label})`] : [])];
      });
      await expectWebGPUMatchesCpu(() => VARIANTS.flatMap((v) => grad(shape, xv, dyv, v)), names, 1e-4);
    });
  }
});
