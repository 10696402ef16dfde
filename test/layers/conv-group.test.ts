import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { ConvGroup as PublicConvGroup } from '../../src/index.js';
import { convTolerance, describeEachBackend, describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { loadFixture, toTensor, values, varName, type Encoded } from './fixtures.js';
import { liveTensors } from '../helpers/memory.js';

interface GroupFixture {
  channelsIn: number;
  channelsOut: number;
  statePredDim: number;
  initial: Record<string, Encoded>;
  x: Encoded;
  g1: Encoded;
  g2: Encoded;
  out: Encoded;
  state: Encoded;
  dx: Encoded;
  grads: Record<string, Encoded>;
  stateDictAfterTraining: Record<string, Encoded>;
  xEval: Encoded;
  outEval: Encoded;
  stateEval: Encoded;
}
// Golden values: tools/reference/layers_fixtures.py (the seed's ConvGroup(3, 4, 6), training mode), default args.
const fx = loadFixture<GroupFixture>('conv_group.json');

/** 'conv1.weight' (torch state-dict key) -> 'g/conv1/weight' (our weight name). */
const ourName = (group: string, key: string) => `${group}/${key.replace('.', '/')}`;

function buildGroup(name: string): ConvGroup {
  const group = new ConvGroup({ name, channelsIn: fx.channelsIn, channelsOut: fx.channelsOut, statePredDim: fx.statePredDim });
  group.apply(tfl.input({ shape: fx.x.shape.slice(1) }));
  const byName = new Map(group.weights.map((w) => [w.originalName, w]));
  for (const [key, e] of Object.entries(fx.initial)) {
    const t = toTensor(e);
    byName.get(ourName(name, key))!.write(t);
    t.dispose();
  }
  return group;
}

describeEachBackendAndWebGPUKernelSet('ConvGroup', (backend) => {
  it('matches torch in training mode: both outputs, input and weight gradients, running stats', async () => {
    const name = `group_${backend}`;
    const group = buildGroup(name);
    const before = liveTensors();
    const x0 = toTensor(fx.x);
    const x = tf.variable(x0);
    x0.dispose();
    const g1 = toTensor(fx.g1);
    const g2 = toTensor(fx.g2);
    const outs: tf.Tensor[] = [];
    const trainable = group.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const [out, state] = group.apply(x, { training: true }) as tf.Tensor[];
      outs.push(tf.keep(tf.clone(out!)), tf.keep(tf.clone(state!)));
      return tf.add(tf.sum(tf.mul(out!, g1)), tf.sum(tf.mul(state!, g2)));
    }, [x, ...trainable]);
    const check = async (t: tf.Tensor, e: Encoded, what: string) => {
      expect(t.shape, what).toEqual(e.shape);
      // Up to four convolutions on a gradient's path: conv1 and conv2 forward, their input gradients back.
      expect(maxRelativeError(await t.data(), values(e)), what).toBeLessThanOrEqual(convTolerance(1e-4, 4));
    };
    await check(outs[0]!, fx.out, 'output x');
    await check(outs[1]!, fx.state, 'state prediction');
    await check(grads[x.name]!, fx.dx, 'input gradient');
    const byName = new Map(group.weights.map((w) => [w.originalName, w]));
    for (const [key, e] of Object.entries(fx.grads)) await check(grads[varName(byName.get(ourName(name, key))!)]!, e, `gradient of ${key}`);
    for (const [key, e] of Object.entries(fx.stateDictAfterTraining))
      await check(byName.get(ourName(name, key))!.read(), e, `${key} after training`);

    const xe = toTensor(fx.xEval);
    const [oe, se] = group.apply(xe) as tf.Tensor[];
    await check(oe!, fx.outEval, 'inference output x');
    await check(se!, fx.stateEval, 'inference state prediction');
    tf.dispose([x, g1, g2, value, ...outs, ...Object.values(grads), xe, oe!, se!]);
    expect(liveTensors()).toBe(before);
    group.dispose();
  });
});

describeEachBackend('ConvGroup called directly', (backend) => {
  it('runs every eager call anew: running statistics move each time, gradients reach the weights, no disposed output comes back', async () => {
    // Hostile review, item 2: a second eager call on the same input returned the first call's outputs.
    const group = new PublicConvGroup({ name: `eager_${backend}`, channelsOut: 2, statePredDim: 3, seed: 1 });
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 5);
    tf.dispose(group.apply(x) as tf.Tensor[]); // builds the group; inference moves nothing
    const before = liveTensors();
    const runningMean = async () => Array.from(await group.norm1.runningMean.read().data());

    // Same input, same weights, so the same batch mean b each time: 0.4 b after one call, 0.64 b after two.
    const first = group.apply(x, { training: true }) as tf.Tensor[];
    const once = await runningMean();
    const second = group.apply(x, { training: true }) as tf.Tensor[];
    const twice = await runningMean();
    expect(second[0]).not.toBe(first[0]);
    expect(once.every((v) => v !== 0)).toBe(true);
    twice.forEach((v, i) => expect(v / once[i]!).toBeCloseTo(1.6, 4));
    // Also within one tidy scope, with the very same options object.
    const options = { training: true };
    tf.tidy(() => {
      group.apply(x, options);
      group.apply(x, options);
    });
    const fourTimes = await runningMean();
    fourTimes.forEach((v, i) => expect(v / once[i]!).toBeCloseTo((1 - 0.6 ** 4) / 0.4, 4));

    // A disposed output is never handed back: the next call computes fresh ones.
    first[0]!.dispose();
    const third = group.apply(x, { training: true }) as tf.Tensor[];
    expect(third.every((t) => !t.isDisposed)).toBe(true);
    tf.dispose([...first, ...second, ...third]);

    // Gradients of an eager call reach the group's weights, though the same input was seen before.
    const weights = group.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const [out, state] = group.apply(x, { training: true }) as tf.Tensor[];
      return tf.add(tf.sum(out!), tf.sum(state!)) as tf.Scalar;
    }, weights);
    expect(Object.keys(grads)).toHaveLength(weights.length);
    const size = tf.tidy(() => tf.sum(tf.abs(grads[varName(group.conv1.weight)]!)));
    expect((await size.data())[0]).toBeGreaterThan(0);
    size.dispose();
    tf.dispose([value, ...Object.values(grads)]);
    expect(liveTensors()).toBe(before);
    x.dispose();
    group.dispose();
  });
});

describe('ConvGroup structure', () => {
  it("reports all sublayer weights, named like the seed's state dict, with the seed's trainability", () => {
    const group = new ConvGroup({ name: 'conv_group_1', channelsOut: 4, statePredDim: 6 });
    const outs = group.apply(tfl.input({ shape: [8, 8, 3] })) as tfl.SymbolicTensor[];
    expect(outs.map((o) => o.shape)).toEqual([
      [null, 4, 4, 4],
      [null, 2, 2, 6],
    ]);
    const names = (ws: tfl.LayerVariable[]) => ws.map((w) => w.originalName.replace('conv_group_1/', '')).sort();
    expect(names(group.trainableWeights)).toEqual([
      'conv1/weight',
      'conv2/weight',
      'norm1/bias',
      'norm2/bias',
      'state_norm/bias',
      'state_project/weight',
    ]);
    expect(names(group.nonTrainableWeights)).toEqual([
      'norm1/running_mean',
      'norm1/running_var',
      'norm1/weight',
      'norm2/running_mean',
      'norm2/running_var',
      'norm2/weight',
      'state_norm/running_mean',
      'state_norm/running_var',
      'state_norm/weight',
    ]);
    expect(group.weights).toHaveLength(15);
    expect(group.conv1.weight.read().shape).toEqual([3, 3, 3, 4]);
    expect(group.stateProject!.weight.read().shape).toEqual([3, 3, 4, 6]);
    group.trainable = false;
    expect(group.trainableWeights).toHaveLength(0);
    expect(group.nonTrainableWeights).toHaveLength(15);
    group.dispose();
  });

  it('has a single output without a state prediction', () => {
    const group = new ConvGroup({ channelsOut: 2 });
    const out = group.apply(tfl.input({ shape: [5, 5, 3] })) as tfl.SymbolicTensor;
    expect(out.shape).toEqual([null, 2, 2, 2]);
    expect(group.weights).toHaveLength(10);
    const y = group.apply(tf.ones([1, 5, 5, 3]), { training: true }) as tf.Tensor;
    expect(y.shape).toEqual([1, 2, 2, 2]);
    y.dispose();
    group.dispose();
  });

  it('passes batchNormMomentum and batchNormEps to all its batch norms, and saves them', async () => {
    const seedDefaults = new ConvGroup({ channelsOut: 2, statePredDim: 2 });
    expect([seedDefaults.batchNormMomentum, seedDefaults.batchNormEps]).toEqual([0.4, 1e-12]);
    const group = new ConvGroup({ name: 'g_bn', channelsOut: 2, statePredDim: 2, seed: 1, batchNormMomentum: 0.1, batchNormEps: 1e-5 });
    expect([group.norm1, group.norm2, group.stateNorm!].map((n) => [n.momentum, n.eps])).toEqual([
      [0.1, 1e-5],
      [0.1, 1e-5],
      [0.1, 1e-5],
    ]);
    // The momentum is what the running statistics move by: from 0, running_mean is momentum * the batch mean.
    const reference = new ConvGroup({ name: 'g_seed', channelsOut: 2, statePredDim: 2, seed: 1 });
    const x = tf.randomNormal([2, 8, 8, 3], 1, 1, 'float32', 4);
    tf.dispose([...(group.apply(x, { training: true }) as tf.Tensor[]), ...(reference.apply(x, { training: true }) as tf.Tensor[])]);
    const moved = await group.norm1.runningMean.read().data();
    const seedMoved = await reference.norm1.runningMean.read().data();
    expect(Array.from(moved).every((v) => v !== 0)).toBe(true);
    moved.forEach((v, i) => expect(v / seedMoved[i]!).toBeCloseTo(0.1 / 0.4, 5));
    const config = group.getConfig();
    expect([config['batchNormMomentum'], config['batchNormEps']]).toEqual([0.1, 1e-5]);
    const rebuilt = ConvGroup.fromConfig(ConvGroup, config) as ConvGroup;
    expect([rebuilt.norm1.momentum, rebuilt.stateNorm!.eps]).toEqual([0.1, 1e-5]);
    x.dispose();
    for (const g of [group, reference]) g.dispose(); // the other two were never built
  });

  it('rejects bad arguments and inputs, naming them', () => {
    expect(() => new ConvGroup({ channelsOut: -2 })).toThrow(/argument 'channelsOut' must be a positive integer, got -2/);
    expect(() => new ConvGroup({ name: 'g', channelsOut: 2, batchNormMomentum: 1.5 })).toThrow(
      "ConvGroup 'g': argument 'batchNormMomentum' must be a number in [0, 1], got 1.5",
    );
    expect(() => new ConvGroup({ name: 'g', channelsOut: 2, batchNormEps: -1 })).toThrow(
      "ConvGroup 'g': argument 'batchNormEps' must be a finite number >= 0, got -1",
    );
    expect(() => new ConvGroup({ channelsOut: 2, statePredDim: 0 })).toThrow(/argument 'statePredDim'/);
    const g = new ConvGroup({ name: 'g', channelsOut: 2, channelsIn: 3, statePredDim: 4 });
    expect(() => g.apply(tf.zeros([1, 8, 8]))).toThrow(/ConvGroup 'g' expects input 'inputs' of rank 4/);
    expect(() => g.apply(tf.zeros([1, 8, 8, 2]))).toThrow(/with 3 channels \(last axis\), got shape \[1,8,8,2\]/);
    expect(() => g.apply(tf.zeros([1, 2, 2, 3]))).toThrow(/at least 4x4 spatially/);
    expect(() => g.apply(tf.zeros([1, 8, 8, 3], 'int32'))).toThrow(/dtype float32, got 'int32'/);
  });
});
