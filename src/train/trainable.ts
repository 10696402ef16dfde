import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { AnyLabelledImages, LabelledImages } from '../data/batches.js';
import { isCompactImages } from '../data/compact.js';
import { resolveHyp, type Hyp, type HypOverrides } from '../models/hyp.js';

// What a Trainer trains (a model and its hyperparameters) and on what (the data), with the checks that
// refuse them up front, saying what was expected and what arrived.

/**
 * The dataset as the seed holds it on the device: padded, normalised training images and the eval split,
 * as float32 tensors (`TrainData`) or either form (`TrainData<AnyLabelledImages>`, what a Trainer takes:
 * compact sets are decoded per batch).
 */
export interface TrainData<Split extends AnyLabelledImages = LabelledImages> {
  /** Training images reflect-padded by `hyp.net.padAmount`, NHWC, with one-hot (or soft) targets. */
  train: Split;
  /** Evaluation images (unpadded) and one-hot targets: at least one image, since every run is evaluated (a Trainer refuses an empty split). */
  eval: Split;
}

/**
 * A model for `Trainer` with the hyperparameters to train it with: a `SpeedyConvNet`, or
 * `{ model, hyp }` for a model of your own.
 */
export interface TrainableNet {
  /** NHWC images in, `[N, classes]` logits out. */
  model: tfl.LayersModel;
  /** The recipe's hyperparameters: a full `Hyp` (a `SpeedyConvNet`'s) or overrides of the seed's (`SEED_HYP`). Default: the seed's. */
  hyp?: HypOverrides;
}

/** The model and its hyperparameters, checked, from what the Trainer was given. */
export function resolveTrainable(net: tfl.LayersModel | TrainableNet): { model: tfl.LayersModel; hyp: Hyp } {
  const isModel = (m: unknown): m is tfl.LayersModel =>
    m != null &&
    typeof m === 'object' &&
    typeof (m as tfl.LayersModel).apply === 'function' &&
    Array.isArray((m as tfl.LayersModel).trainableWeights) &&
    Array.isArray((m as tfl.LayersModel).inputs);
  const given = isModel(net) ? { model: net } : net;
  if (given == null || !isModel(given.model)) {
    throw new Error(
      `Trainer: expected a tf.LayersModel or { model, hyp } (such as a SpeedyConvNet), got ${given == null ? String(given) : `an object with keys ${Object.keys(given).join(', ') || '(none)'}`}`,
    );
  }
  const { model } = given;
  let hyp: Hyp;
  try {
    hyp = resolveHyp(given.hyp ?? {});
  } catch (e) {
    throw new Error(`Trainer: net.hyp is invalid: ${(e as Error).message}`);
  }
  const input = model.inputs;
  if (input.length === 0)
    throw new Error("Trainer: the model has no input yet; build it first (e.g. give a tf.sequential model's first layer an inputShape)");
  if (input.length !== 1 || input[0]!.shape.length !== 4) {
    throw new Error(
      `Trainer: the model must take one input of NHWC images [N, H, W, C], it takes ${input.map((t) => `[${t.shape.map((d) => d ?? 'null')}]`).join(', ')}`,
    );
  }
  const output = model.outputs;
  if (output.length !== 1 || output[0]!.shape.length !== 2) {
    throw new Error(
      `Trainer: the model must have one output of logits [N, classes], it has ${output.map((t) => `[${t.shape.map((d) => d ?? 'null')}]`).join(', ')}`,
    );
  }
  return { model, hyp };
}

/** Checks the data against the model and hyp; returns the side of the model's input images (the crop size). */
export function checkTrainData(model: tfl.LayersModel, data: TrainData<AnyLabelledImages>, hyp: Hyp): number {
  const isSplit = (s: AnyLabelledImages | undefined) =>
    (s?.images instanceof tf.Tensor || (isCompactImages(s?.images) && !s.images.isDisposed)) &&
    s.images.rank === 4 &&
    s.targets instanceof tf.Tensor &&
    s.targets.rank === 2;
  if (data == null || !isSplit(data.train) || !isSplit(data.eval)) {
    throw new Error(
      'Trainer: data must be { train: { images, targets }, eval: { images, targets } }: NHWC image tensors (or CompactImages) and [N, classes] target tensors',
    );
  }
  const gone = (['train', 'eval'] as const).flatMap((split) =>
    (['images', 'targets'] as const).filter((k) => data[split][k].isDisposed).map((k) => `data.${split}.${k}`),
  );
  if (gone.length > 0) throw new Error(`Trainer: ${gone.join(', ')} ${gone.length === 1 ? 'has' : 'have'} been disposed`);
  for (const split of ['train', 'eval'] as const) {
    const { images, targets } = data[split];
    if (images.shape[0] !== targets.shape[0]) {
      throw new Error(
        `Trainer: data.${split} has ${images.shape[0]} images but ${targets.shape[0]} targets ([${images.shape}] and [${targets.shape}]); each image needs one target row`,
      );
    }
  }
  // Refused rather than skipped: every run evaluates (after the last epoch at least), and an empty split's loss is 0/0.
  if (data.eval.images.shape[0] === 0) {
    throw new Error(
      `Trainer: data.eval holds no images (shape [${data.eval.images.shape}]); the trainer evaluates after the last epoch (and after every epoch with evalEveryEpoch), so it needs at least one`,
    );
  }
  const { padAmount } = hyp.net;
  const n = data.train.images.shape[0];
  if (n < hyp.opt.batchSize) throw new Error(`Trainer: the training set has ${n} images, fewer than one batch of ${hyp.opt.batchSize}`);
  const [, height, width, channels] = model.inputs[0]!.shape;
  const trainSide = data.train.images.shape[1];
  const imageSize = height ?? trainSide - 2 * padAmount;
  const expectedSide = imageSize + 2 * padAmount;
  if (trainSide !== expectedSide || data.train.images.shape[2] !== expectedSide || (width != null && width !== height)) {
    throw new Error(
      `Trainer: training images must be square and reflect-padded by hyp.net.padAmount=${padAmount} (${expectedSide}x${expectedSide} for the model's ${height ?? 'any'}x${width ?? 'any'} input), got shape [${data.train.images.shape}]`,
    );
  }
  const [, evalHeight, evalWidth, evalChannels] = data.eval.images.shape;
  if (evalHeight !== imageSize || evalWidth !== imageSize) {
    throw new Error(`Trainer: eval images must be ${imageSize}x${imageSize} (unpadded), got shape [${data.eval.images.shape}]`);
  }
  if (channels != null && (data.train.images.shape[3] !== channels || evalChannels !== channels)) {
    throw new Error(
      `Trainer: the model takes ${channels}-channel images, the data has ${data.train.images.shape[3]} (train) and ${evalChannels} (eval)`,
    );
  }
  const classes = model.outputs[0]!.shape[1];
  for (const [split, { targets }] of [
    ['train', data.train],
    ['eval', data.eval],
  ] as const) {
    if (classes != null && targets.shape[1] !== classes)
      throw new Error(`Trainer: the model outputs ${classes} classes, the ${split} targets have ${targets.shape[1]} ([${targets.shape}])`);
  }
  return imageSize;
}
