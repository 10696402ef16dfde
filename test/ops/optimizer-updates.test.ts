// sgdStep and emaUpdate, the one-kernel updates of SGD.step and NetworkEMA (WebGPU with the library's kernels), against
// the unfused ops they replace, run on cpu: every SGD variant (first and later momentum steps, Nesterov or not,
// momentum 0, decay or none), scalar and table coefficients, odd sizes (one element, across a workgroup, above
// WebGPU's CPU hand-off size), one engine kernel each, no leaks, clear errors; elsewhere the ops refuse to run.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { EMA_UPDATE, SGD_STEP } from '../../src/backend/kernels/names.js';
import { webgpuTrainingKernelsInstalled } from '../../src/backend/kernels/webgpu/index.js';
import { emaUpdate, hasEMAUpdateKernel, hasSGDStepKernel, sgdStep, type SGDStepResult } from '../../src/ops/optimizer-updates.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet, describeOnBackend, useBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import { kernelsRun } from '../helpers/kernels.js';

const SHAPES: number[][] = [[1], [7], [3, 3, 5, 7], [257, 3], [1031]];
const LRS = [0.3, 0.05, 0.0123, 0.7];

interface Variant {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  first: boolean;
}
const VARIANTS: Variant[] = [];
for (const [momentum, nesterov] of [
  [0.9, true],
  [0.85, false],
  [0, false],
] as const) {
  for (const weightDecay of [5e-4, 0]) {
    for (const first of momentum === 0 ? [true] : [true, false]) VARIANTS.push({ momentum, nesterov, weightDecay, first });
  }
}
const label = (v: Variant) =>
  `momentum ${v.momentum}${v.nesterov ? ' nesterov' : ''}, decay ${v.weightDecay}${v.momentum ? (v.first ? ', first step' : ', later step') : ''}`;

/** The unfused ops of SGD.step (src/train/sgd.ts) for one weight: the reference. */
function unfusedSGD(p: tf.Tensor, grad: tf.Tensor, old: tf.Tensor | null, lr: tf.Tensor, v: Variant): SGDStepResult {
  const [param, buffer] = tf.tidy(() => {
    let d = v.weightDecay !== 0 ? tf.add(grad, tf.mul(p, tf.scalar(v.weightDecay))) : grad;
    let buffer: tf.Tensor | null = null;
    if (v.momentum !== 0) {
      const mu = tf.scalar(v.momentum);
      buffer = old ? tf.add(tf.mul(old, mu), d) : tf.clone(d);
      d = v.nesterov ? tf.add(d, tf.mul(buffer, mu)) : buffer;
    }
    return buffer ? [tf.sub(p, tf.mul(d, lr)), buffer] : [tf.sub(p, tf.mul(d, lr))];
  });
  return { param: param!, buffer: buffer ?? null };
}

async function sgdCase(shape: number[], v: Variant, seed: number, fused: boolean, table: boolean) {
  const size = shape.reduce((a, b) => a * b, 1);
  const p = tf.tensor(seededUniform(size, seed), shape);
  const grad = tf.tensor(seededUniform(size, seed + 1, -0.1, 0.1), shape);
  const old = v.first ? null : tf.tensor(seededUniform(size, seed + 2, -0.2, 0.2), shape);
  const index = 2;
  // A table read at its index on the device, or the scalar SGD would slice from it.
  const lr = table ? tf.tensor1d(LRS) : tf.scalar(LRS[index]!);
  const out = fused
    ? sgdStep(p, grad, old, lr, { ...v, lrIndex: table ? index : 0 })
    : unfusedSGD(p, grad, old, lr.rank === 0 ? lr : tf.scalar(LRS[index]!), v);
  const result = {
    param: (await out.param.data()) as Float32Array,
    buffer: out.buffer ? ((await out.buffer.data()) as Float32Array) : null,
  };
  tf.dispose([p, grad, old, lr, out.param, out.buffer].filter((t): t is tf.Tensor => t != null));
  return result;
}

function unfusedEMA(ema: tf.Tensor, live: tf.Tensor, keep: tf.Tensor, take: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(tf.mul(ema, keep), tf.mul(live, take)));
}

const KEEPS = [0, 0.25, 0.7737809375, 0.5];

async function emaCase(shape: number[], seed: number, fused: boolean, table: boolean): Promise<Float32Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  const ema = tf.tensor(seededUniform(size, seed), shape);
  const live = tf.tensor(seededUniform(size, seed + 1), shape);
  const index = 2;
  const [keep, take] = table
    ? [tf.tensor1d(KEEPS), tf.tensor1d(KEEPS.map((k) => 1 - k))]
    : [tf.scalar(KEEPS[index]!), tf.scalar(1 - KEEPS[index]!)];
  const out = fused ? emaUpdate(ema, live, keep, take, table ? index : 0) : unfusedEMA(ema, live, keep, take);
  const result = (await out.data()) as Float32Array;
  tf.dispose([ema, live, keep, take, out]);
  return result;
}

describeEachBackendAndWebGPUKernelSet('sgdStep and emaUpdate (the fused optimizer updates)', (backend) => {
  it(`exist exactly on WebGPU with the library's kernels (${backend}), and refuse to run elsewhere`, () => {
    const has = hasSGDStepKernel();
    expect(hasEMAUpdateKernel()).toBe(has);
    expect(has).toBe(backend === 'webgpu' && webgpuTrainingKernelsInstalled());
    if (has) return;
    const t = tf.ones([2]);
    const rate = tf.scalar(0.5);
    expect(() => sgdStep(t, t, null, rate, { momentum: 0, nesterov: false, weightDecay: 0 })).toThrow(
      `sgdStep: the '${backend}' backend has no fused SGD kernel; check hasSGDStepKernel() first`,
    );
    expect(() => emaUpdate(t, t, rate, rate)).toThrow(/no fused EMA kernel; check hasEMAUpdateKernel\(\) first/);
    tf.dispose([t, rate]);
  });
});

// The kernels themselves: WebGPU only (the suite above shows where they exist).
describeOnBackend('webgpu', 'sgdStep and emaUpdate on WebGPU', () => {
  const backend = 'webgpu' as const;
  for (const v of VARIANTS) {
    it(`sgdStep, ${label(v)}: within 1e-5 of the unfused ops on cpu and bit for bit the unfused ops here, lr a scalar or a table entry`, async () => {
      expect(hasSGDStepKernel(), 'the library kernels are installed').toBe(true);
      for (const [i, shape] of SHAPES.entries()) {
        await useBackend('cpu');
        const expected = await sgdCase(shape, v, 10 * i + 1, false, false);
        await useBackend(backend);
        const unfused = await sgdCase(shape, v, 10 * i + 1, false, false);
        const before = liveTensors();
        for (const table of [false, true]) {
          const actual = await sgdCase(shape, v, 10 * i + 1, true, table);
          const where = `[${shape}]${table ? ', lr table' : ''}`;
          expect(maxRelativeError(actual.param, expected.param), `param ${where}`).toBeLessThanOrEqual(1e-5);
          expect(actual.buffer == null, `buffer ${where}`).toBe(expected.buffer == null);
          if (expected.buffer) expect(maxRelativeError(actual.buffer!, expected.buffer), `buffer ${where}`).toBeLessThanOrEqual(1e-5);
          // A first step's buffer is d itself, exactly as the unfused clone.
          if (v.first && v.momentum !== 0 && v.weightDecay === 0) expect(Array.from(actual.buffer!)).toEqual(Array.from(expected.buffer!));
          // The same float32 operations in the same order as the unfused kernels: bit for bit on lavapipe (a shader
          // compiler that contracted a * b + c into one fma would be caught here, within the bound above).
          expect(Buffer.from(actual.param.buffer).equals(Buffer.from(unfused.param.buffer)), `param ${where}: the unfused ops here`).toBe(
            true,
          );
          if (unfused.buffer)
            expect(
              Buffer.from(actual.buffer!.buffer).equals(Buffer.from(unfused.buffer.buffer)),
              `buffer ${where}: the unfused ops here`,
            ).toBe(true);
        }
        expect(liveTensors(), `tensors left after [${shape}]`).toBe(before);
      }
    });
  }

  it('sgdStep reruns bit for bit and runs one engine kernel', async () => {
    expect(hasSGDStepKernel(), 'the library kernels are installed').toBe(true);
    const v = VARIANTS[1]!; // momentum, Nesterov, decay, a later step
    const a = await sgdCase([3, 3, 5, 7], v, 3, true, true);
    const b = await sgdCase([3, 3, 5, 7], v, 3, true, true);
    expect(Buffer.from(a.param.buffer).equals(Buffer.from(b.param.buffer))).toBe(true);
    expect(Buffer.from(a.buffer!.buffer).equals(Buffer.from(b.buffer!.buffer))).toBe(true);
    const p = tf.ones([5, 3]);
    const lr = tf.tensor1d(LRS);
    const counts = await kernelsRun(() => {
      const out = sgdStep(p, p, p, lr, { momentum: 0.9, nesterov: true, weightDecay: 1e-3, lrIndex: 1 });
      expect(out.param.shape).toEqual([5, 3]);
      expect(out.buffer!.shape).toEqual([5, 3]);
      tf.dispose([out.param, out.buffer!]);
    });
    expect([...counts]).toEqual([[SGD_STEP, 1]]);
    tf.dispose([p, lr]);
  });

  it('sgdStep says what is wrong with its arguments', () => {
    expect(hasSGDStepKernel(), 'the library kernels are installed').toBe(true);
    const before = liveTensors();
    const p = tf.zeros([2, 3]);
    const [transposed, flat, square, ints] = [tf.zeros([3, 2]), tf.zeros([6]), tf.zeros([2, 2]), tf.zeros([2, 3], 'int32')];
    const lr = tf.tensor1d(LRS);
    const plain = { momentum: 0, nesterov: false, weightDecay: 0 };
    expect(() => sgdStep(p, transposed, null, lr, plain)).toThrow('sgdStep: grad has shape [3,2], param has shape [2,3]');
    expect(() => sgdStep(p, p, flat, lr, { ...plain, momentum: 0.9 })).toThrow('sgdStep: buffer has shape [6]');
    expect(() => sgdStep(p, p, p, lr, plain)).toThrow('a momentum buffer was given, but momentum is 0');
    expect(() => sgdStep(p, p, null, lr, { ...plain, nesterov: true })).toThrow('Nesterov momentum requires momentum > 0');
    expect(() => sgdStep(p, p, null, lr, { ...plain, momentum: -1 })).toThrow('momentum must be a finite number >= 0, got -1');
    expect(() => sgdStep(p, p, null, lr, { ...plain, weightDecay: Number.NaN })).toThrow('weightDecay must be finite');
    expect(() => sgdStep(p, p, null, lr, { ...plain, lrIndex: 4 })).toThrow('sgdStep: index 4 is outside lr, which has 4 entries');
    expect(() => sgdStep(p, p, null, lr, { ...plain, lrIndex: 0.5 })).toThrow('index 0.5 is outside lr');
    expect(() => sgdStep(p, p, null, square, plain)).toThrow('lr must be a scalar or a 1-D table, got shape [2,2]');
    expect(() => sgdStep(p, ints, null, lr, plain)).toThrow('sgdStep: grad must be float32, got int32');
    tf.dispose([p, transposed, flat, square, ints, lr]);
    expect(liveTensors()).toBe(before);
  });

  it('emaUpdate: within 1e-5 of the unfused ops on cpu and bit for bit the unfused ops here (scalar or table decays), reruns bit for bit, one kernel', async () => {
    expect(hasEMAUpdateKernel(), 'the library kernels are installed').toBe(true);
    for (const [i, shape] of SHAPES.entries()) {
      await useBackend('cpu');
      const expected = await emaCase(shape, 10 * i + 5, false, false);
      await useBackend(backend);
      const unfused = await emaCase(shape, 10 * i + 5, false, false);
      const before = liveTensors();
      for (const table of [false, true]) {
        const actual = await emaCase(shape, 10 * i + 5, true, table);
        expect(maxRelativeError(actual, expected), `[${shape}]${table ? ', tables' : ''}`).toBeLessThanOrEqual(1e-5);
        expect(Buffer.from(actual.buffer).equals(Buffer.from(unfused.buffer)), `[${shape}]: the unfused ops here`).toBe(true);
        const again = await emaCase(shape, 10 * i + 5, true, table);
        expect(Buffer.from(again.buffer).equals(Buffer.from(actual.buffer)), 'rerun').toBe(true);
      }
      expect(liveTensors()).toBe(before);
    }
    const x = tf.ones([4, 2]);
    const keep = tf.tensor1d(KEEPS);
    const counts = await kernelsRun(() => tf.dispose(emaUpdate(x, x, keep, keep, 3)));
    expect([...counts]).toEqual([[EMA_UPDATE, 1]]);
    expect(() => emaUpdate(x, tf.ones([8]), keep, keep)).toThrow('emaUpdate: live has shape [8], ema has shape [4,2]');
    expect(() => emaUpdate(x, x, keep, keep, 4)).toThrow('emaUpdate: index 4 is outside keep, which has 4 entries');
    tf.dispose([x, keep]);
  });
});
