// BatchNorm.callWithGelu: the seed's norm-then-GELU through the fused kernels where the backend has them
// (WebGPU with the library's kernels), against the unfused ops, gelu(BatchNorm.call(x)), on cpu: forward,
// the gradients of x, bias and weight, the running statistics, inference; bit-identical reruns; no leaks.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { BatchNorm } from '../../src/layers/batch-norm.js';
import { gelu } from '../../src/ops/gelu.js';
import { hasBatchNormGeluKernels } from '../../src/ops/batch-norm-gelu.js';
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

/** One training step's values and gradients, then inference, through `fused` (callWithGelu) or the unfused ops. */
async function step(shape: [number, number, number, number], fused: boolean): Promise<Result> {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  const bn = new BatchNorm({ weightTrainable: true });
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
    fused ? bn.callWithGelu(input, { training }) : tf.tidy(() => gelu(bn.call(input, { training })));
  let y: tf.Tensor | undefined;
  const vars = [x, bn.bias.read() as tf.Variable, bn.weight.read() as tf.Variable];
  const { value, grads } = tf.variableGrads(() => {
    const out = forward(x, true);
    y = tf.keep(tf.clone(out));
    return tf.sum(tf.mul(out, g));
  }, vars);
  const evalOut = forward(x, false);
  // Inference is differentiable too (in x, bias and weight), as the unfused ops are.
  const evalGrads = tf.variableGrads(() => tf.sum(tf.mul(forward(x, false), g)), vars);
  const read = async (t: tf.Tensor) => (await t.data()) as Float32Array;
  const result: Result = {
    y: await read(y!),
    dx: await read(grads[x.name]!),
    dbias: await read(grads[vars[1]!.name]!),
    dweight: await read(grads[vars[2]!.name]!),
    runningMean: await read(bn.runningMean.read()),
    runningVar: await read(bn.runningVar.read()),
    eval: await read(evalOut),
    evalDx: await read(evalGrads.grads[x.name]!),
    evalDbias: await read(evalGrads.grads[vars[1]!.name]!),
    evalDweight: await read(evalGrads.grads[vars[2]!.name]!),
  };
  tf.dispose([value, y!, evalOut, x, g, ...Object.values(grads), evalGrads.value, ...Object.values(evalGrads.grads)]);
  disposeWeights(bn);
  return result;
}

describeEachBackendAndWebGPUKernelSet('BatchNorm.callWithGelu (fused batch norm + GELU)', (backend) => {
  for (const shape of SHAPES) {
    it(`${shape.join('x')}: equals gelu(BatchNorm) within 1e-5 of cpu, or as close as the unfused ops get here (values, gradients, running stats, inference and its gradients)`, async () => {
      await useBackend('cpu');
      const expected = await step(shape, false);
      await useBackend(backend);
      const unfused = await step(shape, false);
      const before = liveTensors();
      const actual = await step(shape, true);
      expect(liveTensors()).toBe(before);
      for (const key of Object.keys(expected) as Array<keyof Result>) {
        // The unfused ops themselves differ from cpu by up to ~2e-5 on wasm and lavapipe (float32 exp/erf; dx
        // cancels), so the fused path must be within 1e-5 or no further from cpu than they are.
        const bound = Math.max(1e-5, 1.5 * maxRelativeError(unfused[key], expected[key]));
        expect(maxRelativeError(actual[key], expected[key]), key).toBeLessThanOrEqual(bound);
        if (!hasBatchNormGeluKernels())
          expect(Buffer.from(actual[key].buffer).equals(Buffer.from(unfused[key].buffer)), `${key}: the unfused ops`).toBe(true);
      }
    });
  }

  it('reruns bit for bit', async () => {
    const a = await step(SHAPES[0]!, true);
    const b = await step(SHAPES[0]!, true);
    for (const key of Object.keys(a) as Array<keyof Result>)
      expect(Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)), key).toBe(true);
  });

  it(`runs the fused kernels exactly where the backend has them (${backend})`, () => {
    const counts = new Map<string, number>();
    const x = tf.tensor4d(seededUniform(2 * 5 * 5 * 8, 9), [2, 5, 5, 8]);
    const bn = new BatchNorm();
    bn.build(x.shape);
    const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
    const run = engine.runKernel.bind(engine);
    engine.runKernel = (name: string, ...rest: unknown[]) => {
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return run(name, ...rest);
    };
    try {
      tf.dispose(bn.callWithGelu(x, { training: true }));
    } finally {
      engine.runKernel = run;
    }
    tf.dispose(x);
    disposeWeights(bn);
    expect(counts.get('DataflowScaleShiftGelu') ?? 0).toBe(hasBatchNormGeluKernels() ? 1 : 0);
    expect(counts.get('Erf') ?? 0).toBe(hasBatchNormGeluKernels() ? 0 : 1);
  });
});
