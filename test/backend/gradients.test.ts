import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';

describeEachBackend('Sum and Mean gradients', (backend) => {
  const x = () => tf.tidy(() => tf.reshape(tf.add(tf.mul(tf.range(0, 2 * 6 * 5 * 3), 0.01), 1), [2, 6, 5, 3]) as tf.Tensor4D);

  it('match the analytic gradient over every axis combination, keepDims or not', async () => {
    for (const axis of [undefined, 0, [1, 2], [0, 3], -1]) {
      for (const keepDims of [false, true]) {
        const input = x();
        // Weights on the output make the check sensitive to how dy is broadcast back.
        const [dSum, dMean, expectSum, expectMean] = tf.tidy(() => {
          const outShape = tf.sum(input, axis, keepDims).shape;
          const w = tf.reshape(tf.range(1, 1 + outShape.reduce((a, b) => a * b, 1)), outShape);
          const gs = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sum(t, axis, keepDims), w)))(input);
          const gm = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, axis, keepDims), w)))(input);
          // The analytic gradient: each input element receives the weight of the output it was reduced into.
          const axes = axis === undefined ? [0, 1, 2, 3] : (Array.isArray(axis) ? axis : [axis]).map((a) => (a + 4) % 4);
          const kept = input.shape.map((d, i) => (axes.includes(i) ? 1 : d));
          const spread = tf.broadcastTo(tf.reshape(w, kept), input.shape);
          const size = axes.reduce((n, a) => n * input.shape[a]!, 1);
          return [gs, gm, spread, tf.div(spread, size)];
        });
        expect(maxRelativeError(await dSum.data(), await expectSum.data()), `sum axis ${axis} keepDims ${keepDims}`).toBeLessThanOrEqual(
          1e-6,
        );
        expect(maxRelativeError(await dMean.data(), await expectMean.data()), `mean axis ${axis} keepDims ${keepDims}`).toBeLessThanOrEqual(
          1e-6,
        );
        tf.dispose([input, dSum, dMean, expectSum, expectMean]);
      }
    }
  });

  // The cpu backend keeps tensors in JS memory: there is no upload to count there.
  if (backend !== 'cpu')
    it('upload nothing the size of the input', async () => {
      const input = tf.randomNormal([8, 16, 16, 8]);
      const f = (t: tf.Tensor) => tf.add(tf.sum(tf.square(t)), tf.mean(t));
      tf.grad(f)(input).dispose(); // warm-up
      const counts = await new KernelCounter().measure(() => tf.grad(f)(input).dispose());
      // A few scalar constants at most; tfjs-core's own gradients upload `ones(x.shape)`: 64 KiB here.
      expect(counts.uploadBytes).toBeLessThanOrEqual(64);
      input.dispose();
    });
});
