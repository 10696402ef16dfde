import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { NetworkEMA, emaDecayAt, isFrozenBySeed } from '../../src/train/ema.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

// Golden values from the seed's NetworkEMA on a tiny torch module whose state dict is named like
// the seed's (tools/reference/train_fixtures.py, no arguments): five updates with the seed's decays,
// the live net moved by fixed deltas (running stats included) before each update after the first.
interface Fixture {
  names: string[];
  shapes: Record<string, number[]>;
  initial: Record<string, number[]>;
  totalSteps: number;
  decayBase: number;
  everyN: number;
  decayPow: number;
  steps: { step: number; decay: number; deltas: Record<string, number[]>; ema: Record<string, number[]>; live: Record<string, number[]> }[];
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/train/ema.json', import.meta.url), 'utf8')) as Fixture;
const FROZEN = new Set([
  'initial_block/whiten/weight',
  'conv_group_1/norm1/weight',
  'conv_group_1/norm1/running_mean',
  'conv_group_1/norm1/running_var',
]);

/** A layer holding weights named like the seed's state dict, trainable as the seed marks them. */
class TinyNet extends tfl.layers.Layer {
  static className = 'TinyNetForEmaTest';
  override build(_inputShape: tfl.Shape | tfl.Shape[]): void {
    for (const name of fx.names) {
      const init = tfl.initializers.zeros();
      this.addWeight(name, fx.shapes[name]!, 'float32', init, undefined, !FROZEN.has(name));
    }
    this.built = true;
  }
  override computeOutputShape(inputShape: tfl.Shape): tfl.Shape {
    return inputShape;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    // Any function of every weight will do: x * sum of all weights.
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      return tf.mul(x, tf.addN(this.weights.map((w) => tf.sum(w.read()))));
    });
  }
}

function disposeNet(net: TinyNet): void {
  for (const w of net.weights) w.dispose();
}

function makeNet(): TinyNet {
  const net = new TinyNet({});
  net.build([]);
  tf.tidy(() => {
    for (const w of net.weights) w.write(tf.tensor(fx.initial[w.originalName]!, fx.shapes[w.originalName]!));
  });
  return net;
}

describeEachBackend('NetworkEMA matches the seed (torch)', () => {
  it('five updates: EMA values and copy-back into the live net', async () => {
    const net = makeNet();
    const before = liveTensors();
    const ema = new NetworkEMA(net);
    // The seed's copy-back rule, by name.
    expect(ema.excludedNames.map((n) => n.replace(/_\d+$/, '')).sort()).toEqual([
      'conv_group_1/norm1/weight',
      'initial_block/whiten/weight',
    ]);
    for (const s of fx.steps) {
      tf.tidy(() => {
        for (const w of net.weights) {
          const d = s.deltas[w.originalName];
          if (d) w.write(tf.add(w.read(), tf.tensor(d, w.shape as number[])));
        }
      });
      const decay = emaDecayAt(s.step, fx.totalSteps, { decayBase: fx.decayBase, everyN: fx.everyN, pow: fx.decayPow });
      expect(Math.abs(decay - s.decay) / s.decay).toBeLessThan(1e-12);
      ema.update(net, decay);
      const snap = ema.snapshot();
      for (const w of net.weights) {
        const name = w.originalName;
        const emaErr = maxRelativeError(await snap[w.name]!.data(), s.ema[name]!);
        expect(emaErr, `ema ${name} at step ${s.step}`).toBeLessThanOrEqual(5e-7);
        const liveErr = maxRelativeError(await w.read().data(), s.live[name]!);
        expect(liveErr, `live ${name} at step ${s.step}`).toBeLessThanOrEqual(5e-7);
      }
      tf.dispose(snap);
    }
    // Excluded entries keep their live values (they differ from the EMA after the deltas).
    const last = fx.steps[fx.steps.length - 1]!;
    expect(maxRelativeError(last.live['initial_block/whiten/weight']!, last.ema['initial_block/whiten/weight']!)).toBeGreaterThan(1e-3);
    ema.dispose();
    expect(liveTensors()).toBe(before);
    disposeNet(net);
  });

  it('withWeights evaluates with the EMA values and restores the live ones (sync, async, throw)', async () => {
    const net = makeNet();
    const x = tf.ones([2, 3]);
    const run = async () => {
      const y = net.apply(x) as tf.Tensor;
      const v = await y.data();
      y.dispose();
      return v;
    };
    const original = await run();
    const ema = new NetworkEMA(net);
    tf.tidy(() => {
      for (const w of net.weights) w.write(tf.add(w.read(), 0.5));
    });
    const moved = await run();
    expect(maxRelativeError(moved, original)).toBeGreaterThan(1e-2);
    const before = liveTensors();
    const viaEma = ema.withWeights(net, () => net.apply(x) as tf.Tensor);
    expect(maxRelativeError(await viaEma.data(), original)).toBeLessThanOrEqual(1e-6);
    viaEma.dispose();
    expect(maxRelativeError(await run(), moved)).toBeLessThanOrEqual(1e-6);
    const asyncValues = await ema.withWeights(net, run);
    expect(maxRelativeError(asyncValues, original)).toBeLessThanOrEqual(1e-6);
    expect(() =>
      ema.withWeights(net, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    await expect(
      ema.withWeights(net, async () => {
        throw new Error('later');
      }),
    ).rejects.toThrow('later');
    expect(maxRelativeError(await run(), moved)).toBeLessThanOrEqual(1e-6);
    expect(liveTensors()).toBe(before);
    ema.dispose();
    disposeNet(net);
    x.dispose();
  });

  it('works on a LayersModel (weights = trainable + non-trainable, e.g. batch-norm moving stats)', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ units: 3, inputShape: [2] }), tfl.layers.batchNormalization()],
    });
    const ema = new NetworkEMA(model);
    expect(ema.names).toHaveLength(6); // kernel, bias, gamma, beta, moving_mean, moving_variance
    const mean = model.weights.find((w) => w.name.includes('moving_mean'))!;
    tf.tidy(() => {
      mean.write(tf.fill([3], 2));
    });
    ema.update(model, 0.75);
    // Running statistics are averaged and copied back too: 0.75 * 0 + 0.25 * 2.
    expect(Array.from(await mean.read().data())).toEqual([0.5, 0.5, 0.5]);
    ema.dispose();
    model.dispose();
  });

  it('pairs by order and says so when the network does not match', () => {
    const net = makeNet();
    const ema = new NetworkEMA(net);
    const other = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [2] })] });
    expect(() => ema.update(other, 0.5)).toThrow(/the network has 2 float weights, the EMA was made from 7/);
    const swapped = { weights: [net.weights[1]!, net.weights[0]!, ...net.weights.slice(2)] };
    // LayersModel/Layer order: trainable weights first, then the non-trainable ones.
    expect(() => ema.update(swapped, 0.5)).toThrow(
      new RegExp(`weight 0 is '${net.weights[1]!.name}' \\[.*the EMA holds '${net.weights[0]!.name}'`),
    );
    expect(() => ema.update(net, 1.5)).toThrow(/decay must be a number in \[0, 1\], got 1.5/);
    expect(() => new NetworkEMA({} as never)).toThrow(/expected a network exposing `weights`/);
    ema.dispose();
    expect(() => ema.update(net, 0.5)).toThrow(/disposed/);
    other.dispose();
    disposeNet(net);
  });
});

describe('EMA helpers', () => {
  it('isFrozenBySeed is the seed rule', () => {
    expect(isFrozenBySeed('conv_group_1/norm1/weight')).toBe(true);
    expect(isFrozenBySeed('initial_block/state_norm/weight')).toBe(true);
    expect(isFrozenBySeed('initial_block/whiten/weight')).toBe(true);
    expect(isFrozenBySeed('conv_group_1/norm1/bias')).toBe(false);
    expect(isFrozenBySeed('conv_group_1/norm1/running_mean')).toBe(false);
    expect(isFrozenBySeed('conv_group_1/conv1/weight')).toBe(false);
  });
  it('refuses a decay given as a string (** and >= would coerce it)', () => {
    expect(() => emaDecayAt(1, 10, { decayBase: '0.95' as never })).toThrow(
      "emaDecayAt: decayBase must be a non-negative finite number, got '0.95'",
    );
    expect(() => emaDecayAt(1, 10, { decayBase: 1.5 })).toThrow('emaDecayAt: decayBase must be in [0, 1], got 1.5');
    const net = tfl.sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [1] })] });
    const ema = new NetworkEMA(net);
    expect(() => ema.update(net, '0.5' as never)).toThrow("NetworkEMA.update: decay must be a number in [0, 1], got '0.5'");
    ema.dispose();
    net.dispose();
  });

  it("refuses a totalSteps that is not a positive integer, and a step past the schedule's end (hostile review item 18)", () => {
    const net = tfl.sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [1] })] });
    const before = liveTensors();
    for (const totalSteps of [Number.NaN, -5, 2.5]) {
      expect(() => new lib.NetworkEMA(net, { decaySchedule: { totalSteps } })).toThrow(
        `NetworkEMA: option 'decaySchedule.totalSteps' must be a positive integer (the run's optimiser steps), got ${totalSteps}`,
      );
    }
    expect(liveTensors()).toBe(before);
    // The seed's decay runs over the training steps, (step / total) in [0, 1], as its OneCycle does (torch refuses to step
    // past total_steps): a step beyond is outside the schedule, and its "decay" of 6.19 would make the EMA diverge.
    expect(() => lib.emaDecayAt(20, 10)).toThrow('emaDecayAt: step must be a number in [0, totalSteps] = [0, 10], got 20');
    expect(lib.emaDecayAt(10, 10)).toBeCloseTo(0.95 ** 5, 15);
    net.dispose();
  });

  it('emaDecayAt follows 0.95^5 * (step/total)^3', () => {
    expect(emaDecayAt(581, 581)).toBeCloseTo(0.95 ** 5, 15);
    expect(emaDecayAt(290, 581)).toBeCloseTo(0.95 ** 5 * (290 / 581) ** 3, 15);
    expect(emaDecayAt(0, 581)).toBe(0);
    expect(() => emaDecayAt(1, 0)).toThrow(/totalSteps/);
  });
});
