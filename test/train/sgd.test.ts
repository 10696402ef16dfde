import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, describe, expect, it } from 'vitest';
import { OneCycle, type AnnealStrategy } from '../../src/train/one-cycle.js';
import { SGD, splitBiasGroups, type NamedWeight } from '../../src/train/sgd.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

// Golden values from torch.optim.SGD + OneCycleLR (tools/reference/train_fixtures.py, no arguments):
// the seed's two optimizers (non-bias and bias groups), five steps on fixed gradients, with one
// weight missing its gradient in step 2 and another in step 3.
interface GroupHyp {
  lr: number;
  momentum: number;
  nesterov: boolean;
  weight_decay: number;
}
interface Fixture {
  shapes: Record<string, number[]>;
  trainable: Record<string, boolean>;
  initial: Record<string, number[]>;
  groups: { nonBias: GroupHyp; bias: GroupHyp };
  schedule: { pctStart: number; divFactor: number; finalDivFactor: number; totalSteps: number; anneal: AnnealStrategy };
  steps: { grads: Record<string, number[]>; lrs: number[]; params: Record<string, number[]> }[];
  finalBuffers: Record<string, number[]>;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/train/sgd.json', import.meta.url), 'utf8')) as Fixture;
const names = Object.keys(fx.shapes);

let serial = 0;
function makeVariables(): tf.Variable[] {
  // tf.Variable names are global in the engine: suffix them per test, strip the suffix for the fixture.
  const suffix = `_t${serial++}`;
  return tf.tidy(() => names.map((n) => tf.variable(tf.tensor(fx.initial[n]!, fx.shapes[n]!), fx.trainable[n]!, `${n}${suffix}`)));
}
const baseName = (v: NamedWeight) => v.name.replace(/_t\d+$/, '');

function makeOptimizer(vars: tf.Variable[]): SGD {
  const { nonBias, bias } = splitBiasGroups(vars);
  const sched = (lr: number) => new OneCycle({ maxLr: lr, ...fx.schedule });
  const g = (h: GroupHyp, weights: tf.Variable[], name: string) => ({
    name,
    weights,
    lr: sched(h.lr),
    momentum: h.momentum,
    nesterov: h.nesterov,
    weightDecay: h.weight_decay,
  });
  return new SGD([g(fx.groups.nonBias, nonBias, 'nonBias'), g(fx.groups.bias, bias, 'bias')]);
}

function gradsFor(vars: tf.Variable[], step: number): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const v of vars) {
    const g = fx.steps[step]!.grads[baseName(v)];
    if (g) out[v.name] = tf.tensor(g, v.shape);
  }
  return out;
}

describeEachBackend('SGD matches torch.optim.SGD (nesterov, coupled decay, two groups, OneCycle)', () => {
  afterEach(() => tf.disposeVariables());

  it('five steps on fixed gradients, skipping weights without a gradient', async () => {
    const before = liveTensors();
    const vars = makeVariables();
    const opt = makeOptimizer(vars);
    // The seed's split: only trainable weights, 'bias' in the name.
    expect(opt.groupWeightNames.map((g) => g.map((n) => n.replace(/_t\d+$/, '')))).toEqual([
      ['initial_block/state_pred/weight', 'linear/weight'],
      ['conv_group_1/norm1/bias'],
    ]);
    for (let s = 0; s < fx.steps.length; s++) {
      const lrs = opt.lrs;
      for (let i = 0; i < 2; i++) expect(Math.abs(lrs[i]! - fx.steps[s]!.lrs[i]!) / fx.steps[s]!.lrs[i]!).toBeLessThan(1e-12);
      const grads = gradsFor(vars, s);
      opt.step(grads);
      tf.dispose(grads);
      for (const v of vars) {
        const err = maxRelativeError(await v.data(), fx.steps[s]!.params[baseName(v)]!);
        expect(err, `${baseName(v)} after step ${s + 1}`).toBeLessThanOrEqual(5e-6);
      }
    }
    // The frozen norm weight never moved.
    const frozen = vars.find((v) => baseName(v) === 'conv_group_1/norm1/weight')!;
    expect(Array.from(await frozen.data())).toEqual(fx.initial['conv_group_1/norm1/weight']);
    const state = opt.getState();
    expect(state.step).toBe(5);
    expect(state.scheduleSteps).toEqual([5, 5]);
    expect(
      Object.keys(state.buffers)
        .map((n) => n.replace(/_t\d+$/, ''))
        .sort(),
    ).toEqual(Object.keys(fx.finalBuffers).sort());
    for (const [n, b] of Object.entries(state.buffers)) {
      expect(maxRelativeError(await b.data(), fx.finalBuffers[n.replace(/_t\d+$/, '')]!)).toBeLessThanOrEqual(1e-5);
    }
    tf.dispose(state.buffers);
    opt.dispose();
    tf.dispose(vars);
    expect(liveTensors()).toBe(before);
  });

  it('exported state resumes bit-identically', async () => {
    const a = makeVariables();
    const optA = makeOptimizer(a);
    const b = makeVariables();
    const optB = makeOptimizer(b);
    for (let s = 0; s < 3; s++) {
      const ga = gradsFor(a, s);
      const gb = gradsFor(b, s);
      optA.step(ga);
      optB.step(gb);
      tf.dispose([ga, gb]);
    }
    // A fresh optimizer over b's weights, restored from optB's state, must continue exactly like optA.
    const state = optB.getState();
    optB.dispose();
    const rename = (m: tf.NamedTensorMap, from: tf.Variable[], to: tf.Variable[]) =>
      Object.fromEntries(Object.entries(m).map(([k, t]) => [to[from.findIndex((v) => v.name === k)]!.name, t]));
    const c = makeVariables();
    for (let i = 0; i < c.length; i++) c[i]!.assign(b[i]!);
    const optC = makeOptimizer(c);
    optC.setState({ ...state, buffers: rename(state.buffers, b, c) });
    tf.dispose(state.buffers);
    expect(optC.stepCount).toBe(3);
    expect(optC.lrs).toEqual(optA.lrs);
    for (let s = 3; s < 5; s++) {
      const ga = gradsFor(a, s);
      const gc = gradsFor(c, s);
      optA.step(ga);
      optC.step(gc);
      tf.dispose([ga, gc]);
    }
    for (let i = 0; i < a.length; i++) expect(Array.from(await c[i]!.data())).toEqual(Array.from(await a[i]!.data()));
    optA.dispose();
    optC.dispose();
  });

  it('works on a LayersModel: trainableWeights + tf.variableGrads, names line up', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4], useBias: true, kernelInitializer: 'ones' })] });
    const x = tf.tensor2d([
      [1, 2, 3, 4],
      [0.5, -1, 0, 2],
    ]);
    const { nonBias, bias } = splitBiasGroups(model.trainableWeights);
    expect(nonBias.map((w) => w.name)).toEqual([model.trainableWeights[0]!.name]);
    expect(bias.map((w) => w.name)).toEqual([model.trainableWeights[1]!.name]);
    const opt = new SGD([
      { weights: nonBias, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
      { weights: bias, lr: 0.2, momentum: 0.9, nesterov: true },
    ]);
    const kernel0 = await model.trainableWeights[0]!.read().data();
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.predict(x) as tf.Tensor)) as tf.Scalar);
    const g = await grads[model.trainableWeights[0]!.name]!.data();
    opt.step(grads);
    // First step: buffer = g + wd*p, nesterov d = (g + wd*p) * (1 + mu).
    const kernel1 = await model.trainableWeights[0]!.read().data();
    const expected = Array.from(kernel0, (p, i) => p - 0.1 * (g[i]! + 0.01 * p) * 1.9);
    expect(maxRelativeError(kernel1, expected)).toBeLessThanOrEqual(1e-5);
    tf.dispose([value, grads, x]);
    opt.dispose();
    model.dispose();
  });

  it('leaves no tensors behind over many steps', () => {
    const vars = makeVariables();
    const opt = makeOptimizer(vars);
    const gradsByStep = [0, 1].map((s) => gradsFor(vars, s));
    const step = (i: number) => opt.step(gradsByStep[i % 2]!);
    step(0);
    const after1 = liveTensors();
    for (let i = 1; i < 4; i++) step(i);
    expect(liveTensors()).toBe(after1);
    tf.dispose(gradsByStep);
    opt.dispose();
  });
});

describe('SGD validation (hostile review item 18)', () => {
  afterEach(() => tf.disposeVariables());
  it('refuses a negative lr or weight decay, momentum above 1 and a non-boolean nesterov, naming the group and the argument', () => {
    const w = tf.variable(tf.zeros([2]), true, 'v_val_b');
    const group = (args: Partial<lib.SGDGroupArgs>) => () => new lib.SGD([{ weights: [w], lr: 0.1, ...args }]);
    expect(group({ lr: -0.1 })).toThrow("SGD group 'group0': lr must be a finite number >= 0 or a schedule with an lr, got -0.1");
    expect(group({ weightDecay: -1e-4 })).toThrow("SGD group 'group0': argument 'weightDecay' must be a finite number >= 0, got -0.0001");
    expect(group({ momentum: 1.5, name: 'm' })).toThrow("SGD group 'm': argument 'momentum' must be a number in [0, 1], got 1.5");
    expect(group({ momentum: 0.9, nesterov: 'yes' as never })).toThrow(
      "SGD group 'group0': argument 'nesterov' must be true or false, got 'yes'",
    );
    expect(group({ momentum: 1, nesterov: true })).not.toThrow();
  });
});

describe('SGD validation', () => {
  afterEach(() => tf.disposeVariables());
  it('rejects bad groups and gradients with messages naming them', () => {
    const w = tf.variable(tf.zeros([2]), true, 'v_val_a');
    expect(() => new SGD([])).toThrow(/non-empty array of parameter groups/);
    expect(() => new SGD([{ weights: [w], lr: Number.NaN }])).toThrow(/group 'group0': lr must be a finite number/);
    expect(() => new SGD([{ weights: [w], lr: 0.1, nesterov: true }])).toThrow(/Nesterov momentum requires momentum > 0/);
    expect(
      () =>
        new SGD([
          { weights: [w], lr: 0.1 },
          { weights: [w], lr: 0.1, name: 'b' },
        ]),
    ).toThrow(/'v_val_a' appears in groups 'group0' and 'b'/);
    const opt = new SGD([{ weights: [w], lr: 0.1 }]);
    const g = tf.zeros([3]);
    expect(() => opt.step({ v_val_a: g })).toThrow(/gradient for 'v_val_a' has shape \[3\], the weight has shape \[2\]/);
    const s = new OneCycle({ maxLr: 1, totalSteps: 4, pctStart: 0.5 });
    const o2 = new SGD([{ weights: [w], lr: s }]);
    const buf = tf.zeros([5]);
    expect(() => o2.setState({ step: 0, scheduleSteps: [0], buffers: { nope: buf } })).toThrow(/'nope' matches no weight/);
    tf.dispose([g, buf]);
  });
});
