import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { fitWhitening } from '../../src/init/whitening.js';
import { WhiteningConv } from '../../src/layers/whitening.js';
import { convTolerance, describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { loadFixture, toTensor, values, type Encoded } from '../layers/fixtures.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

interface WhiteningFixture {
  numImages: number;
  chunkSize: number;
  eps: number;
  images: Encoded;
  permutation: number[];
  chunks: Array<{ eigenvalues: Encoded; eigenvectors: Encoded }>;
  eigenvalues: Encoded;
  weightCanonical: Encoded;
  weightRaw: Encoded;
  covarianceEigenvalues: Encoded;
  weightCovariance: Encoded;
  forwardInput: Encoded;
  forwardOutput: Encoded;
}
// Golden values: tools/reference/layers_fixtures.py (the seed's get_patches / get_whitening_parameters /
// init_whitening_conv / set_whitening_conv on 12 images 3x6x6, chunks of 4, torch's randperm), default args.
const fx = loadFixture<WhiteningFixture>('whitening.json');
const D = 12;
// The covariance is float32 on the backend, the reference float64: an entry error δ (~1e-6 of the largest
// eigenvalue) moves eigenvector k by ~δ/gap_k, so the fitted weights agree to 3e-4, the eigenvalues to 1e-5.
const WEIGHT_RTOL = 3e-4;

/** float64 unbiased covariance of all 2x2 patches (components ordered channel, row, column) of NHWC float32 images. */
function patchCovarianceF64(x: Float32Array, n: number, h: number, w: number, c: number): Float64Array {
  const d = c * 4;
  const sum = new Float64Array(d);
  const prod = new Float64Array(d * d);
  const p = new Float64Array(d);
  let count = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i + 1 < h; i++) {
      for (let j = 0; j + 1 < w; j++) {
        for (let ch = 0; ch < c; ch++) {
          for (let di = 0; di < 2; di++)
            for (let dj = 0; dj < 2; dj++) p[ch * 4 + di * 2 + dj] = x[((b * h + i + di) * w + j + dj) * c + ch]!;
        }
        for (let a = 0; a < d; a++) {
          sum[a]! += p[a]!;
          for (let e = 0; e < d; e++) prod[a * d + e]! += p[a]! * p[e]!;
        }
        count++;
      }
    }
  }
  return prod.map((v, k) => (v - (sum[Math.floor(k / d)]! * sum[k % d]!) / count) / (count - 1));
}

describeEachBackend('fitWhitening', (backend) => {
  it('the covariance of a large chunk is within 1e-5 of a float64 reference (issue 20 item 4: wasm was 7.1e-4 off)', async () => {
    // CIFAR-like: normalised bytes, so patches are strongly correlated and the mean is off zero.
    const n = backend === 'webgpu' ? 400 : 2000;
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const host = new Float32Array(n * 32 * 32 * 3);
    for (let i = 0; i < host.length; i += 3) {
      const base = next();
      for (let ch = 0; ch < 3; ch++) host[i + ch] = Math.fround((Math.floor((0.8 * base + 0.2 * next()) * 256) / 255 - 0.45) / 0.25);
    }
    const images = tf.tensor4d(host, [n, 32, 32, 3]);
    const layer = new WhiteningConv({ name: 'whiten_large' });
    const fit = await fitWhitening(layer, images, { chunkSize: n, shuffle: false });
    const reference = patchCovarianceF64(host, n, 32, 32, 3);
    let worst = 0;
    for (let k = 0; k < D * D; k++) worst = Math.max(worst, Math.abs(fit.chunks[0]!.covariance[k]! - reference[k]!));
    expect(worst).toBeLessThanOrEqual(1e-5);
    images.dispose();
    layer.dispose();
  }, 120_000);

  it('matches torch (canonical signs, eigenpair averaging): weights, eigenvalues, forward; reads back only the covariances', async () => {
    const images = toTensor(fx.images) as tf.Tensor4D;
    const layer = new WhiteningConv({ name: 'whiten' });
    layer.apply(tfl.input({ shape: [6, 6, 3] }));
    const before = liveTensors();
    const counter = new KernelCounter().start();
    const fit = await fitWhitening(layer, images, { chunkSize: fx.chunkSize, permutation: fx.permutation, signMode: 'canonical' });
    const counts = counter.stop();
    // Built through apply: the weight carries the layer's name.
    expect(layer.weights.map((w) => w.originalName)).toEqual(['whiten/weight']);
    expect(layer.trainableWeights).toHaveLength(0);
    // Per image one d-vector and one 12x12 float32 product sum come back (added in float64 on the host);
    // patches never do (an image's would be 25·12·4 bytes). wasm's gather also reads its int32 indices
    // (2 passes x 12); cpu kernels read host buffers, so cpu is not checked.
    if (backend !== 'cpu') expect(counts.readbackBytes - fx.numImages * (D + D * D) * 4).toBeLessThanOrEqual(2 * fx.numImages * 4);
    expect(maxRelativeError(fit.eigenvalues, values(fx.eigenvalues))).toBeLessThanOrEqual(1e-5);
    expect(maxRelativeError(await layer.weight.read().data(), values(fx.weightCanonical))).toBeLessThanOrEqual(WEIGHT_RTOL);
    const x = toTensor(fx.forwardInput);
    const y = layer.apply(x) as tf.Tensor;
    expect(y.shape).toEqual(fx.forwardOutput.shape);
    expect(maxRelativeError(await y.data(), values(fx.forwardOutput))).toBeLessThanOrEqual(convTolerance(WEIGHT_RTOL));
    tf.dispose([x, y]);
    expect(liveTensors()).toBe(before);
    images.dispose();
    layer.dispose();
  });

  it("raw signs (the seed's plain averaging) equal torch's where the solvers' signs agree, and average the sign-aligned torch eigenvectors", async () => {
    const images = toTensor(fx.images) as tf.Tensor4D;
    const layer = new WhiteningConv();
    const fit = await fitWhitening(layer, images, { chunkSize: fx.chunkSize, permutation: fx.permutation, signMode: 'raw' });
    const weight = await layer.weight.read().data();
    const expectedRaw = values(fx.weightRaw);
    for (let k = 0; k < D; k++) {
      // Sign of our chunk-c eigenvector k relative to torch's.
      const signs = fit.chunks.map((c, ci) => {
        let dot = 0;
        for (let j = 0; j < D; j++) dot += c.eigenvectors[k * D + j]! * fx.chunks[ci]!.eigenvectors.data[k * D + j]!;
        expect(Math.abs(dot)).toBeCloseTo(1, 4);
        return Math.sign(dot);
      });
      // Our raw average = mean over chunks of the sign-aligned torch eigenvectors.
      for (let j = 0; j < D; j++) {
        const expected = fx.chunks.reduce((s, c, ci) => s + signs[ci]! * c.eigenvectors.data[k * D + j]!, 0) / fx.chunks.length;
        expect(fit.eigenvectors[k * D + j]).toBeCloseTo(expected, 4);
      }
      if (signs.every((s) => s === signs[0])) {
        // Filter k of the weight ([2,2,3,24], output channel last) equals torch's raw one times the common sign.
        for (let p = 0; p < 2 * 2 * 3; p++) {
          expect(weight[p * 2 * D + k]).toBeCloseTo(signs[0]! * expectedRaw[p * 2 * D + k]!, 4);
        }
      }
    }
    images.dispose();
    layer.dispose();
  });

  it("average: 'covariance' matches torch (mean covariance, one eigh, canonical signs)", async () => {
    const images = toTensor(fx.images) as tf.Tensor4D;
    const layer = new WhiteningConv();
    const fit = await fitWhitening(layer, images, {
      chunkSize: fx.chunkSize,
      permutation: fx.permutation,
      average: 'covariance',
      signMode: 'canonical',
    });
    expect(maxRelativeError(fit.eigenvalues, values(fx.covarianceEigenvalues))).toBeLessThanOrEqual(1e-5);
    expect(maxRelativeError(await layer.weight.read().data(), values(fx.weightCovariance))).toBeLessThanOrEqual(WEIGHT_RTOL);
    images.dispose();
    layer.dispose();
  });
});

describe('fitWhitening options and errors', () => {
  it('shuffles reproducibly with a seed and uses numExamples images; batching does not change the result', async () => {
    const images = toTensor(fx.images) as tf.Tensor4D;
    const a = new WhiteningConv();
    const b = new WhiteningConv();
    const fa = await fitWhitening(a, images, { chunkSize: 4, seed: 5, numExamples: 8 });
    const fb = await fitWhitening(b, images, { chunkSize: 4, seed: 5, numExamples: 8, batchSize: 1 });
    expect(Array.from(fa.permutation)).toEqual(Array.from(fb.permutation));
    expect(Array.from(fa.permutation).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(Array.from(fa.permutation)).not.toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(fa.chunks).toHaveLength(2);
    // Float32 summation order differs with the batch size; the smallest eigenvalue's gap bounds the agreement.
    expect(maxRelativeError(await a.weight.read().data(), await b.weight.read().data())).toBeLessThanOrEqual(1e-3);
    images.dispose();
    a.dispose();
    b.dispose();
  });

  it('builds an unbuilt layer without leaving a tensor behind (hostile review item 7)', async () => {
    const layer = new lib.WhiteningConv({ name: 'unbuilt', seed: 1 });
    const images = tf.randomNormal([4, 6, 6, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const before = liveTensors();
    await lib.fitWhitening(layer, images, { chunkSize: 4, seed: 1 });
    expect(layer.built).toBe(true);
    // The layer's one weight is all that is new.
    expect(liveTensors()).toBe(before + 1);
    images.dispose();
    layer.dispose();
  });

  it('rejects bad input, naming the argument', async () => {
    const layer = new WhiteningConv({ name: 'w' });
    const gray = tf.zeros([4, 6, 6, 1]);
    await expect(fitWhitening(layer, gray as tf.Tensor4D)).rejects.toThrow(
      /argument 'images' must have 3 channels \(last axis\) for layer 'w', got shape \[4,6,6,1\]/,
    );
    const rank3 = tf.zeros([6, 6, 3]);
    await expect(fitWhitening(layer, rank3 as never)).rejects.toThrow(/argument 'images' must be NHWC of rank 4, got shape \[6,6,3\]/);
    const ints = tf.zeros([4, 6, 6, 3], 'int32');
    await expect(fitWhitening(layer, ints as tf.Tensor4D)).rejects.toThrow(/must be float32, got dtype 'int32'/);
    const few = tf.zeros([2, 6, 6, 3]);
    await expect(fitWhitening(layer, few as tf.Tensor4D, { numExamples: 5 })).rejects.toThrow(
      /option 'numExamples' \(5\) exceeds the 2 images given/,
    );
    await expect(fitWhitening(layer, few as tf.Tensor4D, { chunkSize: 0 })).rejects.toThrow(
      /option 'chunkSize' must be a positive integer, got 0/,
    );
    // eps 0 divides by the root of a zero eigenvalue: an infinite or NaN kernel.
    await expect(fitWhitening(layer, few as tf.Tensor4D, { eps: 0 })).rejects.toThrow(
      /option 'eps' must be a positive finite number \(the seed's is 1e-2\), got 0/,
    );
    await expect(fitWhitening(layer, few as tf.Tensor4D, { signMode: 'abs' as never })).rejects.toThrow(/option 'signMode'/);
    await expect(fitWhitening(layer, few as tf.Tensor4D, { permutation: [0, 0] })).rejects.toThrow(
      /option 'permutation' must be a permutation/,
    );
    const tiny = tf.zeros([3, 1, 1, 3]);
    await expect(fitWhitening(layer, tiny as tf.Tensor4D)).rejects.toThrow(/at least 2x2 spatially/);
    const empty = tf.zeros([0, 6, 6, 3]);
    await expect(fitWhitening(layer, empty as tf.Tensor4D)).rejects.toThrow(/holds no images/);
    tf.dispose([gray, rank3, ints, few, tiny, empty]);
  });

  it('WhiteningConv: 24 output channels [K, -K], frozen, validated input', async () => {
    const layer = new WhiteningConv({ name: 'whiten_x', seed: 2 });
    const out = layer.apply(tfl.input({ shape: [8, 8, 3] })) as tfl.SymbolicTensor;
    expect(out.shape).toEqual([null, 7, 7, 24]);
    const w = await layer.weight.read().data();
    for (let p = 0; p < 12; p++) for (let o = 0; o < 12; o++) expect(w[p * 24 + 12 + o]).toBe(-w[p * 24 + o]!);
    expect(layer.trainableWeights).toHaveLength(0);
    expect(new WhiteningConv().name).toMatch(/whiten/);
    expect(() => layer.apply(tf.zeros([1, 8, 8, 1]))).toThrow(
      /WhiteningConv 'whiten_x' expects input 'inputs' with 3 channels \(last axis\), got shape \[1,8,8,1\]/,
    );
    expect(() => new WhiteningConv({ kernelSize: -2 })).toThrow(/argument 'kernelSize' must be a positive integer, got -2/);
    layer.dispose();
  });
});
