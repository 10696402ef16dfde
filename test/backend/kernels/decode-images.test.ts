import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { compactImages, normalisationTable } from '../../../src/data/compact.js';
import { describeEachBackend } from '../../helpers/backends.js';
import { liveTensors } from '../../helpers/memory.js';

// DataflowDecodeImages (src/backend/kernels/{cpu,wasm,webgpu}/DecodeImages.ts) on every backend, against a
// per-pixel reference written from the kernel's definition (names.ts): windows reaching into the reflection,
// flips, images in every part, and cutmix squares anywhere, at the edges included.

const N = 11;
const H = 6;
const W = 4;
const C = 3;
const PAD = 2;
const MEAN = [0.4, 0.5, 0.6];
const STD = [0.2, 0.25, 0.3];

let s = 12345;
const next = (m: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % m;
const bytes = Uint8Array.from({ length: N * H * W * C }, () => next(256));
const lut = normalisationTable(MEAN, STD);

function reflect(q: number, extent: number): number {
  return q < 0 ? -q : q >= extent ? 2 * (extent - 1) - q : q;
}

/** The definition, one output value at a time. */
function reference(rows: number[][], size: number, mixSize: number): Float32Array {
  const out = new Float32Array(rows.length * size * size * C);
  let o = 0;
  for (const row of rows) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const mixed = mixSize > 0 && y >= row[8]! && y < row[8]! + mixSize && x >= row[9]! && x < row[9]! + mixSize;
        const [image, top, left, flip] = mixed ? row.slice(4, 8) : row.slice(0, 4);
        const py = reflect(top! + y - PAD, H);
        const px = reflect(left! + (flip ? size - 1 - x : x) - PAD, W);
        for (let c = 0; c < C; c++) out[o++] = lut[c * 256 + bytes[((image! * H + py) * W + px) * C + c]!]!;
      }
    }
  }
  return out;
}

/** Random plan rows: windows anywhere in the padded image, flips, and with `mixSize` partners and squares reaching every edge. */
function randomRows(batch: number, size: number, mixSize: number): number[][] {
  return Array.from({ length: batch }, () => {
    const own = [next(N), next(H + 2 * PAD - size + 1), next(W + 2 * PAD - size + 1), next(2)];
    if (mixSize === 0) return own;
    const partner = [next(N), next(H + 2 * PAD - size + 1), next(W + 2 * PAD - size + 1), next(2)];
    return [...own, ...partner, next(size - mixSize + 1), next(size - mixSize + 1)];
  });
}

describeEachBackend('DataflowDecodeImages', () => {
  it('decodes windows, flips and cutmix squares as defined, bit for bit, across parts', async () => {
    const before = liveTensors();
    for (const maxPartBytes of [undefined, 3 * H * W * C]) {
      const set = compactImages(bytes, [N, H, W, C], { mean: MEAN, std: STD, pad: PAD, maxPartBytes });
      expect(set.parts.length).toBe(maxPartBytes ? 4 : 1);
      for (const [size, mixSize] of [
        [5, 0],
        [4, 0],
        [5, 2],
        [5, 5],
        [3, 1],
      ] as const) {
        const rows = randomRows(13, size, mixSize);
        const plan = tf.tensor2d(rows, [rows.length, mixSize > 0 ? 10 : 4], 'int32');
        const decoded = set.decode(plan, size, mixSize);
        expect(decoded.shape).toEqual([13, size, size, C]);
        const got = (await decoded.data()) as Float32Array;
        expect(Array.from(got), `size ${size}, mixSize ${mixSize}`).toEqual(Array.from(reference(rows, size, mixSize)));
        tf.dispose([plan, decoded]);
      }
      const wrong = tf.zeros([2, 4], 'int32') as tf.Tensor2D;
      expect(() => set.decode(wrong, 4, 2)).toThrow('DataflowDecodeImages: plan must be int32 [batch, 10] for mixSize 2, got int32 [2,4]');
      expect(() => set.decode(wrong, 4, 5)).toThrow('CompactImages.decode: mixSize must be an integer in [0, 4], got 5');
      wrong.dispose();
      set.dispose();
    }
    expect(liveTensors()).toBe(before);
  });
});
