import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { webgpuTrainingKernelsInstalled } from '../../src/backend/kernels/webgpu/index.js';
import { maxRelativeError, seededUniform } from './assert.js';
import { useBackend } from './backends.js';
import { liveTensors } from './memory.js';

// Not WebGPU's own: the kernel tests of every backend take them from kernels.ts.
export { expectRegistered, runTfjsKernel } from './kernels.js';

/**
 * How the WebGPU kernel tests (test/backend/kernels/webgpu-*.test.ts) hold a kernel to the cpu backend: `cases` on
 * cpu (the reference), then twice on WebGPU with the library's kernels: the same shapes, each result within
 * `tolerance` of cpu's (maxRelativeError), the two WebGPU runs the same bits, and no tensor left behind (device
 * scalars a new shape makes are kept, not leaked). `names` label the results in failures. `runs: 1` skips the rerun
 * (the dispatch tests' tens of millions of values).
 */
export async function expectWebGPUMatchesCpu(
  cases: () => tf.Tensor[],
  names: readonly string[],
  tolerance: number,
  runs = 2,
): Promise<void> {
  await useBackend('cpu');
  const ref = cases();
  const expected = await Promise.all(ref.map((t) => t.data()));
  const shapes = ref.map((t) => t.shape);
  tf.dispose(ref);
  await useBackend('webgpu');
  expect(webgpuTrainingKernelsInstalled(), "the library's WebGPU kernels").toBe(true);
  const before = liveTensors();
  const results = [];
  for (let r = 0; r < runs; r++) {
    const got = cases();
    expect(got.map((t) => t.shape)).toEqual(shapes);
    results.push(await Promise.all(got.map((t) => t.data() as Promise<Float32Array>)));
    tf.dispose(got);
  }
  expect(names.length).toBe(expected.length);
  for (let i = 0; i < names.length; i++) {
    expect(maxRelativeError(results[0]![i]!, expected[i] as Float32Array), names[i]).toBeLessThanOrEqual(tolerance);
    if (runs > 1) {
      expect(Buffer.from(results[1]![i]!.buffer).equals(Buffer.from(results[0]![i]!.buffer)), `${names[i]} repeatable`).toBe(true);
    }
  }
  expect(liveTensors()).toBe(before);
}

/** `size` uniform values in [offset - 3, offset + 3]: offset from zero, the shifted sums must not cancel when |mean| >> std. */
export function offsetUniform(shape: number[], seed: number, offset: number): Float32Array {
  return seededUniform(
    shape.reduce((a, b) => a * b, 1),
    seed,
    offset - 3,
    offset + 3,
  );
}

/**
 * The seed's batch-norm inputs at batch 2, odd sizes, fewer channels than a workgroup's 64, more rows than one chunk,
 * and a matrix: the shapes every column-sum kernel is tested at.
 */
export const COLUMN_SUM_SHAPES = [
  [2, 31, 31, 64],
  [2, 15, 15, 256],
  [2, 7, 7, 512],
  [3, 5, 5, 3],
  [4, 9, 9, 70],
  [64, 17, 17, 8],
  [2, 7],
];

/** A batch norm's per-channel parameters and running statistics for the kernel tests: weight, bias, running mean, running variance. */
export function batchNormParameters(channels: number): {
  weight: Float32Array;
  bias: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
} {
  return {
    weight: seededUniform(channels, 21, 0.5, 1.5),
    bias: seededUniform(channels, 22, -0.5, 0.5),
    runningMean: seededUniform(channels, 23, -1, 1),
    runningVar: seededUniform(channels, 24, 0.5, 2),
  };
}

/**
 * The packed [4, C] batch-norm coefficients (names.ts: mean, rstd, scale, shift per channel) of a channels-last x,
 * computed in float64 on the host from x's biased batch statistics: inputs for the apply and gradient kernels.
 */
export function hostCoefficients(xv: Float32Array, channels: number, weight: Float32Array, bias: Float32Array, eps: number): Float32Array {
  const rows = xv.length / channels;
  const out = new Float32Array(4 * channels);
  for (let c = 0; c < channels; c++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += xv[r * channels + c]! / rows;
    let variance = 0;
    for (let r = 0; r < rows; r++) variance += (xv[r * channels + c]! - mean) ** 2 / rows;
    const rstd = 1 / Math.sqrt(variance + eps);
    const scale = weight[c]! * rstd;
    [out[c], out[channels + c], out[2 * channels + c], out[3 * channels + c]] = [mean, rstd, scale, bias[c]! - mean * scale];
  }
  return out;
}
