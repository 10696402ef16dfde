import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { maxPool2 } from '../../src/ops/pooling.js';
import { describeEachBackend, useBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

async function poolGrad(shape: [number, number, number, number]): Promise<Float32Array> {
  const dx = tf.tidy(() => {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 1);
    const g = tf.randomNormal([shape[0], Math.floor(shape[1] / 2), Math.floor(shape[2] / 2), shape[3]], 0, 1, 'float32', 3);
    return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(maxPool2(t as tf.Tensor4D), g)))(x);
  });
  const values = (await dx.data()) as Float32Array;
  dx.dispose();
  return values;
}

describeEachBackend('maxPool2 gradient', (backend) => {
  for (const shape of [
    [1, 4, 4, 1],
    [2, 6, 6, 3],
    [2, 5, 7, 3],
  ] as Array<[number, number, number, number]>) {
    it(`matches the cpu backend's MaxPoolGrad, input ${shape.join('x')} (wasm's own drops multi-channel gradient)`, async () => {
      await useBackend('cpu');
      const expected = await poolGrad(shape);
      await useBackend(backend);
      const before = liveTensors();
      expect(maxRelativeError(await poolGrad(shape), expected)).toBe(0);
      expect(liveTensors()).toBe(before);
    });
  }

  if (backend === 'wasm') {
    it('routes a tied window to its first maximum, as PyTorch does', async () => {
      const x = tf.tensor4d([1, 1, 2, 0, 1, 0, 2, 2, 0, 3, 5, 1, 3, 3, 5, 5], [1, 4, 4, 1]);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(maxPool2(t as tf.Tensor4D)))(x);
      expect(Array.from(await dx.data())).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
      tf.dispose([x, dx]);
    });

    it('routes ties per channel: a second, constant channel sends each window to its top-left', async () => {
      const first = [1, 1, 2, 0, 1, 0, 2, 2, 0, 3, 5, 1, 3, 3, 5, 5];
      const x = tf.tensor4d(
        first.flatMap((v) => [v, 7]),
        [1, 4, 4, 2],
      );
      const dx = tf.grad((t: tf.Tensor) => tf.sum(maxPool2(t as tf.Tensor4D)))(x);
      const values = Array.from(await dx.data());
      expect(values.filter((_, i) => i % 2 === 0)).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
      expect(values.filter((_, i) => i % 2 === 1)).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
      tf.dispose([x, dx]);
    });
  }
});

it('MaxPool2 refuses an input smaller than one 2x2 window instead of returning an empty tensor (hostile review item 18)', () => {
  const pool = new lib.MaxPool2({ name: 'pool_1x1' });
  const x = tf.zeros([2, 1, 1, 3]);
  const before = liveTensors();
  expect(() => pool.apply(x)).toThrow(
    "MaxPool2 'pool_1x1' expects input 'inputs' at least 2x2 spatially (it max-pools 2x2 windows), got shape [2,1,1,3]",
  );
  expect(() => lib.maxPool2(x as tf.Tensor4D)).toThrow(
    "maxPool2 expects input 'inputs' at least 2x2 spatially (it max-pools 2x2 windows), got shape [2,1,1,3]",
  );
  expect(() => new lib.MaxPool2({ name: 'pool_sym' }).apply(tfl.input({ shape: [1, 5, 3] }))).toThrow(
    "MaxPool2 'pool_sym' expects input 'inputs' at least 2x2 spatially (it max-pools 2x2 windows), got shape [null,1,5,3]",
  );
  expect(liveTensors()).toBe(before);
  x.dispose();
});
