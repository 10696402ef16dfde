import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/layers/batch-norm.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { disposeWeights, varName, loadFixture, toTensor, values, type Encoded } from './fixtures.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

interface BnCase {
  name: string;
  weightTrainable: boolean;
  weight: Encoded;
  bias: Encoded;
  x1: Encoded;
  g: Encoded;
  y1: Encoded;
  dx1: Encoded;
  dbias1: Encoded;
  dweight1?: Encoded;
  runningMean1: Encoded;
  runningVar1: Encoded;
  x2: Encoded;
  y2: Encoded;
  runningMean2: Encoded;
  runningVar2: Encoded;
  x3: Encoded;
  g3: Encoded;
  y3: Encoded;
  dx3: Encoded;
  dbias3: Encoded;
}
// Golden values: tools/reference/layers_fixtures.py (the seed's BatchNorm: eps 1e-12, momentum 0.4), default args.
const fx = loadFixture<{ eps: number; momentum: number; cases: BnCase[] }>('batchnorm.json');

async function close(t: tf.Tensor, e: Encoded, what: string, rtol = 1e-4): Promise<void> {
  expect(t.shape, what).toEqual(e.shape);
  expect(maxRelativeError(await t.data(), values(e)), what).toBeLessThanOrEqual(rtol);
}

describeEachBackendAndWebGPUKernelSet('BatchNorm', () => {
  for (const c of fx.cases) {
    it(`matches torch (${c.name}): training forward and gradients, running stats after 2 calls, inference`, async () => {
      const bn = new BatchNorm({ weightTrainable: c.weightTrainable });
      bn.build([null, 3, 2, 3]);
      for (const [v, e] of [
        [bn.weight, c.weight],
        [bn.bias, c.bias],
      ] as const) {
        const t = toTensor(e);
        v.write(t);
        t.dispose();
      }
      const before = liveTensors();
      const x0 = toTensor(c.x1);
      const x = tf.variable(x0);
      x0.dispose();
      const g = toTensor(c.g);
      let y1: tf.Tensor | undefined;
      const vars = [x, bn.bias.read() as tf.Variable, ...(c.weightTrainable ? [bn.weight.read() as tf.Variable] : [])];
      const { value, grads } = tf.variableGrads(() => {
        const y = bn.apply(x, { training: true }) as tf.Tensor;
        y1 = tf.keep(tf.clone(y));
        return tf.sum(tf.mul(y, g));
      }, vars);
      await close(y1!, c.y1, 'training output');
      await close(grads[x.name]!, c.dx1, 'input gradient');
      await close(grads[varName(bn.bias)]!, c.dbias1, 'bias gradient');
      if (c.dweight1) await close(grads[varName(bn.weight)]!, c.dweight1, 'weight gradient');
      else expect(Object.keys(grads)).not.toContain(varName(bn.weight));
      await close(bn.runningMean.read(), c.runningMean1, 'running_mean after 1 call', 1e-5);
      await close(bn.runningVar.read(), c.runningVar1, 'running_var after 1 call', 1e-5);

      const x2 = toTensor(c.x2);
      const y2 = bn.apply(x2, { training: true }) as tf.Tensor;
      await close(y2, c.y2, 'second training output');
      await close(bn.runningMean.read(), c.runningMean2, 'running_mean after 2 calls', 1e-5);
      await close(bn.runningVar.read(), c.runningVar2, 'running_var after 2 calls', 1e-5);

      // Inference: running statistics, no updates, autodiff gradients.
      const x3 = toTensor(c.x3);
      const g3 = toTensor(c.g3);
      const rm = await bn.runningMean.read().data();
      const y3 = bn.apply(x3) as tf.Tensor;
      await close(y3, c.y3, 'inference output');
      const dx3 = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(bn.apply(a, { training: false }) as tf.Tensor, g3)))(x3);
      await close(dx3, c.dx3, 'inference input gradient');
      const { value: v3, grads: gb3 } = tf.variableGrads(
        () => tf.sum(tf.mul(bn.apply(x3) as tf.Tensor, g3)),
        [bn.bias.read() as tf.Variable],
      );
      await close(gb3[varName(bn.bias)]!, c.dbias3, 'inference bias gradient');
      expect(Array.from(await bn.runningMean.read().data())).toEqual(Array.from(rm));

      tf.dispose([x, g, y1!, value, ...Object.values(grads), x2, y2, x3, g3, y3, dx3, v3, ...Object.values(gb3)]);
      expect(liveTensors()).toBe(before);
      disposeWeights(bn);
    });
  }

  it('updates running stats without leaking tensors over many training calls', () => {
    const bn = new BatchNorm();
    const x = tf.randomNormal([4, 3, 3, 2], 0, 1, 'float32', 1);
    tf.dispose(bn.apply(x, { training: true }) as tf.Tensor);
    const before = liveTensors();
    for (let i = 0; i < 5; i++) tf.dispose(bn.apply(x, { training: true }) as tf.Tensor);
    expect(liveTensors()).toBe(before);
    x.dispose();
    bn.dispose();
  });
});

describe('BatchNorm weights and arguments', () => {
  it("names its weights like the seed's state dict; only bias trains by default", () => {
    const inp = tfl.input({ shape: [4, 4, 5] });
    const bn = new BatchNorm({ name: 'norm' });
    bn.apply(inp);
    expect(bn.weights.map((w) => w.originalName).sort()).toEqual(['norm/bias', 'norm/running_mean', 'norm/running_var', 'norm/weight']);
    expect(bn.trainableWeights.map((w) => w.originalName)).toEqual(['norm/bias']);
    expect(bn.getConfig()).toMatchObject({ eps: 1e-12, momentum: 0.4, weightTrainable: false, biasTrainable: true });
    disposeWeights(bn);
  });

  it('refuses an infinite eps (hostile review item 18)', () => {
    expect(() => new lib.BatchNorm({ name: 'bn_inf', eps: Number.POSITIVE_INFINITY })).toThrow(
      "BatchNorm 'bn_inf': argument 'eps' must be a finite number >= 0, got Infinity",
    );
  });

  it('rejects bad arguments and inputs, naming them', () => {
    expect(() => new BatchNorm({ momentum: 1.5 })).toThrow(/argument 'momentum' must be a number in \[0, 1\], got 1.5/);
    expect(() => new BatchNorm({ eps: -1 })).toThrow(/argument 'eps'/);
    const bn = new BatchNorm({ name: 'bn' });
    expect(() => bn.apply(tf.zeros([2, 3]))).toThrow(/BatchNorm 'bn' expects input 'inputs' of rank 4 \(NHWC\), got shape \[2,3\]/);
    tf.dispose(bn.apply(tf.zeros([2, 2, 2, 3])) as tf.Tensor);
    expect(() => bn.apply(tf.zeros([2, 2, 2, 4]))).toThrow(/with 3 channels \(last axis\), got shape \[2,2,2,4\]/);
    expect(() => bn.apply(tf.zeros([2, 2, 2, 3], 'int32'))).toThrow(/dtype float32, got 'int32'/);
    expect(() => bn.apply(tf.zeros([1, 1, 1, 3]), { training: true })).toThrow(/more than 1 value per channel/);
    bn.dispose();
  });
});
