import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  CIFAR10_FILES,
  CIFAR10_IMAGE_BYTES,
  cifar10Dataset,
  cifar10Stats,
  cifar10ToBackend,
  parseCifar10Batch,
} from '../../src/data/cifar10.js';
import { loadCifar10 } from '../../src/data/cifar10-node.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { maxRelativeError } from '../helpers/assert.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const REAL_DIR = '/work/shared/data/cifar10';
const HAVE_REAL = CIFAR10_FILES.every((f) => existsSync(join(REAL_DIR, f)));

// Made by tools/reference/data_fixtures.py (PyTorch 1.13): see its "source" field.
const FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/data/cifar10-prep.json', import.meta.url), 'utf8'));
const S = FIXTURE.synthetic;
const train = parseCifar10Batch(Buffer.from(S.trainBase64, 'base64'), 'fixture-train.bin');
const evalSplit = parseCifar10Batch(Buffer.from(S.evalBase64, 'base64'), 'fixture-eval.bin');

/** Float64 sums of each (image, channel) plane of an NHWC array, [N, C] row-major. */
function planeSums(values: Float32Array, shape: number[]): number[] {
  const [n, h, w, c] = shape as [number, number, number, number];
  const sums = new Array(n * c).fill(0);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) sums[i * c + k] += values[(i * h * w + p) * c + k]!;
  }
  return sums;
}

function sampleAt(values: Float32Array, index: number[]): number[] {
  return index.map((i) => values[i]!);
}

describeEachBackend('CIFAR-10 on the backend', (backend) => {
  it('matches the PyTorch preparation (ToTensor, std_mean, normalise, one-hot, reflect pad 2)', async () => {
    const before = liveTensors();
    const onBackend = cifar10ToBackend(train, evalSplit);
    const { train: t, eval: e, stats } = onBackend;
    expect(t.images.shape).toEqual(S.trainShape);
    expect(e.images.shape).toEqual(S.evalShape);
    expect(t.images.dtype).toBe('float32');
    expect(t.targets.dtype).toBe('float32');
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(stats.mean[c]! - S.mean[c]) / S.mean[c]).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(stats.std[c]! - S.std[c]) / S.std[c]).toBeLessThanOrEqual(1e-6);
    }
    const tv = (await t.images.data()) as Float32Array;
    const ev = (await e.images.data()) as Float32Array;
    // Every padded border value of image 0 (channel 1) and random interior points, element by element.
    expect(maxRelativeError(sampleAt(tv, S.trainSampleIndex), S.trainSampleValues), `${backend} train samples`).toBeLessThanOrEqual(1e-5);
    expect(maxRelativeError(sampleAt(ev, S.evalSampleIndex), S.evalSampleValues), `${backend} eval samples`).toBeLessThanOrEqual(1e-5);
    // Whole-tensor check: per (image, channel) sums (1296 or 1024 values each), floor 1 against cancellation.
    expect(maxRelativeError(planeSums(tv, t.images.shape), S.trainSums, 1)).toBeLessThanOrEqual(1e-4);
    expect(maxRelativeError(planeSums(ev, e.images.shape), S.evalSums, 1)).toBeLessThanOrEqual(1e-4);
    expect(Array.from(await t.targets.data())).toEqual(S.trainTargets);
    expect(Array.from(await e.targets.data())).toEqual(S.evalTargets);
    tf.dispose([t.images, t.targets, e.images, e.targets]);
    expect(liveTensors()).toBe(before);
  });

  it('gives the same tensors whatever the chunk size, without leaking', async () => {
    const before = liveTensors();
    const whole = cifar10ToBackend(train, evalSplit, { padAmount: 0 });
    // Chunks of one image: nine chunk results, more than one WebGPU concat binds, so merged in two levels there.
    const n = 9;
    const many = { images: new Uint8Array(n * CIFAR10_IMAGE_BYTES), labels: new Uint8Array(n), count: n };
    for (let i = 0; i < n; i++) {
      many.images.set(train.images.subarray((i % 3) * CIFAR10_IMAGE_BYTES, ((i % 3) + 1) * CIFAR10_IMAGE_BYTES), i * CIFAR10_IMAGE_BYTES);
      many.labels[i] = train.labels[i % 3]!;
    }
    const chunked = cifar10ToBackend(many, evalSplit, { chunkSize: 1, padAmount: 0, stats: whole.stats });
    const a = (await whole.train.images.data()) as Float32Array;
    const b = (await chunked.train.images.data()) as Float32Array;
    expect(b.length).toBe((a.length / 3) * n);
    for (let i = 0; i < n; i++) {
      const src = (i % 3) * 3072;
      expect(b.subarray(i * 3072, (i + 1) * 3072)).toEqual(a.subarray(src, src + 3072));
    }
    expect(await chunked.eval.images.data()).toEqual(await whole.eval.images.data());
    tf.dispose([whole.train.images, whole.train.targets, whole.eval.images, whole.eval.targets]);
    tf.dispose([chunked.train.images, chunked.train.targets, chunked.eval.images, chunked.eval.targets]);
    expect(liveTensors()).toBe(before);
  });

  it('does the work on the backend: one upload per chunk, no read-back', () => {
    const counter = new KernelCounter();
    counter.start();
    const out = cifar10ToBackend(train, evalSplit);
    const counts = counter.stop();
    tf.dispose([out.train.images, out.train.targets, out.eval.images, out.eval.targets]);
    expect(counts.readbacks).toBe(0);
    expect(counts.byName[tf.MirrorPad]).toBe(1);
    expect(counts.byName[tf.Transpose]).toBe(2);
    // The cpu backend's kernel outputs are host-computed, so they count as uploads there.
    if (backend === 'cpu') return;
    // Pixels cross once as float32, labels once as int32; mean and std are tiny.
    const pixels = (train.count + evalSplit.count) * CIFAR10_IMAGE_BYTES * 4;
    expect(counts.uploadBytes).toBeGreaterThanOrEqual(pixels);
    expect(counts.uploadBytes).toBeLessThan(pixels + 1024);
  });

  it('validates its options', () => {
    expect(() => cifar10ToBackend(train, evalSplit, { padAmount: 32 })).toThrow(
      'cifar10ToBackend: padAmount must be an integer in 0..31 (reflect padding needs pad < image size), got 32',
    );
    expect(() => cifar10ToBackend(train, evalSplit, { chunkSize: 0 })).toThrow(
      'cifar10ToBackend: chunkSize must be a positive integer, got 0',
    );
    const broken = { ...train, count: 7 };
    expect(() => cifar10ToBackend(broken, evalSplit)).toThrow(
      'cifar10ToBackend: train split must hold count >= 1 images of 3072 bytes and one label each, got count 7, 9216 image bytes, 3 labels',
    );
  });

  it('refuses, on WebGPU, a split larger than one storage-buffer binding', async (ctx) => {
    if (backend !== 'webgpu') ctx.skip('only WebGPU limits the size of one binding');
    const limit = (tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBufferBindingSize;
    const perImage = 36 * 36 * 3 * 4;
    const fits = Math.floor(limit / perImage);
    if (fits > 100_000) ctx.skip(`this device binds ${limit} bytes: the whole training set fits`);
    const big = { images: new Uint8Array((fits + 1) * CIFAR10_IMAGE_BYTES), labels: new Uint8Array(fits + 1), count: fits + 1 };
    const before = liveTensors();
    expect(() => cifar10ToBackend(big, evalSplit)).toThrow(
      `cifar10ToBackend: the training split (${fits + 1} images of 36x36x3 float32, ${(fits + 1) * perImage} bytes) exceeds ` +
        `this WebGPU device's maxStorageBufferBindingSize of ${limit} bytes, so no kernel could read it whole; ` +
        `keep at most ${fits} images (trainLimit) or use a device or backend with a larger limit`,
    );
    expect(liveTensors()).toBe(before);
  });

  it.skipIf(!HAVE_REAL)(
    `puts the first 8 real images on the backend via loadCifar10${HAVE_REAL ? '' : ` (skipped: no CIFAR-10 in ${REAL_DIR})`}`,
    async () => {
      const before = liveTensors();
      const data = await loadCifar10({ dir: REAL_DIR, trainLimit: 8, evalLimit: 8 });
      const out = data.toBackend();
      expect(out.train.images.shape).toEqual([8, 36, 36, 3]);
      expect(out.eval.images.shape).toEqual([8, 32, 32, 3]);
      expect(out.stats).toEqual(cifar10Stats(data.train));
      // Unpadded centre of image 0, pixel (row 5, column 7), each channel, from the raw NCHW bytes.
      const v = (await out.train.images.data()) as Float32Array;
      for (let c = 0; c < 3; c++) {
        const raw = data.train.images[c * 1024 + 5 * 32 + 7]! / 255;
        const expected = (raw - out.stats.mean[c]!) / out.stats.std[c]!;
        expect(v[((0 * 36 + 5 + 2) * 36 + 7 + 2) * 3 + c]).toBeCloseTo(expected, 5);
      }
      const targets = (await out.eval.targets.data()) as Float32Array;
      for (let i = 0; i < 8; i++) expect(targets[i * 10 + data.eval.labels[i]!]).toBe(1);
      expect(targets.reduce((s, x) => s + x, 0)).toBe(8);
      tf.dispose([out.train.images, out.train.targets, out.eval.images, out.eval.targets]);
      expect(liveTensors()).toBe(before);
    },
  );

  it('cifar10Dataset.toBackend passes its options through', async () => {
    const data = cifar10Dataset(train, evalSplit, 'fixture');
    const out = data.toBackend({ padAmount: 1 });
    expect(out.train.images.shape).toEqual([3, 34, 34, 3]);
    tf.dispose([out.train.images, out.train.targets, out.eval.images, out.eval.targets]);
  });
});
