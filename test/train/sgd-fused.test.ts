// SGD.step through the one-kernel update (`sgdStep`, WebGPU with the library's kernels) and through the unfused ops,
// on every backend (cpu included) against torch's update replayed in float64 in JavaScript, within a running f32
// error bound (sgdReference): several steps on odd shapes, first and later momentum steps, every option (Nesterov or not,
// momentum 0, weight decay 0), three groups whose rates are a OneCycle table, a schedule that cannot be listed and
// a constant, a weight skipped on one step; bit-identical reruns, no leaks, an exact getState/setState resume.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { KernelCounter, type KernelCounts } from '../../src/backend/counter.js';
import { SGD_STEP } from '../../src/backend/kernels/names.js';
import { hasSGDStepKernel } from '../../src/ops/optimizer-updates.js';
import { OneCycle, type LrSchedule } from '../../src/train/one-cycle.js';
import { SGD, type SGDGroupArgs } from '../../src/train/sgd.js';
import { seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { U32 } from '../helpers/f64.js';
import { liveTensors } from '../helpers/memory.js';
import { kernelsRun } from '../helpers/kernels.js';

// One element, a workgroup and a bit, a conv kernel, above WebGPU's CPU hand-off size (1000 elements).
const SHAPES: Record<string, number[]> = { w: [3, 3, 5, 7], x: [257, 3], y: [1031], b: [1], c: [13] };
const STEPS = 5;
/** Step 2 (the third) has no gradient for x: torch skips it (no decay, no momentum). */
const SKIPPED = { step: 2, name: 'x' };

interface Options {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}
const OPTIONS: Options[] = [
  { momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
  { momentum: 0.85, nesterov: false, weightDecay: 5e-4 },
  { momentum: 0.9, nesterov: true, weightDecay: 0 },
  { momentum: 0.6, nesterov: false, weightDecay: 0 },
  { momentum: 0, nesterov: false, weightDecay: 1e-2 },
  { momentum: 0, nesterov: false, weightDecay: 0 },
];
const describeOptions = (o: Options) => `momentum ${o.momentum}${o.nesterov ? ' nesterov' : ''}, decay ${o.weightDecay}`;

/** A schedule without `lrAt`/`totalSteps`: SGD cannot list it and uploads its rate each step (it can resume, though). */
class Halving implements LrSchedule {
  stepCount = 0;
  get lr(): number {
    return 0.2 / 2 ** this.stepCount;
  }
  step(): void {
    this.stepCount++;
  }
  setStep(step: number): void {
    this.stepCount = step;
  }
}

let serial = 0;

interface Run {
  vars: Record<string, tf.Variable>;
  opt: SGD;
}

/** Three groups with `o` (the bias-like group without decay when `o` has some, as the seed's groups differ). */
function makeRun(o: Options): Run {
  const suffix = `_sgdf${serial++}`;
  const vars = tf.tidy(() =>
    Object.fromEntries(
      Object.entries(SHAPES).map(([n, shape], i) => {
        const size = shape.reduce((a, b) => a * b, 1);
        return [n, tf.variable(tf.tensor(seededUniform(size, 100 + i), shape), true, `${n}${suffix}`)];
      }),
    ),
  );
  const groups: SGDGroupArgs[] = [
    { name: 'table', weights: [vars.w!, vars.x!], lr: new OneCycle({ maxLr: 0.4, totalSteps: STEPS + 3, pctStart: 0.25 }), ...o },
    { name: 'halving', weights: [vars.y!], lr: new Halving(), ...o },
    { name: 'constant', weights: [vars.b!, vars.c!], lr: 0.05, ...o, weightDecay: o.weightDecay / 2 },
  ];
  return { vars, opt: new SGD(groups) };
}

function gradsAt(run: Run, step: number): tf.NamedTensorMap {
  const grads: tf.NamedTensorMap = {};
  Object.entries(run.vars).forEach(([n, v], i) => {
    if (step === SKIPPED.step && n === SKIPPED.name) return;
    grads[v.name] = tf.tensor(seededUniform(v.size, 1000 * step + i, -0.5, 0.5), v.shape);
  });
  return grads;
}

interface Trace {
  /** Each weight after each step. */
  params: Record<string, Float32Array>[];
  /** The momentum buffers at the end (getState). */
  buffers: Record<string, Float32Array>;
}

async function read(run: Run): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [n, v] of Object.entries(run.vars)) out[n] = (await v.data()) as Float32Array;
  return out;
}

async function steps(run: Run, from: number, to: number, trace?: Trace): Promise<void> {
  for (let s = from; s < to; s++) {
    const grads = gradsAt(run, s);
    run.opt.step(grads);
    tf.dispose(grads);
    trace?.params.push(await read(run));
  }
}

async function buffersOf(run: Run): Promise<Record<string, Float32Array>> {
  const state = run.opt.getState();
  const out: Record<string, Float32Array> = {};
  for (const [n, b] of Object.entries(state.buffers)) out[n.replace(/_sgdf\d+$/, '')] = (await b.data()) as Float32Array;
  tf.dispose(state.buffers);
  return out;
}

async function trace(o: Options): Promise<Trace> {
  const run = makeRun(o);
  const t: Trace = { params: [], buffers: {} };
  await steps(run, 0, STEPS, t);
  t.buffers = await buffersOf(run);
  run.opt.dispose();
  tf.dispose(Object.values(run.vars));
  return t;
}

interface Reference {
  /** Each weight after each step, and the momentum buffers at the end, in float64. */
  params: Record<string, Float64Array>[];
  buffers: Record<string, Float64Array>;
  /** The same, each element's f32 error bound. */
  paramBounds: Record<string, Float64Array>[];
  bufferBounds: Record<string, Float64Array>;
}

/**
 * torch 1.13's SGD step (`makeRun`'s groups and schedules, `gradsAt`'s gradients) in float64, with a running error
 * bound of a float32 computation of the same operations in the same order (first order in u = 2^-24): each
 * operation's result is off by at most u of itself, each constant (rate, momentum, decay) by u of its product;
 * errors already made carry through the operations that read them:
 *   d = g + λp          E_d = λE_p + 2u|λp| + u|d|
 *   b = μb + d          E_b = μE_b + E_d + 2u|μb| + u|b|   (b = d on a buffer's first step)
 *   d = d + μb          E_d = E_d + μE_b + 2u|μb| + u|d|   (Nesterov; else d = b)
 *   p = p - lr d        E_p = E_p + lr E_d + 2u|lr d| + u|p|
 * (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.3, running error analysis.) A weight without a
 * gradient is left alone, as torch does.
 */
function sgdReference(o: Options): Reference {
  const schedules = [
    new OneCycle({ maxLr: 0.4, totalSteps: STEPS + 3, pctStart: 0.25 }),
    { lrAt: (s: number) => 0.2 / 2 ** s },
    { lrAt: () => 0.05 },
  ];
  const groupOf: Record<string, number> = { w: 0, x: 0, y: 1, b: 2, c: 2 };
  const params: Record<string, Float64Array> = {};
  const errP: Record<string, Float64Array> = {};
  const buffers: Record<string, Float64Array> = {};
  const errB: Record<string, Float64Array> = {};
  Object.entries(SHAPES).forEach(([n, shape], i) => {
    const size = shape.reduce((a, b) => a * b, 1);
    params[n] = Float64Array.from(seededUniform(size, 100 + i));
    errP[n] = new Float64Array(size);
  });
  const out: Reference = { params: [], buffers, paramBounds: [], bufferBounds: errB };
  const u = U32;
  for (let step = 0; step < STEPS; step++) {
    Object.keys(SHAPES).forEach((n, i) => {
      if (step === SKIPPED.step && n === SKIPPED.name) return;
      const group = groupOf[n]!;
      const lr = schedules[group]!.lrAt(step);
      const decay = group === 2 ? o.weightDecay / 2 : o.weightDecay;
      const [p, ep] = [params[n]!, errP[n]!];
      const g = seededUniform(p.length, 1000 * step + i, -0.5, 0.5);
      const first = buffers[n] == null;
      if (o.momentum !== 0 && first) [buffers[n], errB[n]] = [new Float64Array(p.length), new Float64Array(p.length)];
      for (let j = 0; j < p.length; j++) {
        let d = g[j]! + decay * p[j]!;
        let ed = decay !== 0 ? decay * ep[j]! + 2 * u * Math.abs(decay * p[j]!) + u * Math.abs(d) : 0;
        if (o.momentum !== 0) {
          const [b, eb] = [buffers[n]!, errB[n]!];
          const mb = o.momentum * b[j]!;
          const nb = first ? d : mb + d;
          eb[j] = first ? ed : o.momentum * eb[j]! + ed + 2 * u * Math.abs(mb) + u * Math.abs(nb);
          b[j] = nb;
          if (o.nesterov) {
            const next = d + o.momentum * nb;
            ed = ed + o.momentum * eb[j]! + 2 * u * Math.abs(o.momentum * nb) + u * Math.abs(next);
            d = next;
          } else [d, ed] = [nb, eb[j]!];
        }
        const next = p[j]! - lr * d;
        ep[j] = ep[j]! + lr * ed + 2 * u * Math.abs(lr * d) + u * Math.abs(next);
        p[j] = next;
      }
    });
    out.params.push(Object.fromEntries(Object.entries(params).map(([n, p]) => [n, Float64Array.from(p)])));
    out.paramBounds.push(Object.fromEntries(Object.entries(errP).map(([n, e]) => [n, Float64Array.from(e)])));
  }
  return out;
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

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describeEachBackendAndWebGPUKernelSet('SGD.step, fused where the backend has the kernel', (backend) => {
  afterEach(() => tf.disposeVariables());

  for (const o of OPTIONS) {
    it(`${describeOptions(o)}: every weight after each of ${STEPS} steps and the buffers within the f32 bound of the float64 update; no leaks`, async () => {
      const expected = sgdReference(o);
      const before = liveTensors();
      const actual = await trace(o);
      expect(liveTensors()).toBe(before);
      for (let s = 0; s < STEPS; s++) {
        for (const n of Object.keys(SHAPES)) {
          const ratio = boundRatio(actual.params[s]![n]!, expected.params[s]![n]!, expected.paramBounds[s]![n]!);
          expect(ratio, `${n} after step ${s + 1}`).toBeLessThanOrEqual(1 + 1e-6); // first order in u
        }
      }
      // The skipped weight did not move on its step.
      expect(bytes(actual.params[SKIPPED.step]![SKIPPED.name]!).equals(bytes(actual.params[SKIPPED.step - 1]![SKIPPED.name]!))).toBe(true);
      expect(Object.keys(actual.buffers).sort()).toEqual(o.momentum === 0 ? [] : Object.keys(SHAPES).sort());
      for (const n of Object.keys(actual.buffers))
        expect(boundRatio(actual.buffers[n]!, expected.buffers[n]!, expected.bufferBounds[n]!), `buffer ${n}`).toBeLessThanOrEqual(
          1 + 1e-6,
        );
    });
  }

  it('reruns bit for bit', async () => {
    for (const o of [OPTIONS[0]!, OPTIONS[3]!, OPTIONS[4]!]) {
      const a = await trace(o);
      const b = await trace(o);
      for (let s = 0; s < STEPS; s++)
        for (const n of Object.keys(SHAPES))
          expect(bytes(a.params[s]![n]!).equals(bytes(b.params[s]![n]!)), `${n} step ${s + 1}`).toBe(true);
      for (const n of Object.keys(a.buffers)) expect(bytes(a.buffers[n]!).equals(bytes(b.buffers[n]!)), `buffer ${n}`).toBe(true);
    }
  });

  it('resumes exactly from getState/setState', async () => {
    for (const o of [OPTIONS[0]!, OPTIONS[1]!]) {
      const a = makeRun(o);
      await steps(a, 0, STEPS);
      const b = makeRun(o);
      await steps(b, 0, 3);
      const state = b.opt.getState();
      b.opt.dispose();
      const c = makeRun(o);
      const rename = (name: string) => c.vars[name.replace(/_sgdf\d+$/, '')]!.name;
      for (const n of Object.keys(SHAPES)) c.vars[n]!.assign(b.vars[n]!);
      c.opt.setState({ ...state, buffers: Object.fromEntries(Object.entries(state.buffers).map(([n, t]) => [rename(n), t])) });
      tf.dispose(state.buffers);
      expect(c.opt.lrs).toEqual(b.opt.lrs);
      await steps(c, 3, STEPS);
      const [pa, pc] = [await read(a), await read(c)];
      for (const n of Object.keys(SHAPES)) expect(bytes(pc[n]!).equals(bytes(pa[n]!)), n).toBe(true);
      for (const r of [a, c]) {
        r.opt.dispose();
        tf.dispose(Object.values(r.vars));
      }
      tf.dispose(Object.values(b.vars));
    }
  });

  it(`runs one ${SGD_STEP} kernel per weight with a gradient exactly where the backend has it, and slices no rate or uploads a listed one (${backend})`, async () => {
    const run = makeRun(OPTIONS[0]!);
    const grads = gradsAt(run, SKIPPED.step);
    let uploads: KernelCounts | undefined;
    const counts = await kernelsRun(async () => {
      run.opt.step(grads);
      // The second step has momentum buffers; the tables and constants are on the backend by now.
      uploads = await new KernelCounter().measure(() => run.opt.step(grads));
    });
    // Only the rate of the schedule that cannot be listed (Halving) is uploaded: one float32.
    // (cpu kernels hand their results to the backend through write(): every one counts as an upload there.)
    if (backend !== 'cpu') expect(uploads!.uploadBytes).toBe(4);
    const weightsStepped = 2 * (Object.keys(SHAPES).length - 1);
    if (hasSGDStepKernel()) expect([...counts]).toEqual([[SGD_STEP, weightsStepped]]);
    else {
      expect(counts.get(SGD_STEP)).toBeUndefined();
      expect(counts.get('Multiply')).toBeGreaterThanOrEqual(weightsStepped);
    }
    tf.dispose(grads);
    run.opt.dispose();
    tf.dispose(Object.values(run.vars));
  });
});
