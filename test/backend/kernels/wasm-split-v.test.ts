// The wasm SplitV override (src/backend/kernels/wasm/SplitV.ts): slices through the library's heap-to-heap Slice,
// against the cpu backend and tfjs-backend-wasm's own SplitV (which reads its input back to JavaScript).
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../../src/backend/counter.js';
import { originalKernel } from '../../../src/backend/kernels/install.js';
import { splitVConfig } from '../../../src/backend/kernels/wasm/SplitV.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered } from '../../helpers/kernels.js';
import { liveTensors } from '../../helpers/memory.js';

describeOnBackend('wasm', 'wasm SplitV (through the heap-to-heap Slice), against the cpu backend and tfjs-backend-wasm', () => {
  it('is the registered SplitV once initBackend has run', () => expectRegistered(splitVConfig));

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

  it("gives tfjs-backend-wasm's own SplitV's values", async () => {
    await useBackend('wasm');
    const x = tf.tensor3d(
      Array.from({ length: 6 * 4 * 5 }, (_, i) => Math.sin(i) * 5),
      [6, 4, 5],
    );
    for (const [numOrSizeSplits, axis] of [
      [3, 0],
      [[1, 3], 1],
      [[2, -1, 1], 2],
    ] as Array<[number | number[], number]>) {
      const attrs = { numOrSizeSplits, axis };
      const ours = tf.engine().runKernel('SplitV', { x }, attrs) as unknown as tf.Tensor[];
      const infos = originalKernel('SplitV', 'wasm').kernelFunc({ inputs: { x }, attrs, backend: tf.backend() }) as tf.TensorInfo[];
      const tfjs = infos.map((info) => tf.engine().makeTensorFromTensorInfo(info));
      expect(ours.length).toBe(tfjs.length);
      for (let i = 0; i < ours.length; i++) {
        expect(ours[i]!.shape).toEqual(tfjs[i]!.shape);
        expect(Array.from(await ours[i]!.data()), `${JSON.stringify(numOrSizeSplits)} axis ${axis} part ${i}`).toEqual(
          Array.from(await tfjs[i]!.data()),
        );
      }
      tf.dispose([...ours, ...tfjs]);
    }
    x.dispose();
  });
});
