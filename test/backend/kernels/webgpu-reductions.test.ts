// The library's one-pass WebGPU reductions (src/backend/kernels/webgpu/ColumnSums.ts): batch statistics,
// the batch norm's gradient sums, the discrete action's std, and Sum/Mean over leading axes, against cpu.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { originalKernel } from '../../../src/backend/kernels/install.js';
import { channelGradSums, channelMoments, hasChannelGradSumsKernel, hasChannelMomentsKernel } from '../../../src/ops/moments.js';
import { simulateDiscreteAction, unbiasedStd } from '../../../src/ops/discrete-action.js';
import { BatchNorm } from '../../../src/layers/batch-norm.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { liveTensors } from '../../helpers/memory.js';

// The seed's batch-norm inputs at batch 2, odd sizes, fewer channels than a workgroup's 64, more rows than one chunk.
const SHAPES = [
  [2, 31, 31, 64],
  [2, 15, 15, 256],
  [2, 7, 7, 512],
  [3, 5, 5, 3],
  [4, 9, 9, 70],
  [64, 17, 17, 8],
  [2, 7],
];

function seeded(shape: number[], seed: number, offset: number): Float32Array {
  // Offset from zero: the shifted sums must not cancel when |mean| >> std.
  return seededUniform(
    shape.reduce((a, b) => a * b, 1),
    seed,
    offset - 3,
    offset + 3,
  );
}

/** Every reduction the kernels serve, on x and dy. */
function reductions(shape: number[], xv: Float32Array, dyv: Float32Array): tf.Tensor[] {
  return tf.tidy(() => {
    const x = tf.tensor(xv, shape);
    const dy = tf.tensor(dyv, shape);
    const lead = shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = channelMoments(x);
    const all = channelMoments(x, true);
    // The reference backend has no gradient-sums kernel: the same sums from tfjs ops there.
    const { dySum, dyCentredSum } = hasChannelGradSumsKernel()
      ? channelGradSums(dy, x, mean)
      : { dySum: tf.sum(dy, lead), dyCentredSum: tf.sum(tf.mul(dy, tf.sub(x, mean)), lead) };
    const stdGrad = tf.grad((t: tf.Tensor) => tf.mul(unbiasedStd(t), 3))(x);
    return [
      mean,
      variance,
      all.mean,
      all.variance,
      dySum,
      dyCentredSum,
      unbiasedStd(x),
      stdGrad,
      unbiasedStd(x, undefined, true),
      tf.sum(x),
      tf.mean(x),
      tf.sum(x, lead),
      tf.mean(x, lead),
      tf.sum(x, lead, true),
      tf.mean(x, undefined, true),
    ];
  });
}
const NAMES = [
  'mean',
  'variance',
  'overall mean',
  'overall variance',
  'Σdy',
  'Σdy(x-mean)',
  'std',
  'std gradient',
  'std keepDims',
  'sum',
  'mean',
  'sum over leading axes',
  'mean over leading axes',
  'sum keepDims',
  'mean keepDims',
];

describeOnBackend('webgpu', 'WebGPU one-pass reductions', () => {
  for (const shape of SHAPES) {
    it(`[${shape.join(',')}]: batch statistics, gradient sums, std and its gradient, Sum and Mean equal cpu (1e-4), bit-identical run to run`, async () => {
      const xv = seeded(shape, 1, 10);
      const dyv = seeded(shape, 2, 0);
      await useBackend('cpu');
      const ref = reductions(shape, xv, dyv);
      const expected = await Promise.all(ref.map((t) => t.data()));
      const shapes = ref.map((t) => t.shape);
      tf.dispose(ref);
      await useBackend('webgpu');
      expect(hasChannelMomentsKernel() && hasChannelGradSumsKernel()).toBe(true);
      const before = liveTensors();
      const runs = [];
      for (let r = 0; r < 2; r++) {
        const got = reductions(shape, xv, dyv);
        expect(got.map((t) => t.shape)).toEqual(shapes);
        runs.push(await Promise.all(got.map((t) => t.data() as Promise<Float32Array>)));
        tf.dispose(got);
      }
      for (let i = 0; i < NAMES.length; i++) {
        expect(maxRelativeError(runs[0]![i]!, expected[i] as Float32Array), NAMES[i]).toBeLessThanOrEqual(1e-4);
        expect(Buffer.from(runs[1]![i]!.buffer).equals(Buffer.from(runs[0]![i]!.buffer)), `${NAMES[i]} repeatable`).toBe(true);
      }
      // New device scalars (n - 1 and n / (n - 1) of this shape) are kept, not leaked.
      expect(liveTensors()).toBe(before);
    });
  }

  it('Sum and Mean leave other axes, integer tensors and float32 tensors in int32 buffers right', async () => {
    const xv = seeded([3, 4, 5], 3, 0);
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
        return [
          tf.sum(x, 1),
          tf.mean(x, [0, 2]),
          tf.sum(x, -1, true),
          tf.sum(ints),
          tf.sum(ints, 0),
          tf.mean(castInts),
          tf.sum(castInts, 0),
        ];
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

  it('unbiasedStd with keepDims leaves no tensor behind', async () => {
    await useBackend('webgpu');
    const x = tf.tensor(seeded([2, 3, 3, 4], 6, 0), [2, 3, 3, 4]);
    unbiasedStd(x).dispose(); // makes this shape's device scalars first
    const before = liveTensors();
    const std = unbiasedStd(x, undefined, true);
    expect(std.shape).toEqual([1, 1, 1, 1]);
    std.dispose();
    expect(liveTensors()).toBe(before);
    x.dispose();
  });

  it('propagates NaN as torch does: a NaN anywhere makes the statistics that include it NaN', async () => {
    await useBackend('webgpu');
    const values = seeded([2, 3, 3, 4], 5, 1);
    values[7] = Number.NaN; // channel 3
    const x = tf.tensor(values, [2, 3, 3, 4]);
    const { mean, variance } = channelMoments(x);
    const all = channelMoments(x, true);
    const std = unbiasedStd(x);
    const sum = tf.sum(x, [0, 1, 2]);
    const [m, v, am, av, s, sums] = await Promise.all([mean, variance, all.mean, all.variance, std, sum].map((t) => t.data()));
    expect([...m!].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect([...v!].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect([...sums!].map(Number.isNaN)).toEqual([false, false, false, true]);
    expect([am![0], av![0], s![0]].every(Number.isNaN)).toBe(true);
    tf.dispose([x, mean, variance, all.mean, all.variance, std, sum]);
  });

  it("matches tfjs's own Sum kernel", async () => {
    await useBackend('webgpu');
    const x = tf.tensor(seeded([2, 15, 15, 64], 4, 1), [2, 15, 15, 64]);
    const attrs = { axis: [0, 1, 2], keepDims: false };
    const ours = tf.engine().runKernel('Sum', { x }, attrs) as tf.Tensor;
    const tfjs = tf
      .engine()
      .makeTensorFromTensorInfo(
        originalKernel('Sum', 'webgpu').kernelFunc({ inputs: { x }, attrs, backend: tf.backend() }) as tf.TensorInfo,
      );
    expect(maxRelativeError(await ours.data(), await tfjs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, ours, tfjs]);
  });
});

describeOnBackend('webgpu', 'WebGPU reductions past one dispatch dimension (65,535 workgroups)', () => {
  it('sums over leading axes with more channels than one dimension of finishing workgroups, and over a flat tensor of 16.8M', async () => {
    // [2, 70000]: 70,000 finishing workgroups; a flat 16.8M: 262k column groups as its own last axis.
    const wide = seeded([2, 70_000], 7, 1);
    const flatLength = 65_536 * 256 + 1_000;
    const flat = seeded([flatLength], 8, 2);
    const cases = () =>
      tf.tidy(() => {
        const w = tf.tensor(wide, [2, 70_000]);
        const f = tf.tensor(flat, [flatLength]);
        const moments = channelMoments(f, true);
        return [tf.sum(w, 0), channelMoments(w).mean, channelMoments(w).variance, moments.mean, moments.variance, unbiasedStd(f)];
      });
    await useBackend('cpu');
    const ref = cases();
    const expected = await Promise.all(ref.map((t) => t.data()));
    tf.dispose(ref);
    await useBackend('webgpu');
    const before = liveTensors();
    const got = cases();
    const values = await Promise.all(got.map((t) => t.data()));
    tf.dispose(got);
    const names = ['sum over axis 0', 'mean per column', 'variance per column', 'flat mean', 'flat variance', 'flat std'];
    values.forEach((v, i) => expect(maxRelativeError(v, expected[i]!), names[i]).toBeLessThanOrEqual(1e-4));
    expect(liveTensors()).toBe(before);
  });

  it("the batch norm (with its GELU) and the discrete action over 29.5M values, the seed's flip-TTA eval at batch 2048", async () => {
    // 2048 x 15 x 15 x 64 = 29,491,200 values: 115,200 workgroups of 256, which tfjs spreads over two dimensions.
    const shape = [2048, 15, 15, 64];
    const size = shape.reduce((a, b) => a * b, 1);
    const xv = seeded([size], 9, 0);
    const noise = seeded([size], 10, 0);
    const cases = () =>
      tf.tidy(() => {
        const x = tf.tensor(xv, shape);
        const norm = new BatchNorm({ name: 'wide_norm' });
        norm.build(shape);
        const trained = norm.callWithGelu(x, { training: true });
        const inference = norm.callWithGelu(x, {});
        const action = simulateDiscreteAction(x, { noise: tf.tensor(noise, shape) });
        return [trained, inference, action];
      });
    await useBackend('cpu');
    const ref = cases();
    const expected = await Promise.all(ref.map((t) => t.data()));
    tf.dispose(ref);
    await useBackend('webgpu');
    const got = cases();
    const values = await Promise.all(got.map((t) => t.data()));
    tf.dispose(got);
    const names = ['training batch norm + GELU', 'inference batch norm + GELU', 'discrete action'];
    values.forEach((v, i) => expect(maxRelativeError(v, expected[i]!), names[i]).toBeLessThanOrEqual(1e-4));
  });
});
