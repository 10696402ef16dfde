// BatchNorm through the fused kernels where the backend has them (WebGPU with the library's kernels): call and
// callWithGelu (the batchNorm and batchNormGelu ops), weight frozen and trainable, fused and unfused, on every
// backend against a float64 reference computed in JavaScript, within a bound derived from f32's unit roundoff
// (f32Bound): forward, the gradients of x, bias and weight, the running statistics, inference and its gradients;
// the unfused ops bit for bit where no fused kernel runs; bit-identical reruns; the kernels each step runs, also for
// a block of one's own calling the ops; no leaks.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { installOverrides, uninstallOverrides } from '../../src/backend/kernels/install.js';
import { BATCH_NORM_APPLY, BATCH_NORM_COEFFICIENTS, BATCH_NORM_GRAD, BATCH_NORM_TRAIN_STATS } from '../../src/backend/kernels/names.js';
import { WEBGPU_TRAINING_KERNELS } from '../../src/backend/kernels/webgpu/index.js';
import { BatchNorm } from '../../src/layers/batch-norm.js';
import {
  batchNorm,
  batchNormApply,
  batchNormCoefficients,
  batchNormGelu,
  batchNormGrad,
  batchNormTrainStats,
  hasBatchNormKernels,
  type BatchNormState,
} from '../../src/ops/batch-norm.js';
import { gelu } from '../../src/ops/gelu.js';
import { seededUniform } from '../helpers/assert.js';
import { gelu64, geluGrad64, U32 } from '../helpers/f64.js';
import { probabilisticGamma } from '../helpers/f16.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
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

/** Rounding-error sources moved by their f32 bounds, for `reference` to carry through (absolute shifts, per channel). */
interface Perturbation {
  /** Added to each training call's batch mean. */
  mean?: (ch: number, call: number) => number;
  /** Relative change of each training call's batch variance. */
  variance?: (ch: number, call: number) => number;
  /** Added to mean(dz) and mean(dz·x̂) in the training gradient. */
  dzMean?: (ch: number) => number;
  dzXhatMean?: (ch: number) => number;
  /** Added to Φ(z) = (1 + erf(z/√2))/2 wherever the GELU or its derivative reads it. */
  phi?: number;
}

type Reference = Record<keyof Result, Float64Array>;

/**
 * `step`'s results in float64, computed in JavaScript from the same inputs: the batch statistics (biased variance)
 * forward, its gradients with respect to x, bias and (trainable) weight, PyTorch's running averages after the two
 * training calls (momentum 0.4, unbiased variance), then inference with them and its gradients. With `p`, the same
 * with rounding-error sources moved (`f32Bound`). `mag` holds, per output, the sum of the magnitudes of the terms its
 * last operations combine (what their rounding is relative to), and `n` the values per channel.
 */
function reference(
  shape: [number, number, number, number],
  v: Variant,
  p: Perturbation = {},
): { out: Reference; mag: Reference; n: number; dzXhatAbs: Float64Array } {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  const n = size / c;
  const [weight, bias, x, g] = [
    seededUniform(c, 5, 0.5, 1.5),
    seededUniform(c, 6, -0.5, 0.5),
    seededUniform(size, 7, 1, 4),
    seededUniform(size, 8),
  ];
  const eps = 1e-12;
  const momentum = 0.4;
  const dPhi = p.phi ?? 0;
  const act = (z: number) => (v.gelu ? gelu64(z) + z * dPhi : z);
  const actGrad = (z: number) => (v.gelu ? geluGrad64(z) + dPhi : 1);
  const moments = (scale: number, call: number) => {
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    for (let i = 0; i < size; i++) mean[i % c]! += (scale * x[i]!) / n;
    for (let i = 0; i < size; i++) variance[i % c]! += (scale * x[i]! - mean[i % c]!) ** 2 / n;
    for (let ch = 0; ch < c; ch++) {
      mean[ch]! += p.mean?.(ch, call) ?? 0;
      variance[ch]! *= 1 + (p.variance?.(ch, call) ?? 0);
    }
    return { mean, variance };
  };
  const make = (): Reference => ({
    y: new Float64Array(size),
    dx: new Float64Array(size),
    dbias: new Float64Array(c),
    dweight: new Float64Array(v.weightTrainable ? c : 0),
    runningMean: new Float64Array(c),
    runningVar: new Float64Array(c).fill(1),
    eval: new Float64Array(size),
    evalDx: new Float64Array(size),
    evalDbias: new Float64Array(c),
    evalDweight: new Float64Array(v.weightTrainable ? c : 0),
  });
  const [out, mag] = [make(), make()];
  // Training: z = w x̂ + b, y = act(z); dz = g act'(z); dx = w rstd (dz - mean(dz) - x̂ mean(dz x̂)).
  const { mean, variance } = moments(1, 0);
  const rstd = Array.from(variance, (s) => 1 / Math.sqrt(s + eps));
  const xhat = Float64Array.from(x, (xi, i) => (xi - mean[i % c]!) * rstd[i % c]!);
  const dz = new Float64Array(size);
  const dzMean = new Float64Array(c);
  const dzXhatMean = new Float64Array(c);
  const dzXhatAbs = new Float64Array(c);
  for (let i = 0; i < size; i++) {
    const ch = i % c;
    const z = weight[ch]! * xhat[i]! + bias[ch]!;
    out.y[i] = act(z);
    mag.y[i] = Math.abs(weight[ch]! * xhat[i]!) + Math.abs(bias[ch]!) + Math.abs(out.y[i]!);
    dz[i] = g[i]! * actGrad(z);
    dzMean[ch]! += dz[i]! / n;
    dzXhatMean[ch]! += (dz[i]! * xhat[i]!) / n;
    mag.dbias[ch]! += Math.abs(dz[i]!);
    dzXhatAbs[ch]! += Math.abs(dz[i]! * xhat[i]!);
  }
  if (v.weightTrainable) mag.dweight.set(dzXhatAbs);
  for (let ch = 0; ch < c; ch++) {
    dzMean[ch]! += p.dzMean?.(ch) ?? 0;
    dzXhatMean[ch]! += p.dzXhatMean?.(ch) ?? 0;
  }
  for (let i = 0; i < size; i++) {
    const ch = i % c;
    const terms = [dz[i]!, dzMean[ch]!, xhat[i]! * dzXhatMean[ch]!];
    out.dx[i] = weight[ch]! * rstd[ch]! * (terms[0]! - terms[1]! - terms[2]!);
    mag.dx[i] = Math.abs(weight[ch]! * rstd[ch]!) * terms.reduce((t, term) => t + Math.abs(term), 0);
  }
  for (let ch = 0; ch < c; ch++) {
    out.dbias[ch] = n * dzMean[ch]!;
    if (v.weightTrainable) out.dweight[ch] = n * dzXhatMean[ch]!;
  }
  // The running averages over the two training calls (x, then 0.5 x): PyTorch's momentum, unbiased variance.
  for (const [call, scale] of [1, 0.5].entries()) {
    const batch = call === 0 ? { mean, variance } : moments(scale, call);
    for (let ch = 0; ch < c; ch++) {
      out.runningMean[ch] = (1 - momentum) * out.runningMean[ch]! + momentum * batch.mean[ch]!;
      out.runningVar[ch] = (1 - momentum) * out.runningVar[ch]! + (momentum * n * batch.variance[ch]!) / (n - 1);
    }
  }
  mag.runningMean.set(out.runningMean.map(Math.abs));
  mag.runningVar.set(out.runningVar.map(Math.abs));
  // Inference: z = x scale + shift with the running statistics; differentiable in x, bias and weight.
  for (let i = 0; i < size; i++) {
    const ch = i % c;
    const r = 1 / Math.sqrt(out.runningVar[ch]! + eps);
    const z = weight[ch]! * (x[i]! - out.runningMean[ch]!) * r + bias[ch]!;
    const dzi = g[i]! * actGrad(z);
    out.eval[i] = act(z);
    mag.eval[i] =
      Math.abs(weight[ch]! * x[i]! * r) + Math.abs(weight[ch]! * out.runningMean[ch]! * r) + Math.abs(bias[ch]!) + Math.abs(out.eval[i]!);
    out.evalDx[i] = dzi * weight[ch]! * r;
    mag.evalDx[i] = Math.abs(out.evalDx[i]!);
    out.evalDbias[ch]! += dzi;
    mag.evalDbias[ch]! += Math.abs(dzi);
    if (v.weightTrainable) {
      out.evalDweight[ch]! += dzi * (x[i]! - out.runningMean[ch]!) * r;
      mag.evalDweight[ch]! += Math.abs(dzi * (x[i]! - out.runningMean[ch]!) * r);
    }
  }
  return { out, mag, n, dzXhatAbs };
}

/**
 * The error a correct float32 computation may show against `reference`, per element: the fused suites' bound,
 * derived from f32's unit roundoff u = 2^-24 and the data alone, never from a backend's results (so a bug in the
 * column sums (src/backend/kernels/webgpu/column_sums.ts) that both BatchNorm paths share cannot widen it).
 *
 * @remarks
 * A float32 sum of n terms, in any order, is within γ = exp(λ√n u + n u²) − 1 of exact relative to the sum of the
 * terms' magnitudes (Higham and Mary, SIAM J. Sci. Comput. 41(5), 2019, Thm 3.1; λ = 8: a sum fails it with
 * probability under 2n e^-32; test/helpers/f16.ts uses the same). The per-channel sums are the batch mean
 * (γ mean|x|), the variance (summed about a shift s, one of the channel's values, as the one-pass kernels do: off by
 * γ(1 + ((μ − s)/σ)²) ≤ γ(1 + d²) relative, d = max|x − μ|/σ), mean(dz), mean(dz·x̂), and the four gradient sums
 * (γ times their terms' magnitudes). Each source is moved by its bound in the float64 reference and the outputs'
 * changes are added (first order, worst signs). tfjs's erf (Abramowitz and Stegun 7.1.26, every backend) is off by
 * at most 1.5e-7, so Φ by 7.5e-8: moved too. Then each output's last operations round: at most 16 operations of at
 * most 2 ulps each (rsqrt and exp are not correctly rounded) on terms of magnitude `mag`, 32u·mag. Measured, the
 * errors reach at most 0.13 of the bound (cpu 0.09, wasm 0.12, lavapipe 0.10, fused or not); a sum that drops one of
 * its terms, or accumulates in float16, exceeds it many times over.
 */
function f32Bound(shape: [number, number, number, number], v: Variant): Reference {
  const base = reference(shape, v);
  const { n } = base;
  const gamma = probabilisticGamma(n);
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  const x = seededUniform(size, 7, 1, 4);
  // Per channel and training call: mean|x|, σ and d of the call's values (call 1 scales x by 0.5).
  const stats = [1, 0.5].map((scale) =>
    Array.from({ length: c }, (_, ch) => {
      let [meanAbs, mean] = [0, 0];
      for (let i = ch; i < size; i += c) [meanAbs, mean] = [meanAbs + Math.abs(scale * x[i]!) / n, mean + (scale * x[i]!) / n];
      let [variance, dev] = [0, 0];
      for (let i = ch; i < size; i += c) {
        variance += (scale * x[i]! - mean) ** 2 / n;
        dev = Math.max(dev, Math.abs(scale * x[i]! - mean));
      }
      return { meanAbs, d2: dev ** 2 / variance };
    }),
  );
  const sources: Perturbation[] = [
    { mean: (ch, call) => gamma * stats[call]![ch]!.meanAbs },
    { variance: (ch, call) => gamma * (1 + stats[call]![ch]!.d2) },
    { dzMean: (ch) => (gamma * base.mag.dbias[ch]!) / n },
    { dzXhatMean: (ch) => (gamma * base.dzXhatAbs[ch]!) / n },
  ];
  if (v.gelu) sources.push({ phi: 7.5e-8 });
  const bound = Object.fromEntries(
    (Object.keys(base.out) as Array<keyof Result>).map((k) => [k, base.mag[k].map((m) => 32 * U32 * m)]),
  ) as Reference;
  for (const source of sources) {
    const moved = reference(shape, v, source).out;
    for (const k of Object.keys(bound) as Array<keyof Result>)
      bound[k].forEach((_, i) => (bound[k][i]! += Math.abs(moved[k][i]! - base.out[k][i]!)));
  }
  // The gradient sums' own rounding.
  for (const k of ['dbias', 'dweight', 'evalDbias', 'evalDweight'] as const)
    bound[k].forEach((_, i) => (bound[k][i]! += gamma * base.mag[k][i]!));
  return bound;
}

/** The largest |actual − exact| / bound over the elements (at most 1 within the bound); Infinity for a non-finite value. */
function boundRatio(actual: ArrayLike<number>, exact: ArrayLike<number>, bound: ArrayLike<number>): number {
  expect(actual.length).toBe(exact.length);
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    if (!Number.isFinite(actual[i]!)) return Infinity;
    worst = Math.max(worst, Math.abs(actual[i]! - exact[i]!) / bound[i]!);
  }
  return worst;
}

describeEachBackendAndWebGPUKernelSet('BatchNorm through the fused kernels (with and without GELU)', (backend) => {
  for (const v of VARIANTS) {
    for (const shape of SHAPES) {
      it(`${variantName(v)}, ${shape.join('x')}: within the f32 bound of the float64 reference, fused and unfused (values, gradients, running stats, inference and its gradients); the unfused ops bit for bit where no fused kernel runs`, async () => {
        const { out: exact } = reference(shape, v);
        const bound = f32Bound(shape, v);
        const unfused = await withUnfusedOps(() => step(shape, v, true));
        const before = liveTensors();
        const actual = await step(shape, v);
        expect(liveTensors()).toBe(before);
        for (const key of Object.keys(exact) as Array<keyof Result>) {
          expect(boundRatio(actual[key], exact[key], bound[key]), key).toBeLessThanOrEqual(1);
          expect(boundRatio(unfused[key], exact[key], bound[key]), `${key}, the unfused ops`).toBeLessThanOrEqual(1);
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

  it(`runs the fused kernels exactly where the backend has them, for any block calling the ops (${backend}): two forward, one backward`, async () => {
    const fused = hasBatchNormKernels();
    const x = tf.tensor4d(seededUniform(2 * 5 * 5 * 8, 9), [2, 5, 5, 8]);
    const dy = tf.tensor4d(seededUniform(2 * 5 * 5 * 8, 10), [2, 5, 5, 8]);
    const bn = new BatchNorm({ weightTrainable: true });
    bn.build(x.shape);
    // A block of one's own calls the ops with a norm of its own (any object with the variables and settings).
    const own: BatchNormState = {
      name: 'own',
      weight: bn.weight,
      bias: bn.bias,
      runningMean: bn.runningMean,
      runningVar: bn.runningVar,
      eps: 1e-5,
      momentum: 0.1,
    };
    const counter = new KernelCounter();
    for (const withGelu of [true, false]) {
      const apply = (input: tf.Tensor, training: boolean) =>
        withGelu ? batchNormGelu(input, own, { training }) : batchNorm(input, own, { training });
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
