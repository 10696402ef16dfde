import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { wasmTrainingKernelsInstalled } from '../../src/backend/kernels/wasm/index.js';
import { maxRelativeError } from './assert.js';
import { useBackend } from './backends.js';
import { liveTensors } from './memory.js';

/**
 * How the wasm kernel tests (test/backend/kernels/wasm-*.test.ts) hold a kernel to the cpu backend: `cases` on cpu
 * (the reference), then on wasm with the library's kernels: the same shapes, each result within `tolerance` of cpu's
 * (maxRelativeError; 0: the same values), and no tensor left behind. `names` label the results in failures.
 */
export async function expectWasmMatchesCpu(cases: () => tf.Tensor[], names: readonly string[], tolerance: number): Promise<void> {
  await useBackend('cpu');
  const ref = cases();
  const expected = await Promise.all(ref.map((t) => t.data()));
  const shapes = ref.map((t) => t.shape);
  tf.dispose(ref);
  await useBackend('wasm');
  expect(wasmTrainingKernelsInstalled(), "the library's wasm kernels").toBe(true);
  const before = liveTensors();
  const got = cases();
  expect(got.map((t) => t.shape)).toEqual(shapes);
  const actual = await Promise.all(got.map((t) => t.data()));
  tf.dispose(got);
  expect(names.length).toBe(expected.length);
  for (let i = 0; i < names.length; i++) {
    expect(maxRelativeError(actual[i]! as Float32Array, expected[i]! as Float32Array), names[i]).toBeLessThanOrEqual(tolerance);
  }
  expect(liveTensors()).toBe(before);
}
