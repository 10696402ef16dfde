import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../../src/backend/counter.js';
import { sliceConfig } from '../../../src/backend/kernels/wasm/Slice.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered, runTfjsKernel } from '../../helpers/kernels.js';
import { liveTensors } from '../../helpers/memory.js';

// The wasm Slice override (src/backend/kernels/wasm/Slice.ts) copies heap to heap; these cases compare it
// bit for bit with the cpu backend's slice and with tfjs-backend-wasm's own, for every rank the network and the
// trainer use. SplitV, which slices through it, is in wasm-split-v.test.ts.
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

describeOnBackend('wasm', 'wasm Slice (heap to heap), against the cpu backend and tfjs-backend-wasm', () => {
  it('is the registered Slice once initBackend has run', () => expectRegistered(sliceConfig));

  it('matches the cpu backend exactly, float32, int32 and bool', async () => {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      for (const c of CASES) {
        const expected = await sliceOn('cpu', dtype, c);
        const actual = await sliceOn('wasm', dtype, c);
        expect(actual, `${dtype} ${JSON.stringify(c)}`).toEqual(expected);
      }
    }
  });

  it("gives tfjs-backend-wasm's own Slice's values, float32 and int32", async () => {
    await useBackend('wasm');
    for (const dtype of ['float32', 'int32'] as const) {
      for (const c of CASES) {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const x = tf.tensor(
          Array.from({ length: n }, (_, i) => i * 3 - 50),
          c.shape,
          dtype,
        );
        const attrs = { begin: c.begin, size: c.size };
        const ours = tf.engine().runKernel('Slice', { x }, attrs) as tf.Tensor;
        const tfjs = runTfjsKernel('Slice', { x }, attrs);
        expect(ours.shape, `${dtype} ${JSON.stringify(c)}`).toEqual(tfjs.shape);
        expect(Array.from(await ours.data()), `${dtype} ${JSON.stringify(c)}`).toEqual(Array.from(await tfjs.data()));
        tf.dispose([x, ours, tfjs]);
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
});
