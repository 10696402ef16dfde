import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { accuracy, crossEntropy, seedLoss } from '../../src/ops/loss.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';

// Golden values from nn.CrossEntropyLoss(label_smoothing=0.1, reduction='none') on probability
// targets (one-hot and cutmix-mixed), the seed's reduction with batchsize 1024, and its gradient
// (tools/reference/train_fixtures.py, no arguments).
interface Fixture {
  batch: number;
  classes: number;
  logits: number[];
  targets: number[];
  labelSmoothing: number;
  lossScale: number;
  batchScale: number;
  ce: number[];
  loss: number;
  grad: number[];
  accuracy: number;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/train/loss.json', import.meta.url), 'utf8')) as Fixture;

describeEachBackend('loss matches torch', () => {
  it('per-example label-smoothed cross-entropy, the seed reduction and its gradient', async () => {
    const before = liveTensors();
    const logits = tf.tensor2d(fx.logits, [fx.batch, fx.classes]);
    const targets = tf.tensor2d(fx.targets, [fx.batch, fx.classes]);
    const ce = crossEntropy(logits, targets, fx.labelSmoothing);
    expect(ce.shape).toEqual([fx.batch]);
    expect(maxRelativeError(await ce.data(), fx.ce)).toBeLessThanOrEqual(2e-6);
    const lossFn = (l: tf.Tensor) => seedLoss(l, targets, { batchScale: fx.batchScale, lossScale: fx.lossScale });
    const { value, grad } = tf.valueAndGrad(lossFn)(logits);
    expect(Math.abs((await value.data())[0]! - fx.loss) / fx.loss).toBeLessThanOrEqual(2e-6);
    expect(maxRelativeError(await grad.data(), fx.grad)).toBeLessThanOrEqual(2e-6);
    const acc = accuracy(logits, targets);
    expect((await acc.data())[0]).toBeCloseTo(fx.accuracy, 6);
    tf.dispose([logits, targets, ce, value, grad, acc]);
    expect(liveTensors()).toBe(before);
  });

  it('default batchScale is 512 / batch', async () => {
    const logits = tf.tensor2d(fx.logits, [fx.batch, fx.classes]);
    const targets = tf.tensor2d(fx.targets, [fx.batch, fx.classes]);
    const [a, b, ce] = [
      seedLoss(logits, targets),
      seedLoss(logits, targets, { batchScale: 512 / fx.batch }),
      crossEntropy(logits, targets),
    ];
    const sum = Array.from(await ce.data()).reduce((s, v) => s + v, 0);
    expect((await a.data())[0]).toBe((await b.data())[0]);
    expect((await a.data())[0]! / (sum * (512 / fx.batch))).toBeCloseTo(1, 5);
    tf.dispose([logits, targets, a, b, ce]);
  });
});

describe('loss validation', () => {
  it('names the argument and shapes', () => {
    const l = tf.zeros([2, 3]);
    const t = tf.zeros([2, 4]);
    expect(() => crossEntropy(l, t)).toThrow(/targets must have the logits' shape \[2,3\].*got \[2,4\]/);
    expect(() => seedLoss(tf.zeros([3]), tf.zeros([3]))).toThrow(/seedLoss: logits must be \[batch, classes\], got shape \[3\]/);
    expect(() => crossEntropy(l, l, 2)).toThrow(/labelSmoothing must be in \[0, 1\]/);
    expect(() => seedLoss(l, l, { lossScale: 0 })).toThrow(/lossScale must be a positive number/);
    tf.dispose([l, t]);
  });
});
