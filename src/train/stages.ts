/**
 * The stages of the seed's training recipe, each a small function or object the `Trainer` takes
 * through `TrainOptions.stages`: the loss, the epoch's batches (augmentation), the optimiser's
 * parameter groups and schedules, the EMA and the evaluation. The seed's are the defaults; swap one
 * without touching the rest.
 *
 * @remarks
 * A stage that keeps state of its own (a curriculum, a running statistic) implements
 * {@link StageCheckpoint}: `Trainer.checkpoint()` stores what `saveState` returns under the stage's
 * name and `Trainer.restore()` hands it back to `loadState`, so a user's stage resumes exactly too.
 * The optimizer and EMA stages make objects that keep the state (`TrainOptimizer`, `TrainEMA` in
 * src/train/contracts.ts); the checkpoint stores theirs under the stage's name the same way.
 * Randomness should come from the `random` a batches stage is given: the trainer rewinds it to the
 * epoch's start on resume.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { epochBatches, sliceImages, type AnyLabelledImages, type Batch, type BatchAugmentation } from '../data/batches.js';
import type { Hyp } from '../models/hyp.js';
import { accuracy, crossEntropy, seedLoss } from '../ops/loss.js';
import type { DeviceRandom } from '../ops/random.js';
import type { StageCheckpoint, TrainEMA, TrainOptimizer } from './contracts.js';
import { NetworkEMA } from './ema.js';
import { predictWithFlipTTA } from './flip-tta.js';
import { perExampleLoss } from './metrics.js';
import { OneCycle } from './one-cycle.js';
import { SGD, splitBiasGroups } from './sgd.js';

export type { StageCheckpoint, StageState, TrainEMA, TrainOptimizer } from './contracts.js';

/** What the trainer knows of the run when it builds and calls the stages. */
export interface StageContext {
  /** The model being trained. */
  readonly model: tfl.LayersModel;
  /** The hyperparameters of the run. */
  readonly hyp: Hyp;
  /** Images per optimiser step. */
  readonly batchSize: number;
  /** Optimiser steps in the run. */
  readonly totalSteps: number;
  /** Steps in each epoch of the schedule. */
  readonly epochSteps: readonly number[];
  /** Side of the network's input images (the crop size), in pixels. */
  readonly imageSize: number;
}

/** What a loss stage is given besides the (micro-)batch's logits and targets. */
export interface LossStageArgs {
  /** `hyp.opt.lossBatchSize / batchSize`: turns a sum over the batch into the seed's scaled sum. */
  batchScale: number;
  /** The run's model, hyperparameters and schedule. */
  context: StageContext;
}

/**
 * The training loss of one (micro-)batch: a scalar the gradients are taken of. With micro-batches the trainer sums
 * the gradients of the step's passes, so each pass should give its share of the full batch's loss: a sum over the
 * examples does (the seed's, scaled by `batchScale`); a mean should be weighted by `logits.shape[0] / context.batchSize`.
 *
 * @remarks
 * The loss is logged per example (`StepInfo.loss`, the table's train_loss): the trainer sums the step's values and
 * hands the total to `perExample`, which undoes the stage's own scaling. Without it the total is logged as it is,
 * which is right for a loss that is already a mean.
 */
export interface LossStage {
  (logits: tf.Tensor2D, targets: tf.Tensor2D, args: LossStageArgs): tf.Scalar;
  /** The per-example loss to log from the step's total (this stage's values summed over its passes). Default: the total as it is. */
  perExample?(stepLoss: number, args: LossStageArgs): number;
}

/** The seed's loss: label-smoothed cross-entropy summed over the batch, scaled by `lossBatchSize / batchSize`; logged divided back per example. */
export const seedLossStage: LossStage = Object.assign(
  (logits: tf.Tensor2D, targets: tf.Tensor2D, { batchScale, context }: LossStageArgs) =>
    seedLoss(logits, targets, { labelSmoothing: context.hyp.opt.labelSmoothing, batchScale }),
  {
    perExample: (stepLoss: number, { batchScale, context }: LossStageArgs) => perExampleLoss(stepLoss, context.batchSize, batchScale),
  },
);

/** What a batches stage is given at the start of each epoch (and again when an epoch is resumed). */
export interface BatchesStageArgs {
  /** 0-based epoch. */
  epoch: number;
  /** The optimiser steps this epoch runs: the generator must give at least this many batches. */
  steps: number;
  /** The (padded) training split. */
  train: AnyLabelledImages;
  /** The generator to draw from; the trainer sets it to the epoch's start state, so a resumed epoch draws the same batches. */
  random: DeviceRandom;
  /** The run's model, hyperparameters and schedule. */
  context: StageContext;
}

/**
 * The augmentation stage: a function that gives the epoch's batches (inputs the network's input
 * size, targets one-hot). The trainer takes `steps` of them and closes the generator.
 */
export type BatchesStage = (args: BatchesStageArgs) => Iterator<Batch, unknown, undefined>;

/** Options of {@link seedBatches}. */
export interface SeedBatchesOptions {
  /**
   * Your own augmentation of each training batch, after the seed's crop, flip and cutmix, on float32 and
   * compact sets alike (`EpochBatchesArgs.augment`). Default none.
   */
  augment?: BatchAugmentation;
}

/**
 * The seed's batches stage, with an augmentation of your own added to every batch:
 * `stages: { batches: seedBatches({ augment }) }`. Without one it is {@link seedBatchesStage}.
 */
export function seedBatches(options: SeedBatchesOptions = {}): BatchesStage {
  const { augment } = options ?? {};
  if (augment !== undefined && typeof augment !== 'function')
    throw new Error(`seedBatches: augment must be a function (batch, random) => batch, got ${typeof augment}`);
  return ({ epoch, steps, train, random, context }) => {
    const { net, misc } = context.hyp;
    return epochBatches(train, {
      batchSize: context.batchSize,
      random,
      epochFraction: (steps * context.batchSize) / train.images.shape[0],
      cropSize: context.imageSize,
      cutmixSize: epoch >= misc.trainEpochs - net.cutmixEpochs ? net.cutmixSize : 0,
      augment,
    });
  };
}

/** The seed's batches: shuffled, randomly cropped and flipped once per epoch, cutmix in the last `net.cutmixEpochs` epochs. */
export const seedBatchesStage: BatchesStage = seedBatches();

/**
 * The optimiser stage: makes the optimiser for the run (its parameter groups and schedules are its own business),
 * any object with `step(grads)` (`TrainOptimizer`); with `saveState`/`loadState` its state is checkpointed as this
 * stage's.
 */
export type OptimizerStage = (context: StageContext) => TrainOptimizer;

/**
 * The seed's optimiser: Nesterov SGD in two groups, the weights named `...bias` and the rest, each with
 * its learning rate and coupled weight decay under a linear OneCycle (the non-bias group's rate is the one reported).
 */
export const seedOptimizerStage: OptimizerStage = ({ model, hyp, totalSteps }) => {
  const { opt } = hyp;
  const { bias, nonBias } = splitBiasGroups(model.trainableWeights);
  const cycle = (maxLr: number) =>
    new OneCycle({
      maxLr,
      totalSteps,
      pctStart: opt.percentStart,
      divFactor: opt.initialDivFactor,
      finalDivFactor: 1 / (opt.initialDivFactor * opt.finalLrRatio),
      anneal: 'linear',
    });
  const common = { momentum: opt.momentum, nesterov: true };
  return new SGD([
    { name: 'non_bias', weights: nonBias, lr: cycle(opt.nonBiasLr), weightDecay: opt.nonBiasDecay, ...common },
    { name: 'bias', weights: bias, lr: cycle(opt.biasLr), weightDecay: opt.biasDecay, ...common },
  ]);
};

/** The EMA stage: when it is due, and the EMA it makes. */
export interface EmaStage {
  /** The first epoch the EMA runs in. */
  startEpoch(context: StageContext): number;
  /** Whether step `step` (completed steps, 1 after the first) of epoch `epoch` is one of the EMA's. */
  isDue(epoch: number, step: number, context: StageContext): boolean;
  /**
   * The EMA (`TrainEMA`), made from the live model at its first due step; later due steps call its
   * `average(model, step)` and then its `copyBack(model)`, if it has one. Its state is checkpointed as this stage's.
   */
  create(context: StageContext): TrainEMA;
}

/** The seed's EMA: from epoch `floor(trainEpochs) - ema.epochs`, every `ema.everyNSteps` steps, copied back into the live net. */
export const seedEmaStage: EmaStage = {
  startEpoch: ({ hyp }) => Math.floor(hyp.misc.trainEpochs) - hyp.misc.ema.epochs,
  isDue(epoch, step, context) {
    return epoch >= this.startEpoch(context) && step % context.hyp.misc.ema.everyNSteps === 0;
  },
  create: ({ model, hyp, totalSteps }) => {
    const { ema } = hyp.misc;
    return new NetworkEMA(model, {
      decaySchedule: { totalSteps, decayBase: ema.decayBase, everyN: ema.everyNSteps, pow: ema.decayPow },
    });
  },
};

/** The evaluation stage: loss and accuracy of `model` (with whatever weights it holds now) on a labelled split. */
export type EvaluateStage = (
  model: tfl.LayersModel,
  split: AnyLabelledImages,
  context: StageContext,
) => Promise<{
  /** Mean loss per image. */
  loss: number;
  /** Fraction of images classified right, in [0, 1]. */
  acc: number;
}>;

/** The seed's evaluation: flip test-time augmentation, mean label-smoothed cross-entropy and accuracy, in `misc.evalBatchSize` chunks. */
export const seedEvaluateStage: EvaluateStage = async (model, { images, targets }, { hyp }) => {
  const n = images.shape[0];
  const size = Math.min(hyp.misc.evalBatchSize, n);
  const parts: tf.Scalar[] = [];
  const weights: number[] = [];
  for (let start = 0; start < n; start += size) {
    const count = Math.min(size, n - start);
    const [loss, acc] = tf.tidy(() => {
      const x = sliceImages(images, start, count);
      const y = tf.slice(targets, start, count);
      const logits = predictWithFlipTTA(model, x);
      return [tf.mean(crossEntropy(logits, y, hyp.opt.labelSmoothing)), accuracy(logits, y)] as tf.Scalar[];
    });
    parts.push(loss!, acc!);
    weights.push(count);
  }
  const values = await Promise.all(parts.map((t) => t.data()));
  tf.dispose(parts);
  let loss = 0;
  let acc = 0;
  weights.forEach((w, i) => {
    loss += values[2 * i]![0]! * w;
    acc += values[2 * i + 1]![0]! * w;
  });
  return { loss: loss / n, acc: acc / n };
};

/** The stages a `Trainer` runs; each left out is the seed's. */
export interface TrainStages {
  /** The training loss of a (micro-)batch; default {@link seedLossStage}. */
  loss?: LossStage;
  /** Each epoch's augmented batches; default {@link seedBatchesStage}. */
  batches?: BatchesStage;
  /** Makes the optimiser; default {@link seedOptimizerStage}. */
  optimizer?: OptimizerStage;
  /** Makes the weight average; default {@link seedEmaStage}. */
  ema?: EmaStage;
  /** Loss and accuracy on the evaluation split; default {@link seedEvaluateStage}. */
  evaluate?: EvaluateStage;
}

/** The stage names, in the order the trainer checkpoints their states. */
export const STAGE_NAMES = ['loss', 'batches', 'optimizer', 'ema', 'evaluate'] as const;
/** One of {@link STAGE_NAMES}. */
export type StageName = (typeof STAGE_NAMES)[number];

/** The seed's recipe, stage by stage. */
export const SEED_STAGES: Readonly<Required<TrainStages>> = Object.freeze({
  loss: seedLossStage,
  batches: seedBatchesStage,
  optimizer: seedOptimizerStage,
  ema: seedEmaStage,
  evaluate: seedEvaluateStage,
});

/** `stages` with the recipe's (the seed's unless given) in every place left out, each checked to be what its place takes. */
export function resolveStages(stages: TrainStages | undefined, base: Readonly<Required<TrainStages>> = SEED_STAGES): Required<TrainStages> {
  if (stages != null && typeof stages !== 'object') throw new Error(`Trainer: stages must be an object of stages, got ${String(stages)}`);
  const given = stages ?? {};
  for (const key of Object.keys(given)) {
    if (!(STAGE_NAMES as readonly string[]).includes(key))
      throw new Error(`Trainer: unknown stage '${key}'; expected one of ${STAGE_NAMES.join(', ')}`);
  }
  const resolved = {
    ...base,
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  } as Required<TrainStages>;
  for (const name of ['loss', 'batches', 'optimizer', 'evaluate'] as const) {
    if (typeof resolved[name] !== 'function') throw new Error(`Trainer: stages.${name} must be a function, got ${typeof resolved[name]}`);
  }
  const { ema, loss } = resolved;
  if (ema == null || typeof ema.startEpoch !== 'function' || typeof ema.isDue !== 'function' || typeof ema.create !== 'function') {
    throw new Error('Trainer: stages.ema must be an object with startEpoch, isDue and create functions');
  }
  if (loss.perExample !== undefined && typeof loss.perExample !== 'function')
    throw new Error(`Trainer: stages.loss.perExample must be a function (the per-example loss to log), got ${typeof loss.perExample}`);
  // Their state is the state of the optimiser and EMA they make: a second one on the stage would take the same place.
  for (const name of ['optimizer', 'ema'] as const) {
    if (stageCheckpoint(resolved[name]) != null) {
      throw new Error(
        `Trainer: stages.${name} keeps its state in the ${name === 'ema' ? 'EMA' : 'optimiser'} it makes (saveState/loadState of ${name === 'ema' ? 'TrainEMA' : 'TrainOptimizer'}), not on the stage itself`,
      );
    }
  }
  return resolved;
}

/** The stage's checkpoint interface, when it has one (both methods). */
export function stageCheckpoint(stage: unknown): StageCheckpoint | null {
  const s = stage as Partial<StageCheckpoint> | null;
  return s != null && typeof s.saveState === 'function' && typeof s.loadState === 'function' ? (s as StageCheckpoint) : null;
}
