import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceRandom, RANDOM_KERNEL, drawOnHost } from '../../src/ops/random.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { backendAvailable, describeEachBackend, useBackend, type TestBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

async function read(t: tf.Tensor): Promise<Float32Array | Int32Array> {
  const values = (await t.data()) as Float32Array | Int32Array;
  t.dispose();
  return values;
}

function moments(v: ArrayLike<number>): { mean: number; variance: number; skew: number; kurtosis: number } {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i]!;
  mean /= v.length;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v[i]! - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= v.length;
  m3 /= v.length;
  m4 /= v.length;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

function fraction(v: ArrayLike<number>, pred: (x: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (pred(v[i]!)) n++;
  return n / v.length;
}

/** Five standard errors of a proportion p estimated from n draws. */
const tol = (p: number, n: number): number => 5 * Math.sqrt((p * (1 - p)) / n);

// Software WebGPU reads back slowly; 2e4 draws still pin the moments to a few percent.
const drawsOn = (backend: TestBackend): number => (backend === 'webgpu' ? 20_000 : 100_000);

describeEachBackend('DeviceRandom', (backend) => {
  const N = drawsOn(backend);
  let before = 0;
  beforeAll(() => {
    before = liveTensors();
  });
  afterAll(() => {
    expect(liveTensors(), 'tensors leaked by this block').toBe(before);
  });

  it(`uniform: ${N} draws in [0, 1) with uniform mean, variance and quantiles`, async () => {
    const rng = new DeviceRandom(1);
    const t = rng.uniform([N]);
    expect(t.dtype).toBe('float32');
    const v = await read(t);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThan(1);
    const m = moments(v);
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / N));
    expect(Math.abs(m.variance - 1 / 12)).toBeLessThan(0.01 / 12 + 5 * Math.sqrt(1 / 180 / N));
    for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) {
      expect(Math.abs(fraction(v, (x) => x < q) - q), `P(u < ${q})`).toBeLessThan(tol(q, N));
    }
    let lag = 0;
    for (let i = 1; i < N; i++) lag += (v[i]! - 0.5) * (v[i - 1]! - 0.5);
    expect(Math.abs((lag / (N - 1)) * 12), 'lag-1 correlation').toBeLessThan(5 / Math.sqrt(N));
  });

  it(`normal: ${N} draws with mean 0, variance 1, no skew, kurtosis 3 and normal tail masses`, async () => {
    const rng = new DeviceRandom(2);
    const v = await read(rng.normal([N]));
    const m = moments(v);
    expect(Math.abs(m.mean)).toBeLessThan(5 / Math.sqrt(N));
    expect(Math.abs(m.variance - 1)).toBeLessThan(5 * Math.sqrt(2 / N));
    expect(Math.abs(m.skew)).toBeLessThan(5 * Math.sqrt(6 / N));
    expect(Math.abs(m.kurtosis - 3)).toBeLessThan(5 * Math.sqrt(24 / N));
    for (const [z, p] of [
      [0.5, 0.3829],
      [1, 0.6827],
      [1.96, 0.95],
      [3, 0.9973],
    ] as const) {
      expect(Math.abs(fraction(v, (x) => Math.abs(x) < z) - p), `P(|z| < ${z})`).toBeLessThan(tol(p, N));
    }
    expect(
      fraction(v, (x) => x < -1),
      'P(z < -1)',
    ).toBeCloseTo(0.1587, 1);
    // Neighbours share a Box-Muller pair (cos, sin): independent in value and in size.
    const pairs = N / 2;
    let xy = 0;
    let sq = 0;
    for (let p = 0; p < pairs; p++) {
      xy += v[2 * p]! * v[2 * p + 1]!;
      sq += (v[2 * p]! ** 2 - 1) * (v[2 * p + 1]! ** 2 - 1);
    }
    expect(Math.abs(xy / pairs), 'corr(z[2p], z[2p+1])').toBeLessThan(5 / Math.sqrt(pairs));
    // (z^2 - 1 has variance 2, so the product's mean has standard error 2 / sqrt(pairs).)
    expect(Math.abs(sq / pairs), 'cov(z[2p]^2, z[2p+1]^2)').toBeLessThan((5 * 2) / Math.sqrt(pairs));
  });

  it('randInt: int32 values cover [low, high) evenly, negative bounds included', async () => {
    const rng = new DeviceRandom(3);
    const t = rng.randInt([N / 4, 4], -3, 4);
    expect(t.dtype).toBe('int32');
    expect(t.shape).toEqual([N / 4, 4]);
    const v = await read(t);
    const counts = new Map<number, number>();
    for (const x of v) counts.set(x, (counts.get(x) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    for (const [value, count] of counts) {
      expect(Math.abs(count / N - 1 / 7), `frequency of ${value}`).toBeLessThan(tol(1 / 7, N));
    }
    const wide = await read(rng.randInt([1000], -(2 ** 31), 2 ** 31));
    expect(fraction(wide, (x) => x < 0)).toBeGreaterThan(0.4);
    expect(fraction(wide, (x) => x >= 2 ** 30)).toBeGreaterThan(0.15);
  });

  it('permutation: a permutation of 0..n-1 on the backend, different per call', async () => {
    const rng = new DeviceRandom(4);
    const n = 1000;
    const a = await read(rng.permutation(n));
    const b = await read(rng.permutation(n));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect([...b].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    let fixed = 0;
    let same = 0;
    for (let i = 0; i < n; i++) {
      if (a[i] === i) fixed++;
      if (a[i] === b[i]) same++;
    }
    // A uniform permutation has one fixed point on average.
    expect(fixed).toBeLessThan(8);
    expect(same).toBeLessThan(8);
    const small = rng.permutation(1);
    const empty = rng.permutation(0);
    expect(small.dtype).toBe('int32');
    expect([...(await read(small))]).toEqual([0]);
    expect(empty.shape).toEqual([0]);
    empty.dispose();
  });

  it('permutation: every position is uniform over 0..4 across counters', async () => {
    const rng = new DeviceRandom(5);
    const draws = 600;
    const v = await read(tf.tidy(() => tf.stack(Array.from({ length: draws }, () => rng.permutation(5)))));
    for (let pos = 0; pos < 5; pos++) {
      for (let value = 0; value < 5; value++) {
        let c = 0;
        for (let d = 0; d < draws; d++) if (v[d * 5 + pos] === value) c++;
        expect(Math.abs(c / draws - 0.2), `P(perm[${pos}] = ${value})`).toBeLessThan(tol(0.2, draws));
      }
    }
  });

  it('is a pure function of (seed, counter, index): same seed repeats, counters and seeds differ', async () => {
    const a = new DeviceRandom(7);
    const b = new DeviceRandom(7);
    const c = new DeviceRandom(8);
    const a1 = await read(a.uniform([64]));
    const a2 = await read(a.uniform([64]));
    expect([...(await read(b.uniform([64])))]).toEqual([...a1]);
    expect([...a2]).not.toEqual([...a1]);
    expect([...(await read(c.uniform([64])))]).not.toEqual([...a1]);
    // The shape does not change the values at a given flat index.
    const shaped = await read(new DeviceRandom(7).uniform([4, 4, 4]));
    expect([...shaped]).toEqual([...a1]);
    expect(a.getState()).toEqual({ seed: 7, counter: 2 });
  });

  it('getState / setState replay the stream', async () => {
    const rng = new DeviceRandom(123456789012);
    rng.uniform([3]).dispose();
    const state = rng.getState();
    const first = await read(rng.normal([2, 5]));
    const firstInt = await read(rng.randInt([7], 0, 10));
    rng.setState(state);
    expect([...(await read(rng.normal([2, 5])))]).toEqual([...first]);
    expect([...(await read(rng.randInt([7], 0, 10)))]).toEqual([...firstInt]);
    const other = new DeviceRandom(0);
    other.setState(state);
    expect([...(await read(other.normal([2, 5])))]).toEqual([...first]);
  });

  it('matches the host reference bit for bit (normal within f32 rounding of log, cos and sqrt)', async () => {
    const rng = new DeviceRandom(-99);
    const shape = [3, 5, 7];
    const cases = [
      { t: rng.uniform(shape), ref: drawOnHost(-99, 0, shape, 'uniform') },
      { t: rng.normal(shape), ref: drawOnHost(-99, 1, shape, 'normal') },
      { t: rng.randInt(shape, -5, 1000), ref: drawOnHost(-99, 2, shape, 'int', -5, 1005) },
    ];
    for (const [i, { t, ref }] of cases.entries()) {
      const v = await read(t);
      if (i === 1) {
        for (let k = 0; k < ref.length; k++) expect(Math.abs(v[k]! - ref[k]!)).toBeLessThan(1e-5 * (1 + Math.abs(ref[k]!)));
      } else {
        expect([...v]).toEqual([...ref]);
      }
    }
  });

  it('draws on the backend: one DataflowRandom kernel and no upload per draw', async () => {
    const rng = new DeviceRandom(11);
    rng.normal([4, 8, 8, 16]).dispose(); // warm-up (webgpu compiles its pipeline here)
    const counter = new KernelCounter();
    const counts = await counter.measure(() => {
      tf.dispose([rng.uniform([4, 8, 8, 16]), rng.normal([4, 8, 8, 16]), rng.randInt([4096], 0, 32)]);
    });
    expect(counts.byName[RANDOM_KERNEL]).toBe(3);
    if (backend !== 'cpu') expect(counts.uploadBytes).toBe(0);
    const perm = await counter.measure(() => rng.permutation(256).dispose());
    expect(perm.byName[RANDOM_KERNEL]).toBe(1);
    expect(perm.byName['TopK']).toBe(1);
    if (backend !== 'cpu') expect(perm.uploadBytes).toBe(0);
  });

  it('rejects bad arguments with messages naming them', () => {
    expect(() => new DeviceRandom(1.5)).toThrow(/seed must be a safe integer, got 1.5/);
    const rng = new DeviceRandom(0);
    expect(() => rng.uniform([2, -1])).toThrow(/uniform: shape must be an array of non-negative integers, got \[2,-1\]/);
    expect(() => rng.normal([1.5])).toThrow(/normal: shape/);
    expect(() => rng.randInt([2], 3, 3)).toThrow(/randInt: low and high .* got low=3, high=3/);
    expect(() => rng.randInt([2], 0, 2 ** 31 + 1)).toThrow(/randInt/);
    expect(() => rng.permutation(-1)).toThrow(/permutation: n must be a non-negative integer/);
    expect(() => rng.setState({ seed: 0, counter: -1 })).toThrow(/setState: counter must be a non-negative/);
    expect(rng.getState()).toEqual({ seed: 0, counter: 0 });
  });
});

describe('DeviceRandom across backends', () => {
  const available = (['cpu', 'wasm', 'webgpu'] as const).filter(backendAvailable);

  it(`gives the same numbers on ${available.join(', ')}`, async () => {
    const results: Record<string, Array<Float32Array | Int32Array>> = {};
    for (const backend of available) {
      await useBackend(backend);
      const rng = new DeviceRandom(2024);
      rng.setState({ seed: 2024, counter: 2 ** 40 + 3 }); // a counter past 32 bits
      results[backend] = [
        await read(rng.uniform([2, 3, 4, 5])),
        await read(rng.normal([2, 3, 4, 5])),
        await read(rng.randInt([2, 60], 0, 7)),
        await read(rng.permutation(300)),
      ];
    }
    const [first, ...rest] = available;
    for (const backend of rest) {
      const [u, n, i, p] = results[backend]!;
      const [u0, n0, i0, p0] = results[first!]!;
      expect([...u!], `uniform on ${backend}`).toEqual([...u0!]);
      for (let k = 0; k < n0!.length; k++)
        expect(Math.abs(n![k]! - n0![k]!), `normal[${k}] on ${backend}`).toBeLessThan(1e-5 * (1 + Math.abs(n0![k]!)));
      expect([...i!], `randInt on ${backend}`).toEqual([...i0!]);
      expect([...p!], `permutation on ${backend}`).toEqual([...p0!]);
    }
  });

  it('falls back to drawing on the host where a backend has no kernel (same numbers)', async () => {
    await useBackend('cpu');
    const kernel = tf.getKernel(RANDOM_KERNEL, 'cpu')!;
    tf.unregisterKernel(RANDOM_KERNEL, 'cpu');
    try {
      const counter = new KernelCounter();
      let values: Float32Array | Int32Array = new Float32Array();
      const counts = await counter.measure(async () => {
        values = await read(new DeviceRandom(31).uniform([10]));
      });
      expect(counts.byName[RANDOM_KERNEL]).toBeUndefined();
      expect(counts.uploadBytes).toBe(40);
      expect([...values]).toEqual([...drawOnHost(31, 0, [10], 'uniform')]);
    } finally {
      tf.registerKernel(kernel);
    }
  });
});
