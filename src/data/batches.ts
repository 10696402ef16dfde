import * as tf from '@tensorflow/tfjs-core';
import { cutmixTargets } from '../augment/cutmix.js';
import { largestSeedSquare } from '../augment/masks.js';
import { applyEpochPlanRows, drawEpochPlan, epochPlanTensors, type EpochPlan } from '../augment/plan.js';
import { randomOrGlobal } from '../ops/global-random.js';
import type { DeviceRandom } from '../ops/random.js';
import { type CompactImages, decodePlanRows, isCompactImages } from './compact.js';

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

/**
 * Your own augmentation of one training batch (see `EpochBatchesArgs.augment`): given the batch the epoch's
 * plan made (cropped, flipped, cutmixed) and the epoch's generator, returns the batch to yield.
 */
export type BatchAugmentation = (batch: Batch, random: DeviceRandom) => Batch;

/** Options of `epochBatches`, the seed's `get_batches` arguments. */
export interface EpochBatchesArgs {
  /** Examples per batch; a last partial batch is dropped. */
  batchSize: number;
  /** Draws the shuffle and the augmentations; default the global generator (`setGlobalSeed`). */
  random?: DeviceRandom;
  /** Augment (crop, flip, cutmix, then `augment`) as for the training set. Default true. */
  train?: boolean;
  /** Fraction of the epoch to run (the seed's `epoch_fraction`). Default 1. */
  epochFraction?: number;
  /** Side of the random square crop taken from the padded images. Default 32. */
  cropSize?: number;
  /** Cutmix patch side; 0 turns cutmix off. Default 0. */
  cutmixSize?: number;
  /**
   * Your own augmentation, run on each training batch after the seed's, whichever form the set has (float32
   * or compact) and on every backend. It runs inside `tf.tidy` (return the batch's own tensors or new ones)
   * and should draw from the `random` it is given: batches are made in order, so a resumed epoch draws the
   * same. Not run when `train` is false. Default none.
   */
  augment?: BatchAugmentation;
}

/** One batch: the caller owns (and disposes) both tensors. */
export interface Batch {
  /** The batch's augmented images, `[B, size, size, C]`. */
  inputs: tf.Tensor4D;
  /** Their (cutmix-mixed) targets, `[B, classes]`. */
  targets: tf.Tensor2D;
}

/**
 * The seed's `get_batches`: draws the epoch's plan ({@link drawEpochPlan}: a shuffle of the whole set, of
 * which `epochExamples(n, batchSize, epochFraction)` are kept, then every image's crop, flip and, when
 * `cutmixSize > 0`, cutmix partner and square), executes it, and yields shuffled full batches gathered on
 * the backend, each passed through `augment` when one is given.
 *
 * The plan is executed per batch: on a float32 set by {@link applyEpochPlanRows} (the rows of the seed's
 * whole-set augmentation, value for value), on a {@link CompactImages} set by its decode kernel; no augmented
 * copy of the set exists on either, and their batches are the same (see {@link CompactImages} for where they
 * are bit for bit).
 *
 * @remarks
 * The plan is held (outside any `tf.tidy` the caller runs `next()`
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
  const { batchSize, train = true, epochFraction: fraction = 1, cropSize = 32, cutmixSize = 0, augment } = args ?? ({} as EpochBatchesArgs);
  const random = randomOrGlobal('epochBatches (args.random)', args?.random);
  const count = epochExamples(images.shape[0], batchSize, fraction);
  if (augment !== undefined && typeof augment !== 'function')
    throw new Error(`epochBatches: args.augment must be a function (batch, random) => batch, got ${typeof augment}`);
  if (train) {
    const [, height, width] = images.shape;
    if (!(Number.isInteger(cropSize) && cropSize >= 1 && cropSize <= Math.min(height, width))) {
      throw new Error(
        `epochBatches: cropSize must be an integer in [1, ${Math.min(height, width)}] for (padded) images of ${height}x${width}, got ${cropSize}`,
      );
    }
    if (!(Number.isInteger(cutmixSize) && cutmixSize >= 0))
      throw new Error(`epochBatches: cutmixSize must be a non-negative integer, got ${cutmixSize}`);
    // Refused here rather than when the plan is drawn, after the shuffle and the crops.
    if (cutmixSize > largestSeedSquare(cropSize)) {
      throw new Error(
        `epochBatches: cutmixSize ${cutmixSize} does not fit the ${cropSize}x${cropSize} crops; it must be at most ${largestSeedSquare(cropSize)} ` +
          "(the seed's square masks need a spare row for an even side; 0 turns cutmix off)",
      );
    }
  }
  return generateBatches(images, targets, { batchSize, random, train, cropSize, cutmixSize, augment }, count);
}

function* generateBatches(
  images: ImageSet,
  targets: tf.Tensor2D,
  args: Required<Omit<EpochBatchesArgs, 'epochFraction' | 'augment'>> & Pick<EpochBatchesArgs, 'augment'>,
  count: number,
): Generator<Batch, void, undefined> {
  const { batchSize, random, train, cropSize, cutmixSize, augment } = args;
  const [n, height, width] = images.shape;
  const held: tf.Tensor[] = [];
  let failed = false;
  try {
    const plan = drawEpochPlan([n, height, width], { count, augment: train, cropSize, cutmixSize }, random);
    held.push(...epochPlanTensors(plan).map((t) => tf.keep(t)));
    const gatherBatch = isCompactImages(images) ? compactBatches(images, targets, plan, held) : floatBatches(images, targets, plan);
    for (let i = 0; (i + 1) * batchSize <= count; i++) {
      const batch = tf.tidy(() => {
        const planned = gatherBatch(tf.slice(plan.order, i * batchSize, batchSize) as tf.Tensor1D);
        return (train && augment ? userAugmented(augment, planned, random, batchSize) : planned) as unknown as tf.TensorContainer;
      }) as unknown as Batch;
      yield batch;
    }
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    disposeAfter(held, failed);
  }
}

/** A float32 set's batches: the plan's rows of the batch, executed on the batch's images and their cutmix partners. */
function floatBatches(images: tf.Tensor4D, targets: tf.Tensor2D, plan: EpochPlan): (idx: tf.Tensor1D) => Batch {
  if (!(plan.crop || plan.flip || plan.cutmix))
    return (idx) => ({ inputs: tf.gather(images, idx) as tf.Tensor4D, targets: tf.gather(targets, idx) as tf.Tensor2D });
  return (idx) => {
    const rows = applyEpochPlanRows(images, targets, plan, idx);
    return { inputs: rows.images, targets: rows.targets };
  };
}

/** A compact set's batches: the plan's rows of the batch, executed by the decode kernel; cutmix's targets mixed per batch. */
function compactBatches(images: CompactImages, targets: tf.Tensor2D, plan: EpochPlan, held: tf.Tensor[]): (idx: tf.Tensor1D) => Batch {
  const rows = tf.keep(decodePlanRows(plan, images.shape[0]));
  held.push(rows);
  const { size, cutmix } = plan;
  return (idx) => {
    const inputs = images.decode(tf.gather(rows, idx) as tf.Tensor2D, size, cutmix?.size ?? 0);
    const own = tf.gather(targets, idx) as tf.Tensor2D;
    if (!cutmix) return { inputs, targets: own };
    const partnerTargets = tf.gather(targets, tf.gather(cutmix.partner, idx));
    return { inputs, targets: cutmixTargets(own, partnerTargets, cutmix.size, size, size) };
  };
}

/** `augment` run on a batch, its result checked. */
function userAugmented(augment: BatchAugmentation, batch: Batch, random: DeviceRandom, batchSize: number): Batch {
  const out = augment(batch, random);
  const { inputs, targets } = (out ?? {}) as Partial<Batch>;
  if (
    !(
      inputs instanceof tf.Tensor &&
      inputs.rank === 4 &&
      inputs.shape[0] === batchSize &&
      targets instanceof tf.Tensor &&
      targets.rank === 2 &&
      targets.shape[0] === batchSize
    )
  ) {
    throw new Error(
      `epochBatches: args.augment must return a batch { inputs: [${batchSize}, height, width, channels], targets: [${batchSize}, classes] }, ` +
        `got inputs [${inputs?.shape ?? String(inputs)}] and targets [${targets?.shape ?? String(targets)}]`,
    );
  }
  return { inputs: inputs as tf.Tensor4D, targets: targets as tf.Tensor2D };
}
