import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { batchCrop } from '../../src/augment/crop.js';
import { batchCutmix } from '../../src/augment/cutmix.js';
import { batchFlipLR } from '../../src/augment/flip.js';
import { randomSquareMasks } from '../../src/augment/masks.js';
import { reflectPad } from '../../src/augment/pad.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

/** Images whose every element is distinct and exact in float32: value = flat index. */
function codedImages(shape: [number, number, number, number]): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.range(0, tf.util.sizeFromShape(shape), 1, 'float32'), shape) as tf.Tensor4D);
}

/** Host reference of torch's F.pad(..., 'reflect') on NHWC data. */
function reflectPadHost(x: number[][][][], a: number): number[][][][] {
  const h = x[0]!.length;
  const w = x[0]![0]!.length;
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  return x.map((img) =>
    Array.from({ length: h + 2 * a }, (_, y) => Array.from({ length: w + 2 * a }, (_, xx) => img[reflect(y - a, h)]![reflect(xx - a, w)]!)),
  );
}

/** Bounding box and count of true cells of one [H, W, 1] boolean mask. */
function squareOf(mask: number[][][]): { top: number; left: number; rows: number; cols: number; count: number } {
  let top = Infinity,
    left = Infinity,
    bottom = -1,
    right = -1,
    count = 0;
  mask.forEach((row, y) =>
    row.forEach((v, x) => {
      if (v[0]) {
        count++;
        top = Math.min(top, y);
        left = Math.min(left, x);
        bottom = Math.max(bottom, y);
        right = Math.max(right, x);
      }
    }),
  );
  return { top, left, rows: bottom - top + 1, cols: right - left + 1, count };
}

describeEachBackend('augmentations', (backend) => {
  it('reflectPad matches torch reflect padding', async () => {
    const x = codedImages([2, 4, 5, 3]);
    const padded = reflectPad(x, 2);
    expect(padded.shape).toEqual([2, 8, 9, 3]);
    expect(await padded.array()).toEqual(reflectPadHost((await x.array()) as number[][][][], 2));
    expect(() => reflectPad(x, 4)).toThrow(/amount 4 must be smaller than the image's height and width \(4x5\)/);
    expect(() => reflectPad(tf.zeros([4, 4]), 1)).toThrow(/reflectPad expects NHWC images/);
    tf.dispose([x, padded]);
  });

  for (const size of [3, 4]) {
    it(`randomSquareMasks, ${size % 2 ? 'odd' : 'even'} size ${size}: one ${size}x${size} square per image, the seed's centre range`, async () => {
      const before = liveTensors();
      const images = tf.zeros([200, 8, 8, 2]);
      const masks = randomSquareMasks(images, size, new DeviceRandom(7));
      expect(masks.shape).toEqual([200, 8, 8, 1]);
      expect(masks.dtype).toBe('bool');
      const tops = new Map<number, number>();
      const lefts = new Map<number, number>();
      for (const m of (await masks.array()) as number[][][][]) {
        const sq = squareOf(m);
        expect(sq).toMatchObject({ rows: size, cols: size, count: size * size });
        tops.set(sq.top, (tops.get(sq.top) ?? 0) + 1);
        lefts.set(sq.left, (lefts.get(sq.left) ?? 0) + 1);
      }
      // Seed: centres in [size//2 - even, 8 - size//2 - even), so the first row is in [0, 8 - 2 * (size//2)):
      // 0..5 for size 3, and 0..3 for size 4 (whose last row is never covered, as in the seed).
      const starts = Array.from({ length: 8 - 2 * Math.floor(size / 2) }, (_, i) => i);
      for (const seen of [tops, lefts]) {
        expect([...seen.keys()].sort((a, b) => a - b)).toEqual(starts);
        // Uniform: 200 draws over k values, each count within 5 binomial sigmas.
        const p = 1 / starts.length;
        for (const c of seen.values()) expect(Math.abs(c - 200 * p)).toBeLessThan(5 * Math.sqrt(200 * p * (1 - p)));
      }
      tf.dispose([images, masks]);
      expect(liveTensors()).toBe(before);
    });
  }

  it('batchCrop: every crop is a contiguous window of the padded image at the seed offsets (0..3 for 36 -> 32)', async () => {
    const before = liveTensors();
    const [b, h, w, c] = [96, 12, 12, 2];
    const padded = codedImages([b, h, w, c]);
    const crops = batchCrop(padded, 8, new DeviceRandom(11));
    expect(crops.shape).toEqual([b, 8, 8, 2]);
    const data = await crops.data();
    const offsets = new Map<string, number>();
    for (let n = 0; n < b; n++) {
      const first = data[n * 8 * 8 * c]!;
      const y0 = Math.floor(first / (w * c)) % h;
      const x0 = Math.floor(first / c) % w;
      expect(Math.floor(first / (h * w * c)), 'crop comes from its own image').toBe(n);
      for (let i = 0; i < 8; i++)
        for (let j = 0; j < 8; j++)
          for (let k = 0; k < c; k++) {
            expect(data[((n * 8 + i) * 8 + j) * c + k]).toBe(((n * h + y0 + i) * w + x0 + j) * c + k);
          }
      offsets.set(`${y0},${x0}`, (offsets.get(`${y0},${x0}`) ?? 0) + 1);
    }
    // 12 - 2 * 4 = 4 start values per axis: offsets 0..3 (the seed never uses 4 for an even crop).
    for (const key of offsets.keys()) {
      const [y0, x0] = key.split(',').map(Number);
      expect(y0).toBeLessThanOrEqual(3);
      expect(x0).toBeLessThanOrEqual(3);
    }
    expect(offsets.size).toBeGreaterThanOrEqual(14); // of 16 equally likely pairs in 96 draws
    tf.dispose([padded, crops]);
    expect(liveTensors()).toBe(before);
  });

  it('batchCrop stays exact past 2^24 pixel rows (a whole padded CIFAR-10 training set has 6.5e7)', async () => {
    // 13,500 one-channel 36x36 images: 17.5M pixel rows. Image n holds (n mod 1000) * 1296 + pixel index, exact
    // in float32, so a pixel taken from the wrong place shows. tfjs-backend-webgpu 4.22's Gather reads indices
    // as float32, which misplaced pixels of every image past the 12,945th when the crop indexed the set flat.
    const n = 13_500;
    const images = tf.tidy(
      () =>
        tf.add(
          tf.reshape(tf.mul(tf.mod(tf.range(0, n, 1, 'float32'), 1000), 1296), [n, 1, 1, 1]),
          tf.reshape(tf.range(0, 36 * 36, 1, 'float32'), [1, 36, 36, 1]),
        ) as tf.Tensor4D,
    );
    const before = liveTensors();
    const crops = batchCrop(images, 32, new DeviceRandom(3));
    const tail = tf.slice(crops, [n - 40, 0, 0, 0], [40, 32, 32, 1]);
    const values = await tail.data();
    // Each of the last 40 crops is a 32x32 window of its own image at one offset (0..3 each way).
    for (let k = 0; k < 40; k++) {
      const base = ((n - 40 + k) % 1000) * 1296;
      const at = (y: number, x: number) => values[(k * 32 + y) * 32 + x]!;
      const corner = at(0, 0) - base;
      const [top, left] = [Math.floor(corner / 36), corner % 36];
      expect(top >= 0 && top <= 3 && left >= 0 && left <= 3, `image ${n - 40 + k} offset ${top},${left}`).toBe(true);
      for (let y = 0; y < 32; y += 5) {
        for (let x = 0; x < 32; x += 3) expect(at(y, x)).toBe(base + (top + y) * 36 + left + x);
      }
    }
    tf.dispose([crops, tail]);
    expect(liveTensors()).toBe(before);
    images.dispose();
  });

  it('batchFlipLR: exact mirrors, about half of them', async () => {
    const before = liveTensors();
    const n = 400;
    const x = codedImages([n, 2, 3, 1]);
    const y = batchFlipLR(x, new DeviceRandom(3));
    const xs = (await x.array()) as number[][][][];
    const ys = (await y.array()) as number[][][][];
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      const mirror = xs[i]!.map((row) => [...row].reverse());
      const same = JSON.stringify(ys[i]) === JSON.stringify(xs[i]);
      const isMirror = JSON.stringify(ys[i]) === JSON.stringify(mirror);
      expect(same || isMirror, `image ${i} is the original or its mirror`).toBe(true);
      if (isMirror) flipped++;
    }
    // Binomial(400, 0.5): 200 +- 5 sigma (sigma = 10).
    expect(Math.abs(flipped - n / 2)).toBeLessThan(50);
    const none = batchFlipLR(x, new DeviceRandom(3), 0);
    const all = batchFlipLR(x, new DeviceRandom(3), 1);
    expect(await none.array()).toEqual(xs);
    expect(await all.array()).toEqual(xs.map((img) => img.map((row) => [...row].reverse())));
    tf.dispose([x, y, none, all]);
    expect(liveTensors()).toBe(before);
  });

  for (const size of [3, 4]) {
    it(`batchCutmix, patch ${size}: a ${size}x${size} patch from a permuted partner, labels mixed by area`, async () => {
      const before = liveTensors();
      const [b, h, w] = [24, 8, 8];
      const x = codedImages([b, h, w, 1]);
      const targets = tf.tidy(() => tf.cast(tf.oneHot(tf.range(0, b, 1, 'int32'), b), 'float32')) as tf.Tensor2D;
      const out = batchCutmix(x, targets, size, new DeviceRandom(5));
      const xs = (await x.array()) as number[][][][];
      const imgs = (await out.images.array()) as number[][][][];
      const labels = (await out.targets.array()) as number[][];
      const area = Math.fround((size * size) / (h * w));
      const partners: number[] = [];
      for (let i = 0; i < b; i++) {
        const row = labels[i]!;
        const others = row.map((v, k) => [v, k] as const).filter(([v, k]) => k !== i && v !== 0);
        const p = others.length ? others[0]![1] : i;
        expect(others.length).toBeLessThanOrEqual(1);
        partners.push(p);
        if (p !== i) {
          // Label weights are exactly the pasted area fraction.
          expect(row[p]).toBeCloseTo(area, 7);
          expect(row[i]).toBeCloseTo(1 - area, 7);
          // The pixels that changed are one size x size square, copied from the partner at the same place.
          const changed = imgs[i]!.map((r, yy) => r.map((v, xx) => [v[0] !== xs[i]![yy]![xx]![0] ? 1 : 0]));
          const sq = squareOf(changed);
          expect(sq).toMatchObject({ rows: size, cols: size, count: size * size });
          expect(sq.top + size).toBeLessThanOrEqual(h - (size % 2 ? 0 : 1));
          for (let yy = 0; yy < h; yy++)
            for (let xx = 0; xx < w; xx++) {
              const inside = changed[yy]![xx]![0] === 1;
              expect(imgs[i]![yy]![xx]![0]).toBe(inside ? xs[p]![yy]![xx]![0] : xs[i]![yy]![xx]![0]);
            }
        } else {
          expect(row[i]).toBeCloseTo(1, 7);
          expect(imgs[i]).toEqual(xs[i]);
        }
      }
      // The partners form a permutation of the batch.
      expect([...partners].sort((a, c) => a - c)).toEqual(Array.from({ length: b }, (_, i) => i));
      expect(partners.filter((p, i) => p !== i).length).toBeGreaterThan(b / 2);
      tf.dispose([x, targets, out.images, out.targets]);
      expect(liveTensors()).toBe(before);
    });
  }

  it('batchCutmix with patch 0 is off (copies)', async () => {
    const x = codedImages([3, 4, 4, 1]);
    const t = tf.eye(3);
    const out = batchCutmix(x, t, 0, new DeviceRandom(1));
    expect(await out.images.array()).toEqual(await x.array());
    expect(await out.targets.array()).toEqual(await t.array());
    expect(() => batchCutmix(x, tf.eye(2), 2, new DeviceRandom(1))).toThrow(/targets \[3, classes\]/);
    tf.dispose([x, t, out.images, out.targets]);
  });

  it('batchCutmix refuses a patch the images cannot hold and an empty batch before drawing or allocating anything (hostile review items 7, 18)', () => {
    const x = codedImages([3, 4, 4, 1]);
    const t = tf.eye(3);
    const empty = tf.zeros([0, 4, 4, 1]);
    const noTargets = tf.zeros([0, 3]);
    const random = new DeviceRandom(3);
    const state = random.getState();
    const before = liveTensors();
    // An even side needs a spare row for the seed's square masks: 4x4 images take at most 3.
    for (const patchSize of [4, 5]) {
      expect(() => lib.batchCutmix(x, t, patchSize, random)).toThrow(
        `batchCutmix: patchSize ${patchSize} does not fit the 4x4 images; it must be at most 3 (the seed's square masks need a spare row for an even side; 0 turns cutmix off)`,
      );
    }
    expect(() => lib.batchCutmix(empty, noTargets, 2, random)).toThrow(
      "batchCutmix expects at least one image in 'images', got shape [0,4,4,1]",
    );
    expect(liveTensors()).toBe(before);
    expect(random.getState()).toEqual(state);
    tf.dispose([x, t, empty, noTargets]);
  });

  it('is seedable and reads nothing back (all on the backend)', async () => {
    const x = codedImages([16, 12, 12, 3]);
    const t = tf.tidy(() => tf.cast(tf.oneHot(tf.range(0, 16, 1, 'int32'), 10), 'float32'));
    const pipeline = (rng: DeviceRandom) =>
      tf.tidy(() => {
        const cropped = batchCrop(x, 8, rng);
        const flipped = batchFlipLR(cropped, rng);
        const mixed = batchCutmix(flipped, t, 3, rng);
        return [mixed.images, mixed.targets];
      });
    const counter = new KernelCounter().start();
    let outA: tf.Tensor[] = [];
    const counts = await counter.measure(() => {
      outA = pipeline(new DeviceRandom(99));
    });
    counter.stop();
    if (backend === 'webgpu') {
      // The GPU is a separate memory: nothing comes back, and only scalars and index ranges go up
      // (never image-sized data: 16*12*12*3 floats would be 27 KB).
      expect(counts.readbacks).toBe(0);
      expect(counts.uploadBytes).toBeLessThan(1024);
    } else if (backend === 'wasm') {
      // The wasm heap is host memory; its gather kernel reads its own index tensor there to bounds-check.
      expect(counts.uploadBytes).toBeLessThan(1024);
    }
    // (cpu: host memory is the backend's memory, every kernel output counts as an 'upload'.)
    const outB = pipeline(new DeviceRandom(99));
    const outC = pipeline(new DeviceRandom(100));
    expect(await outB[0]!.data()).toEqual(await outA[0]!.data());
    expect(await outB[1]!.data()).toEqual(await outA[1]!.data());
    expect(await outC[0]!.data()).not.toEqual(await outA[0]!.data());
    tf.dispose([x, t, ...outA, ...outB, ...outC]);
  });
});

describeEachBackend('augmentations without a generator', () => {
  it('draw from the global generator, which setGlobalSeed makes reproducible; anything else is a clear TypeError', async () => {
    // The public entry, as a JavaScript user would call it.
    const { batchCrop, batchCutmix, batchFlipLR, epochBatches, randomSquareMasks, setGlobalSeed, simulateDiscreteAction } = await import(
      '../../src/index.js'
    );
    const before = liveTensors();
    const padded = codedImages([16, 36, 36, 3]);
    const targets = tf.tidy(() => tf.cast(tf.oneHot(tf.range(0, 16, 1, 'int32'), 16), 'float32'));
    const drawAll = async () => {
      const crop = batchCrop(padded, 32);
      const flip = batchFlipLR(crop);
      const masks = randomSquareMasks(crop, 8);
      const mixed = batchCutmix(crop, targets, 8);
      const noisy = simulateDiscreteAction(crop);
      const batches = [...epochBatches({ images: padded as tf.Tensor4D, targets: targets as tf.Tensor2D }, { batchSize: 8 })];
      const values = await Promise.all(
        [crop, flip, masks, mixed.images, mixed.targets, noisy, ...batches.flatMap((b) => [b.inputs, b.targets])].map((t) => t.data()),
      );
      tf.dispose([crop, flip, masks, mixed.images, mixed.targets, noisy, ...batches.flatMap((b) => [b.inputs, b.targets])]);
      return values.map((v) => Array.from(v as Float32Array));
    };
    setGlobalSeed(123);
    const first = await drawAll();
    setGlobalSeed(123);
    const again = await drawAll();
    expect(again).toEqual(first);
    // A crop of the padded image at one of the seed's offsets, so the generator really drew (not zeros).
    expect(first[0]!.length).toBe(16 * 32 * 32 * 3);
    expect(first[0]!.some((v) => v > 0)).toBe(true);
    setGlobalSeed(124);
    expect(await drawAll()).not.toEqual(first);

    expect(() => batchCrop(padded, 32, 42 as never)).toThrow(
      new TypeError(
        'batchCrop: the generator must be a DeviceRandom (or left out to use the global one, see setGlobalSeed), got number 42',
      ),
    );
    expect(() => batchFlipLR(padded, 0.3 as never)).toThrow('batchFlipLR: the generator must be a DeviceRandom');
    expect(() =>
      epochBatches({ images: padded as tf.Tensor4D, targets: targets as tf.Tensor2D }, { batchSize: 8, random: {} as never }),
    ).toThrow(
      'epochBatches (args.random): the generator must be a DeviceRandom (or left out to use the global one, see setGlobalSeed), got Object',
    );
    expect(() => setGlobalSeed(1.5)).toThrow('setGlobalSeed: seed must be a safe integer, got 1.5');
    tf.dispose([padded, targets]);
    expect(liveTensors()).toBe(before);
  });
});
