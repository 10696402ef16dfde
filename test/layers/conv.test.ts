import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { Conv } from '../../src/layers/conv.js';
import { convTolerance, describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { disposeWeights, varName, loadFixture, toTensor, values, type Encoded } from './fixtures.js';
import { liveTensors } from '../helpers/memory.js';

interface ConvCase {
  name: string;
  filters: number;
  kernelSize: number;
  padding: 'same' | 'valid';
  temperature: number | null;
  lrMult: number | null;
  weight: Encoded;
  x: Encoded;
  g: Encoded;
  y: Encoded;
  dx: Encoded;
  dw: Encoded;
}
// Golden values: tools/reference/layers_fixtures.py (the seed's Conv), default args.
const fx = loadFixture<{ cases: ConvCase[] }>('conv.json');

describeEachBackendAndWebGPUKernelSet('Conv', () => {
  for (const c of fx.cases) {
    it(`matches torch: ${c.name} (forward, input and weight gradients)`, async () => {
      const layer = new Conv({
        filters: c.filters,
        kernelSize: c.kernelSize,
        padding: c.padding,
        temperature: c.temperature,
        lrMult: c.lrMult,
      });
      layer.build([null, c.x.shape[1]!, c.x.shape[2]!, c.x.shape[3]!]);
      const w = toTensor(c.weight);
      layer.weight.write(w);
      w.dispose();
      const before = liveTensors();
      const x0 = toTensor(c.x);
      const x = tf.variable(x0);
      x0.dispose();
      const g = toTensor(c.g);
      const y = layer.apply(x) as tf.Tensor;
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, g)),
        [x, layer.weight.read() as tf.Variable],
      );
      expect(y.shape).toEqual(c.y.shape);
      expect(maxRelativeError(await y.data(), values(c.y))).toBeLessThanOrEqual(convTolerance(1e-4));
      expect(maxRelativeError(await grads[x.name]!.data(), values(c.dx))).toBeLessThanOrEqual(convTolerance(1e-4));
      expect(maxRelativeError(await grads[varName(layer.weight)]!.data(), values(c.dw))).toBeLessThanOrEqual(convTolerance(1e-4));
      tf.dispose([x, g, y, value, ...Object.values(grads)]);
      expect(liveTensors()).toBe(before);
      disposeWeights(layer);
    });
  }
});

describe('Conv initialisation and arguments', () => {
  it("defaults to PyTorch's Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seedable", async () => {
    const make = (seed: number, lrMult?: number) => {
      const l = new Conv({ filters: 64, seed, lrMult });
      l.build([null, 8, 8, 12]);
      return l;
    };
    const a = make(7);
    const b = make(7);
    const c = make(8);
    const bound = 1 / Math.sqrt(3 * 3 * 12);
    const va = Array.from(await a.weight.read().data());
    expect(a.weight.read().shape).toEqual([3, 3, 12, 64]);
    expect(Math.max(...va.map(Math.abs))).toBeLessThanOrEqual(bound);
    const std = Math.sqrt(va.reduce((s, v) => s + v * v, 0) / va.length);
    expect(std / (bound / Math.sqrt(3))).toBeGreaterThan(0.95);
    expect(std / (bound / Math.sqrt(3))).toBeLessThan(1.05);
    expect(Array.from(await b.weight.read().data())).toEqual(Array.from(va));
    expect(Array.from(await c.weight.read().data())).not.toEqual(Array.from(va));
    // lrMult divides the stored init and multiplies it back in the forward pass.
    const m = make(7, 4);
    const vm = Array.from(await m.weight.read().data());
    expect(
      maxRelativeError(
        vm.map((v) => v * 4),
        va,
      ),
    ).toBeLessThanOrEqual(1e-6);
    const eff = m.effectiveWeight();
    expect(maxRelativeError(await eff.data(), va)).toBeLessThanOrEqual(1e-6);
    eff.dispose();
    [a, b, c, m].forEach(disposeWeights);
  });

  it('names its weight `weight` and infers output shapes', () => {
    const inp = tfl.input({ shape: [8, 8, 3] });
    const layer = new Conv({ name: 'c1', filters: 5 });
    const out = layer.apply(inp) as tfl.SymbolicTensor;
    expect(out.shape).toEqual([null, 8, 8, 5]);
    expect(layer.weights.map((w) => w.originalName)).toEqual(['c1/weight']);
    expect(layer.trainableWeights).toHaveLength(1);
    const valid = new Conv({ filters: 2, kernelSize: 2, padding: 'valid' });
    expect((valid.apply(inp) as tfl.SymbolicTensor).shape).toEqual([null, 7, 7, 2]);
  });

  it('rejects bad arguments and inputs, naming them', () => {
    expect(() => new Conv({ filters: -1 })).toThrow(/argument 'filters' must be a positive integer, got -1/);
    expect(() => new Conv({ filters: 2, kernelSize: 0 })).toThrow(/argument 'kernelSize'/);
    expect(() => new Conv({ filters: 2, padding: 'full' as never })).toThrow(/argument 'padding'/);
    expect(() => new Conv({ filters: 2, lrMult: 0 })).toThrow(/argument 'lrMult'/);
    const layer = new Conv({ name: 'cx', filters: 2 });
    expect(() => layer.apply(tf.zeros([4, 4, 3]))).toThrow(/Conv 'cx' expects input 'inputs' of rank 4 \(NHWC\), got shape \[4,4,3\]/);
    tf.dispose(layer.apply(tf.zeros([1, 4, 4, 3])) as tf.Tensor);
    expect(() => layer.apply(tf.zeros([1, 4, 4, 2]))).toThrow(
      /expects input 'inputs' with 3 channels \(last axis\), got shape \[1,4,4,2\]/,
    );
    expect(() => layer.apply(tf.zeros([1, 4, 4, 3], 'int32'))).toThrow(/dtype float32, got 'int32'/);
    disposeWeights(layer);
  });
});
