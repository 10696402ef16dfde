import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { gelu } from '../../src/ops/gelu.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { loadFixture, toTensor, values, type Encoded } from '../layers/fixtures.js';
import { liveTensors } from '../helpers/memory.js';

// Golden values: tools/reference/layers_fixtures.py (torch F.gelu, erf form), default args.
const fx = loadFixture<{ x: Encoded; g: Encoded; y: Encoded; dx: Encoded }>('gelu.json');

describeEachBackend('gelu', () => {
  it('matches torch F.gelu forward and backward', async () => {
    const before = liveTensors();
    const x = toTensor(fx.x);
    const g = toTensor(fx.g);
    const y = gelu(x);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(gelu(a), g)))(x);
    expect(maxRelativeError(await y.data(), values(fx.y))).toBeLessThanOrEqual(1e-4);
    expect(maxRelativeError(await dx.data(), values(fx.dx))).toBeLessThanOrEqual(1e-4);
    tf.dispose([x, g, y, dx]);
    expect(liveTensors()).toBe(before);
  });

  it("uses its own gradient, reusing the forward pass's Φ (no Erf kernel in the backward pass)", async () => {
    const x = toTensor(fx.x);
    const { KernelCounter } = await import('../../src/backend/counter.js');
    const counter = new KernelCounter().start();
    const dx = tf.grad((a: tf.Tensor) => tf.sum(gelu(a)))(x);
    const counts = counter.stop();
    // The hand-written gradient reuses the forward's Φ: one Erf in all, none in the backward pass, and one Exp for φ.
    expect(counts.byName['Erf']).toBe(1);
    expect(counts.backwardByName['Erf']).toBeUndefined();
    expect(counts.backwardByName['Exp']).toBe(1);
    tf.dispose([x, dx]);
  });

  it('rejects non-float input, naming the argument', () => {
    const x = tf.tensor1d([1, 2], 'int32');
    expect(() => gelu(x)).toThrow(/argument 'x' must be float32, got dtype 'int32'/);
    x.dispose();
  });
});
