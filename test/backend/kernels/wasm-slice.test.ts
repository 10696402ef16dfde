import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../../src/backend/counter.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { liveTensors } from '../../helpers/memory.js';

// The wasm Slice override (src/backend/kernels/wasm/Slice.ts) copies heap to heap; these cases compare it
// bit for bit with the cpu backend's slice, for every rank the network and the trainer use.
const CASES: Array<{ shape: number[]; begin: number[]; size: number[] }> = [
  { shape: [7], begin: [2], size: [4] },
  { shape: [5, 6], begin: [1, 2], size: [3, 3] },
  { shape: [5, 6], begin: [2, 0], size: [2, -1] },
  { shape: [4, 5, 6, 3], begin: [1, 1, 2, 0], size: [2, 3, 3, 3] },
  { shape: [4, 5, 6, 3], begin: [0, 1, 1, 1], size: [4, 3, 4, 2] },
  { shape: [4, 5, 6, 3], begin: [2, 0, 0, 0], size: [2, 5, 6, 3] },
  { shape: [2, 3, 2, 4, 3], begin: [1, 0, 1, 1, 0], size: [1, 3, 1, 2, 2] },
  { shape: [3, 4], begin: [1, 1], size: [0, 2] },
];

async function sliceOn(backend: 'cpu' | 'wasm', dtype: 'float32' | 'int32' | 'bool', c: (typeof CASES)[number]) {
  await useBackend(backend);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i * 7 - 40 : Math.sin(i) * 10));
  const x = tf.tensor(values as number[], c.shape, dtype);
  const y = tf.slice(x, c.begin, c.size);
  const out = { shape: y.shape, data: Array.from(await y.data()) };
  tf.dispose([x, y]);
  return out;
}

describeOnBackend('wasm', 'wasm Slice and SplitV (heap to heap), against the cpu backend', () => {
  it('matches the cpu backend exactly, float32, int32 and bool', async () => {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (const c of CASES) {
        const expected = await sliceOn('cpu', dtype, c);
        const actual = await sliceOn('wasm', dtype, c);
        expect(actual, `${dtype} ${JSON.stringify(c)}`).toEqual(expected);
      }
    }
  });

  it('reads nothing back to JavaScript', async () => {
    await useBackend('wasm');
    const x = tf.randomNormal([8, 6, 6, 4]);
    const before = liveTensors();
    const counts = await new KernelCounter().measure(() => {
      tf.slice(x, [2, 1, 0, 0], [4, 4, 6, 4]).dispose();
      tf.slice(x, [1, 0, 0, 1], [2, 6, 6, 2]).dispose();
    });
    expect(counts.byName['Slice']).toBe(2);
    expect(counts.readbackBytes).toBe(0);
    expect(liveTensors()).toBe(before);
    x.dispose();
  });

  it('splits (SplitV) like the cpu backend, through the same heap-to-heap slice, reading nothing back', async () => {
    const values = Array.from({ length: 6 * 4 * 5 }, (_, i) => Math.cos(i) * 3);
    const splitOn = async (backend: 'cpu' | 'wasm', sizes: number | number[], axis: number) => {
      await useBackend(backend);
      const x = tf.tensor3d(values, [6, 4, 5]);
      const parts = tf.split(x, sizes, axis);
      const out = await Promise.all(parts.map(async (p) => ({ shape: p.shape, data: Array.from(await p.data()) })));
      tf.dispose([x, ...parts]);
      return out;
    };
    for (const [sizes, axis] of [
      [2, 0],
      [[1, 3], 1],
      [[2, -1, 1], 2],
      [3, -3],
    ] as Array<[number | number[], number]>) {
      expect(await splitOn('wasm', sizes, axis), `${JSON.stringify(sizes)} axis ${axis}`).toEqual(await splitOn('cpu', sizes, axis));
    }
    await useBackend('wasm');
    const logits = tf.randomNormal([16, 10]);
    const before = liveTensors();
    const counts = await new KernelCounter().measure(() => tf.dispose(tf.split(logits, [8, 8], 0)));
    expect(counts.byName['SplitV']).toBe(1);
    expect(counts.readbackBytes).toBe(0);
    expect(liveTensors()).toBe(before);
    logits.dispose();
  });
});
