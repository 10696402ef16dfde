import * as tf from '@tensorflow/tfjs-core';
import type { DeviceRandom } from '../ops/random.js';
import { cropImages, drawCrops } from './crop.js';
import { cutmixImages, cutmixTargets, drawCutmix, type CutmixDraws } from './cutmix.js';
import { drawFlips, flipImages } from './flip.js';
import { squareMasks, type SquareStarts } from './masks.js';

/**
 * Every random decision of one epoch, drawn once ({@link drawEpochPlan}) and then executed by whichever
 * path holds the images: {@link applyEpochPlanRows} per batch on a float32 set ({@link applyEpochPlan} on
 * the whole of one), the DataflowDecodeImages kernel per batch on a compact one. Per-image entries are
 * indexed by the image's position in the set.
 *
 * @remarks
 * Changing a decision (the flip chance, where crops or cutmix squares go) means changing the draw
 * function that makes it; both paths then follow, since neither decides anything of its own.
 */
export interface EpochPlan {
  /** int32 `[count]`: the images of the set in the order the epoch's batches take them. */
  readonly order: tf.Tensor1D;
  /** Side of the images the plan produces: the crop size, or the set's height when there is no crop. */
  readonly size: number;
  /** Each image's crop window (int32 `[n]` top-left corners in the padded image), or null: no crop. */
  readonly crop: SquareStarts | null;
  /** bool `[n]`: the images mirrored left-right (after the crop), or null: no flip. */
  readonly flip: tf.Tensor1D | null;
  /** Each image's cutmix partner and square (in crop coordinates), or null: no cutmix. */
  readonly cutmix: CutmixDraws | null;
}

/** What {@link drawEpochPlan} draws. */
export interface EpochPlanArgs {
  /** Images the epoch takes, a prefix of the shuffle; default all. */
  count?: number;
  /** Crop, flip and cutmix; false draws only the shuffle. Default true. */
  augment?: boolean;
  /** Side of the random square crop. Default 32. */
  cropSize?: number;
  /** Cutmix patch side; 0 turns cutmix off. Default 0. */
  cutmixSize?: number;
}

/** The epoch's shuffle: a random permutation of the `n` images of the set, its first `count` kept. */
export function drawOrder(n: number, count: number, random: DeviceRandom): tf.Tensor1D {
  if (!(Number.isInteger(count) && count >= 0 && count <= n))
    throw new Error(`drawOrder: count must be an integer in [0, ${n}], got ${count}`);
  const perm = random.permutation(n);
  if (count === n) return perm;
  try {
    return tf.slice(perm, 0, count);
  } finally {
    perm.dispose();
  }
}

/**
 * The seed's epoch of decisions for a set of `n` images of `height` x `width`, drawn from `random` in
 * the seed's order: the shuffle, each image's crop rows then columns, one uniform per image for the
 * flip, then (with `cutmixSize > 0`) cutmix's partner permutation and its squares' rows and columns.
 * The caller owns the plan ({@link disposeEpochPlan}).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { DeviceRandom, applyEpochPlan, disposeEpochPlan, drawEpochPlan, reflectPad } from 'tfjs-dataflow';
 *
 * const padded = reflectPad(tf.randomUniform([8, 32, 32, 3]), 2) as tf.Tensor4D; // [8, 36, 36, 3]
 * const targets = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10), 'float32') as tf.Tensor2D;
 * // One epoch's decisions: the shuffle, 32x32 crops, flips and 16x16 cutmix squares.
 * const plan = drawEpochPlan([8, 36, 36], { cropSize: 32, cutmixSize: 16 }, new DeviceRandom(1));
 * const { images, targets: mixed } = applyEpochPlan(padded, targets, plan); // in the set's order
 * disposeEpochPlan(plan);
 * ```
 */
export function drawEpochPlan(shape: readonly [number, number, number], args: EpochPlanArgs, random: DeviceRandom): EpochPlan {
  const [n, height, width] = shape;
  const { count = n, augment = true, cropSize = 32, cutmixSize = 0 } = args;
  const held: tf.Tensor[] = [];
  try {
    const order = drawOrder(n, count, random);
    held.push(order);
    if (!augment) return { order, size: height, crop: null, flip: null, cutmix: null };
    const crop = drawCrops(n, height, width, cropSize, random);
    held.push(crop.top, crop.left);
    const flip = drawFlips(n, random);
    held.push(flip);
    const cutmix = cutmixSize > 0 ? drawCutmix(n, cropSize, cropSize, cutmixSize, random) : null;
    return { order, size: cropSize, crop, flip, cutmix };
  } catch (e) {
    tf.dispose(held);
    throw e;
  }
}

/** The plan's tensors, for keeping or freeing them together. */
export function epochPlanTensors(plan: EpochPlan): tf.Tensor[] {
  const { order, crop, flip, cutmix } = plan;
  const all: Array<tf.Tensor | null | undefined> = [order, crop?.top, crop?.left, flip, cutmix?.partner, cutmix?.top, cutmix?.left];
  return all.filter((t): t is tf.Tensor => t != null);
}

/** Frees the plan's tensors. */
export function disposeEpochPlan(plan: EpochPlan): void {
  tf.dispose(epochPlanTensors(plan));
}

/**
 * The plan executed on a whole float32 set (NHWC images, and their soft targets): crop, flip, then
 * cutmix, as the seed's `batch_crop`, `batch_flip_lr` and `batch_cutmix` run. Returns new tensors in
 * the set's order (the plan's `order` is for the caller's batches); the caller keeps the plan.
 */
export function applyEpochPlan(
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  plan: EpochPlan,
): {
  /** The augmented images, `[N, size, size, C]`. */
  images: tf.Tensor4D;
  /** The targets, mixed by cutmix's area where the plan has it. */
  targets: tf.Tensor2D;
} {
  return tf.tidy(() => {
    let x: tf.Tensor4D = images;
    if (plan.crop) x = cropImages(x, plan.crop, plan.size);
    if (plan.flip) x = flipImages(x, plan.flip);
    if (!plan.cutmix) return { images: x === images ? (tf.clone(x) as tf.Tensor4D) : x, targets: tf.clone(targets) as tf.Tensor2D };
    const partnerTargets = tf.gather(targets, plan.cutmix.partner);
    return {
      images: cutmixImages(x, plan.cutmix),
      targets: cutmixTargets(targets, partnerTargets, plan.cutmix.size, plan.size, plan.size),
    };
  });
}

/**
 * The plan executed for some images of a float32 set only: rows `ids` (int32 image indices, e.g. a batch of the
 * plan's `order`) of what {@link applyEpochPlan} gives for the whole set, value for value, computed from those
 * images and their cutmix partners alone. The epoch's batches take this way, so no augmented copy of the set is
 * ever held (a whole-set copy at CIFAR-10's size is 614 MB, several at once past the wasm heap's 4 GB).
 */
export function applyEpochPlanRows(
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  plan: EpochPlan,
  ids: tf.Tensor1D,
): {
  /** The augmented images of `ids`, `[ids, size, size, C]`. */
  images: tf.Tensor4D;
  /** Their targets, mixed by cutmix's area where the plan has it. */
  targets: tf.Tensor2D;
} {
  return tf.tidy(() => {
    // Crop then flip, as the whole set is: every row depends on its own image and plan entries only.
    const cropFlip = (rows: tf.Tensor1D): tf.Tensor4D => {
      let x = tf.gather(images, rows) as tf.Tensor4D;
      if (plan.crop) x = cropImages(x, { top: tf.gather(plan.crop.top, rows), left: tf.gather(plan.crop.left, rows) }, plan.size);
      if (plan.flip) x = flipImages(x, tf.gather(plan.flip, rows) as tf.Tensor1D);
      return x;
    };
    const own = cropFlip(ids);
    const ownTargets = tf.gather(targets, ids) as tf.Tensor2D;
    if (!plan.cutmix) return { images: own, targets: ownTargets };
    const { cutmix, size } = plan;
    const partners = tf.gather(cutmix.partner, ids) as tf.Tensor1D;
    const masks = squareMasks({ top: tf.gather(cutmix.top, ids), left: tf.gather(cutmix.left, ids) }, size, size, cutmix.size);
    return {
      images: tf.where(masks, cropFlip(partners), own) as tf.Tensor4D,
      targets: cutmixTargets(ownTargets, tf.gather(targets, partners), cutmix.size, size, size) as tf.Tensor2D,
    };
  });
}
