// simulateDiscreteAction through the fused kernels where the backend has them (WebGPU with the library's
// kernels: the moments kernel and DataflowAddScaledNoise, DataflowAddScaledNoiseGrad backward), against the
// unfused ops on cpu, with explicit noise: the value, the gradient x gets through the std, inference. Elsewhere
// (cpu, wasm, tfjs's WebGPU kernels) the op must be the unfused ops bit for bit. No leaks.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { hasAddScaledNoiseKernel, simulateDiscreteAction, unbiasedStd } from '../../src/ops/discrete-action.js';
import { deviceScalar } from '../../src/ops/constants.js';
import { stopGradient } from '../../src/ops/stop-gradient.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet, useBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import { kernelsRun } from '../helpers/kernels.js';

// The seed's discrete-action inputs at batch 2 (base depth 16 after each group) and odd ones; x offset from 0 so
// that the moments' shift matters.
const CASES: Array<{ shape: number[]; noiseStd: number; lo: number; hi: number }> = [
  { shape: [2, 16, 16, 16], noiseStd: 1, lo: 1, hi: 4 },
  { shape: [2, 8, 8, 64], noiseStd: 1, lo: -1, hi: 1 },
  { shape: [2, 4, 4, 128], noiseStd: 0.5, lo: -3, hi: 2 },
  { shape: [3, 5, 7], noiseStd: 2.5, lo: 0, hi: 1 },
];

interface Result {
  y: Float32Array;
  dx: Float32Array;
  eval: Float32Array;
}

/** The unfused ops, as simulateDiscreteAction runs them without the kernels. */
function unfused(x: tf.Tensor, noise: tf.Tensor, noiseStd: number, detachStd: boolean): tf.Tensor {
  return tf.tidy(() => {
    const std = detachStd ? stopGradient(unbiasedStd(x)) : unbiasedStd(x);
    return tf.add(stopGradient(x), tf.mul(tf.mul(std, deviceScalar(noiseStd)), noise));
  });
}

async function step(c: (typeof CASES)[number], detachStd: boolean, reference: boolean): Promise<Result> {
  const size = c.shape.reduce((a, b) => a * b, 1);
  const x = tf.tidy(() => tf.variable(tf.tensor(seededUniform(size, 11, c.lo, c.hi), c.shape)));
  const noise = tf.tensor(seededUniform(size, 12, -2, 2), c.shape);
  const w = tf.tensor(seededUniform(size, 13), c.shape);
  const forward = () =>
    reference ? unfused(x, noise, c.noiseStd, detachStd) : simulateDiscreteAction(x, { noise, noiseStd: c.noiseStd, detachStd });
  let y: tf.Tensor | undefined;
  // With detachStd nothing reaches x: the gradient is of an extra term, so that tfjs has a path to differentiate.
  const { value, grads } = tf.variableGrads(() => {
    const out = forward();
    y = tf.keep(tf.clone(out));
    return tf.add(tf.sum(tf.mul(out, w)), tf.mul(tf.sum(x), deviceScalar(detachStd ? 1e-3 : 0)));
  }, [x]);
  const evalOut = forward();
  const read = async (t: tf.Tensor) => (await t.data()) as Float32Array;
  const result = { y: await read(y!), dx: await read(grads[x.name]!), eval: await read(evalOut) };
  tf.dispose([x, noise, w, y!, value, evalOut, ...Object.values(grads)]);
  return result;
}

describeEachBackendAndWebGPUKernelSet('simulateDiscreteAction, fused on WebGPU', (backend) => {
  for (const c of CASES) {
    for (const detachStd of [false, true]) {
      it(`[${c.shape}], noiseStd ${c.noiseStd}${detachStd ? ', detachStd' : ''}: within 1e-5 of cpu's unfused ops (value, gradient through the std, inference); the unfused ops bit for bit where no kernel runs`, async () => {
        await useBackend('cpu');
        const expected = await step(c, detachStd, true);
        await useBackend(backend);
        const reference = await step(c, detachStd, true);
        const before = liveTensors();
        const actual = await step(c, detachStd, false);
        expect(liveTensors()).toBe(before);
        for (const key of Object.keys(expected) as Array<keyof Result>) {
          expect(maxRelativeError(actual[key], expected[key]), key).toBeLessThanOrEqual(1e-5);
          if (!hasAddScaledNoiseKernel())
            expect(Buffer.from(actual[key].buffer).equals(Buffer.from(reference[key].buffer)), `${key}: the unfused ops`).toBe(true);
        }
        // The gradient does reach x through the std (the seed keeps it), and is not the detached one.
        if (!detachStd) expect(Math.max(...actual.dx.map(Math.abs))).toBeGreaterThan(1e-4);
      });
    }
  }

  it('reruns bit for bit', async () => {
    const a = await step(CASES[0]!, false, false);
    const b = await step(CASES[0]!, false, false);
    for (const key of Object.keys(a) as Array<keyof Result>)
      expect(Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)), key).toBe(true);
  });

  it(`runs the fused kernels exactly where the backend has them (${backend})`, async () => {
    const x = tf.tidy(() => tf.variable(tf.tensor(seededUniform(2 * 5 * 5 * 8, 9), [2, 5, 5, 8])));
    const counts = await kernelsRun(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(simulateDiscreteAction(x, { seed: 3 })), [x]);
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose(x);
    const fused = hasAddScaledNoiseKernel();
    expect(fused).toBe(backend === 'webgpu' && tf.getKernel('DataflowChannelMoments', 'webgpu') != null);
    expect(counts.get('DataflowAddScaledNoise') ?? 0).toBe(fused ? 1 : 0);
    expect(counts.get('DataflowAddScaledNoiseGrad') ?? 0).toBe(fused ? 1 : 0);
    expect((counts.get('Sqrt') ?? 0) > 0).toBe(!fused);
    // The fused kernel reads the moments kernel's [mean, variance] as they are: nothing unpacks them.
    if (fused) expect(counts.get('Unpack') ?? 0).toBe(0);
  });
});
