import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { simulateDiscreteAction, unbiasedStd } from '../../src/ops/discrete-action.js';
import { DeviceRandom, RANDOM_KERNEL, drawOnHost } from '../../src/ops/random.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';

// Golden values: tools/reference/ops_fixtures.py (no arguments): the seed's simulate_discrete_action
// with the noise fed in, and d sum(w * y) / dx, which reaches x only through x.std().
interface Enc {
  shape: number[];
  data: number[];
}
interface Case {
  noiseStd: number;
  detachStd: boolean;
  x: Enc;
  noise: Enc;
  w: Enc;
  std: number;
  y: Enc;
  gradReachesX: boolean;
  grad: Enc;
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/ops/discrete_action.json', import.meta.url), 'utf8')) as { cases: Case[] };
const t = (e: Enc): tf.Tensor => tf.tensor(e.data, e.shape, 'float32');

describeEachBackendAndWebGPUKernelSet('simulateDiscreteAction', (backend) => {
  for (const c of fx.cases) {
    it(`matches PyTorch: shape [${c.x.shape}], noiseStd ${c.noiseStd}${c.detachStd ? ', detachStd' : ''} (forward and gradient, 1e-4)`, async () => {
      const before = liveTensors();
      const x = tf.tidy(() => tf.variable(t(c.x), true));
      const noise = t(c.noise);
      const w = t(c.w);
      const options = { noise, noiseStd: c.noiseStd, detachStd: c.detachStd };
      const y = simulateDiscreteAction(x, options);
      expect(maxRelativeError(await y.data(), c.y.data)).toBeLessThanOrEqual(1e-4);
      const std = unbiasedStd(x);
      expect(Math.abs((await std.data())[0]! - c.std) / c.std).toBeLessThan(1e-5);
      const loss = () => tf.sum(tf.mul(simulateDiscreteAction(x, options), w)) as tf.Scalar;
      if (c.gradReachesX) {
        const { value, grads } = tf.variableGrads(loss, [x]);
        expect(maxRelativeError(await grads[x.name]!.data(), c.grad.data)).toBeLessThanOrEqual(1e-4);
        tf.dispose([value, grads[x.name]!]);
      } else {
        // Fully cut: tfjs refuses to differentiate a loss that no variable reaches.
        // (tidy: tfjs leaves the loss value behind when it throws.)
        tf.tidy(() => {
          expect(() => tf.variableGrads(loss, [x])).toThrow(/Cannot find a connection between any variable and the result/);
        });
      }
      tf.dispose([x, noise, w, y, std]);
      expect(liveTensors()).toBe(before);
    });
  }

  it('upstream weights learn only through the std scalar (and not at all with detachStd)', async () => {
    const before = liveTensors();
    const x = tf.tidy(() => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 1));
    const w = tf.tidy(() => tf.variable(tf.randomNormal([3, 3, 3, 4], 0, 0.3, 'float32', 2), true, `da_conv_${backend}`));
    const down = tf.tidy(() => tf.variable(tf.randomNormal([1, 1, 1, 4], 0, 1, 'float32', 3), true, `da_down_${backend}`));
    const counter = new KernelCounter();
    for (const detachStd of [false, true]) {
      const random = new DeviceRandom(9);
      let names: string[] = [];
      const counts = await counter.measure(() => {
        const { value, grads } = tf.variableGrads(() =>
          tf.tidy(() => {
            const h = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
            return tf.sum(tf.square(tf.mul(simulateDiscreteAction(h, { random, detachStd }), down))) as tf.Scalar;
          }),
        );
        names = Object.keys(grads).sort();
        tf.dispose([value, ...Object.values(grads)]);
      });
      if (detachStd) {
        expect(names).toEqual([down.name]);
        expect(counts.backwardByName[tf.Conv2DBackpropFilter]).toBeUndefined();
      } else {
        expect(names).toEqual([down.name, w.name].sort());
        expect(counts.backwardByName[tf.Conv2DBackpropFilter]).toBe(1);
      }
      expect(counts.byName[RANDOM_KERNEL]).toBe(1);
    }
    tf.dispose([x, w, down]);
    expect(liveTensors()).toBe(before);
  });

  it('draws the noise on the backend: only scalar constants are uploaded, whatever the size of x', async () => {
    const x = tf.tidy(() => tf.randomNormal([4, 8, 8, 16], 0, 1, 'float32', 4));
    const random = new DeviceRandom(3);
    simulateDiscreteAction(x, { random }).dispose(); // warm-up (webgpu compiles here)
    const counts = await new KernelCounter().measure(() => simulateDiscreteAction(x, { random }).dispose());
    expect(counts.byName[RANDOM_KERNEL]).toBe(1);
    if (backend !== 'cpu') expect(counts.uploadBytes).toBeLessThanOrEqual(16);
    expect(counts.readbackBytes).toBe(0);
    x.dispose();
  });

  it('draws its noise from the given generator or seed: y - x = noiseStd * std(x) * N(0, 1)', async () => {
    const x = tf.tensor([
      [1, -2, 3.5],
      [0.25, 4, -1],
    ]);
    const std = (await unbiasedStd(x).data())[0]!;
    const expected = drawOnHost(77, 0, [2, 3], 'normal');
    const fromSeed = simulateDiscreteAction(x, { seed: 77, noiseStd: 0.5 });
    const random = new DeviceRandom(77);
    const fromRandom = simulateDiscreteAction(x, { random, noiseStd: 0.5 });
    const xs = await x.data();
    for (const y of [await fromSeed.data(), await fromRandom.data()]) {
      for (let i = 0; i < 6; i++) expect(y[i]! - xs[i]!).toBeCloseTo(0.5 * std * expected[i]!, 5);
    }
    expect(random.getState().counter).toBe(1);
    const again = simulateDiscreteAction(x, { seed: 77, noiseStd: 0.5 });
    expect([...(await again.data())]).toEqual([...(await fromSeed.data())]);
    const next = simulateDiscreteAction(x, { random, noiseStd: 0.5 });
    expect([...(await next.data())]).not.toEqual([...(await fromRandom.data())]);
    const plain = simulateDiscreteAction(x);
    expect(plain.shape).toEqual([2, 3]);
    const zero = simulateDiscreteAction(x, { noiseStd: 0 });
    expect([...(await zero.data())]).toEqual([...xs]);
    tf.dispose([x, fromSeed, fromRandom, again, next, plain, zero]);
  });

  it('unbiasedStd divides by n - 1, over everything or over axes', async () => {
    const x = tf.tensor([
      [1, 2, 3, 4],
      [2, 2, 2, 10],
    ]);
    const all = unbiasedStd(x);
    const rows = unbiasedStd(x, 1, true);
    expect((await all.data())[0]).toBeCloseTo(Math.sqrt(57.5 / 7), 5);
    expect(rows.shape).toEqual([2, 1]);
    const r = await rows.data();
    expect(r[0]).toBeCloseTo(Math.sqrt(5 / 3), 5);
    expect(r[1]).toBeCloseTo(4, 5);
    tf.dispose([x, all, rows]);
  });

  it('keeps the std finite for inputs of 1e19 to 1e30, whose squares overflow float32: value and gradient (hostile review item 18)', async () => {
    const shape = [2, 4, 4, 8];
    const n = 2 * 4 * 4 * 8;
    const base = seededUniform(n, 31, -1, 3);
    const noise = tf.tensor(seededUniform(n, 32, -2, 2), shape);
    const w = tf.tensor(seededUniform(n, 33), shape);
    const [noiseValues, wValues] = [(await noise.data()) as Float32Array, (await w.data()) as Float32Array];
    const before = liveTensors();
    for (const scale of [1e19, 1e25, 1e30]) {
      const x = tf.tensor(
        base.map((v) => v * scale),
        shape,
      );
      const xs = Float64Array.from(await x.data());
      // float64 references: torch.std, then x + std * noise and d sum(w * y) / dx through the std alone.
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
      const noiseDot = wValues.reduce((a, v, i) => a + v * noiseValues[i]!, 0);
      const std32 = lib.unbiasedStd(x);
      const v = tf.variable(x);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(lib.simulateDiscreteAction(v, { noise }), w)) as tf.Scalar, [v]);
      const y = lib.simulateDiscreteAction(x, { noise });
      const got = { std: (await std32.data())[0]!, y: await y.data(), dx: await Object.values(grads)[0]!.data() };
      expect(Math.abs(got.std - std) / std, `std at ${scale}`).toBeLessThanOrEqual(1e-5);
      expect(
        maxRelativeError(
          got.y,
          xs.map((v, i) => v + std * noiseValues[i]!),
        ),
        `value at ${scale}`,
      ).toBeLessThanOrEqual(1e-5);
      expect(
        maxRelativeError(
          got.dx,
          xs.map((v) => (noiseDot * (v - mean)) / ((n - 1) * std)),
        ),
        `gradient at ${scale}`,
      ).toBeLessThanOrEqual(1e-4);
      tf.dispose([x, v, std32, value, y, ...Object.values(grads)]);
    }
    expect(liveTensors()).toBe(before);
    tf.dispose([noise, w]);
  });

  it('rejects bad input, naming the argument', () => {
    const x = tf.zeros([2, 3]);
    const xi = tf.zeros([2, 3], 'int32');
    const one = tf.zeros([1]);
    const wrong = tf.zeros([3, 2]);
    expect(() => simulateDiscreteAction(xi)).toThrow(/argument 'x' must be float32, got dtype 'int32'/);
    expect(() => simulateDiscreteAction(one)).toThrow(/argument 'x' needs at least 2 elements .* got shape \[1\]/);
    expect(() => simulateDiscreteAction(x, { noiseStd: -1 })).toThrow(/option 'noiseStd' must be a finite number >= 0, got -1/);
    expect(() => simulateDiscreteAction(x, { noiseStd: NaN })).toThrow(/option 'noiseStd'/);
    expect(() => simulateDiscreteAction(x, { noise: wrong })).toThrow(
      /option 'noise' must be a float32 tensor of x's shape \[2,3\], got float32 \[3,2\]/,
    );
    expect(() => simulateDiscreteAction(x, { seed: 1, random: new DeviceRandom(1) })).toThrow(/option 'random' or option 'seed', not both/);
    expect(() => simulateDiscreteAction(x, { seed: 0.5 })).toThrow(/seed must be a safe integer/);
    expect(() => unbiasedStd(xi)).toThrow(/unbiasedStd: argument 'x' must be float32/);
    tf.dispose([x, xi, one, wrong]);
  });
});
