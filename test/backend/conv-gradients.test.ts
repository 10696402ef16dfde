import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { convTolerance, describeEachBackendAndWebGPUKernelSet, useBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';

interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  pad: 'same' | 'valid';
}

const CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, pad: 'same' },
  { x: [2, 7, 7, 5], k: [3, 3], cout: 6, pad: 'valid' },
  { x: [3, 6, 5, 4], k: [2, 2], cout: 3, pad: 'valid' },
  { x: [1, 9, 9, 2], k: [2, 2], cout: 5, pad: 'same' },
  { x: [2, 5, 5, 8], k: [1, 1], cout: 4, pad: 'same' },
  { x: [2, 7, 6, 3], k: [3, 2], cout: 4, pad: 'valid' }, // kh != kw: the spatial flip of the input gradient's filter
];

function seeded(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomUniform(shape, -1, 1, 'float32', seed).dataSync() as Float32Array);
}

/** Forward output and both gradients of sum(conv2d(x, w) * g) for a random g. */
function convAndGrads(c: ConvCase, data: { x: Float32Array; w: Float32Array; g: Float32Array }): tf.Tensor[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(data.x, c.x);
    const w = tf.tensor4d(data.w, [c.k[0], c.k[1], c.x[3], c.cout]);
    const y = tf.conv2d(x, w, 1, c.pad);
    const g = tf.tensor(data.g, y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad), g)))([
      x,
      w,
    ]);
    return [y, dx!, dw!];
  });
}

async function reference(c: ConvCase): Promise<{ data: { x: Float32Array; w: Float32Array; g: Float32Array }; expected: Float32Array[] }> {
  await useBackend('cpu');
  const x = seeded(c.x, 1);
  const w = seeded([c.k[0], c.k[1], c.x[3], c.cout], 2);
  const yShape = tf.tidy(
    () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros([c.k[0], c.k[1], c.x[3], c.cout]) as tf.Tensor4D, 1, c.pad).shape,
  );
  const g = seeded(yShape, 3);
  const outs = convAndGrads(c, { x, w, g });
  const expected = await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(outs);
  return { data: { x, w, g }, expected };
}

describeEachBackendAndWebGPUKernelSet('conv2d forward and gradients match the cpu backend', (backend) => {
  for (const c of CASES) {
    it(`x ${c.x.join('x')}, kernel ${c.k.join('x')}, ${c.cout} out, padding ${c.pad}`, async () => {
      const { data, expected } = await reference(c);
      await useBackend(backend);
      const before = liveTensors();
      const outs = convAndGrads(c, data);
      const names = ['forward', 'input gradient', 'filter gradient'];
      for (let i = 0; i < outs.length; i++) {
        const err = maxRelativeError(await outs[i]!.data(), expected[i]!);
        expect(err, `${names[i]} relative error`).toBeLessThanOrEqual(convTolerance(1e-4));
      }
      tf.dispose(outs);
      expect(liveTensors()).toBe(before);
    });
  }
});
