// simulateDiscreteAction through the fused kernels where the backend has them (WebGPU with the library's
// kernels: the moments kernel and DataflowAddScaledNoise, DataflowAddScaledNoiseGrad backward) and through the unfused
// ops, on every backend (cpu included) against a float64 computation in JavaScript within a bound derived from f32
// (f32Bound), with explicit noise: the value, the gradient x gets through the std, inference. Elsewhere (cpu, wasm,
// tfjs's WebGPU kernels) the op must be the unfused ops bit for bit. No leaks.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { hasAddScaledNoiseKernel, simulateDiscreteAction, unbiasedStd } from '../../src/ops/discrete-action.js';
import { deviceScalar } from '../../src/ops/constants.js';
import { stopGradient } from '../../src/ops/stop-gradient.js';
import { seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { probabilisticGamma } from '../helpers/f16.js';
import { U32 } from '../helpers/f64.js';
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

type Reference = Record<keyof Result, Float64Array>;

/** Rounding-error sources moved by their f32 bounds (`f32Bound`): the mean, the variance (relative), Σ w·noise. */
interface Perturbation {
  mean?: number;
  variance?: number;
  noiseSum?: number;
}

/**
 * `step` in float64: y = x + noiseStd · std(x) · noise with the whole tensor's unbiased std, and the gradient of
 * Σ y·w through the std alone (x's own path is cut): noiseStd · Σ(w·noise) · (x - mean) / ((n - 1) std); with
 * detachStd, the extra term's 1e-3. Inference repeats the forward.
 */
function reference(c: (typeof CASES)[number], detachStd: boolean, p: Perturbation = {}): Reference {
  const size = c.shape.reduce((a, b) => a * b, 1);
  const [x, noise, w] = [seededUniform(size, 11, c.lo, c.hi), seededUniform(size, 12, -2, 2), seededUniform(size, 13)];
  let mean = x.reduce((t, v) => t + v, 0) / size;
  const variance = (x.reduce((t, v) => t + (v - mean) ** 2, 0) / (size - 1)) * (1 + (p.variance ?? 0));
  mean += p.mean ?? 0;
  const std = Math.sqrt(variance);
  const noiseSum = w.reduce((t, v, i) => t + v * noise[i]!, 0) + (p.noiseSum ?? 0);
  const y = Float64Array.from(x, (v, i) => v + c.noiseStd * std * noise[i]!);
  const dx = detachStd
    ? new Float64Array(size).fill(1e-3)
    : Float64Array.from(x, (v) => (c.noiseStd * noiseSum * (v - mean)) / ((size - 1) * std));
  return { y, dx, eval: Float64Array.from(y) };
}

/**
 * The error a correct float32 computation may show against `reference`, per element, derived from f32's unit
 * roundoff u = 2^-24 and the data alone (never from a backend's results, so the moments kernel the fused and unfused
 * paths share cannot widen it). The whole-tensor sums (the mean, the variance about a shift taken from the tensor,
 * Σ w·noise) are within γ = exp(8√n u + n u²) - 1 of exact relative to their terms' magnitudes (Higham and Mary,
 * SIAM J. Sci. Comput. 41(5), 2019, Thm 3.1: under 2n e^-32 to fail); a shifted variance's relative error is at most
 * γ(1 + d²), d = max|x - mean| / σ. Each source is moved by its bound in `reference` and the outputs' changes added
 * (first order, worst signs); then each output's own operations round: at most 8 of at most 2 ulps each (the sqrt
 * included) on terms of the output's magnitude, 16u.
 */
function f32Bound(c: (typeof CASES)[number], detachStd: boolean): Reference {
  const size = c.shape.reduce((a, b) => a * b, 1);
  const gamma = probabilisticGamma(size);
  const [x, noise, w] = [seededUniform(size, 11, c.lo, c.hi), seededUniform(size, 12, -2, 2), seededUniform(size, 13)];
  const mean = x.reduce((t, v) => t + v, 0) / size;
  const sigma = Math.sqrt(x.reduce((t, v) => t + (v - mean) ** 2, 0) / size);
  const d = x.reduce((t, v) => Math.max(t, Math.abs(v - mean)), 0) / sigma;
  const meanAbs = x.reduce((t, v) => t + Math.abs(v), 0) / size;
  const base = reference(c, detachStd);
  const std = Math.sqrt(x.reduce((t, v) => t + (v - mean) ** 2, 0) / (size - 1));
  const bound: Reference = {
    y: Float64Array.from(x, (v, i) => 16 * U32 * (Math.abs(v) + Math.abs(c.noiseStd * std * noise[i]!))),
    dx: base.dx.map((v) => 16 * U32 * Math.abs(v)),
    eval: new Float64Array(0),
  };
  const sources: Perturbation[] = [
    { mean: gamma * meanAbs },
    { variance: gamma * (1 + d * d) },
    { noiseSum: gamma * w.reduce((t, v, i) => t + Math.abs(v * noise[i]!), 0) },
  ];
  for (const source of sources) {
    const moved = reference(c, detachStd, source);
    for (const k of ['y', 'dx'] as const) bound[k].forEach((_, i) => (bound[k][i]! += Math.abs(moved[k][i]! - base[k][i]!)));
  }
  bound.eval = Float64Array.from(bound.y);
  return bound;
}

/** The largest |actual - exact| / bound (at most 1 within the bound); Infinity for a non-finite value. */
function boundRatio(actual: ArrayLike<number>, exact: ArrayLike<number>, bound: ArrayLike<number>): number {
  expect(actual.length).toBe(exact.length);
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    if (!Number.isFinite(actual[i]!)) return Infinity;
    const diff = Math.abs(actual[i]! - exact[i]!);
    if (diff > 0) worst = Math.max(worst, diff / bound[i]!);
  }
  return worst;
}

describeEachBackendAndWebGPUKernelSet('simulateDiscreteAction, fused on WebGPU', (backend) => {
  for (const c of CASES) {
    for (const detachStd of [false, true]) {
      it(`[${c.shape}], noiseStd ${c.noiseStd}${detachStd ? ', detachStd' : ''}: within the f32 bound of the float64 computation, fused and unfused (value, gradient through the std, inference); the unfused ops bit for bit where no kernel runs`, async () => {
        const exact = reference(c, detachStd);
        const bound = f32Bound(c, detachStd);
        const unfused = await step(c, detachStd, true);
        const before = liveTensors();
        const actual = await step(c, detachStd, false);
        expect(liveTensors()).toBe(before);
        for (const key of Object.keys(exact) as Array<keyof Result>) {
          expect(boundRatio(actual[key], exact[key], bound[key]), key).toBeLessThanOrEqual(1);
          expect(boundRatio(unfused[key], exact[key], bound[key]), `${key}, the unfused ops`).toBeLessThanOrEqual(1);
          if (!hasAddScaledNoiseKernel())
            expect(Buffer.from(actual[key].buffer).equals(Buffer.from(unfused[key].buffer)), `${key}: the unfused ops`).toBe(true);
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
