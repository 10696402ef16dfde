import * as tf from '@tensorflow/tfjs-core';
import { WhiteningConv } from '../layers/whitening.js';
import { withWebGPUConvPrecision } from '../backend/kernels/webgpu/conv_precision.js';
import { eighSymmetric } from './eigh.js';
import { isCompactImages, type CompactImages } from '../data/compact.js';

/** Options of {@link fitWhitening}: chunks, sample size, sign handling and averaging. */
export interface FitWhiteningOptions {
  /** Images per chunk; each chunk gets its own covariance and eigendecomposition. Default 5000, the seed's `whiten_splits`. */
  chunkSize?: number;
  /** Number of (shuffled) images to use; default all, as the seed uses all 50,000 (`num_examples`). */
  numExamples?: number;
  /** Whether to shuffle the images before chunking; default true, as the seed (`index_select` by a `randperm`). */
  shuffle?: boolean;
  /** Seed of the shuffle; random when omitted. */
  seed?: number;
  /** Explicit image order (a permutation of 0..N-1), used instead of a random shuffle. */
  permutation?: ArrayLike<number>;
  /** Added to each eigenvalue before the square root; default 1e-2, the seed's. */
  eps?: number;
  /** 'raw' (default, the seed): average the eigenvectors as the solver returns them; 'canonical': flip each so its largest-magnitude component is positive before averaging. */
  signMode?: 'canonical' | 'raw';
  /** 'eigenpairs' (default, the seed): average eigenvalues and eigenvectors over chunks; 'covariance': average the covariances, then decompose once. */
  average?: 'eigenpairs' | 'covariance';
  /** Images gathered per device pass inside a chunk; default: as many as keep a pass's patch tensor near 8M floats. */
  batchSize?: number;
}

/** What `fitWhitening` found, eigenpairs sorted by descending eigenvalue. */
export interface WhiteningFit {
  /** Patch dimension d = C·k² (12 for RGB 2x2). */
  dim: number;
  /** The d averaged eigenvalues, descending. */
  eigenvalues: Float64Array;
  /** Row-major d×d: row i is eigenvector i, components ordered (channel, row, column) like the seed's patches. */
  eigenvectors: Float64Array;
  /** Per chunk: its eigenvalues (descending) and eigenvectors (rows, after sign canonicalisation if on). */
  chunks: Array<{
    /** The chunk's eigenvalues, descending. */
    eigenvalues: Float64Array;
    /** The chunk's eigenvectors, one per row. */
    eigenvectors: Float64Array;
    /** The chunk's patch covariance, `d x d` row-major. */
    covariance: Float64Array;
  }>;
  /** The image order used. */
  permutation: Int32Array;
}

const FN = 'fitWhitening';

/** mulberry32: a tiny seeded PRNG for a reproducible shuffle on the host. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makePermutation(n: number, options: FitWhiteningOptions): Int32Array {
  if (options.permutation != null) {
    const p = Int32Array.from(options.permutation);
    const seen = new Uint8Array(n);
    if (p.length !== n) throw new Error(`${FN}: option 'permutation' must have one entry per image (${n}), got ${p.length}`);
    for (const i of p) {
      if (!(i >= 0 && i < n) || seen[i])
        throw new Error(`${FN}: option 'permutation' must be a permutation of 0..${n - 1}, got a repeated or out-of-range index ${i}`);
      seen[i] = 1;
    }
    return p;
  }
  const p = Int32Array.from({ length: n }, (_, i) => i);
  if (options.shuffle === false) return p;
  const random = options.seed != null ? mulberry32(options.seed) : Math.random;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** One-hot kernel whose output channel c·k² + i·k + j copies pixel (i, j) of channel c: the seed's patch order. */
function patchKernel(k: number, channels: number): tf.Tensor4D {
  const d = channels * k * k;
  const values = new Float32Array(k * k * channels * d);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      for (let c = 0; c < channels; c++) values[((i * k + j) * channels + c) * d + c * k * k + i * k + j] = 1;
    }
  }
  return tf.tensor4d(values, [k, k, channels, d]);
}

/** Gathers images by index as float32 NHWC (the caller owns the result). */
type GatherImages = (indices: tf.Tensor1D) => tf.Tensor4D;

/**
 * Unbiased covariance (as `torch.cov`) of all k×k patches of the images at `indices`: a first pass
 * for the mean, a second for the centred products, in batches so no pass holds more than a few
 * million patch values.
 *
 * @remarks
 * The device sums each image's patches only (one d-vector and one d×d product per image, a few
 * hundred float32 terms each); the host adds the images' sums in float64. A float32 sum over a
 * whole chunk's millions of patches (what tfjs's matMul does in one call) was 7e-4 off a float64
 * reference on wasm; this stays within 1e-5 on every backend. The mean is centred with its
 * float32 rounding and the (tiny) rank-one effect of that rounding taken back out exactly.
 */
async function patchCovariance(gather: GatherImages, indices: Int32Array, kernel: tf.Tensor4D, batch: number): Promise<Float64Array> {
  const d = kernel.shape[3];
  const batches: Int32Array[] = [];
  for (let s = 0; s < indices.length; s += batch) batches.push(indices.subarray(s, s + batch));
  const patchesOf = (idx: Int32Array) => {
    const x = gather(tf.tensor1d(idx, 'int32'));
    // In float32 whatever the WebGPU convolutions train at, as the seed's get_patches takes them in float32.
    const p = withWebGPUConvPrecision('float32', () => tf.conv2d(x, kernel, 1, 'valid'));
    return tf.reshape(p, [idx.length, p.shape[1] * p.shape[2], d]) as tf.Tensor3D;
  };
  let count = 0;
  const sum = new Float64Array(d);
  for (const idx of batches) {
    const perImage = tf.tidy(() => {
      const p = patchesOf(idx);
      count += p.shape[0] * p.shape[1];
      return tf.sum(p, 1);
    });
    const values = await perImage.data();
    perImage.dispose();
    for (let i = 0; i < values.length; i++) sum[i % d]! += values[i]!;
  }
  const mean = sum.map((v) => v / count);
  const centre = tf.tensor1d(Float32Array.from(mean), 'float32');
  const acc = new Float64Array(d * d);
  try {
    for (const idx of batches) {
      const perImage = tf.tidy(() => {
        const centred = tf.sub(patchesOf(idx), centre) as tf.Tensor3D;
        return tf.matMul(centred, centred, true, false);
      });
      const values = await perImage.data();
      perImage.dispose();
      for (let i = 0; i < values.length; i++) acc[i % (d * d)]! += values[i]!;
    }
  } finally {
    centre.dispose();
  }
  // Centred on m' = fround(mean): Σ(x - m')(x - m')ᵀ = Σ(x - mean)(x - mean)ᵀ + count·δδᵀ with δ = m' - mean.
  const shift = Float32Array.from(mean);
  const covariance = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const correction = count * (shift[i]! - mean[i]!) * (shift[j]! - mean[j]!);
      // torch.cov is unbiased: divide by n - 1.
      covariance[i * d + j] = (acc[i * d + j]! - correction) / (count - 1);
    }
  }
  return covariance;
}

/** Flips each row of a row-major d×d matrix so its largest-magnitude component is positive. */
export function canonicalizeSigns(rows: Float64Array, d: number): Float64Array {
  const out = Float64Array.from(rows);
  for (let r = 0; r < d; r++) {
    let best = 0;
    for (let c = 1; c < d; c++) if (Math.abs(out[r * d + c]!) > Math.abs(out[r * d + best]!)) best = c;
    if (out[r * d + best]! < 0) for (let c = 0; c < d; c++) out[r * d + c] = -out[r * d + c]!;
  }
  return out;
}

/** Eigenpairs of a covariance, descending, eigenvectors as rows (the seed's `.t()` then `.flip(0)`). */
function descendingEigen(
  cov: Float64Array,
  d: number,
  signMode: 'canonical' | 'raw',
): { eigenvalues: Float64Array; eigenvectors: Float64Array } {
  const { eigenvalues: asc, eigenvectors: cols } = eighSymmetric(cov, d);
  const eigenvalues = new Float64Array(d);
  let eigenvectors: Float64Array = new Float64Array(d * d);
  for (let r = 0; r < d; r++) {
    const src = d - 1 - r;
    eigenvalues[r] = asc[src]!;
    for (let c = 0; c < d; c++) eigenvectors[r * d + c] = cols[c * d + src]!;
  }
  if (signMode === 'canonical') eigenvectors = canonicalizeSigns(eigenvectors, d);
  return { eigenvalues, eigenvectors };
}

/**
 * The seed's `set_whitening_conv`: the whitening kernel `eigenvectors / √(eigenvalues + eps)`
 * (one filter per eigenvector, in the given order) followed by its negation, as a
 * `[k, k, C, 2d]` weight for `layer`, written into its frozen weight.
 *
 * @param eigenvalues d values, in the filters' order (descending in the seed).
 * @param eigenvectors Row-major d×d, row i the filter i, components ordered (channel, row, column).
 */
export function setWhiteningConv(layer: WhiteningConv, eigenvalues: ArrayLike<number>, eigenvectors: ArrayLike<number>, eps = 1e-2): void {
  const k = layer.kernelSize;
  const ch = layer.channels;
  const d = layer.patchSize;
  if (eigenvalues.length !== d || eigenvectors.length !== d * d) {
    throw new Error(
      `setWhiteningConv: expected ${d} eigenvalues and ${d}x${d} eigenvectors for layer '${layer.name}', got ${eigenvalues.length} and ${eigenvectors.length} values`,
    );
  }
  if (!layer.built)
    throw new Error(`setWhiteningConv: layer '${layer.name}' is not built yet; call it on an input (or use fitWhitening) first`);
  const values = new Float32Array(k * k * ch * 2 * d);
  for (let o = 0; o < d; o++) {
    const scale = 1 / Math.sqrt(eigenvalues[o]! + eps);
    for (let c = 0; c < ch; c++) {
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          const v = eigenvectors[o * d + c * k * k + i * k + j]! * scale;
          const base = ((i * k + j) * ch + c) * 2 * d;
          values[base + o] = v;
          values[base + d + o] = -v;
        }
      }
    }
  }
  const w = tf.tensor4d(values, [k, k, ch, 2 * d]);
  layer.weight.write(w);
  w.dispose();
}

/**
 * The seed's whitening initialisation (`init_whitening_conv`, `get_patches`,
 * `get_whitening_parameters`, `set_whitening_conv`): shuffle the (unpadded)
 * training images, split them into chunks, and per chunk take the unbiased
 * covariance of all k×k patches (on the backend) and its eigendecomposition (on
 * the host, float64 Jacobi); average the descending eigenpairs over the chunks and
 * set the layer's frozen weight to `[K, −K]` with `K = eigenvectors / √(eigenvalues + eps)`.
 *
 * @remarks
 * Eigenvector signs are arbitrary and differ between solvers and between chunks, so
 * averaging them as the seed does (`signMode: 'raw'`, the default) shrinks or cancels
 * the filters whose signs disagree. That trains better than averaging sign-fixed
 * eigenvectors (`signMode: 'canonical'`: each first flipped so its largest-magnitude
 * component is positive): about 2 points of accuracy at 10,000 images, in PyTorch
 * and here alike (docs/results.md). `average: 'covariance'` averages the chunk
 * covariances and decomposes once.
 * The device sums each image's patches; those per-image sums (a d-vector and a d×d matrix per
 * image) are read back and added in float64, never the patches themselves.
 *
 * @param layer The whitening layer; built here (through `apply`, so its weight is named) if needed.
 * @param images Float32 NHWC images `[N, H, W, C]`, unpadded and normalised.
 */
export async function fitWhitening(
  layer: WhiteningConv,
  images: tf.Tensor4D | CompactImages,
  options: FitWhiteningOptions = {},
): Promise<WhiteningFit> {
  if (!(layer instanceof WhiteningConv))
    throw new Error(`${FN}: argument 'layer' must be a WhiteningConv, got ${(layer as object)?.constructor?.name ?? String(layer)}`);
  if (isCompactImages(images)) return fitWhiteningFrom(layer, images.shape, (idx) => images.gather(idx), options);
  if (!(images instanceof tf.Tensor))
    throw new Error(`${FN}: argument 'images' must be a tf.Tensor or CompactImages, got ${typeof images}`);
  const shape = `[${images.shape.join(',')}]`;
  if (images.rank !== 4) throw new Error(`${FN}: argument 'images' must be NHWC of rank 4, got shape ${shape}`);
  if (images.dtype !== 'float32') throw new Error(`${FN}: argument 'images' must be float32, got dtype '${images.dtype}'`);
  return fitWhiteningFrom(layer, images.shape, (idx) => tf.gather(images, idx), options);
}

/**
 * {@link fitWhitening} on images `gather` returns by index, `shape` their (NHWC) shape: what it runs
 * for a tensor, a compact set, or a window of either (fitSpeedyConvNetWhitening's unpadded images).
 * @internal
 */
export async function fitWhiteningFrom(
  layer: WhiteningConv,
  imageShape: readonly number[],
  gather: GatherImages,
  options: FitWhiteningOptions = {},
): Promise<WhiteningFit> {
  const shape = `[${imageShape.join(',')}]`;
  const [n, h, w, ch] = imageShape as [number, number, number, number];
  const k = layer.kernelSize;
  if (ch !== layer.channels)
    throw new Error(
      `${FN}: argument 'images' must have ${layer.channels} channels (last axis) for layer '${layer.name}', got shape ${shape}`,
    );
  if (h < k || w < k) throw new Error(`${FN}: argument 'images' must be at least ${k}x${k} spatially, got shape ${shape}`);
  if (n < 1) throw new Error(`${FN}: argument 'images' holds no images, got shape ${shape}`);

  const positiveInt = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new Error(`${FN}: option '${name}' must be a positive integer, got ${String(v)}`);
    return v;
  };
  const chunkSize = positiveInt(options.chunkSize ?? 5000, 'chunkSize');
  const numExamples = positiveInt(options.numExamples ?? n, 'numExamples');
  if (numExamples > n) throw new Error(`${FN}: option 'numExamples' (${numExamples}) exceeds the ${n} images given`);
  const eps = options.eps ?? 1e-2;
  // eps = 0 divides by the square root of a zero (or rounding-negative) eigenvalue: an infinite or NaN kernel.
  if (typeof eps !== 'number' || !(eps > 0 && Number.isFinite(eps)))
    throw new Error(`${FN}: option 'eps' must be a positive finite number (the seed's is 1e-2), got ${String(eps)}`);
  const signMode = options.signMode ?? 'raw';
  if (signMode !== 'canonical' && signMode !== 'raw')
    throw new Error(`${FN}: option 'signMode' must be 'canonical' or 'raw', got ${JSON.stringify(signMode)}`);
  const average = options.average ?? 'eigenpairs';
  if (average !== 'eigenpairs' && average !== 'covariance')
    throw new Error(`${FN}: option 'average' must be 'eigenpairs' or 'covariance', got ${JSON.stringify(average)}`);
  const d = layer.patchSize;
  const patchesPerImage = (h - k + 1) * (w - k + 1);
  const batchSize = positiveInt(options.batchSize ?? Math.max(1, Math.floor(8_000_000 / (patchesPerImage * d))), 'batchSize');

  const permutation = makePermutation(n, options);
  const used = permutation.subarray(0, numExamples);
  const chunkIndices: Int32Array[] = [];
  for (let s = 0; s < used.length; s += chunkSize) chunkIndices.push(used.subarray(s, s + chunkSize));
  // The last chunk may be short (torch.split); it still needs two patches for an unbiased covariance.
  const smallest = chunkIndices[chunkIndices.length - 1]!.length * patchesPerImage;
  if (smallest < 2)
    throw new Error(
      `${FN}: a chunk of ${chunkIndices[chunkIndices.length - 1]!.length} image(s) has ${smallest} patch; need at least 2 (use more images or a larger chunkSize)`,
    );

  // Built through apply (so its weight is named), inside a tidy that also frees the zeros it is applied to.
  if (!layer.built) tf.tidy(() => void layer.apply(tf.zeros([1, k, k, ch])));

  const kernel = patchKernel(k, ch);
  const chunks: WhiteningFit['chunks'] = [];
  try {
    for (const idx of chunkIndices) {
      const covariance = await patchCovariance(gather, idx, kernel, batchSize);
      const eig =
        average === 'eigenpairs'
          ? descendingEigen(covariance, d, signMode)
          : { eigenvalues: new Float64Array(0), eigenvectors: new Float64Array(0) };
      chunks.push({ ...eig, covariance });
    }
  } finally {
    kernel.dispose();
  }

  let eigenvalues: Float64Array = new Float64Array(d);
  let eigenvectors: Float64Array = new Float64Array(d * d);
  if (average === 'eigenpairs') {
    // The seed's plain mean over chunks (torch.stack(...).mean(0)), short last chunk weighted equally.
    for (const c of chunks) {
      for (let i = 0; i < d; i++) eigenvalues[i]! += c.eigenvalues[i]! / chunks.length;
      for (let i = 0; i < d * d; i++) eigenvectors[i]! += c.eigenvectors[i]! / chunks.length;
    }
  } else {
    const mean = new Float64Array(d * d);
    for (const c of chunks) for (let i = 0; i < d * d; i++) mean[i]! += c.covariance[i]! / chunks.length;
    ({ eigenvalues, eigenvectors } = descendingEigen(mean, d, signMode));
  }
  setWhiteningConv(layer, eigenvalues, eigenvectors, eps);
  return { dim: d, eigenvalues, eigenvectors, chunks, permutation };
}
