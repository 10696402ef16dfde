import type * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

/**
 * Largest |a - b| / max(|b|, floor) over all elements. The floor (default: a tenth
 * of the reference's root-mean-square, at least 1e-6) keeps elements that cancel to
 * near zero, where float32 summation order dominates, from deciding the result.
 */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor?: number): number {
  expect(actual.length).toBe(expected.length);
  if (floor === undefined) {
    let sumSq = 0;
    for (let i = 0; i < expected.length; i++) sumSq += expected[i]! ** 2;
    floor = Math.max(1e-6, 0.1 * Math.sqrt(sumSq / Math.max(1, expected.length)));
  }
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    if (!Number.isFinite(a)) return Infinity;
    worst = Math.max(worst, Math.abs(a - b) / Math.max(Math.abs(b), floor));
  }
  return worst;
}

/** Asserts two tensors (or arrays) agree within `rtol` relative error, reading tensors asynchronously. */
export async function expectClose(
  actual: tf.Tensor | ArrayLike<number>,
  expected: tf.Tensor | ArrayLike<number>,
  rtol = 1e-4,
  floor?: number,
): Promise<void> {
  const a = 'dataId' in (actual as object) ? await (actual as tf.Tensor).data() : (actual as ArrayLike<number>);
  const b = 'dataId' in (expected as object) ? await (expected as tf.Tensor).data() : (expected as ArrayLike<number>);
  if ('shape' in (actual as object) && 'shape' in (expected as object)) {
    expect((actual as tf.Tensor).shape).toEqual((expected as tf.Tensor).shape);
  }
  expect(maxRelativeError(a as ArrayLike<number>, b as ArrayLike<number>, floor)).toBeLessThanOrEqual(rtol);
}

/**
 * Deterministic uniform values in [lo, hi), made in JavaScript (mulberry32): test data that does not
 * depend on the active backend, and never reads a tensor back synchronously (WebGPU in Node cannot).
 */
export function seededUniform(size: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}
