import * as tf from '@tensorflow/tfjs-core';
import { batchCrop } from '../augment/crop.js';
import { batchCutmix } from '../augment/cutmix.js';
import { batchFlipLR } from '../augment/flip.js';
import { largestSeedSquare, squareStarts } from '../augment/masks.js';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { type CompactImages, isCompactImages } from './compact.js';

/** Python 3's `round(x)`: round half to even (banker's rounding), which `Math.round` is not. */
function pythonRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor; // exact for doubles of this size
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkCounts(where: string, numExamples: number, batchSize: number): void {
  if (!(Number.isInteger(numExamples) && numExamples >= 0))
    throw new Error(`${where}: numExamples must be a non-negative integer, got ${numExamples}`);
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`${where}: batchSize must be a positive integer, got ${batchSize}`);
}

/**
 * The fraction of the training set the seed uses in epoch `epoch` (0-based) of
 * `trainEpochs`: 1, except in the last epoch, where it is `trainEpochs % 1`.
 *
 * @remarks
 * Faithful to the seed, including its quirk for whole-number `trainEpochs`: the last
 * epoch then gets fraction 0 and so no steps at all.
 */
export function epochFraction(epoch: number, trainEpochs: number): number {
  if (!(Number.isInteger(epoch) && epoch >= 0)) throw new Error(`epochFraction: epoch must be a non-negative integer, got ${epoch}`);
  if (!(Number.isFinite(trainEpochs) && trainEpochs > 0))
    throw new Error(`epochFraction: trainEpochs must be a positive number, got ${trainEpochs}`);
  return epoch + 1 < trainEpochs ? 1 : trainEpochs % 1;
}

/**
 * How many examples an epoch of `fraction` draws in the seed's `get_batches`:
 * all of them for a full epoch, else `batchSize * round(fraction * n / batchSize)`
 * with Python's round-half-to-even (capped at n, as slicing is).
 */
export function epochExamples(numExamples: number, batchSize: number, fraction = 1): number {
  checkCounts('epochExamples', numExamples, batchSize);
  if (!(fraction >= 0)) throw new Error(`epochExamples: fraction must be >= 0, got ${fraction}`);
  if (fraction >= 1) return numExamples;
  return Math.min(numExamples, batchSize * pythonRound((fraction * numExamples) / batchSize));
}

/** Full batches in an epoch of `fraction` (the seed drops a last partial batch). */
export function stepsInEpoch(numExamples: number, batchSize: number, fraction = 1): number {
  return Math.floor(epochExamples(numExamples, batchSize, fraction) / batchSize);
}

/** The seed's step bookkeeping for a training run. */
export interface SeedSchedule {
  /** `numExamples // batchSize`: the seed's `num_steps_per_epoch`. */
  stepsPerEpoch: number;
  /** `ceil(stepsPerEpoch * trainEpochs)`: the OneCycle length (`total_train_steps`). */
  totalSteps: number;
  /** Each epoch's data fraction, `ceil(trainEpochs)` entries. */
  epochFractions: number[];
  /** Each epoch's actual number of steps. */
  epochSteps: number[];
}

/**
 * The seed's schedule numbers: for 50000 images, batch 1024 and 12.1 epochs, 48 steps per
 * epoch, 581 total steps, 13 epochs of which the last has 5 steps.
 *
 * @remarks
 * `totalSteps` is the seed's formula; the sum of `epochSteps` is what its loop actually
 * runs. They agree for the seed's numbers but need not in general (for whole-number
 * `trainEpochs` the last epoch is empty, see `epochFraction`).
 */
export function seedSchedule(numExamples: number, batchSize: number, trainEpochs: number): SeedSchedule {
  checkCounts('seedSchedule', numExamples, batchSize);
  if (!(Number.isFinite(trainEpochs) && trainEpochs > 0))
    throw new Error(`seedSchedule: trainEpochs must be a positive number, got ${trainEpochs}`);
  const stepsPerEpoch = Math.floor(numExamples / batchSize);
  const epochFractions = Array.from({ length: Math.ceil(trainEpochs) }, (_, e) => epochFraction(e, trainEpochs));
  return {
    stepsPerEpoch,
    totalSteps: Math.ceil(stepsPerEpoch * trainEpochs),
    epochFractions,
    epochSteps: epochFractions.map((f) => stepsInEpoch(numExamples, batchSize, f)),
  };
}

/** NHWC images on the device: a float32 tensor, or 8-bit images decoded per batch ({@link CompactImages}). */
export type ImageSet = tf.Tensor4D | CompactImages;

/** A labelled image set: NHWC images (training images already reflect-padded) and soft targets. */
export interface LabelledImages {
  /** Float32 NHWC images `[N, H, W, C]`. */
  images: tf.Tensor4D;
  /** One-hot or soft targets `[N, classes]`. */
  targets: tf.Tensor2D;
}

/** A labelled image set whose images are kept compact ({@link CompactImages}) and decoded per batch. */
export interface CompactLabelledImages {
  /** The images, compact on the backend. */
  images: CompactImages;
  /** One-hot or soft targets `[N, classes]`. */
  targets: tf.Tensor2D;
}

/** Either form of a labelled image set. */
export type AnyLabelledImages = LabelledImages | CompactLabelledImages;

/** Images `start` .. `start + count - 1` of a set as a float32 tensor (the caller owns it). */
export function sliceImages(images: ImageSet, start: number, count: number): tf.Tensor4D {
  return isCompactImages(images) ? images.slice(start, count) : tf.slice(images, start, count);
}

/** Disposes `tensors`; when an error is already on its way out, a failure here (a corrupted heap) must not replace it. */
export function disposeAfter(tensors: tf.TensorContainer, failed: boolean): void {
  if (!failed) {
    tf.dispose(tensors);
    return;
  }
  try {
    tf.dispose(tensors);
  } catch {
    // The first error is the one to report.
  }
}

/** Options of `epochBatches`, the seed's `get_batches` arguments. */
export interface EpochBatchesArgs {
  /** Examples per batch; a last partial batch is dropped. */
  batchSize: number;
  /** Draws the shuffle and the augmentations; default the global generator (`setGlobalSeed`). */
  random?: DeviceRandom;
  /** Augment (crop, flip, cutmix) as for the training set. Default true. */
  train?: boolean;
  /** Fraction of the epoch to run (the seed's `epoch_fraction`). Default 1. */
  epochFraction?: number;
  /** Side of the random square crop taken from the padded images. Default 32. */
  cropSize?: number;
  /** Cutmix patch side; 0 turns cutmix off. Default 0. */
  cutmixSize?: number;
}

/** One batch: the caller owns (and disposes) both tensors. */
export interface Batch {
  /** The batch's augmented images, `[B, size, size, C]`. */
  inputs: tf.Tensor4D;
  /** Their (cutmix-mixed) targets, `[B, classes]`. */
  targets: tf.Tensor2D;
}

/**
 * The seed's `get_batches`: draws a shuffle of the whole set, keeps
 * `epochExamples(n, batchSize, epochFraction)` of it, augments the whole training set
 * once (random crop, left-right flip, cutmix when `cutmixSize > 0`), then yields
 * shuffled full batches gathered on the backend.
 *
 * With {@link CompactImages} the same draws are made in the same order (the shuffle, every image's
 * crop offsets, every image's flip draw), but only each batch is decoded, cropped and flipped, so
 * no augmented copy of the set exists (except with cutmix, which mixes across the whole set and so
 * decodes it whole). The batches are the float pipeline's (see {@link CompactImages} for where
 * they are bit for bit).
 *
 * @remarks
 * The epoch's augmented copy is held (outside any `tf.tidy` the caller runs `next()`
 * in) until the generator finishes or is closed (`break` in a `for...of` closes it),
 * then freed. Each yielded batch belongs to the caller.
 */
export function epochBatches(data: AnyLabelledImages, args: EpochBatchesArgs): Generator<Batch, void, undefined> {
  // Validated here, eagerly: a generator body would only run at the first next().
  const { images, targets } = data ?? ({} as Partial<AnyLabelledImages>);
  if (images == null || images.rank !== 4)
    throw new Error(
      `epochBatches expects data.images as NHWC [n, height, width, channels], got shape [${images?.shape ?? String(images)}]`,
    );
  if (targets == null || targets.rank !== 2 || targets.shape[0] !== images.shape[0]) {
    throw new Error(`epochBatches expects data.targets as [${images.shape[0]}, classes], got shape [${targets?.shape ?? String(targets)}]`);
  }
  const { batchSize, train = true, epochFraction: fraction = 1, cropSize = 32, cutmixSize = 0 } = args ?? ({} as EpochBatchesArgs);
  const random = randomOrGlobal('epochBatches (args.random)', args?.random);
  const count = epochExamples(images.shape[0], batchSize, fraction);
  if (train) {
    const [, height, width] = images.shape;
    if (!(Number.isInteger(cropSize) && cropSize >= 1 && cropSize <= Math.min(height, width))) {
      throw new Error(
        `epochBatches: cropSize must be an integer in [1, ${Math.min(height, width)}] for (padded) images of ${height}x${width}, got ${cropSize}`,
      );
    }
    if (!(Number.isInteger(cutmixSize) && cutmixSize >= 0))
      throw new Error(`epochBatches: cutmixSize must be a non-negative integer, got ${cutmixSize}`);
    // Refused here rather than in batchCutmix, which would run only after the shuffle, crop and flip were drawn and allocated.
    if (cutmixSize > largestSeedSquare(cropSize)) {
      throw new Error(
        `epochBatches: cutmixSize ${cutmixSize} does not fit the ${cropSize}x${cropSize} crops; it must be at most ${largestSeedSquare(cropSize)} ` +
          "(the seed's square masks need a spare row for an even side; 0 turns cutmix off)",
      );
    }
  }
  return generateBatches(images, targets, { batchSize, random, train, cropSize, cutmixSize }, count);
}

function* generateBatches(
  images: ImageSet,
  targets: tf.Tensor2D,
  args: Required<Omit<EpochBatchesArgs, 'epochFraction'>>,
  count: number,
): Generator<Batch, void, undefined> {
  const { batchSize, random, train, cropSize, cutmixSize } = args;
  const n = images.shape[0];
  const held: tf.Tensor[] = [];
  let failed = false;
  try {
    // Same draw order as the seed: the shuffle first, then the augmentations.
    const order = tf.keep(
      tf.tidy(() => {
        const perm = random.permutation(n);
        return count < n ? tf.slice(perm, 0, count) : perm;
      }),
    );
    held.push(order);
    let gatherBatch: (idx: tf.Tensor1D) => Batch;
    if (isCompactImages(images)) {
      // plan [n, 4]: image, top, left, flip: one row per image of the set, batches gather rows of it.
      const plan = tf.keep(
        train
          ? compactPlan(images, cropSize, random)
          : tf.tidy(() => {
              const zero = tf.zeros([n], 'int32');
              return tf.stack([tf.range(0, n, 1, 'int32'), zero, zero, zero], 1) as tf.Tensor2D;
            }),
      );
      held.push(plan);
      const size = train ? cropSize : images.shape[1];
      if (train && cutmixSize > 0) {
        const mixed = tf.tidy(() => batchCutmix(decodeAll(images, plan, size), targets, cutmixSize, random));
        held.push(tf.keep(mixed.images), tf.keep(mixed.targets));
        gatherBatch = (idx) => ({
          inputs: tf.gather(mixed.images, idx) as tf.Tensor4D,
          targets: tf.gather(mixed.targets, idx) as tf.Tensor2D,
        });
      } else {
        gatherBatch = (idx) => ({
          inputs: images.decode(tf.gather(plan, idx) as tf.Tensor2D, size),
          targets: tf.gather(targets, idx) as tf.Tensor2D,
        });
      }
    } else {
      let epochImages: tf.Tensor4D = images;
      let epochTargets: tf.Tensor2D = targets;
      if (train) {
        const augmented = tf.tidy(() => {
          const flipped = batchFlipLR(batchCrop(images, cropSize, random), random);
          return cutmixSize > 0
            ? batchCutmix(flipped, targets, cutmixSize, random)
            : { images: flipped, targets: tf.clone(targets) as tf.Tensor2D };
        });
        epochImages = tf.keep(augmented.images);
        epochTargets = tf.keep(augmented.targets);
        held.push(epochImages, epochTargets);
      }
      gatherBatch = (idx) => ({ inputs: tf.gather(epochImages, idx) as tf.Tensor4D, targets: tf.gather(epochTargets, idx) as tf.Tensor2D });
    }
    for (let i = 0; (i + 1) * batchSize <= count; i++) {
      const batch = tf.tidy(
        () => gatherBatch(tf.slice(order, i * batchSize, batchSize) as tf.Tensor1D) as unknown as tf.TensorContainer,
      ) as unknown as Batch;
      yield batch;
    }
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    disposeAfter(held, failed);
  }
}

/**
 * The epoch's crop and flip for every image of a compact set, drawn as batchCrop and batchFlipLR
 * draw them for the whole set (the crop's rows, its columns, then one uniform per image).
 */
function compactPlan(images: CompactImages, cropSize: number, random: DeviceRandom): tf.Tensor2D {
  const [n, height, width] = images.shape;
  const { top, left } = squareStarts('batchCrop', n, height, width, cropSize, random);
  let u: tf.Tensor | undefined;
  try {
    u = random.uniform([n]);
    const flipDraws = u;
    return tf.tidy(() => tf.stack([tf.range(0, n, 1, 'int32'), top, left, tf.cast(tf.less(flipDraws, 0.5), 'int32')], 1) as tf.Tensor2D);
  } finally {
    tf.dispose([top, left, ...(u ? [u] : [])]);
  }
}

/** Every image of the set decoded by its plan row, in chunks (each decode's output is one tensor). */
function decodeAll(images: CompactImages, plan: tf.Tensor2D, size: number): tf.Tensor4D {
  const n = images.shape[0];
  const chunk = 4096;
  const parts: tf.Tensor4D[] = [];
  for (let s = 0; s < n; s += chunk) parts.push(images.decode(tf.slice(plan, [s, 0], [Math.min(chunk, n - s), 4]), size));
  return parts.length === 1 ? parts[0]! : tf.concat4d(parts, 0);
}
