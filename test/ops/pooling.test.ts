import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { globalMaxPool } from '../../src/ops/pooling.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';

// Golden values: tools/reference/ops_fixtures.py (no arguments), torch.amax(x, dim=(2, 3)) stored NHWC.
interface Enc {
  shape: number[];
  data: number[];
}
interface Case {
  name: string;
  x: Enc;
  w: Enc;
  y: Enc;
  grad: Enc;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/ops/global_max_pool.json', import.meta.url), 'utf8')) as { cases: Case[] };
const t = (e: Enc): tf.Tensor => tf.tensor(e.data, e.shape, 'float32');

describeEachBackend('globalMaxPool matches torch.amax over H, W', () => {
  for (const c of fx.cases) {
    it(`${c.name}: forward and gradient of sum(w * y) within 1e-4`, async () => {
      const before = liveTensors();
      const [y, grad] = tf.tidy(() => {
        const x = t(c.x) as tf.Tensor4D;
        const w = t(c.w);
        const out = globalMaxPool(x);
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(globalMaxPool(a as tf.Tensor4D), w)))(x);
        return [out, g];
      });
      expect(y.shape).toEqual(c.y.shape);
      expect(maxRelativeError(await y.data(), c.y.data)).toBeLessThanOrEqual(1e-4);
      expect(maxRelativeError(await grad.data(), c.grad.data)).toBeLessThanOrEqual(1e-4);
      tf.dispose([y, grad]);
      expect(liveTensors()).toBe(before);
    });
  }

  it('splits the gradient evenly among tied maxima (a constant channel: 1/(H*W) each)', async () => {
    const g = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(globalMaxPool(a as tf.Tensor4D)))(tf.fill([1, 2, 3, 1], 0.5)));
    expect([...(await g.data())].map((v) => +v.toFixed(6))).toEqual(Array(6).fill(+(1 / 6).toFixed(6)));
    g.dispose();
  });

  it('rejects bad input, naming the argument', () => {
    const x3 = tf.zeros([2, 3, 4]);
    const xi = tf.zeros([1, 2, 2, 3], 'int32');
    expect(() => globalMaxPool(x3 as tf.Tensor4D)).toThrow(/globalMaxPool: argument 'x' must have rank 4 \(NHWC\), got shape \[2,3,4\]/);
    expect(() => globalMaxPool(xi as tf.Tensor4D)).toThrow(/globalMaxPool: argument 'x' must be float32, got dtype 'int32'/);
    tf.dispose([x3, xi]);
  });
});
