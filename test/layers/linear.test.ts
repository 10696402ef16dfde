import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Linear } from '../../src/layers/linear.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { disposeWeights, varName, loadFixture, toTensor, values, type Encoded } from './fixtures.js';
import { liveTensors } from '../helpers/memory.js';

// Golden values: tools/reference/layers_fixtures.py (the seed's Linear, temperature 1/12), default args.
const fx = loadFixture<{
  temperature: number;
  units: number;
  weight: Encoded;
  x: Encoded;
  g: Encoded;
  y: Encoded;
  dx: Encoded;
  dw: Encoded;
}>('linear.json');

describeEachBackend('Linear', () => {
  it('matches torch: x @ (W * temperature)^T, input and weight gradients', async () => {
    const layer = new Linear({ units: fx.units, temperature: fx.temperature });
    layer.build([null, fx.x.shape[1]!]);
    const w = toTensor(fx.weight);
    layer.weight.write(w);
    w.dispose();
    const before = liveTensors();
    const x0 = toTensor(fx.x);
    const x = tf.variable(x0);
    x0.dispose();
    const g = toTensor(fx.g);
    const y = layer.apply(x) as tf.Tensor;
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, g)),
      [x, layer.weight.read() as tf.Variable],
    );
    expect(maxRelativeError(await y.data(), values(fx.y))).toBeLessThanOrEqual(1e-4);
    expect(maxRelativeError(await grads[x.name]!.data(), values(fx.dx))).toBeLessThanOrEqual(1e-4);
    expect(maxRelativeError(await grads[varName(layer.weight)]!.data(), values(fx.dw))).toBeLessThanOrEqual(1e-4);
    // Higher-rank input: the last axis is the feature axis.
    const y3 = tf.tidy(() => layer.apply(tf.reshape(x, [1, 3, 8])) as tf.Tensor);
    expect(y3.shape).toEqual([1, 3, fx.units]);
    expect(maxRelativeError(await y3.data(), values(fx.y))).toBeLessThanOrEqual(1e-4);
    tf.dispose([x, g, y, value, y3, ...Object.values(grads)]);
    expect(liveTensors()).toBe(before);
    disposeWeights(layer);
  });
});

describe('Linear initialisation and arguments', () => {
  it("defaults to PyTorch's Linear init, U(-1/sqrt(in), 1/sqrt(in)), seedable, weight [in, out] named `weight`", async () => {
    const a = new Linear({ name: 'head', units: 200, seed: 3 });
    a.build([null, 50]);
    const v = Array.from(await a.weight.read().data());
    expect(a.weight.read().shape).toEqual([50, 200]);
    expect(a.weights.map((w) => w.originalName)).toEqual(['weight']);
    const bound = 1 / Math.sqrt(50);
    expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    expect(Math.abs(std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.05);
    disposeWeights(a);
  });

  it('rejects bad arguments and inputs, naming them', () => {
    expect(() => new Linear({ units: 0 })).toThrow(/argument 'units' must be a positive integer, got 0/);
    expect(() => new Linear({ units: 2, temperature: Number.NaN })).toThrow(/argument 'temperature'/);
    const layer = new Linear({ name: 'lin', units: 2 });
    expect(() => layer.apply(tf.zeros([4]))).toThrow(/Linear 'lin' expects input 'inputs' of rank >= 2/);
    tf.dispose(layer.apply(tf.zeros([1, 4])) as tf.Tensor);
    expect(() => layer.apply(tf.zeros([1, 5]))).toThrow(/with 4 features \(last axis\), got shape \[1,5\]/);
    expect(() => layer.apply(tf.zeros([1, 4], 'int32'))).toThrow(/dtype float32, got 'int32'/);
    disposeWeights(layer);
  });
});
