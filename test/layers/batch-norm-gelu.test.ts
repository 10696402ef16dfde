// BatchNorm through the fused kernels where the backend has them (WebGPU with the library's kernels): call and
// callWithGelu, weight frozen and trainable, against the unfused ops (BatchNorm.call, gelu(BatchNorm.call(x))) on
// cpu: forward, the gradients of x, bias and weight, the running statistics, inference and its gradients;
// bit-identical reruns; the kernels each step runs; no leaks.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { installOverrides, uninstallOverrides } from '../../src/backend/kernels/install.js';
import { BATCH_NORM_APPLY, BATCH_NORM_COEFFICIENTS, BATCH_NORM_GRAD, BATCH_NORM_TRAIN_STATS } from '../../src/backend/kernels/names.js';
import { WEBGPU_TRAINING_KERNELS } from '../../src/backend/kernels/webgpu/index.js';
import { BatchNorm } from '../../src/layers/batch-norm.js';
import {
  batchNormApply,
  batchNormCoefficients,
  batchNormGrad,
  batchNormTrainStats,
  hasBatchNormKernels,
} from '../../src/ops/batch-norm.js';
import { gelu } from '../../src/ops/gelu.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet, useBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import { disposeWeights } from './fixtures.js';

// The seed's norm inputs at batch 2 (after each group's pool and second conv, base depth 64) and odd ones.
const SHAPES: Array<[number, number, number, number]> = [
  [2, 15, 15, 64],
  [2, 7, 7, 256],
  [2, 3, 3, 512],
  [3, 5, 5, 3],
  [4, 9, 9, 70],
];

const FUSED_KERNELS = [BATCH_NORM_TRAIN_STATS, BATCH_NORM_COEFFICIENTS, BATCH_NORM_APPLY, BATCH_NORM_GRAD];

/**
 * `fn` with the fused batch-norm kernels unregistered (where the backend has them), so that BatchNorm runs its
 * unfused ops on the library's other kernels, as before the fused ones: how close float32 gets to cpu here.
 */
async function withUnfusedOps<T>(fn: () => Promise<T>): Promise<T> {
  if (!hasBatchNormKernels()) return fn();
  uninstallOverrides('webgpu', FUSED_KERNELS);
  try {
    expect(hasBatchNormKernels()).toBe(false);
    return await fn();
  } finally {
    const configs = WEBGPU_TRAINING_KERNELS.filter((k) => FUSED_KERNELS.includes(k.kernelName));
    installOverrides('webgpu', Object.fromEntries(configs.map((k) => [k.kernelName, k.kernelFunc])));
  }
}

interface Variant {
  gelu: boolean;
  weightTrainable: boolean;
}

const VARIANTS: Variant[] = [
  { gelu: true, weightTrainable: true },
  { gelu: true, weightTrainable: false },
  { gelu: false, weightTrainable: true },
  { gelu: false, weightTrainable: false },
];

const variantName = (v: Variant) => `${v.gelu ? 'callWithGelu' : 'call'}, weight ${v.weightTrainable ? 'trainable' : 'frozen'}`;

interface Result {
  y: Float32Array;
  dx: Float32Array;
  dbias: Float32Array;
  dweight: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  eval: Float32Array;
  evalDx: Float32Array;
  evalDbias: Float32Array;
  evalDweight: Float32Array;
}

/**
 * One training step's values and gradients, then inference and its gradients, through BatchNorm: `call`, or with
 * `gelu` callWithGelu (`unfusedGelu`: gelu(BatchNorm.call(x)), as the unfused ops compute it).
 */
async function step(shape: [number, number, number, number], v: Variant, unfusedGelu = false): Promise<Result> {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  const bn = new BatchNorm({ weightTrainable: v.weightTrainable });
  bn.build(shape);
  tf.tidy(() => {
    bn.weight.write(tf.tensor1d(seededUniform(c, 5, 0.5, 1.5)));
    bn.bias.write(tf.tensor1d(seededUniform(c, 6, -0.5, 0.5)));
  });
  const x0 = tf.tensor4d(seededUniform(size, 7, 1, 4), shape);
  const x = tf.variable(x0);
  x0.dispose();
  const g = tf.tensor4d(seededUniform(size, 8), shape);
  const forward = (input: tf.Tensor, training: boolean) =>
    !v.gelu
      ? bn.call(input, { training })
      : unfusedGelu
        ? tf.tidy(() => gelu(bn.call(input, { training })))
        : bn.callWithGelu(input, { training });
  let y: tf.Tensor | undefined;
  const vars = [x, bn.bias.read() as tf.Variable, bn.weight.read() as tf.Variable];
  // A frozen weight is no input of the training step's gradient; inference is differentiable in it either way.
  const { value, grads } = tf.variableGrads(
    () => {
      const out = forward(x, true);
      y = tf.keep(tf.clone(out));
      return tf.sum(tf.mul(out, g));
    },
    v.weightTrainable ? vars : vars.slice(0, 2),
  );
  // A second training call, so that the running statistics average two batches.
  tf.tidy(() => {
    forward(tf.mul(x, 0.5), true);
  });
  const evalOut = forward(x, false);
  const evalGrads = tf.variableGrads(() => tf.sum(tf.mul(forward(x, false), g)), vars);
  const read = async (t: tf.Tensor | undefined) => (t ? ((await t.data()) as Float32Array) : new Float32Array());
  const result: Result = {
    y: await read(y!),
    dx: await read(grads[x.name]!),
    dbias: await read(grads[vars[1]!.name]!),
    dweight: await read(grads[vars[2]!.name]),
    runningMean: await read(bn.runningMean.read()),
    runningVar: await read(bn.runningVar.read()),
    eval: await read(evalOut),
    evalDx: await read(evalGrads.grads[x.name]!),
    evalDbias: await read(evalGrads.grads[vars[1]!.name]!),
    evalDweight: await read(evalGrads.grads[vars[2]!.name]!),
  };
  expect(result.dweight.length, 'a training weight gradient').toBe(v.weightTrainable ? c : 0);
  tf.dispose([value, y!, evalOut, x, g, ...Object.values(grads), evalGrads.value, ...Object.values(evalGrads.grads)]);
  disposeWeights(bn);
  return result;
}

describeEachBackendAndWebGPUKernelSet('BatchNorm through the fused kernels (with and without GELU)', (backend) => {
  for (const v of VARIANTS) {
    for (const shape of SHAPES) {
      it(`${variantName(v)}, ${shape.join('x')}: within 1e-5 of the unfused ops on cpu, or as close as they get here (values, gradients, running stats, inference and its gradients)`, async () => {
        await useBackend('cpu');
        const expected = await step(shape, v, true);
        await useBackend(backend);
        const unfused = await withUnfusedOps(() => step(shape, v, true));
        const before = liveTensors();
        const actual = await step(shape, v);
        expect(liveTensors()).toBe(before);
        for (const key of Object.keys(expected) as Array<keyof Result>) {
          // The unfused ops themselves differ from cpu by up to ~2e-5 on wasm and lavapipe (float32 exp/erf; dx
          // cancels), so the fused path must be within 1e-5 or no further from cpu than they are.
          const bound = Math.max(1e-5, 1.5 * maxRelativeError(unfused[key], expected[key]));
          expect(maxRelativeError(actual[key], expected[key]), key).toBeLessThanOrEqual(bound);
          if (!hasBatchNormKernels())
            expect(Buffer.from(actual[key].buffer).equals(Buffer.from(unfused[key].buffer)), `${key}: the unfused ops`).toBe(true);
        }
      });
    }

    it(`${variantName(v)}: reruns bit for bit`, async () => {
      const a = await step(SHAPES[0]!, v);
      const b = await step(SHAPES[0]!, v);
      for (const key of Object.keys(a) as Array<keyof Result>)
        expect(Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)), key).toBe(true);
    });
  }

  it(`runs the fused kernels exactly where the backend has them (${backend}): two forward, one backward`, async () => {
    const fused = hasBatchNormKernels();
    const x = tf.tensor4d(seededUniform(2 * 5 * 5 * 8, 9), [2, 5, 5, 8]);
    const dy = tf.tensor4d(seededUniform(2 * 5 * 5 * 8, 10), [2, 5, 5, 8]);
    const bn = new BatchNorm({ weightTrainable: true });
    bn.build(x.shape);
    const counter = new KernelCounter();
    for (const withGelu of [true, false]) {
      const apply = (input: tf.Tensor, training: boolean) =>
        withGelu ? bn.callWithGelu(input, { training }) : bn.call(input, { training });
      const train = await counter.measure(() => tf.dispose(apply(x, true)));
      const infer = await counter.measure(() => tf.dispose(apply(x, false)));
      // The backward pass is the norm's gradient kernel alone (the forward adds the two saved tensors' Identity).
      const grads = await counter.measure(() => tf.dispose(tf.grads((input: tf.Tensor) => apply(input, true))([x], dy)));
      if (fused) {
        expect(train.byName, `training, gelu ${withGelu}`).toEqual({ [BATCH_NORM_TRAIN_STATS]: 1, [BATCH_NORM_APPLY]: 1 });
        expect(infer.byName, `inference, gelu ${withGelu}`).toEqual({ [BATCH_NORM_COEFFICIENTS]: 1, [BATCH_NORM_APPLY]: 1 });
        expect(grads.backwardByName, `backward, gelu ${withGelu}`).toEqual({ [BATCH_NORM_GRAD]: 1 });
      } else {
        expect(Object.keys(train.byName).some((name) => name.startsWith('DataflowBatchNorm'))).toBe(false);
        expect(train.byName['Erf'] ?? 0).toBe(withGelu ? 1 : 0);
        expect(grads.backwardKernels).toBeGreaterThan(5);
      }
    }
    tf.dispose([x, dy]);
    disposeWeights(bn);
  });

  it(`the fused ops refuse bad inputs, naming them (${backend})`, () => {
    const before = liveTensors();
    const x = tf.zeros([2, 3, 3, 4]);
    const c4 = tf.ones([4]);
    const c5 = tf.ones([5]);
    const coefficients = tf.zeros([4, 4]);
    const wide = tf.zeros([4, 5]);
    const dy5 = tf.zeros([2, 3, 3, 5]);
    const grad = { gelu: true, batchStats: true, weightGrad: false };
    if (!hasBatchNormKernels()) {
      expect(() => batchNormApply(x, coefficients, true)).toThrow(/batchNormApply: the '\w+' backend has no fused batch-norm kernels/);
    } else {
      expect(() => batchNormApply(x, wide, true)).toThrow("batchNormApply: 'coefficients' must be float32 [4,4], got float32 [4,5]");
      expect(() => batchNormApply(c4, coefficients, false)).toThrow(/batchNormApply: x must be a float32 tensor of rank >= 2/);
      expect(() => batchNormGrad(x, dy5, coefficients, grad)).toThrow(
        "batchNormGrad: 'dy' must be float32 [2,3,3,4], got float32 [2,3,3,5]",
      );
      expect(() => batchNormTrainStats(x, c5, c4, c4, c4, { eps: 1e-12, keep: 0.6, takeMean: 0.4, takeVar: 0.4 })).toThrow(
        "batchNormTrainStats: 'weight' must be float32 [4], got float32 [5]",
      );
      expect(() => batchNormCoefficients(c4, c4, c4, c5, 1e-12)).toThrow(
        "batchNormCoefficients: 'runningVar' must be float32 [4], got float32 [5]",
      );
    }
    tf.dispose([x, c4, c5, coefficients, wide, dy5]);
    expect(liveTensors()).toBe(before);
  });

  it(`propagates a NaN in x to the statistics and the outputs (${backend})`, async () => {
    const values = seededUniform(2 * 3 * 3 * 4, 11);
    values[5] = Number.NaN; // channel 1
    const x = tf.tensor4d(values, [2, 3, 3, 4]);
    const bn = new BatchNorm();
    bn.build(x.shape);
    const y = bn.callWithGelu(x, { training: true });
    const out = await y.data();
    const mean = await bn.runningMean.read().data();
    const variance = await bn.runningVar.read().data();
    for (let c = 0; c < 4; c++) {
      expect(Number.isNaN(mean[c]!), `running mean ${c}`).toBe(c === 1);
      expect(Number.isNaN(variance[c]!), `running var ${c}`).toBe(c === 1);
      expect(Number.isNaN(out[c]!), `output ${c}`).toBe(c === 1);
    }
    tf.dispose([x, y]);
    disposeWeights(bn);
  });
});
