import * as tf from '@tensorflow/tfjs-core';
import type { CompactLabelledImages } from './batches.js';
import { compactImages } from './compact.js';

/** Side of a CIFAR-10 image in pixels. */
export const CIFAR10_IMAGE_SIZE = 32;
/** Colour channels per image (R, G, B planes in the files). */
export const CIFAR10_CHANNELS = 3;
/** Bytes of one image in the binary release: three 32x32 planes. */
export const CIFAR10_IMAGE_BYTES = CIFAR10_CHANNELS * CIFAR10_IMAGE_SIZE * CIFAR10_IMAGE_SIZE;
/** Bytes of one record in the binary release: a label byte followed by the image. */
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_IMAGE_BYTES;
/** Records in each official batch file. */
export const CIFAR10_RECORDS_PER_FILE = 10_000;
/** Class names, indexed by label (batches.meta.txt of the binary release). */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
/** The training files of the binary release, in the order their records are concatenated. */
export const CIFAR10_TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const;
/** The evaluation file of the binary release. */
export const CIFAR10_EVAL_FILES = ['test_batch.bin'] as const;
/** Every file `loadCifar10` expects in a CIFAR-10 directory. */
export const CIFAR10_FILES = [...CIFAR10_TRAIN_FILES, ...CIFAR10_EVAL_FILES] as const;

/**
 * One split of CIFAR-10 on the host, exactly as stored in the binary files.
 */
export interface Cifar10Split {
  /** Pixels, `count x 3 x 32 x 32` (NCHW, R/G/B planes) as in the files, 0..255. */
  images: Uint8Array;
  /** Class index 0..9 per image. */
  labels: Uint8Array;
  /** Number of images. */
  count: number;
}

/** Per-channel normalisation statistics (R, G, B) of images scaled to [0, 1]. */
export interface Cifar10Stats {
  /** Per-channel mean. */
  mean: [number, number, number];
  /** Per-channel unbiased standard deviation. */
  std: [number, number, number];
}

/** Options for {@link parseCifar10Batch}. */
export interface ParseCifar10Options {
  /** Records the file must hold; default 10000 for the official file names, any whole number of records otherwise. */
  expectedRecords?: number;
}

function baseName(fileName: string): string {
  const parts = fileName.split(/[\\/]/);
  return parts[parts.length - 1]!;
}

/**
 * Parses one file of the CIFAR-10 binary release (`data_batch_N.bin`, `test_batch.bin`): records
 * of one label byte followed by 3072 pixel bytes (the R, G and B 32x32 planes). This is the data
 * the seed loads through `torchvision.datasets.CIFAR10`, read from the binary instead of the
 * pickled release.
 *
 * The file is validated before anything is returned: its size must be a whole number of
 * 3073-byte records (10000 records for the official file names unless
 * `options.expectedRecords` says otherwise) and every label must be 0..9. Errors name the file
 * and the problem.
 */
export function parseCifar10Batch(bytes: Uint8Array, fileName: string, options: ParseCifar10Options = {}): Cifar10Split {
  const official = (CIFAR10_FILES as readonly string[]).includes(baseName(fileName));
  const expected = options.expectedRecords ?? (official ? CIFAR10_RECORDS_PER_FILE : undefined);
  const records = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
  const leftover = bytes.length % CIFAR10_RECORD_BYTES;
  if (leftover !== 0) {
    throw new Error(
      `${fileName}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records ` +
        `(1 label byte + ${CIFAR10_IMAGE_BYTES} pixel bytes): ${records} records and ${leftover} bytes left over; ` +
        'the file is truncated or has extra bytes',
    );
  }
  if (expected !== undefined && records !== expected) {
    throw new Error(
      `${fileName}: expected ${expected} records (${expected * CIFAR10_RECORD_BYTES} bytes), got ${records} records ` +
        `(${bytes.length} bytes); the file is ${records < expected ? 'truncated' : 'too long'}`,
    );
  }
  if (records === 0) throw new Error(`${fileName}: the file is empty; expected CIFAR-10 records of ${CIFAR10_RECORD_BYTES} bytes`);
  const images = new Uint8Array(records * CIFAR10_IMAGE_BYTES);
  const labels = new Uint8Array(records);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR10_RECORD_BYTES;
    const label = bytes[start]!;
    if (label >= CIFAR10_CLASSES.length) {
      throw new Error(`${fileName}: record ${r} (byte ${start}) has label ${label}; CIFAR-10 labels are 0..9`);
    }
    labels[r] = label;
    images.set(bytes.subarray(start + 1, start + CIFAR10_RECORD_BYTES), r * CIFAR10_IMAGE_BYTES);
  }
  return { images, labels, count: records };
}

/**
 * Joins parsed files into one split, in order, keeping at most `limit` images (the first ones).
 * This is how the five training files become the seed's 50000-image training set.
 */
export function concatCifar10Splits(splits: readonly Cifar10Split[], limit = Infinity): Cifar10Split {
  const total = splits.reduce((n, s) => n + s.count, 0);
  const count = Math.min(total, limit);
  const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const s of splits) {
    const take = Math.min(s.count, count - at);
    if (take <= 0) break;
    images.set(s.images.subarray(0, take * CIFAR10_IMAGE_BYTES), at * CIFAR10_IMAGE_BYTES);
    labels.set(s.labels.subarray(0, take), at);
    at += take;
  }
  return { images, labels, count };
}

/**
 * Per-channel mean and unbiased standard deviation of a split's images scaled to [0, 1]: the
 * seed's `torch.std_mean(train_images, dim=(0, 2, 3))` after `ToTensor`.
 *
 * @remarks Computed on the host from a 256-bin histogram per channel in float64, so the result
 * does not depend on the backend's float32 summation order (it agrees with PyTorch's float32
 * reduction to about 1e-6 relative).
 */
export function cifar10Stats(split: Cifar10Split): Cifar10Stats {
  const plane = CIFAR10_IMAGE_SIZE * CIFAR10_IMAGE_SIZE;
  const n = split.count * plane;
  if (n < 2) throw new Error(`cifar10Stats: split needs at least one image to compute a standard deviation, got ${split.count}`);
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < CIFAR10_CHANNELS; c++) {
    const hist = new Float64Array(256);
    for (let i = 0; i < split.count; i++) {
      const start = i * CIFAR10_IMAGE_BYTES + c * plane;
      for (let p = start; p < start + plane; p++) hist[split.images[p]!]!++;
    }
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += hist[v]! * (v / 255);
    const m = sum / n;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += hist[v]! * (v / 255 - m) ** 2;
    mean.push(m);
    // torch.std is unbiased (divides by n - 1); tfjs moments would divide by n.
    std.push(Math.sqrt(sq / (n - 1)));
  }
  return { mean: mean as Cifar10Stats['mean'], std: std as Cifar10Stats['std'] };
}

/** Options for {@link cifar10ToBackend}. */
export interface Cifar10ToBackendOptions {
  /** Reflect padding added on every side of the training images; default 2 (the seed's `pad_amount`). */
  padAmount?: number;
  /** Normalisation statistics; default computed from the training split with {@link cifar10Stats}. */
  stats?: Cifar10Stats;
  /** Images converted per step, bounding the temporary memory of the conversion; default 2500. */
  chunkSize?: number;
  /** Columns of the one-hot targets; every label must be below it. Default 10 (a dataset's `toBackend` passes its own count). */
  numClasses?: number;
}

/** One split on the backend, ready for training or evaluation. */
export interface Cifar10Tensors {
  /** Normalised images, float32 NHWC (`[N, 32 + 2 * pad, 32 + 2 * pad, 3]` for the padded training split). */
  images: tf.Tensor4D;
  /** One-hot targets, float32 `[N, numClasses]` (`[N, 10]` for CIFAR-10). */
  targets: tf.Tensor2D;
}

/** The whole dataset on the backend, as the seed holds it in `data['train']` and `data['eval']`. */
export interface Cifar10OnBackend {
  /** Training split, normalised and reflect-padded. */
  train: Cifar10Tensors;
  /** Evaluation split, normalised with the training statistics, not padded. */
  eval: Cifar10Tensors;
  /** The statistics both splits were normalised with. */
  stats: Cifar10Stats;
}

/** Host-side CIFAR-10: both splits plus a way to put them on the active backend. */
export interface Cifar10Dataset {
  /** Training split (the first `trainLimit` images of data_batch_1..5). */
  train: Cifar10Split;
  /** Evaluation split (the first `evalLimit` images of test_batch). */
  eval: Cifar10Split;
  /** Where the files were read from. */
  source: string;
  /**
   * The files the images were read from (loadCifar10 and loadCifar100 fill it in), each with its size and SHA-256, so
   * that a run can record what it trained on and tell other data apart when it continues.
   */
  files?: readonly DataFileDigest[];
  /** Class names indexed by label: {@link CIFAR10_CLASSES}, or CIFAR-100's 100 fine or 20 coarse names. Their count is the net's output width. */
  classNames: readonly string[];
  /** Puts the dataset on the active backend; see {@link cifar10ToBackend}. */
  toBackend(options?: Cifar10ToBackendOptions): Cifar10OnBackend;
  /** Puts the dataset on the active backend as 8-bit images decoded per batch; see {@link cifar10ToCompactBackend}. */
  toCompactBackend(options?: Cifar10ToCompactBackendOptions): Cifar10CompactOnBackend;
}

/** A data file that was read: its name in the data directory, its size and the SHA-256 (hex) of its bytes. */
export interface DataFileDigest {
  /** The file's name. */
  file: string;
  /** Its size in bytes. */
  bytes: number;
  /** Its SHA-256, hex. */
  sha256: string;
}

/** Builds a {@link Cifar10Dataset} around two host splits (labels indexing `classNames`, CIFAR-10's by default). */
export function cifar10Dataset(
  train: Cifar10Split,
  evalSplit: Cifar10Split,
  source: string,
  classNames: readonly string[] = CIFAR10_CLASSES,
): Cifar10Dataset {
  return {
    train,
    eval: evalSplit,
    source,
    classNames,
    toBackend(options) {
      return cifar10ToBackend(train, evalSplit, { numClasses: classNames.length, ...options });
    },
    toCompactBackend(options) {
      return cifar10ToCompactBackend(train, evalSplit, { numClasses: classNames.length, ...options });
    },
  };
}

/** 0..255 -> float32 of v / 255, exactly what ToTensor's `img.float().div(255)` produces. */
const TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * How many tensors one concat may merge while the conversion stays near two copies of a split.
 * WebGPU splits a wider concat into groups itself and keeps every group alive until the end
 * (three copies), so there we merge groups of at most what one shader binds and free as we go;
 * elsewhere a single concat is best (a wasm heap never shrinks, and merging in levels fragments it).
 */
function concatWidth(): number {
  if (tf.getBackend() !== 'webgpu') return Infinity;
  const device = (tf.backend() as unknown as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } }).device;
  return Math.max(2, (device?.limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
}

/** Concatenates along axis 0, `width` tensors at a time, disposing each input once merged. Empties `parts`. */
function concatReleasing(parts: tf.Tensor4D[], width: number): tf.Tensor4D {
  while (parts.length > 1) {
    const merged: tf.Tensor4D[] = [];
    try {
      while (parts.length > 0) {
        const group = parts.slice(0, width);
        merged.push(group.length === 1 ? group[0]! : tf.concat4d(group, 0));
        parts.splice(0, group.length);
        if (group.length > 1) tf.dispose(group);
      }
    } catch (e) {
      tf.dispose(merged);
      throw e;
    }
    parts.push(...merged);
  }
  return parts.pop()!;
}

function splitToBackend(split: Cifar10Split, stats: Cifar10Stats, pad: number, chunkSize: number, numClasses: number): Cifar10Tensors {
  const hw = CIFAR10_IMAGE_SIZE;
  const mean = tf.tensor1d(stats.mean, 'float32');
  const std = tf.tensor1d(stats.std, 'float32');
  const chunks: tf.Tensor4D[] = [];
  try {
    for (let start = 0; start < split.count; start += chunkSize) {
      const n = Math.min(chunkSize, split.count - start);
      const host = new Float32Array(n * CIFAR10_IMAGE_BYTES);
      const bytes = split.images.subarray(start * CIFAR10_IMAGE_BYTES, (start + n) * CIFAR10_IMAGE_BYTES);
      for (let i = 0; i < host.length; i++) host[i] = TO_UNIT[bytes[i]!]!;
      chunks.push(
        tf.tidy(() => {
          // The files are NCHW (R, G, B planes); tfjs convolutions want NHWC: the one transpose.
          const nhwc = tf.transpose(tf.tensor4d(host, [n, CIFAR10_CHANNELS, hw, hw]), [0, 2, 3, 1]);
          const normalised = tf.div(tf.sub(nhwc, mean), std) as tf.Tensor4D;
          return pad > 0
            ? tf.mirrorPad(
                normalised,
                [
                  [0, 0],
                  [pad, pad],
                  [pad, pad],
                  [0, 0],
                ],
                'reflect',
              )
            : normalised;
        }),
      );
    }
    const images = concatReleasing(chunks, concatWidth());
    try {
      const targets = oneHotTargets(split, numClasses);
      return { images, targets };
    } catch (e) {
      images.dispose();
      throw e;
    }
  } finally {
    tf.dispose(chunks);
    tf.dispose([mean, std]);
  }
}

/**
 * WebGPU kernels bind each input as one storage buffer, so a split larger than the device's
 * `maxStorageBufferBindingSize` could be stored but never read whole: fail early instead of
 * producing validation errors and zeros.
 */
function checkBindingLimit(what: string, count: number, side: number, limitName: string): void {
  if (tf.getBackend() !== 'webgpu') return;
  const device = (tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } }).device;
  const limit = device?.limits?.maxStorageBufferBindingSize;
  const perImage = side * side * CIFAR10_CHANNELS * 4;
  if (limit === undefined || count * perImage <= limit) return;
  throw new Error(
    `cifar10ToBackend: the ${what} split (${count} images of ${side}x${side}x3 float32, ${count * perImage} bytes) exceeds ` +
      `this WebGPU device's maxStorageBufferBindingSize of ${limit} bytes, so no kernel could read it whole; ` +
      `keep at most ${Math.floor(limit / perImage)} images (${limitName}) or use a device or backend with a larger limit`,
  );
}

/**
 * Puts CIFAR-10 on the active backend the way the seed prepares `data`: images become float32
 * in [0, 1] (`ToTensor`), are normalised per channel with the training split's mean and unbiased
 * std (the evaluation split with the same training statistics), targets become one-hot float32,
 * and the training images are reflect-padded by `padAmount` (the seed's
 * `F.pad(..., (2,)*4, 'reflect')`), ready for the per-epoch random crop. The whole dataset lives
 * on the backend afterwards; the caller owns (and disposes) the returned tensors.
 *
 * @remarks The conversion runs `chunkSize` images at a time, so besides the result only one
 * chunk's temporaries exist at once, plus the chunk results until they are concatenated (the
 * concatenation briefly holds the split twice). The seed then casts everything to fp16; tfjs
 * has no fp16 storage, so the tensors stay float32. With a training subset the statistics come
 * from that subset, as the seed's would from whatever training set it loaded; pass `stats` to
 * use others. One-hot targets have `numClasses` columns (10 unless given). On WebGPU each split must fit the
 * device's `maxStorageBufferBindingSize` (the whole padded training set needs 778 MB); a larger
 * split is an error saying how many images fit.
 */
export function cifar10ToBackend(train: Cifar10Split, evalSplit: Cifar10Split, options: Cifar10ToBackendOptions = {}): Cifar10OnBackend {
  const pad = options.padAmount ?? 2;
  const chunkSize = options.chunkSize ?? 2500;
  if (!Number.isInteger(pad) || pad < 0 || pad >= CIFAR10_IMAGE_SIZE) {
    throw new Error(
      `cifar10ToBackend: padAmount must be an integer in 0..${CIFAR10_IMAGE_SIZE - 1} (reflect padding needs pad < image size), got ${pad}`,
    );
  }
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new Error(`cifar10ToBackend: chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const numClasses = checkSplits('cifar10ToBackend', train, evalSplit, options.numClasses);
  checkBindingLimit('training', train.count, CIFAR10_IMAGE_SIZE + 2 * pad, 'trainLimit');
  checkBindingLimit('evaluation', evalSplit.count, CIFAR10_IMAGE_SIZE, 'evalLimit');
  const stats = options.stats ?? cifar10Stats(train);
  const trainTensors = splitToBackend(train, stats, pad, chunkSize, numClasses);
  try {
    return { train: trainTensors, eval: splitToBackend(evalSplit, stats, 0, chunkSize, numClasses), stats };
  } catch (e) {
    tf.dispose([trainTensors.images, trainTensors.targets]);
    throw e;
  }
}

/** Options for {@link cifar10ToCompactBackend}. */
export interface Cifar10ToCompactBackendOptions {
  /** Reflect padding of the decoded training images on every side; default 2 (the seed's `pad_amount`). */
  padAmount?: number;
  /** Normalisation statistics; default computed from the training split with {@link cifar10Stats}. */
  stats?: Cifar10Stats;
  /** Most bytes one device buffer may hold; default the WebGPU device's maxStorageBufferBindingSize (else 1 GiB). */
  maxPartBytes?: number;
  /** Columns of the one-hot targets; every label must be below it. Default 10 (a dataset's `toCompactBackend` passes its own count). */
  numClasses?: number;
}

/** The dataset on the backend as compact sets: what {@link cifar10ToBackend} holds, at a fifth of the bytes. */
export interface Cifar10CompactOnBackend {
  /** Training split: decoded normalised and reflect-padded. */
  train: CompactLabelledImages;
  /** Evaluation split: decoded normalised with the training statistics, not padded. */
  eval: CompactLabelledImages;
  /** The statistics both splits are normalised with. */
  stats: Cifar10Stats;
}

/** A split's NCHW bytes (as in the files) in NHWC order. */
function nhwcBytes(split: Cifar10Split): Uint8Array {
  const plane = CIFAR10_IMAGE_SIZE * CIFAR10_IMAGE_SIZE;
  const out = new Uint8Array(split.images.length);
  for (let i = 0; i < split.count; i++) {
    const base = i * CIFAR10_IMAGE_BYTES;
    for (let c = 0; c < CIFAR10_CHANNELS; c++) {
      const from = base + c * plane;
      for (let p = 0; p < plane; p++) out[base + p * CIFAR10_CHANNELS + c] = split.images[from + p]!;
    }
  }
  return out;
}

function oneHotTargets(split: Cifar10Split, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(split.labels), 'int32'), numClasses), 'float32') as tf.Tensor2D);
}

/** Checks both splits' sizes and labels against the class count (10 unless given), which it returns. */
function checkSplits(where: string, train: Cifar10Split, evalSplit: Cifar10Split, requested: number | undefined): number {
  const numClasses = requested ?? CIFAR10_CLASSES.length;
  if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > 256) {
    throw new Error(`${where}: numClasses must be an integer in 1..256 (labels are bytes), got ${numClasses}`);
  }
  for (const [name, split] of [
    ['train', train],
    ['eval', evalSplit],
  ] as const) {
    if (split.count < 1 || split.images.length !== split.count * CIFAR10_IMAGE_BYTES || split.labels.length !== split.count) {
      throw new Error(
        `${where}: ${name} split must hold count >= 1 images of ${CIFAR10_IMAGE_BYTES} bytes and one label each, ` +
          `got count ${split.count}, ${split.images.length} image bytes, ${split.labels.length} labels`,
      );
    }
    // oneHot would turn a label past the last class into a row of zeros: refuse it instead.
    const bad = split.labels.findIndex((label) => label >= numClasses);
    if (bad >= 0) {
      throw new Error(
        `${where}: ${name} image ${bad} has label ${split.labels[bad]}, outside 0..${numClasses - 1} for numClasses ${numClasses}`,
      );
    }
  }
  return numClasses;
}

/**
 * {@link cifar10ToBackend} with the images kept as bytes on the device (four to an int32,
 * 3,072 bytes an image against 15,552 for a padded float32 one) and decoded per batch
 * ({@link CompactImages}): the same normalisation and padding, the same batches from
 * `epochBatches`. Large splits are spread over several buffers, each within the WebGPU device's
 * `maxStorageBufferBindingSize`. The caller owns (and disposes) the returned sets and targets.
 */
export function cifar10ToCompactBackend(
  train: Cifar10Split,
  evalSplit: Cifar10Split,
  options: Cifar10ToCompactBackendOptions = {},
): Cifar10CompactOnBackend {
  const pad = options.padAmount ?? 2;
  const numClasses = checkSplits('cifar10ToCompactBackend', train, evalSplit, options.numClasses);
  if (!Number.isInteger(pad) || pad < 0 || pad >= CIFAR10_IMAGE_SIZE) {
    throw new Error(
      `cifar10ToCompactBackend: padAmount must be an integer in 0..${CIFAR10_IMAGE_SIZE - 1} (reflect padding needs pad < image size), got ${pad}`,
    );
  }
  const stats = options.stats ?? cifar10Stats(train);
  const side = CIFAR10_IMAGE_SIZE;
  const common = {
    mean: stats.mean,
    std: stats.std,
    ...(options.maxPartBytes !== undefined ? { maxPartBytes: options.maxPartBytes } : {}),
  };
  const held: Array<{ dispose(): void }> = [];
  try {
    const trainImages = compactImages(nhwcBytes(train), [train.count, side, side, CIFAR10_CHANNELS], { ...common, pad });
    held.push(trainImages);
    const trainTargets = oneHotTargets(train, numClasses);
    held.push(trainTargets);
    const evalImages = compactImages(nhwcBytes(evalSplit), [evalSplit.count, side, side, CIFAR10_CHANNELS], { ...common, pad: 0 });
    held.push(evalImages);
    const evalTargets = oneHotTargets(evalSplit, numClasses);
    return { train: { images: trainImages, targets: trainTargets }, eval: { images: evalImages, targets: evalTargets }, stats };
  } catch (e) {
    for (const h of held) h.dispose();
    throw e;
  }
}
