// The library's Mean on WebGPU (src/backend/kernels/webgpu/Mean.ts, the column sums of column_sums.ts divided by the
// count): over every axis and over every axis but the last, against cpu and against tfjs-backend-webgpu's own Mean;
// what it does not handle (other axes) goes to tfjs's kernel.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { meanConfig } from '../../../src/backend/kernels/webgpu/Mean.js';
import { maxRelativeError } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { COLUMN_SUM_SHAPES, expectRegistered, expectWebGPUMatchesCpu, offsetUniform, runTfjsKernel } from '../../helpers/webgpu-kernels.js';

const leadingAxes = (shape: number[]) => shape.slice(0, -1).map((_, i) => i);

describeOnBackend('webgpu', 'WebGPU Mean', () => {
  it('is the registered Mean once initBackend has run', () => expectRegistered(meanConfig));

  for (const shape of COLUMN_SUM_SHAPES) {
    it(`[${shape.join(',')}]: over every axis and over the leading axes (keepDims too) equals cpu (1e-4) and tfjs's Mean (1e-5), bit-identical run to run`, async () => {
      const xv = offsetUniform(shape, 1, 10);
      const lead = leadingAxes(shape);
      await expectWebGPUMatchesCpu(
        () =>
          tf.tidy(() => [
            tf.mean(tf.tensor(xv, shape)),
            tf.mean(tf.tensor(xv, shape), lead),
            tf.mean(tf.tensor(xv, shape), undefined, true),
          ]),
        ['mean', 'mean over leading axes', 'mean keepDims'],
        1e-4,
      );
      const x = tf.tensor(xv, shape);
      for (const attrs of [
        { axis: lead, keepDims: false },
        { axis: [...shape.keys()], keepDims: false },
      ]) {
        const ours = tf.engine().runKernel('Mean', { x }, attrs) as tf.Tensor;
        const tfjs = runTfjsKernel('Mean', { x }, attrs);
        expect(ours.shape).toEqual(tfjs.shape);
        expect(maxRelativeError(await ours.data(), await tfjs.data()), `axes [${attrs.axis}]`).toBeLessThanOrEqual(1e-5);
        tf.dispose([ours, tfjs]);
      }
      x.dispose();
    });
  }

  it('leaves other axes and float32 tensors in int32 buffers right', async () => {
    const xv = offsetUniform([3, 4, 5], 3, 0);
    const cases = () =>
      tf.tidy(() => {
        const x = tf.tensor(xv, [3, 4, 5]);
        const ints = tf.tensor(
          [
            [1, 2],
            [3, 4],
            [5, 7],
          ],
          [3, 2],
          'int32',
        );
        const castInts = tf.cast(ints, 'float32'); // float32 whose buffer is the int32 one
        return [tf.mean(x, [0, 2]), tf.mean(castInts)];
      });
    await useBackend('cpu');
    const ref = cases();
    const expected = await Promise.all(ref.map((t) => t.data()));
    const meta = ref.map((t) => [t.dtype, t.shape]);
    tf.dispose(ref);
    await useBackend('webgpu');
    const got = cases();
    expect(got.map((t) => [t.dtype, t.shape])).toEqual(meta);
    const values = await Promise.all(got.map((t) => t.data()));
    values.forEach((v, i) => expect(maxRelativeError(v, expected[i]!), `case ${i}`).toBeLessThanOrEqual(1e-5));
    tf.dispose(got);
  });

  it('propagates NaN as torch does: a NaN makes the means that include it NaN', async () => {
    await useBackend('webgpu');
    const values = offsetUniform([2, 3, 3, 4], 5, 1);
    values[7] = Number.NaN; // channel 3
    const x = tf.tensor(values, [2, 3, 3, 4]);
    const mean = tf.mean(x, [0, 1, 2]);
    const all = tf.mean(x);
    expect([...(await mean.data())].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect(Number.isNaN((await all.data())[0]!)).toBe(true);
    tf.dispose([x, mean, all]);
  });
});
